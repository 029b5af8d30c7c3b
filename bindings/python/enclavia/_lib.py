# SPDX-License-Identifier: Apache-2.0
"""Loads libenclavia-client.so and declares the C ABI (src/client/include/enclavia/client.h).

Only this module touches ctypes. The library is looked up, in order, at:

1. ``$ENCLAVIA_LIBRARY`` (a path to the .so);
2. ``libenclavia-client.so`` inside this package (copied there by ``pip install``);
3. ``build/lib/libenclavia-client.so`` of the repository checkout this package lives in.

ctypes releases the GIL around every foreign call, so a blocking connect or read does not stop
other Python threads.
"""

from __future__ import annotations

import ctypes
import os
import pathlib
import threading
from ctypes import (POINTER, c_char_p, c_int, c_int64, c_size_t, c_uint8, c_uint16, c_uint32,
                    c_void_p)
from typing import Optional

LIBRARY_NAME = "libenclavia-client.so"

_u8p = POINTER(c_uint8)
_size_p = POINTER(c_size_t)
_handle_p = POINTER(c_void_p)  # an out-parameter T** for any opaque T

# name: (restype, argtypes). Statuses are plain ints; opaque objects are void pointers.
_PROTOTYPES = {
    "enclavia_last_error": (c_char_p, []),
    "enclavia_status_name": (c_char_p, [c_int]),
    "enclavia_channel_connect": (c_int, [_handle_p, c_char_p, c_char_p]),
    "enclavia_channel_free": (None, [c_void_p]),
    "enclavia_channel_pcr": (c_int, [c_void_p, _u8p, c_uint32]),
    "enclavia_channel_module_id": (c_char_p, [c_void_p]),
    "enclavia_stream_open": (c_int, [c_void_p, _handle_p, c_uint16]),
    "enclavia_stream_write": (c_int, [c_void_p, c_void_p, c_size_t]),
    "enclavia_stream_read": (c_int, [c_void_p, _size_p, c_void_p, c_size_t]),
    "enclavia_stream_close_write": (c_int, [c_void_p]),
    "enclavia_stream_free": (None, [c_void_p]),
    "enclavia_trust_parse": (c_int, [_handle_p, c_char_p, c_char_p]),
    "enclavia_trust_load": (c_int, [_handle_p, c_char_p]),
    "enclavia_trust_set_time": (c_int, [c_void_p, c_int64]),
    "enclavia_trust_free": (None, [c_void_p]),
    "enclavia_channel_connect_trust": (c_int, [_handle_p, c_char_p, c_void_p]),
    "enclavia_channel_attestation": (c_int, [c_void_p, _handle_p]),
    "enclavia_verify_attestation": (
        c_int,
        [c_void_p, _handle_p, c_void_p, c_size_t, POINTER(c_void_p), _size_p, c_size_t,
         c_void_p, c_void_p],
    ),
    "enclavia_handshake_replay": (c_int, [c_void_p, _handle_p, c_void_p, c_void_p, c_size_t]),
    "enclavia_attestation_pcr": (c_int, [c_void_p, _u8p, c_uint32]),
    "enclavia_attestation_module_id": (c_char_p, [c_void_p]),
    "enclavia_attestation_timestamp_ms": (c_int64, [c_void_p]),
    "enclavia_attestation_public_key": (c_void_p, [c_void_p, _size_p]),
    "enclavia_attestation_user_data": (c_void_p, [c_void_p, _size_p]),
    "enclavia_attestation_upgrades": (c_uint32, [c_void_p]),
    "enclavia_attestation_genesis": (c_int, [c_void_p, _u8p]),
    "enclavia_attestation_free": (None, [c_void_p]),
}


def _candidates() -> list[pathlib.Path]:
    found = []
    env = os.environ.get("ENCLAVIA_LIBRARY")
    if env:
        return [pathlib.Path(env)]
    here = pathlib.Path(__file__).resolve().parent
    found.append(here / LIBRARY_NAME)
    # bindings/python/enclavia/_lib.py -> the repository root is three levels up.
    found.append(here.parents[2] / "build" / "lib" / LIBRARY_NAME)
    return found


class _Lib:
    """The loaded library; attribute access gives the typed foreign function."""

    def __init__(self) -> None:
        tried = []
        self.path: Optional[pathlib.Path] = None
        for path in _candidates():
            tried.append(str(path))
            if path.is_file():
                self.path = path
                break
        if self.path is None:
            raise ImportError(
                "enclavia: cannot find %s (tried %s); build it (cmake --build build --target "
                "enclavia_client_c) or set ENCLAVIA_LIBRARY" % (LIBRARY_NAME, ", ".join(tried))
            )
        self._dll = ctypes.CDLL(str(self.path))
        for name, (restype, argtypes) in _PROTOTYPES.items():
            try:
                fn = getattr(self._dll, name)
            except AttributeError:
                setattr(self, name, _missing(name, self.path))
                continue
            fn.restype = restype
            fn.argtypes = argtypes
            setattr(self, name, fn)


def _missing(name: str, path: pathlib.Path):
    def call(*_args):
        from .errors import Error

        raise Error(10, "unsupported", "%s lacks %s (an older build?)" % (path, name))

    return call


_lock = threading.Lock()
_instance: Optional[_Lib] = None


def lib() -> _Lib:
    """Returns the loaded library (loaded once, on first use)."""
    global _instance
    if _instance is not None:  # the common case: no lock
        return _instance
    with _lock:
        if _instance is None:
            _instance = _Lib()
        return _instance


def check(status: int) -> None:
    """Raises the Error for `status` (with this thread's last error message) unless it is OK."""
    if status != 0:
        from .errors import from_status

        raise from_status(status)


def new_handle() -> c_void_p:
    return c_void_p()


def out(handle: c_void_p):
    return ctypes.byref(handle)


def buffer(data) -> tuple[object, int]:
    """Returns (argument for a const uint8_t*, size) for any bytes-like object, copying only when
    the object exposes no writable or bytes buffer."""
    if isinstance(data, bytes):
        return data, len(data)
    view = memoryview(data)
    if view.readonly or not view.c_contiguous:
        copy = bytes(view)
        return copy, len(copy)
    view = view.cast("B")
    return (ctypes.c_char * len(view)).from_buffer(view), len(view)
