# SPDX-License-Identifier: Apache-2.0
"""Trust policies (docs/trust-file.md) and verification of attestation documents without a
connection. Verification runs in the C++ core, so Python accepts and rejects exactly what every
other Enclavia SDK does."""

from __future__ import annotations

import ctypes
import datetime
import os
import threading
from typing import Iterable, Optional, Union

from . import _lib
from .attestation import Attestation

PathLike = Union[str, "os.PathLike[str]"]


class Trust:
    """A checked trust policy: which roots, PCR sets, ages and debug modes are acceptable.

    Build one with :meth:`load` or :meth:`parse`; a policy that is not well formed raises
    :class:`enclavia.Error` (``Malformed``, ``InvalidArgument``, ...). Immutable except for
    :meth:`set_time`. Thread-safe.
    """

    __slots__ = ("_handle", "_lock", "__weakref__")

    def __init__(self, handle: ctypes.c_void_p) -> None:
        """Internal: use :meth:`load` or :meth:`parse`."""
        self._handle = handle
        self._lock = threading.Lock()

    @classmethod
    def load(cls, path: PathLike) -> "Trust":
        """Reads and parses the trust file at `path` (relative roots are taken from its folder
        as the C++ client does)."""
        handle = _lib.new_handle()
        _lib.check(_lib.lib().enclavia_trust_load(_lib.out(handle), os.fsencode(path)))
        return cls(handle)

    @classmethod
    def parse(cls, text: str, base_dir: Optional[PathLike] = None) -> "Trust":
        """Parses trust-file `text`; relative root PEM paths are taken from `base_dir` (default:
        the working directory)."""
        if "\0" in text:
            from .errors import error_for

            raise error_for(1, "trust text contains a NUL byte")
        handle = _lib.new_handle()
        base = os.fsencode(base_dir) if base_dir is not None else None
        _lib.check(_lib.lib().enclavia_trust_parse(_lib.out(handle), text.encode("utf-8"), base))
        return cls(handle)

    def set_time(self, at: Optional[Union[datetime.datetime, int]]) -> None:
        """Fixes the clock documents are checked against (a datetime, or milliseconds since the
        Unix epoch); None restores the system clock. For recorded documents: audits, tests."""
        _lib.check(_lib.lib().enclavia_trust_set_time(self._ptr(), _unix_ms(at)))

    def close(self) -> None:
        """Frees the policy now (also done when garbage collected). Idempotent."""
        with self._lock:
            handle, self._handle = self._handle, None
        if handle:
            _lib.lib().enclavia_trust_free(handle)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _ptr(self) -> ctypes.c_void_p:
        handle = self._handle
        if not handle:
            from .errors import error_for

            raise error_for(12, "enclavia.Trust is closed")  # failed_precondition
        return handle


def _unix_ms(at: Optional[Union[datetime.datetime, int]]) -> int:
    if at is None:
        return 0
    if isinstance(at, datetime.datetime):
        if at.tzinfo is None:
            raise ValueError("enclavia: a naive datetime is ambiguous; give tzinfo (UTC)")
        return int(at.timestamp() * 1000)
    return int(at)


def as_trust(trust: Union[Trust, PathLike]) -> Trust:
    """`trust` itself, or the trust file at that path loaded."""
    return trust if isinstance(trust, Trust) else Trust.load(trust)


def _fixed_bytes(value: Optional[bytes], size: int, what: str):
    if value is None:
        return None
    value = bytes(value)
    if len(value) != size:
        from .errors import error_for

        raise error_for(1, "%s must be %d bytes, got %d" % (what, size, len(value)))
    return value


def verify_attestation(
    document: bytes,
    trust: Union[Trust, PathLike],
    chain: Iterable[bytes] = (),
    public_key: Optional[bytes] = None,
    nonce: Optional[bytes] = None,
    at: Optional[Union[datetime.datetime, int]] = None,
) -> Attestation:
    """Verifies an attestation `document` (COSE_Sign1 bytes) and the enclave's upgrade `chain`
    (COSE entries) against `trust`, exactly as a handshake does: root, signature, age, debug,
    PCR sets or chain. `public_key` / `nonce` (32 bytes each) must equal the document's when
    given. `at` checks the document at that time (datetime or Unix ms) instead of now; it
    applies to this call only when `trust` is a path, and sets the clock of a given
    :class:`Trust` otherwise. Returns the verified :class:`Attestation` or raises
    :class:`enclavia.Error`."""
    policy = as_trust(trust)
    if at is not None:
        policy.set_time(at)
    doc, doc_size = _lib.buffer(document)
    entries = [bytes(e) for e in chain]
    count = len(entries)
    ptrs = (ctypes.c_void_p * max(count, 1))()
    sizes = (ctypes.c_size_t * max(count, 1))()
    keep = []
    for i, entry in enumerate(entries):
        buf = ctypes.create_string_buffer(entry, len(entry))
        keep.append(buf)
        ptrs[i] = ctypes.cast(buf, ctypes.c_void_p)
        sizes[i] = len(entry)
    key = _fixed_bytes(public_key, 32, "public_key")
    fresh = _fixed_bytes(nonce, 32, "nonce")
    handle = _lib.new_handle()
    _lib.check(
        _lib.lib().enclavia_verify_attestation(
            policy._ptr(), _lib.out(handle), doc, doc_size, ptrs, sizes, count, key, fresh
        )
    )
    return Attestation._take(handle)


def _handshake_replay(trust: Trust, ephemeral: bytes, message2: bytes) -> Attestation:
    """Replays the client side of a recorded handshake (conformance vectors only: a fixed
    ephemeral key forfeits forward secrecy). Returns what the ServerHello proved or raises."""
    eph = _fixed_bytes(ephemeral, 32, "ephemeral")
    msg, size = _lib.buffer(message2)
    handle = _lib.new_handle()
    _lib.check(_lib.lib().enclavia_handshake_replay(trust._ptr(), _lib.out(handle), eph, msg, size))
    return Attestation._take(handle)
