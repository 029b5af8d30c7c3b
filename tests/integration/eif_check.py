#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""eif_check.py IMAGE: an independent reading of an EIF (Enclave Image Format) file.

Written from the format description alone (docs/formats/eif.md, AWS's
aws-nitro-enclaves-image-format), sharing no code with src/lib/eif, using only the standard
library. Prints one JSON object:
  {"crc_ok": bool, "crc": "0x........", "header_crc": "0x........",
   "pcr0": hex, "pcr1": hex, "pcr2": hex, "pcr8": hex (signed images only),
   "signed_pcr0_matches": bool (signed images only),
   "sections": [{"type": int, "size": int}, ...]}
Exits 1 with a message on stderr if the file is not a well-formed EIF.
"""
import base64
import hashlib
import json
import struct
import sys
import zlib

HEADER_SIZE = 548
SECTION_HEADER_SIZE = 12
KERNEL, CMDLINE, RAMDISK, SIGNATURE, METADATA = 1, 2, 3, 4, 5


def fail(msg):
    sys.stderr.write("eif_check: %s\n" % msg)
    sys.exit(1)


def extend(digest):
    # A PCR extended once from 48 zero bytes.
    return hashlib.sha384(b"\0" * 48 + digest).hexdigest()


def cbor_item(buf, pos):
    """Decodes one CBOR item at pos (definite lengths; the types serde_cbor writes)."""
    initial = buf[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        arg = info
    elif info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        arg = int.from_bytes(buf[pos:pos + n], "big")
        pos += n
    else:
        fail("unsupported CBOR additional info %d" % info)
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        data = bytes(buf[pos:pos + arg])
        return (data if major == 2 else data.decode("utf-8")), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = cbor_item(buf, pos)
            items.append(item)
        return items, pos
    if major == 5:
        out = {}
        for _ in range(arg):
            key, pos = cbor_item(buf, pos)
            value, pos = cbor_item(buf, pos)
            out[key] = value
        return out, pos
    if major == 6:
        return cbor_item(buf, pos)  # Drop the tag.
    fail("unsupported CBOR major type %d" % major)


def as_bytes(value):
    # serde_cbor writes Vec<u8> as an array of integers; accept byte strings too.
    return value if isinstance(value, bytes) else bytes(value)


def pem_to_der(pem):
    text = pem.decode("ascii")
    begin = text.index("-----BEGIN CERTIFICATE-----") + len("-----BEGIN CERTIFICATE-----")
    end = text.index("-----END CERTIFICATE-----", begin)
    return base64.b64decode("".join(text[begin:end].split()))


def main():
    if len(sys.argv) != 2:
        fail("usage: eif_check.py IMAGE")
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    if len(data) < HEADER_SIZE:
        fail("shorter than the header")
    magic, version, _flags, _mem, _cpus, _reserved, count = struct.unpack_from(">4sHHQQHH", data, 0)
    offsets = struct.unpack_from(">32Q", data, 28)
    sizes = struct.unpack_from(">32Q", data, 28 + 256)
    (header_crc,) = struct.unpack_from(">I", data, 544)
    if magic != b".eif":
        fail("bad magic")
    if not 1 <= count <= 32:
        fail("bad section count %d" % count)

    crc = zlib.crc32(data[:544])
    image = hashlib.sha384()   # PCR0: kernel, cmdline, every ramdisk
    boot = hashlib.sha384()    # PCR1: kernel, cmdline, first ramdisk
    app = hashlib.sha384()     # PCR2: the other ramdisks
    sections = []
    signature = None
    ramdisks = 0
    pos = HEADER_SIZE
    for i in range(count):
        if offsets[i] != pos:
            fail("section %d is at %d, the header says %d" % (i, pos, offsets[i]))
        kind, _sflags, size = struct.unpack_from(">HHQ", data, pos)
        if size != sizes[i]:
            fail("section %d size disagrees with the header" % i)
        start, end = pos + SECTION_HEADER_SIZE, pos + SECTION_HEADER_SIZE + size
        if end > len(data):
            fail("section %d runs past the end" % i)
        body = data[start:end]
        crc = zlib.crc32(data[pos:end], crc)
        if kind in (KERNEL, CMDLINE):
            image.update(body)
            boot.update(body)
        elif kind == RAMDISK:
            image.update(body)
            (boot if ramdisks == 0 else app).update(body)
            ramdisks += 1
        elif kind == SIGNATURE:
            signature = body
        elif kind != METADATA:
            fail("section %d has type %d" % (i, kind))
        sections.append({"type": kind, "size": size})
        pos = end
    if pos != len(data):
        fail("trailing bytes")

    out = {
        "crc_ok": crc == header_crc,
        "crc": "0x%08x" % crc,
        "header_crc": "0x%08x" % header_crc,
        "pcr0": extend(image.digest()),
        "pcr1": extend(boot.digest()),
        "pcr2": extend(app.digest()),
        "sections": sections,
    }
    if signature is not None:
        entries, used = cbor_item(signature, 0)
        if used != len(signature):
            fail("trailing bytes in the signature section")
        first = entries[0]
        der = pem_to_der(as_bytes(first["signing_certificate"]))
        out["pcr8"] = extend(hashlib.sha384(der).digest())
        cose, _ = cbor_item(as_bytes(first["signature"]), 0)
        payload, _ = cbor_item(cose[2], 0)
        out["signed_pcr0_matches"] = (payload["register_index"] == 0 and
                                      as_bytes(payload["register_value"]).hex() == out["pcr0"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
