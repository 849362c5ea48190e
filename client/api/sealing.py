"""Sealing the provider keys of one stream to the server's worker for it.

The server hands out a seal (``POST /api/v1/seals``): the public key of a
worker process that will run only this stream, bound to the stream's id and an
expiry. The keys are encrypted to it here, so the server only ever forwards
ciphertext (see ``plancast.shared._seal`` and docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plancast.client.api.errors import ApiError
from plancast.client.api.rest import RestClient
from plancast.shared import (
    SEAL_SUITE,
    ErrorCode,
    ProviderCredentials,
    SealError,
    StartStream,
    seal_credentials,
)


def sealed_start(
    api: RestClient, credentials: Sequence[ProviderCredentials], **fields: Any
) -> StartStream:
    """A ``start`` message for ``fields``, with ``credentials`` sealed to a fresh worker.

    A seal is used once: a start that is retried must call this again.

    Raises:
        ApiError: the server gave no usable seal.
    """
    seal = api.post("/seals")
    if not isinstance(seal, dict) or seal.get("suite") != SEAL_SUITE:
        raise ApiError(
            ErrorCode.BAD_SEAL,
            "the server offers a key-sealing scheme this client does not know; "
            "update plancast on one side",
        )
    try:
        sealed = seal_credentials(
            credentials,
            public_key=str(seal["public_key"]),
            seal_id=str(seal["seal_id"]),
            expires_at=float(seal["expires_at"]),
        )
    except (KeyError, TypeError, ValueError, SealError):
        raise ApiError(ErrorCode.BAD_SEAL, "the server sent an unusable seal") from None
    return StartStream(seal_id=str(seal["seal_id"]), sealed=sealed, **fields)
