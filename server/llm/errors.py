"""Provider errors, translated at the boundary from the SDKs' own exceptions.

    ProviderError                  provider_error         something else went wrong
    ├── ProviderAuthError          provider_auth          the key was refused (401/403)
    ├── ProviderRateLimited        provider_rate_limited  429; ``retry_after`` if given
    ├── ProviderUnavailable        provider_unavailable   5xx, connection refused or cut
    ├── ProviderTimeout            provider_timeout       no data within the timeout
    └── ProviderBadResponse        provider_bad_response  a reply we cannot parse, 4xx

We write every message ourselves: an SDK's exception text can contain request
headers or the key, so it is never repeated, logged or sent to a client. The
original is not even chained (``raise … from None``), so no traceback shows it.
"""

from __future__ import annotations

import logging

from plancast.shared import ErrorCode, PlancastError

logger = logging.getLogger("plancast.server.llm")
_FOREIGN_MODULES = ("openai", "anthropic", "httpx", "httpcore", "json", "h11", "ssl", "socket")


class ProviderError(PlancastError):
    code = ErrorCode.PROVIDER_ERROR
    hint = "Try again; if it keeps failing, check the provider's status page."

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{message} {self.hint}".strip())
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    code = ErrorCode.PROVIDER_AUTH
    hint = "Check the key in the environment variable named for this provider."


class ProviderRateLimited(ProviderError):
    code = ErrorCode.PROVIDER_RATE_LIMITED
    hint = "Wait a little and `plancast continue`, or use another model."


class ProviderUnavailable(ProviderError):
    code = ErrorCode.PROVIDER_UNAVAILABLE
    hint = "The partial reply was kept; `plancast continue` picks up from it."


class ProviderTimeout(ProviderError):
    code = ErrorCode.PROVIDER_TIMEOUT
    hint = "The partial reply was kept; `plancast continue` picks up from it."


class ProviderBadResponse(ProviderError):
    code = ErrorCode.PROVIDER_BAD_RESPONSE
    hint = "Check the model name and the base URL."


def translate(provider: str, exc: BaseException) -> ProviderError:
    """Map an SDK or transport exception to our own error, most specific first.

    Works on class names along the MRO so that this module imports no SDK: the
    SDKs are loaded only by the provider that uses them.
    """
    names = [cls.__name__ for cls in type(exc).__mro__]
    status = getattr(exc, "status_code", None)
    event_type = _body_error_type(exc)
    if status in (None, 200) and event_type is not None:
        # An error event inside a stream that had started fine (Anthropic's
        # overloaded_error, OpenAI's server_error): the HTTP status is the
        # stream's, or none; the body says what went wrong.
        status = _STATUS_OF_ERROR_TYPE.get(event_type, 500)
    retry_after = _retry_after(exc)
    label = _LABELS.get(provider, provider)

    def has(*candidates: str) -> bool:
        return any(name in names for name in candidates)

    if has("AuthenticationError", "PermissionDeniedError") or status in (401, 403):
        return ProviderAuthError(f"{label} refused the credentials (HTTP {status}).")
    if has("RateLimitError") or status == 429:
        return ProviderRateLimited(f"{label} is rate limiting requests.", retry_after=retry_after)
    if has("APITimeoutError", "TimeoutException", "ReadTimeout", "ConnectTimeout", "TimeoutError"):
        return ProviderTimeout(f"{label} sent no data within the timeout.")
    if has("NotFoundError") or status == 404:
        return ProviderBadResponse(f"{label} does not know this model or endpoint (HTTP 404).")
    if has("InternalServerError", "ServiceUnavailableError", "OverloadedError") or (
        isinstance(status, int) and status >= 500
    ):
        return ProviderUnavailable(f"{label} failed with HTTP {status}.", retry_after=retry_after)
    if has(
        "APIConnectionError",
        "ConnectError",
        "RemoteProtocolError",
        "ReadError",
        "NetworkError",
        "IncompleteRead",
        "ProtocolError",
        "StreamClosedError",
    ):
        return ProviderUnavailable(f"The connection to {label} failed or was cut.")
    if has("BadRequestError", "UnprocessableEntityError") or (
        isinstance(status, int) and 400 <= status < 500
    ):
        return ProviderBadResponse(f"{label} rejected the request (HTTP {status}).")
    if has("APIResponseValidationError", "JSONDecodeError", "DecodingError", "ValueError"):
        return ProviderBadResponse(f"{label} sent a reply that could not be read.")
    if not type(exc).__module__.startswith(_FOREIGN_MODULES):
        # Not from an SDK or a transport: probably a bug of ours. Type and place
        # only; the message is not logged, it could hold anything.
        frame = exc.__traceback__
        while frame is not None and frame.tb_next is not None:
            frame = frame.tb_next
        where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?"
        logger.error("unexpected %s during a %s call at %s", type(exc).__name__, label, where)
    return ProviderError(f"{label} call failed ({type(exc).__name__}).")


_LABELS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "azure": "Azure OpenAI",
    "ollama": "Ollama",
}

_STATUS_OF_ERROR_TYPE = {
    "overloaded_error": 529,
    "api_error": 500,
    "server_error": 500,
    "rate_limit_error": 429,
    "authentication_error": 401,
    "permission_error": 403,
    "invalid_request_error": 400,
    "not_found_error": 404,
}


def _body_error_type(exc: BaseException) -> str | None:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            return str(error["type"])
    return None


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    value = headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
