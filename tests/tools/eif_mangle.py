#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""eif_mangle.py IN OUT MODE: writes a broken copy of an EIF for the refusal tests.

MODE: nokernel (drop the kernel section), noramdisk (drop every ramdisk), oversized (declare a
ramdisk of 1 TiB in its section header and the header table), badcrc (flip one byte of the last
section), truncated (cut the file in the middle of its last section). Except for badcrc and
truncated, the header CRC is recomputed, so only the named defect is left.
"""
import struct
import sys
import zlib

HEADER = 548
KERNEL, RAMDISK = 1, 3


def sections(data):
    count = struct.unpack_from(">H", data, 26)[0]
    out = []
    for i in range(count):
        offset = struct.unpack_from(">Q", data, 28 + 8 * i)[0]
        kind, flags, size = struct.unpack_from(">HHQ", data, offset)
        out.append([kind, flags, size, data[offset + 12:offset + 12 + size]])
    return out


def build(head, secs):
    image = bytearray(head[:HEADER])
    image[28:540] = bytes(512)
    struct.pack_into(">H", image, 26, len(secs))
    body = bytearray()
    for i, (kind, flags, size, payload) in enumerate(secs):
        struct.pack_into(">Q", image, 28 + 8 * i, HEADER + len(body))
        struct.pack_into(">Q", image, 284 + 8 * i, size)
        body += struct.pack(">HHQ", kind, flags, size) + payload
    image += body
    crc = zlib.crc32(bytes(image[:544]))
    crc = zlib.crc32(bytes(image[HEADER:]), crc)
    struct.pack_into(">I", image, 544, crc)
    return bytes(image)


def main():
    src, dst, mode = sys.argv[1:4]
    data = open(src, "rb").read()
    secs = sections(data)
    if mode == "nokernel":
        out = build(data, [s for s in secs if s[0] != KERNEL])
    elif mode == "noramdisk":
        out = build(data, [s for s in secs if s[0] != RAMDISK])
    elif mode == "oversized":
        last = max(i for i, s in enumerate(secs) if s[0] == RAMDISK)
        secs[last][2] = 1 << 40
        out = build(data, secs)
    elif mode == "badcrc":
        out = bytearray(data)
        out[-100] ^= 0x01
        out = bytes(out)
    elif mode == "truncated":
        out = data[: len(data) - 4096]
    else:
        sys.exit("eif_mangle.py: unknown mode " + mode)
    open(dst, "wb").write(out)


if __name__ == "__main__":
    main()
