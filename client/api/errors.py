"""Errors the client raises when talking to the server.

PlancastError (plancast.shared)
├── ServerUnavailable   the server is not running or not reachable
├── ConnectionLost      an open stream connection dropped (the stream goes on)
└── ApiError            the server answered with an error (its code and message)
"""

from __future__ import annotations

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
    def __init__(self, code: ErrorCode, message: str, *, status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


def error_from_payload(payload: object, status: int | None = None) -> ApiError:
    """Build an ``ApiError`` from the server's ``{"error": {code, message}}`` shape."""
    if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
        code = payload["error"].get("code")
        message = str(payload["error"].get("message", "request failed"))
        if code in ErrorCode._value2member_map_:
            return ApiError(ErrorCode(code), message, status=status)
        return ApiError(ErrorCode.INTERNAL, message, status=status)
    return ApiError(
        ErrorCode.INTERNAL, f"unexpected answer from the server (HTTP {status})", status=status
    )
