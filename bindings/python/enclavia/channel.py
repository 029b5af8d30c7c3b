# SPDX-License-Identifier: Apache-2.0
"""An attested, end-to-end encrypted channel to an enclave, its byte streams, and plain HTTP over
a stream.

Blocking and interrupts: connect, read and write block in the C++ core with the GIL released, so
other Python threads keep running. A signal (Ctrl-C) is handled only when the blocked call
returns. To abandon a blocked read or write, call :meth:`Channel.close` from another thread:
every open stream then fails promptly with :class:`enclavia.Unavailable`. The relay's idle
timeout bounds a read on a silent stream.
"""

from __future__ import annotations

import ctypes
import http.client
import io
import threading
import urllib.parse
from typing import Any, Mapping, Optional, Union

from . import _lib
from .attestation import Attestation
from .errors import error_for
from .trust import PathLike, Trust, as_trust

_READ_CHUNK = 256 << 10  # bytes per enclavia_stream_read for readall() (one call per chunk)


class _Handle:
    """A C object used by several threads: frees it once nobody is inside a call on it."""

    def __init__(self, handle: ctypes.c_void_p, free) -> None:
        self._handle = handle
        self._free = free
        self._cv = threading.Lock()
        self._busy = 0
        self._closed = False

    def acquire(self) -> ctypes.c_void_p:
        with self._cv:
            if self._closed:
                raise error_for(12, "closed")  # failed_precondition
            self._busy += 1
            return self._handle

    def release(self) -> None:
        with self._cv:
            self._busy -= 1
            if self._closed and self._busy == 0:
                self._free_locked()

    def close(self) -> None:
        with self._cv:
            if self._closed:
                return
            self._closed = True
            if self._busy == 0:
                self._free_locked()

    def _free_locked(self) -> None:
        handle, self._handle = self._handle, None
        if handle:
            self._free(handle)

    @property
    def closed(self) -> bool:
        return self._closed


class Stream(io.RawIOBase):
    """A byte stream to one TCP port of the enclave: a raw binary file object.

    ``read``/``readinto`` block until bytes arrive (b"" at the end of the enclave's side);
    ``write`` blocks until every byte is queued; ``close_write`` half-closes (the application
    sees end of input, reading continues); ``close`` resets the stream if still open. Wrap it in
    ``io.BufferedReader`` for ``readline``. One thread may read while another writes. A reset
    stream or lost channel raises :class:`enclavia.Unavailable` naming the reason.
    """

    def __init__(self, handle: ctypes.c_void_p, port: int) -> None:
        super().__init__()
        lib = _lib.lib()
        self._h = _Handle(handle, lib.enclavia_stream_free)
        self._read = lib.enclavia_stream_read
        self._write = lib.enclavia_stream_write
        self.port = port

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if type(buffer) is not bytearray:
            buffer = memoryview(buffer).cast("B")
        size = len(buffer)
        if size == 0:
            return 0
        array = (ctypes.c_char * size).from_buffer(buffer)
        got = ctypes.c_size_t(0)
        handle = self._acquire()
        try:
            status = self._read(handle, ctypes.byref(got), array, size)
        finally:
            self._h.release()
            del array
        if status:
            _lib.check(status)
        return got.value

    def readall(self) -> bytes:
        """Reads until the enclave side ends the stream."""
        chunks = []
        buf = bytearray(_READ_CHUNK)
        while True:
            n = self.readinto(buf)
            if n == 0:
                return b"".join(chunks)
            chunks.append(buf[:n])

    def write(self, data: Any) -> int:
        arg, size = _lib.buffer(data)
        handle = self._acquire()
        try:
            status = self._write(handle, arg, size)
        finally:
            self._h.release()
        if status:
            _lib.check(status)
        return size

    def close_write(self) -> None:
        """Half-closes: the enclave's application reads end of input."""
        handle = self._acquire()
        try:
            status = _lib.lib().enclavia_stream_close_write(handle)
        finally:
            self._h.release()
        _lib.check(status)

    def close(self) -> None:
        """Resets the stream if still open and frees it (after a read blocked in another thread
        returns). Idempotent."""
        if not self.closed:
            self._h.close()
        super().close()

    def _acquire(self) -> ctypes.c_void_p:
        if self.closed:
            raise error_for(12, "stream is closed")
        return self._h.acquire()


class _StreamSocket:
    """Just enough of a socket for http.client.HTTPConnection. As with a real socket, the stream
    stays open until both the socket and every file made by makefile() are closed (http.client
    closes the socket of a "Connection: close" response before its body is read)."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream
        self._refs = 1  # this socket + open files
        self._closed = False
        self._lock = threading.Lock()

    def sendall(self, data: Any) -> None:
        self._stream.write(data)

    def makefile(self, mode: str = "rb", buffering: int = -1, **_: Any) -> io.BufferedReader:
        if "r" not in mode or "b" not in mode:
            raise ValueError("enclavia: only binary read files")
        with self._lock:
            self._refs += 1
        size = buffering if buffering > 0 else 65536
        return io.BufferedReader(_SocketFile(self), size)

    def settimeout(self, _timeout: Optional[float]) -> None:
        pass

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._unref()

    def _unref(self) -> None:
        with self._lock:
            self._refs -= 1
            last = self._refs == 0
        if last:
            self._stream.close()


class _SocketFile(io.RawIOBase):
    """The reading side of a _StreamSocket, as socket.SocketIO."""

    def __init__(self, sock: _StreamSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock._stream.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock._unref()


class HTTPConnection(http.client.HTTPConnection):
    """http.client.HTTPConnection whose socket is a new stream to the enclave's `port` (one stream
    per connection; keep-alive reuses it)."""

    def __init__(self, channel: "Channel", port: int, host: str = "localhost") -> None:
        super().__init__(host)
        self._channel = channel
        self._port_in_enclave = port

    def connect(self) -> None:
        self.sock = _StreamSocket(self._channel.open(self._port_in_enclave))


class Response:
    """A complete HTTP response: ``status`` (int), ``reason``, ``headers``
    (http.client.HTTPMessage, case-insensitive) and ``body`` (bytes)."""

    def __init__(self, status: int, reason: str, headers: http.client.HTTPMessage, body: bytes):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        """The body decoded with the Content-Type's charset (default UTF-8)."""
        return self.body.decode(self.headers.get_content_charset() or "utf-8", "replace")

    def __repr__(self) -> str:
        return "<enclavia.Response %d %s, %d bytes>" % (self.status, self.reason, len(self.body))


class Channel:
    """An attested channel: the enclave proved :attr:`attestation` before this object existed.

    Use as a context manager or call :meth:`close`. Thread-safe: streams may be opened and used
    from several threads.
    """

    def __init__(self, handle: ctypes.c_void_p, url: str) -> None:
        """Internal: use :func:`enclavia.connect`."""
        self._h = _Handle(handle, _lib.lib().enclavia_channel_free)
        self.url = url
        attestation = _lib.new_handle()
        try:
            _lib.check(_lib.lib().enclavia_channel_attestation(handle, _lib.out(attestation)))
            self.attestation: Attestation = Attestation._take(attestation)
        except BaseException:
            self._h.close()
            raise

    def open(self, port: int) -> Stream:
        """Opens a stream to the enclave's TCP `port`. A port the enclave does not serve fails
        at the first read or write."""
        if not 0 < port < 65536:
            raise error_for(1, "port must be 1..65535, got %r" % (port,))
        out = _lib.new_handle()
        handle = self._h.acquire()
        try:
            status = _lib.lib().enclavia_stream_open(handle, _lib.out(out), port)
        finally:
            self._h.release()
        _lib.check(status)
        return Stream(out, port)

    def http(self, port: int, host: Optional[str] = None) -> HTTPConnection:
        """An http.client connection to the enclave's `port` (for streaming bodies, keep-alive)."""
        return HTTPConnection(self, port, host or self._host())

    def request(
        self,
        method: str,
        path: str,
        port: int,
        body: Optional[Union[bytes, str]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> Response:
        """Sends one HTTP/1.1 request to the enclave's `port` over a new stream and returns the
        whole response. `path` starts with "/"."""
        conn = self.http(port)
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            data = response.read()
            return Response(response.status, response.reason, response.headers, data)
        finally:
            conn.close()

    def close(self) -> None:
        """Ends the channel: blocked and later stream calls fail. Idempotent."""
        self._h.close()

    @property
    def closed(self) -> bool:
        return self._h.closed

    def __enter__(self) -> "Channel":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def _host(self) -> str:
        return urllib.parse.urlsplit(self.url).hostname or "localhost"


def connect(url: str, trust: Union[Trust, PathLike]) -> Channel:
    """Dials `url` (ws:// or wss://), runs the attested handshake and returns a :class:`Channel`
    only if the enclave's attestation satisfies `trust` (a :class:`Trust` or a trust file path).
    Raises :class:`enclavia.Error` naming the failed check (e.g. ``PolicyViolation``)."""
    policy = as_trust(trust)
    handle = _lib.new_handle()
    status = _lib.lib().enclavia_channel_connect_trust(
        _lib.out(handle), url.encode(), policy._ptr())
    _lib.check(status)
    return Channel(handle, url)


__all__ = ["Channel", "HTTPConnection", "Response", "Stream", "connect"]
