"""Errors the client raises when talking to the server.

PlancastError (plancast.shared)
├── ServerUnavailable   the server is not running or not reachable
├── ConnectionLost      an open stream connection dropped (the stream goes on)
└── ApiError            the server answered with an error (its code and message)
"""

from __future__ import annotations

import math

from plancast.shared import ErrorCode, PlancastError

START_HINT = "start it with `plancast-server` (or `scripts/start` from a plancast checkout)"


class ServerUnavailable(PlancastError):
    code = ErrorCode.INTERNAL

    def __init__(self, url: str) -> None:
        super().__init__(f"cannot reach the plancast server at {url}; is it running? {START_HINT}")
        self.url = url


class ConnectionLost(PlancastError):
    """The stream connection dropped. The stream goes on on the server: reattach."""

    code = ErrorCode.INTERNAL


class ApiError(PlancastError):
    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after  # seconds, from a rate_limited answer's Retry-After


# Team mode's errors are about who the user is, not about what they asked: the message says
# which one it is, so that it can be looked up (docs/protocol.md), and what to do next.
_NAMED_CODES = frozenset(
    {
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.EMAIL_NOT_VERIFIED,
        ErrorCode.EMAIL_FAILED,
    }
)


def error_from_payload(
    payload: object,
    status: int | None = None,
    *,
    retry_after: float | None = None,
    email: str | None = None,
) -> ApiError:
    """Build an ``ApiError`` from the server's ``{"error": {code, message}}`` shape.

    ``retry_after`` (the ``Retry-After`` header) and ``email`` (of the sign-in whose token
    was sent) complete the message of a ``rate_limited`` or ``session_expired`` answer.
    """
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code = payload["error"].get("code")
        message = str(payload["error"].get("message", "request failed"))
        if code in ErrorCode._value2member_map_:
            known = ErrorCode(code)
            text = _explained(known, message, retry_after, email)
            return ApiError(known, text, status=status, retry_after=retry_after)
        return ApiError(ErrorCode.INTERNAL, message, status=status)
    return ApiError(
        ErrorCode.INTERNAL, f"unexpected answer from the server (HTTP {status})", status=status
    )


def _explained(code: ErrorCode, message: str, retry_after: float | None, email: str | None) -> str:
    if code is ErrorCode.RATE_LIMITED:
        wait = f"; try again in {max(1, math.ceil(retry_after))} s" if retry_after else ""
        return f"{message} ({code}{wait})"
    if code is ErrorCode.SESSION_EXPIRED:
        hint = f"plancast signin {email or 'EMAIL'}"
        said = message.rstrip(". ").endswith("sign in again")  # the server's text says it
        if said:
            return f"{message.rstrip('. ')}: {hint} ({code})"
        return f"{message}; sign in again: {hint} ({code})"
    if code in _NAMED_CODES:
        return f"{message} ({code})"
    return message


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds; ``None`` when absent or a date (not sent by us)."""
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
