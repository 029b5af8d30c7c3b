# SPDX-License-Identifier: Apache-2.0
"""Enclavia's errors: one exception class per C ABI status (enclavia_status).

Every failure of the library raises a subclass of :class:`Error`, whose ``status`` is the C ABI's
stable lowercase name (``"policy_violation"``), ``code`` its number, and ``str(error)`` the
library's one-line message. Catch :class:`Error` for "the enclave could not be trusted or
reached", or a subclass for one reason.
"""

from __future__ import annotations


class Error(Exception):
    """An Enclavia failure. ``status`` (str), ``code`` (int) and a one-line ``message``."""

    status: str = "unknown"
    code: int = -1

    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message or self.status

    def __repr__(self) -> str:
        return "%s(status=%r, message=%r)" % (type(self).__name__, self.status, self.message)


class InvalidArgument(Error, ValueError):
    """A caller's argument is wrong (status "invalid_argument")."""


class Malformed(Error):
    """Bytes or text that do not parse: a document, a trust file (status "malformed")."""


class VerifyFailed(Error):
    """A signature, MAC or AEAD check failed (status "verify_failed")."""


class Untrusted(Error):
    """The certificate chain does not lead to a trusted root (status "untrusted")."""


class Expired(Error):
    """A document or certificate is too old or not yet valid (status "expired")."""


class PolicyViolation(Error):
    """The attestation is genuine but the trust policy refuses it (status "policy_violation")."""


class LimitExceeded(Error):
    """A size or count limit was hit (status "limit_exceeded")."""


class NotFound(Error):
    """A thing asked for does not exist, e.g. a PCR (status "not_found")."""


class AlreadyExists(Error):
    """Status "already_exists"."""


class Unsupported(Error):
    """A feature this library or its peer does not support (status "unsupported")."""


class IoError(Error):
    """A network or file failure (status "io")."""


class FailedPrecondition(Error):
    """The object is not in a state that allows the call (status "failed_precondition")."""


class Internal(Error):
    """A bug (status "internal")."""


class Unavailable(Error):
    """The enclave cannot be reached, reset the stream, or ended the channel (status
    "unavailable")."""


# Index = enclavia_status value; the names are enclavia_status_name's (checked by the tests).
_BY_CODE = (
    (None, "ok"),
    (InvalidArgument, "invalid_argument"),
    (Malformed, "malformed"),
    (VerifyFailed, "verify_failed"),
    (Untrusted, "untrusted"),
    (Expired, "expired"),
    (PolicyViolation, "policy_violation"),
    (LimitExceeded, "limit_exceeded"),
    (NotFound, "not_found"),
    (AlreadyExists, "already_exists"),
    (Unsupported, "unsupported"),
    (IoError, "io"),
    (FailedPrecondition, "failed_precondition"),
    (Internal, "internal"),
    (Unavailable, "unavailable"),
)

STATUS_NAMES = tuple(name for _, name in _BY_CODE)
ERRORS_BY_STATUS = {name: cls for cls, name in _BY_CODE if cls is not None}


def error_for(code: int, message: str) -> Error:
    """Builds the exception for status `code` with `message`."""
    if 0 < code < len(_BY_CODE):
        cls, name = _BY_CODE[code]
        return cls(code, name, message)
    return Error(code, "unknown", message)


def from_status(code: int) -> Error:
    """The exception for `code` carrying the calling thread's enclavia_last_error()."""
    from ._lib import lib

    raw = lib().enclavia_last_error()
    return error_for(code, raw.decode("utf-8", "replace") if raw else "")
