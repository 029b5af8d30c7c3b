# SPDX-License-Identifier: Apache-2.0
"""What an enclave proved: a verified attestation, copied out of the C++ core."""

from __future__ import annotations

import ctypes
import dataclasses
import datetime
from types import MappingProxyType
from typing import Mapping, Optional

from . import _lib

_MAX_PCRS = 32  # Nitro documents carry 16 (or 32) PCRs, indices 0..N-1.


@dataclasses.dataclass(frozen=True)
class Attestation:
    """A verified attestation. Only the library builds one, and only after verification passed.

    pcrs: index -> 48-byte measurement (the indices the document has).
    module_id: the enclave's module id.
    timestamp: when the document was made (UTC).
    public_key / user_data: the document's fields (b"" when absent).
    upgrades: activated upgrades in the enclave's verified chain (0 without a chain).
    genesis: the chain's genesis hash (32 bytes), None for an enclave without a chain.
    """

    pcrs: Mapping[int, bytes]
    module_id: str
    timestamp: datetime.datetime
    public_key: bytes
    user_data: bytes
    upgrades: int
    genesis: Optional[bytes]

    @classmethod
    def _take(cls, handle: ctypes.c_void_p) -> "Attestation":
        """Copies an enclavia_attestation* and frees it."""
        lib = _lib.lib()
        try:
            return cls._copy(handle)
        finally:
            lib.enclavia_attestation_free(handle)

    @classmethod
    def _copy(cls, handle) -> "Attestation":
        lib = _lib.lib()
        pcrs = {}
        out = (ctypes.c_uint8 * 48)()
        for index in range(_MAX_PCRS):
            if lib.enclavia_attestation_pcr(handle, out, index) == 0:
                pcrs[index] = bytes(out)
        ms = lib.enclavia_attestation_timestamp_ms(handle)
        genesis = (ctypes.c_uint8 * 32)()
        has_genesis = lib.enclavia_attestation_genesis(handle, genesis) == 0
        return cls(
            pcrs=MappingProxyType(pcrs),
            module_id=(lib.enclavia_attestation_module_id(handle) or b"").decode("utf-8",
                                                                                 "replace"),
            timestamp=datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.timezone.utc),
            public_key=_bytes_out(lib.enclavia_attestation_public_key, handle),
            user_data=_bytes_out(lib.enclavia_attestation_user_data, handle),
            upgrades=int(lib.enclavia_attestation_upgrades(handle)),
            genesis=bytes(genesis) if has_genesis else None,
        )

    def pcr_hex(self, index: int) -> str:
        """PCR `index` as lowercase hex, the trust file's spelling."""
        return self.pcrs[index].hex()


def _bytes_out(fn, handle) -> bytes:
    size = ctypes.c_size_t(0)
    ptr = fn(handle, ctypes.byref(size))
    if not ptr or size.value == 0:
        return b""
    return ctypes.string_at(ptr, size.value)
