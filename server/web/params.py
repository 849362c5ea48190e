"""Whole numbers in a query string (``?before=``, ``?days=``), read alike by REST and pages."""

from __future__ import annotations

from starlette.requests import Request

from plancast.server.errors import InvalidRequest

_MAX_DIGITS = 18  # well inside a 64-bit integer: a database compares it without overflow


def int_param(request: Request, name: str, default: int | None) -> int | None:
    """``?name=`` as a whole number, else ``default`` when absent.

    Raises:
        InvalidRequest: present but not a whole number (a sign, a fraction, too long).
    """
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > _MAX_DIGITS:
        raise InvalidRequest(f"?{name}= must be a whole number")
    return int(raw)
