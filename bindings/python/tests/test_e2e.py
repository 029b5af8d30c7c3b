# SPDX-License-Identifier: Apache-2.0
"""End to end: examples/hello behind the local ingress (NSM simulator) and relay, started by
run_tests.sh. Connect, check the attestation against the trust file, HTTP, raw streams,
refusals, closed objects, and a blocked read ended by closing the channel."""

import re
import threading
import time

import pytest

import enclavia


def trust_pcr(path, index):
    match = re.search(r'^PCR%d = "([0-9a-f]{96})"' % index, path.read_text(), re.M)
    assert match, "no PCR%d in %s" % (index, path)
    return bytes.fromhex(match.group(1))


@pytest.fixture(scope="module")
def channel(enclave):
    start = time.perf_counter()
    with enclavia.connect(enclave.url, trust=enclave.trust) as channel:
        print("\nconnect (handshake + fresh attestation): %.1f ms"
              % ((time.perf_counter() - start) * 1000))
        yield channel


def test_attestation_matches_the_trust_file(enclave, channel):
    att = channel.attestation
    for index in (0, 1, 2):
        assert att.pcrs[index] == trust_pcr(enclave.trust, index)
    assert att.module_id
    assert len(att.public_key) == 32
    age = time.time() - att.timestamp.timestamp()
    assert -60 < age < 600, age
    assert att.upgrades == 0 and att.genesis is None
    with pytest.raises(TypeError):
        att.pcrs[0] = b""  # read-only


def test_connect_with_a_trust_object_and_a_path(enclave):
    trust = enclavia.Trust.load(enclave.trust)
    with enclavia.connect(enclave.url, trust=trust) as a, \
            enclavia.connect(enclave.url, trust=str(enclave.trust)) as b:
        assert a.attestation.pcrs[0] == b.attestation.pcrs[0]
        # fresh = true: each handshake gets its own document, bound to its own key exchange.
        assert a.attestation.timestamp <= b.attestation.timestamp


def test_request(enclave, channel):
    r = channel.request("GET", "/", port=enclave.port)
    assert r.status == 200, r
    assert r.body == ("hello from the enclave: %s" % enclave.greeting).encode() or \
        r.body.rstrip(b"\n") == ("hello from the enclave: %s" % enclave.greeting).encode()
    assert r.headers["Content-Length"] == str(len(r.body))
    assert channel.request("POST", "/", port=enclave.port, body=b"x").status == 405


def test_http_connection_keep_alive(enclave, channel):
    conn = channel.http(enclave.port)
    try:
        for _ in range(3):
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.status == 200
            assert b"hello from the enclave" in response.read()
    finally:
        conn.close()


def test_raw_stream_is_a_file(enclave, channel):
    with channel.open(enclave.port) as stream:
        assert stream.readable() and stream.writable()
        assert stream.write(bytearray(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")) == 27
        stream.close_write()
        data = stream.read()  # until the enclave side ends the stream
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") or data.startswith(b"HTTP/1.0 200 OK\r\n"), data
    assert data.endswith(enclave.greeting.encode()) or enclave.greeting.encode() in data
    assert stream.closed
    with pytest.raises(enclavia.Error):
        stream.write(b"more")


def test_closed_port_fails_on_first_read(channel):
    with channel.open(9) as stream:
        with pytest.raises(enclavia.Unavailable, match="port 9 is not open"):
            stream.write(b"x")
            stream.read(1)


def test_wrong_pcr_is_a_policy_violation(enclave, tmp_path):
    bad = tmp_path / "bad.toml"
    text = enclave.trust.read_text()
    pcr0 = trust_pcr(enclave.trust, 0).hex()
    bad.write_text(text.replace(pcr0, "00" * 47 + "01"))
    # Relative roots are taken from the trust file's folder: parse with the original's.
    trust = enclavia.Trust.parse(bad.read_text(), base_dir=enclave.trust.parent)
    with pytest.raises(enclavia.PolicyViolation) as info:
        enclavia.connect(enclave.url, trust=trust)
    message = str(info.value)
    assert info.value.status == "policy_violation" and info.value.code == 6
    assert "\n" not in message and "accept" in message, message


def test_unreachable_relay_fails_cleanly(enclave):
    with pytest.raises(enclavia.Error) as info:
        enclavia.connect("ws://127.0.0.1:9/", trust=enclave.trust)
    assert info.value.status in ("io", "unavailable"), info.value
    assert "\n" not in str(info.value)


def test_a_closed_channel_raises(enclave):
    channel = enclavia.connect(enclave.url, trust=enclave.trust)
    stream = channel.open(enclave.port)
    channel.close()
    channel.close()  # idempotent
    assert channel.closed
    with pytest.raises(enclavia.FailedPrecondition, match="closed"):
        channel.open(enclave.port)
    with pytest.raises(enclavia.Unavailable, match="channel ended"):  # its streams fail too
        stream.write(b"GET / HTTP/1.0\r\n\r\n")
        stream.read(1)
    stream.close()


def test_closing_the_channel_ends_a_blocked_read(enclave):
    channel = enclavia.connect(enclave.url, trust=enclave.trust)
    stream = channel.open(enclave.port)
    stream.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # an unfinished request: no reply comes
    result = {}

    def reader():
        try:
            result["data"] = stream.read(100)
        except enclavia.Error as error:
            result["error"] = error

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive(), result  # blocked, and the GIL is free (we are running)
    start = time.perf_counter()
    channel.close()
    thread.join(5)
    assert not thread.is_alive(), "read still blocked after the channel was closed"
    assert isinstance(result.get("error"), enclavia.Unavailable), result
    assert time.perf_counter() - start < 2
    stream.close()
