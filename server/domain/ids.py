"""Identifiers: a readable prefix and 80 random bits, safe in URLs and on the wire."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def new_id(prefix: str) -> str:
    """``prefix`` + 16 base32 characters, e.g. ``pl_4f0c9x…``."""
    value = secrets.randbits(80)
    chars = []
    for _ in range(16):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return f"{prefix}_{''.join(chars)}"


def now() -> float:
    """Wall-clock time as stored in the database (epoch seconds)."""
    return time.time()
