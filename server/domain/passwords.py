"""Account passwords: argon2id at OWASP's parameters, hashed off the event loop.

OWASP's Password Storage Cheat Sheet: argon2id, 19 MiB of memory, 2 iterations, one lane.
A hash takes tens of milliseconds of CPU on purpose, so it runs in a thread; the event
loop keeps relaying streams meanwhile.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from plancast.server.errors import InvalidRequest

MIN_LENGTH = 10
MAX_BYTES = 1024  # argon2 takes any length; a megabyte password would be a cheap DoS

_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

# Verified against when the email is unknown, so that a sign-in for an address that has no
# account costs the same time as one for an address that has.
_DUMMY_HASH = _HASHER.hash("plancast: no such account")


def check_strength(password: str) -> None:
    """Refuse passwords too short to resist guessing, or too long to hash cheaply."""
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"a password needs at least {MIN_LENGTH} characters")
    if len(password.encode()) > MAX_BYTES:
        raise InvalidRequest(f"a password may have at most {MAX_BYTES} bytes")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored`` (``None``: no account; still costs a hash)."""
    if len(password.encode()) > MAX_BYTES:
        return False

    def verify() -> bool:
        try:
            return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was made with older parameters than today's."""
    return _HASHER.check_needs_rehash(stored)
