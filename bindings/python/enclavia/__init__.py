# SPDX-License-Identifier: Apache-2.0
"""Enclavia's Python client: attested, end-to-end encrypted channels to enclaves.

    import enclavia
    trust = enclavia.Trust.load("trust.toml")
    with enclavia.connect("wss://enclave.example/", trust=trust) as channel:
        print(channel.attestation.pcrs[0].hex())
        print(channel.request("GET", "/", port=8080).body)

Every check (roots, signatures, PCRs, ages, upgrade chains) runs in the C++ core through its C
ABI (libenclavia-client.so), so Python accepts and rejects exactly what the other SDKs do.
"""

from .attestation import Attestation
from .channel import Channel, HTTPConnection, Response, Stream, connect
from .errors import (
    AlreadyExists,
    Error,
    Expired,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    IoError,
    LimitExceeded,
    Malformed,
    NotFound,
    PolicyViolation,
    Unavailable,
    Unsupported,
    Untrusted,
    VerifyFailed,
)
from .trust import Trust, verify_attestation

__version__ = "0.1.0"

__all__ = [
    "AlreadyExists", "Attestation", "Channel", "Error", "Expired", "FailedPrecondition",
    "HTTPConnection", "Internal", "InvalidArgument", "IoError", "LimitExceeded", "Malformed",
    "NotFound", "PolicyViolation", "Response", "Stream", "Trust", "Unavailable", "Unsupported",
    "Untrusted", "VerifyFailed", "connect", "verify_attestation",
]
