# SPDX-License-Identifier: Apache-2.0
"""The conformance vectors (tests/conformance/README.md): every case gives the verdict the C++
core gives (the vector's `expect`), and accepted cases the expected PCR0. With
ENCLAVIA_VERDICTS_OUT set, appends "<name> <verdict>" per case run, as the other runners do."""

import os

import pytest

import enclavia
from enclavia import trust as trust_module

from conftest import fixtures_dir, load_vectors

CASES = load_vectors()


def read_document(case):
    if "document_fixture" not in case:
        return bytes.fromhex(case["document"])
    base = fixtures_dir()
    if base is None:
        pytest.skip("%s reads %s: shared fixtures not found (ENCLAVIA_FIXTURES)"
                    % (case["name"], case["document_fixture"]))
    raw = (base / "nitro" / case["document_fixture"]).read_bytes()
    if case["document_fixture"].endswith(".b64"):
        import base64

        return base64.b64decode(b"".join(raw.split()))
    return raw


def optional_hex(case, field):
    value = case.get(field)
    return None if value is None else bytes.fromhex(value)


def run_case(case, tmp_path):
    """Returns (verdict, message, attestation or None), as the C++ runner computes them."""
    for name, text in case.get("files", {}).items():
        assert "/" not in name
        (tmp_path / name).write_bytes(text.encode("utf-8"))
    try:
        policy = enclavia.Trust.parse(case["trust"], base_dir=tmp_path)
    except enclavia.Error as error:
        return error.status, str(error), None
    policy.set_time(int(case["at_ms"]))
    try:
        if case["kind"] == "attestation":
            got = enclavia.verify_attestation(
                read_document(case),
                policy,
                chain=[bytes.fromhex(e) for e in case.get("chain", [])],
                public_key=optional_hex(case, "public_key"),
                nonce=optional_hex(case, "nonce"),
            )
        else:
            assert case["kind"] == "handshake", case["kind"]
            got = trust_module._handshake_replay(
                policy, bytes.fromhex(case["ephemeral"]), bytes.fromhex(case["message2"]))
    except enclavia.Error as error:
        return error.status, str(error), None
    return "ok", "", got


def test_vectors_exist_and_cover_both_verdicts():
    assert CASES, "tests/conformance/vectors.json is missing or empty"
    expects = {c["expect"] for c in CASES}
    assert "ok" in expects and len(expects) > 2
    assert {c["kind"] for c in CASES} == {"attestation", "handshake"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case, tmp_path):
    verdict, message, attestation = run_case(case, tmp_path)
    out = os.environ.get("ENCLAVIA_VERDICTS_OUT")  # as the C++ and C runners (README.md)
    if out:
        with open(out, "a") as f:
            f.write("%s %s\n" % (case["name"], verdict))
    assert verdict == case["expect"], "%s: %s" % (case["name"], message)
    if verdict != "ok":
        assert message and "\n" not in message
        return
    assert attestation is not None
    if case.get("expect_pcr0"):
        assert attestation.pcrs[0].hex() == case["expect_pcr0"].lower()
    assert len(attestation.pcrs[0]) == 48
    assert attestation.timestamp.tzinfo is not None
