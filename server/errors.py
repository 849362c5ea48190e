"""Server errors. Each maps to one wire ``ErrorCode`` and one HTTP status.

    PlancastError (plancast.shared)
    ├── NotFound        404  an org's resource does not exist (or is not theirs)
    ├── Forbidden       403  the principal's role does not allow the action
    ├── Unauthorized    401  no valid credentials on the request
    ├── Conflict        409  the request conflicts with the current state
    │   └── Busy        409  the plan branch already has a running stream
    ├── InvalidRequest  400  the request is well-formed but not acceptable
    ├── RateLimited     429  too many sign-in or code attempts; retry after a while
    └── ProviderError   502  (plancast.server.llm.errors) the model provider failed

``web/errors.py`` is the one place that turns these into responses.
"""

from __future__ import annotations

from plancast.shared import ErrorCode, PlancastError

HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_MESSAGE: 400,
    ErrorCode.UNKNOWN_MESSAGE: 400,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNSAFE_PATH: 400,
    ErrorCode.MISSING_CREDENTIALS: 400,
    ErrorCode.BAD_SEAL: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.STREAM_GONE: 410,
    ErrorCode.CONFLICT: 409,
    ErrorCode.BUSY: 409,
    ErrorCode.MESSAGE_TOO_LARGE: 413,
    ErrorCode.EDIT_FAILED: 422,
    ErrorCode.CONTEXT_TOO_LARGE: 413,
    ErrorCode.PROVIDER_RATE_LIMITED: 429,
    ErrorCode.PROVIDER_AUTH: 502,
    ErrorCode.PROVIDER_UNAVAILABLE: 502,
    ErrorCode.PROVIDER_BAD_RESPONSE: 502,
    ErrorCode.PROVIDER_ERROR: 502,
    ErrorCode.PROVIDER_TIMEOUT: 504,
    ErrorCode.UNSUPPORTED_PROTOCOL: 400,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.SESSION_EXPIRED: 401,
    ErrorCode.EMAIL_NOT_VERIFIED: 403,
    ErrorCode.EMAIL_FAILED: 503,
    ErrorCode.INTERNAL: 500,
}


class NotFound(PlancastError):
    code = ErrorCode.NOT_FOUND


class Forbidden(PlancastError):
    code = ErrorCode.FORBIDDEN


class Unauthorized(PlancastError):
    code = ErrorCode.UNAUTHORIZED


class Conflict(PlancastError):
    code = ErrorCode.CONFLICT


class Busy(Conflict):
    code = ErrorCode.BUSY

    def __init__(self, message: str, *, stream_id: str | None) -> None:
        super().__init__(message)
        self.stream_id = stream_id


class InvalidRequest(PlancastError):
    code = ErrorCode.INVALID_REQUEST


class RateLimited(PlancastError):
    """Too many attempts (sign-in, codes); ``retry_after`` seconds until the next may pass."""

    code = ErrorCode.RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
