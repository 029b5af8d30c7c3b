#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""bindings_client.py WS_URL TRUST_FILE BULK_PORT RUNS BYTES: Python's side of bench/bindings.sh.

The same runs as bench/bindings_client.cc, through bindings/python: per run a new channel
(connect until attested), a small request (1 KiB answer), a download and an upload of BYTES
(bench/bulk.cc protocol). Run 0 is a warm-up. One line per run:
"handshake_ms request_ms download_ms upload_ms".
"""
import struct
import sys
import time

import enclavia


def read_all(stream) -> bytes:
    chunks = []
    while True:
        chunk = stream.read(256 * 1024)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def download(channel, port: int, size: int) -> None:
    with channel.open(port) as stream:
        stream.write(b"d" + struct.pack("<Q", size))
        stream.close_write()
        got = sum(len(c) for c in iter(lambda: stream.read(256 * 1024), b""))
    if got != size:
        raise SystemExit(f"bindings_client.py: download: {got} of {size} bytes")


def upload(channel, port: int, data: bytes) -> None:
    with channel.open(port) as stream:
        stream.write(b"u")
        stream.write(data)
        stream.close_write()
        reply = read_all(stream)
    if len(reply) != 8 or struct.unpack("<Q", reply)[0] != len(data):
        raise SystemExit(f"bindings_client.py: upload: the server replied {reply!r}")


def main() -> None:
    url, trust_file, port, runs, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    trust = enclavia.Trust.load(trust_file)  # parsed once, as the other clients do
    data = b"\xa5" * size
    ms = lambda a, b: (b - a) * 1000.0  # noqa: E731
    for i in range(runs + 1):
        t0 = time.perf_counter()
        channel = enclavia.connect(url, trust=trust)
        t1 = time.perf_counter()
        download(channel, port, 1024)
        t2 = time.perf_counter()
        download(channel, port, size)
        t3 = time.perf_counter()
        upload(channel, port, data)
        t4 = time.perf_counter()
        channel.close()
        if i > 0:
            print(f"{ms(t0, t1):.3f} {ms(t1, t2):.3f} {ms(t2, t3):.3f} {ms(t3, t4):.3f}", flush=True)


if __name__ == "__main__":
    main()
