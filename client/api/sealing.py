"""Sealing the provider keys of one stream to the server's worker for it.

The server hands out a seal (``new_seal`` on the stream WebSocket): the public
key of a worker process that will run only this stream, bound to the stream's
id and an expiry. The keys are encrypted to it here, so the server only ever
forwards ciphertext (see ``plancast.shared._seal`` and docs/security.md). The
seal is asked for on the connection that then sends the ``start``: its worker
lives in the server process that connection reaches, one replica of several.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from plancast.client.api.errors import ApiError
from plancast.client.api.stream import StreamConnection
from plancast.shared import (
    SEAL_SUITE,
    ErrorCode,
    ProviderCredentials,
    SealError,
    StartStream,
    seal_credentials,
)


def sealed_start(
    conn: StreamConnection, credentials: Sequence[ProviderCredentials], **fields: Any
) -> StartStream:
    """A ``start`` message for ``fields``, with ``credentials`` sealed to a fresh worker.

    Send it on ``conn``, the connection the seal was asked on. A seal is used once: a start
    that is retried must call this again.

    Raises:
        ApiError: the server gave no usable seal.
    """
    seal = conn.new_seal(str(fields["request_id"]))
    if seal.suite != SEAL_SUITE:
        raise ApiError(
            ErrorCode.BAD_SEAL,
            "the server offers a key-sealing scheme this client does not know; "
            "update plancast on one side",
        )
    try:
        sealed = seal_credentials(
            credentials,
            public_key=seal.public_key,
            seal_id=seal.seal_id,
            expires_at=seal.expires_at,
        )
    except (ValueError, SealError):
        raise ApiError(ErrorCode.BAD_SEAL, "the server sent an unusable seal") from None
    return StartStream(seal_id=seal.seal_id, sealed=sealed, **fields)
