"""Sealing provider credentials to one stream's worker process (HPKE, RFC 9180).

The long-lived server never holds a plaintext provider key (DESIGN invariant 3).
Each stream's model calls run in a worker process made for that stream; the
worker owns a one-time X25519 key pair, and the client encrypts the stream's
credentials to its public key. The server only forwards the ciphertext.

Rules:

1. The suite is fixed: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305,
   base mode. There is nothing to negotiate, so nothing to downgrade.
2. The HPKE ``info`` binds a ciphertext to one seal id (which is also the id of
   the stream it will run) and to the seal's expiry, so a ciphertext is useless
   for any other stream, and the server cannot extend its life.
3. A worker's key pair is used once and dies with the worker.

``cryptography`` is imported inside the functions: importing ``plancast.shared``
must stay cheap for the client's start-up.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ._providers import PROVIDERS

SEAL_SUITE = "HPKE-base/X25519-HKDF-SHA256/HKDF-SHA256/ChaCha20Poly1305"
"""The one suite, named in every seal the server hands out, so that a client can check it."""

MAX_SEALED_CHARS = 16 * 1024
"""A sealed credentials blob is a few hundred bytes; anything far larger is refused."""

_INFO_PREFIX = b"plancast.v1 sealed credentials\x00"


@dataclass(frozen=True, slots=True)
class ProviderCredentials:
    """One provider's credentials, as the client seals them. Never shown in a repr."""

    provider: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    api_version: str | None = None

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(sorted(PROVIDERS))}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must not be empty")


class SealError(ValueError):
    """A sealed blob that cannot be opened: wrong key, wrong stream, expired or damaged.

    Its message never includes any part of the blob or of what it holds.
    """


def _suite() -> Any:
    from cryptography.hazmat.primitives import hpke

    return hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)


def seal_info(seal_id: str, expires_at: float) -> bytes:
    """What a ciphertext is bound to; both sides build it from the same two values."""
    return _INFO_PREFIX + seal_id.encode("ascii") + b"\x00" + repr(float(expires_at)).encode()


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise SealError("not valid base64url") from None


def seal_credentials(
    credentials: Iterable[ProviderCredentials],
    *,
    public_key: str,
    seal_id: str,
    expires_at: float,
) -> str:
    """Encrypt ``credentials`` to a worker's public key; the result is base64url text."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    try:
        recipient = X25519PublicKey.from_public_bytes(b64decode(public_key))
    except ValueError:
        raise SealError("the worker's public key is not an X25519 key") from None
    body = json.dumps(
        [
            {
                "provider": c.provider,
                "api_key": c.api_key,
                "base_url": c.base_url,
                "api_version": c.api_version,
            }
            for c in credentials
        ],
        separators=(",", ":"),
    ).encode()
    return b64encode(_suite().encrypt(body, recipient, info=seal_info(seal_id, expires_at)))


def open_credentials(
    sealed: str, *, private_key: Any, seal_id: str, expires_at: float, now: float
) -> list[ProviderCredentials]:
    """Decrypt what ``seal_credentials`` made, in the worker that owns ``private_key``.

    Raises:
        SealError: expired, sealed for another worker or stream, damaged, or not
            a list of credentials.
    """
    if now > expires_at:
        raise SealError("the seal has expired; start the stream again")
    if len(sealed) > MAX_SEALED_CHARS:
        raise SealError("the sealed credentials are too large")
    try:
        body = _suite().decrypt(b64decode(sealed), private_key, info=seal_info(seal_id, expires_at))
    except SealError:
        raise
    except Exception:
        raise SealError(
            "the credentials were not sealed for this stream's worker, or were damaged"
        ) from None
    try:
        items = json.loads(body)
        return [ProviderCredentials(**item) for item in items]
    except (ValueError, TypeError):
        raise SealError("the sealed credentials are not a list of provider credentials") from None
