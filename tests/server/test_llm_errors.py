"""``llm.errors.translate``: real SDK and transport exceptions become our own, with our text.

Every exception is built the way the SDKs build them (a real ``httpx2`` request and response
underneath), and its text quotes a key, the URL and the provider's message: none of that may
reach the translated error.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from plancast.server.errors import HTTP_STATUS
from plancast.server.llm.errors import (
    ProviderAuthError,
    ProviderBadResponse,
    ProviderError,
    ProviderRateLimited,
    ProviderTimeout,
    ProviderUnavailable,
    translate,
)
from plancast.shared import ErrorCode, PlancastError

LEAK = "sk-leak-" + secrets.token_hex(16)
URL = "https://provider.example/v1/secret-path"
SDK_TEXT = f"Incorrect API key provided: {LEAK} at {URL}"


def _request() -> httpx2.Request:
    return httpx2.Request("POST", URL, headers={"Authorization": f"Bearer {LEAK}"})


def _response(
    status: int, headers: dict[str, str] | None = None, body: Any = None
) -> httpx2.Response:
    body = body if body is not None else {"error": {"message": SDK_TEXT, "type": "x"}}
    return httpx2.Response(status, request=_request(), headers=headers or {}, json=body)


def status_error(cls: type[Exception], status: int, **kwargs: Any) -> Callable[[], Exception]:
    def make() -> Exception:
        body = kwargs.pop("body", {"error": {"message": SDK_TEXT}})
        response = _response(status, kwargs.pop("headers", None), body)
        return cls(f"Error code: {status} - {SDK_TEXT}", response=response, body=body)  # type: ignore[call-arg]

    return make


def _decode_error() -> Exception:
    try:
        json.loads('{"key": "' + LEAK)
    except json.JSONDecodeError as exc:
        return exc
    raise AssertionError("unreachable")


def _surface(exc: BaseException) -> str:
    """Everything of an exception that could be shown or logged."""
    parts = [str(exc), repr(exc), repr(exc.args)]
    parts += [repr(getattr(exc, name, "")) for name in ("body", "message", "doc")]
    return "\n".join(parts)


# (provider, factory, expected class)
CASES: dict[str, tuple[str, Callable[[], BaseException], type[ProviderError]]] = {
    # openai
    "openai-401": ("openai", status_error(openai.AuthenticationError, 401), ProviderAuthError),
    "openai-403": ("openai", status_error(openai.PermissionDeniedError, 403), ProviderAuthError),
    "openai-oauth": (
        "openai",
        lambda: openai.OAuthError(response=_response(401), body={"error": SDK_TEXT}),
        ProviderAuthError,
    ),
    "openai-429": ("openai", status_error(openai.RateLimitError, 429), ProviderRateLimited),
    "openai-404": ("openai", status_error(openai.NotFoundError, 404), ProviderBadResponse),
    "openai-400": ("openai", status_error(openai.BadRequestError, 400), ProviderBadResponse),
    "openai-409": ("openai", status_error(openai.ConflictError, 409), ProviderBadResponse),
    "openai-422": (
        "openai",
        status_error(openai.UnprocessableEntityError, 422),
        ProviderBadResponse,
    ),
    "openai-500": ("openai", status_error(openai.InternalServerError, 500), ProviderUnavailable),
    "openai-503": ("openai", status_error(openai.InternalServerError, 503), ProviderUnavailable),
    "openai-502-plain": ("openai", status_error(openai.APIStatusError, 502), ProviderUnavailable),
    "openai-timeout": (
        "openai",
        lambda: openai.APITimeoutError(request=_request()),
        ProviderTimeout,
    ),
    "openai-connection": (
        "openai",
        lambda: openai.APIConnectionError(message=SDK_TEXT, request=_request()),
        ProviderUnavailable,
    ),
    # anthropic
    "anthropic-401": (
        "anthropic",
        status_error(anthropic.AuthenticationError, 401),
        ProviderAuthError,
    ),
    "anthropic-403": (
        "anthropic",
        status_error(anthropic.PermissionDeniedError, 403),
        ProviderAuthError,
    ),
    "anthropic-429": (
        "anthropic",
        status_error(anthropic.RateLimitError, 429),
        ProviderRateLimited,
    ),
    "anthropic-spend-limit": (
        "anthropic",
        status_error(anthropic.EnforcedSpendLimitReachedError, 429),
        ProviderRateLimited,
    ),
    "anthropic-404": ("anthropic", status_error(anthropic.NotFoundError, 404), ProviderBadResponse),
    "anthropic-400": (
        "anthropic",
        status_error(anthropic.BadRequestError, 400),
        ProviderBadResponse,
    ),
    "anthropic-413": (
        "anthropic",
        status_error(anthropic.RequestTooLargeError, 413),
        ProviderBadResponse,
    ),
    "anthropic-500": (
        "anthropic",
        status_error(anthropic.InternalServerError, 500),
        ProviderUnavailable,
    ),
    "anthropic-503": (
        "anthropic",
        status_error(anthropic.ServiceUnavailableError, 503),
        ProviderUnavailable,
    ),
    "anthropic-504": (
        "anthropic",
        status_error(anthropic.GatewayTimeoutError, 504),
        ProviderUnavailable,
    ),
    "anthropic-529": (
        "anthropic",
        status_error(anthropic.OverloadedError, 529),
        ProviderUnavailable,
    ),
    "anthropic-in-stream-overloaded": (
        "anthropic",
        status_error(
            anthropic.OverloadedError,
            200,
            body={"type": "error", "error": {"type": "overloaded_error", "message": SDK_TEXT}},
        ),
        ProviderUnavailable,
    ),
    "anthropic-in-stream-rate-limit": (
        "anthropic",
        status_error(
            anthropic.RateLimitError,
            200,
            body={"type": "error", "error": {"type": "rate_limit_error", "message": SDK_TEXT}},
        ),
        ProviderRateLimited,
    ),
    "anthropic-timeout": (
        "anthropic",
        lambda: anthropic.APITimeoutError(request=_request()),
        ProviderTimeout,
    ),
    "anthropic-connection": (
        "anthropic",
        lambda: anthropic.APIConnectionError(message=SDK_TEXT, request=_request()),
        ProviderUnavailable,
    ),
    # the transport, raised unwrapped from inside the SDKs' stream iterators
    "httpx2-read-timeout": (
        "anthropic",
        lambda: httpx2.ReadTimeout(SDK_TEXT, request=_request()),
        ProviderTimeout,
    ),
    "httpx2-connect-timeout": (
        "openai",
        lambda: httpx2.ConnectTimeout(SDK_TEXT, request=_request()),
        ProviderTimeout,
    ),
    "httpx2-pool-timeout": (
        "openai",
        lambda: httpx2.PoolTimeout(SDK_TEXT, request=_request()),
        ProviderTimeout,
    ),
    "httpx2-remote-protocol": (
        "anthropic",
        lambda: httpx2.RemoteProtocolError(SDK_TEXT, request=_request()),
        ProviderUnavailable,
    ),
    "httpx2-connect": (
        "openai",
        lambda: httpx2.ConnectError(SDK_TEXT, request=_request()),
        ProviderUnavailable,
    ),
    "httpx2-read": (
        "openai",
        lambda: httpx2.ReadError(SDK_TEXT, request=_request()),
        ProviderUnavailable,
    ),
    "httpx2-decoding": (
        "openai",
        lambda: httpx2.DecodingError(SDK_TEXT, request=_request()),
        ProviderBadResponse,
    ),
    # the standard library
    "json-decode": ("openai", _decode_error, ProviderBadResponse),
    "timeout": ("anthropic", lambda: TimeoutError(SDK_TEXT), ProviderTimeout),
    "anything-else": ("openai", lambda: RuntimeError(SDK_TEXT), ProviderError),
}


@pytest.mark.parametrize(("provider", "make", "expected"), CASES.values(), ids=CASES.keys())
def test_translate_maps_each_exception_to_its_error(
    provider: str, make: Callable[[], BaseException], expected: type[ProviderError]
) -> None:
    original = make()
    if not isinstance(original, openai.APITimeoutError | anthropic.APITimeoutError):
        assert LEAK in _surface(original)  # there is something to leak
    error = translate(provider, original)
    assert type(error) is expected
    assert isinstance(error, PlancastError) and error.code == expected.code
    assert error.message == str(error) and error.message.endswith(expected.hint)
    for text in (error.message, str(error), repr(error), repr(error.args)):
        assert LEAK not in text
        assert URL not in text
        assert "Incorrect API key" not in text
    assert error.__cause__ is None and error.__context__ is None


@pytest.mark.parametrize("sdk", [openai, anthropic], ids=["openai", "anthropic"])
def test_a_reply_that_does_not_validate_is_a_bad_response(sdk: Any) -> None:
    made = sdk.APIResponseValidationError(_response(200), {"x": LEAK}, message=SDK_TEXT)
    assert isinstance(translate(sdk.__name__, made), ProviderBadResponse)


def test_every_provider_error_code_has_an_http_status() -> None:
    for cls in (
        ProviderError,
        ProviderAuthError,
        ProviderRateLimited,
        ProviderUnavailable,
        ProviderTimeout,
        ProviderBadResponse,
    ):
        assert cls.code in HTTP_STATUS
        assert HTTP_STATUS[cls.code] >= 400
    assert set(HTTP_STATUS) == set(ErrorCode)


def test_a_rate_limit_carries_its_retry_after() -> None:
    error = translate(
        "openai", status_error(openai.RateLimitError, 429, headers={"retry-after": "7"})()
    )
    assert isinstance(error, ProviderRateLimited) and error.retry_after == 7.0
    dated = status_error(
        anthropic.RateLimitError, 429, headers={"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}
    )()
    assert translate("anthropic", dated).retry_after is None
    assert translate("openai", status_error(openai.RateLimitError, 429)()).retry_after is None


def test_an_unavailable_provider_carries_its_retry_after() -> None:
    made = status_error(openai.InternalServerError, 503, headers={"retry-after": "2"})()
    error = translate("openai", made)
    assert isinstance(error, ProviderUnavailable)
    assert error.retry_after == 2.0


def test_an_openai_in_stream_server_error_is_unavailable() -> None:
    made = openai.APIError(
        SDK_TEXT, _request(), body={"message": SDK_TEXT, "type": "server_error", "code": None}
    )
    assert isinstance(translate("openai", made), ProviderUnavailable)


def test_the_message_names_the_provider_and_the_status() -> None:
    error = translate("anthropic", status_error(anthropic.AuthenticationError, 401)())
    assert error.message.startswith("Anthropic refused the credentials (HTTP 401).")
    unknown = translate("azure", RuntimeError(SDK_TEXT))
    assert type(unknown) is ProviderError
    assert unknown.message.startswith("Azure OpenAI call failed (RuntimeError).")
