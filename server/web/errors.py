"""The one place where exceptions become responses, in one shape.

Every error response is ``{"error": {"code": …, "message": …}}`` with the HTTP
status ``server.errors.HTTP_STATUS`` gives its code. Unexpected exceptions are
logged here (the only place) and answered with ``internal`` and no detail.
"""

from __future__ import annotations

import logging
import math

from sqlalchemy.exc import DBAPIError, StatementError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plancast.server.errors import HTTP_STATUS, RateLimited
from plancast.shared import ErrorCode, PlancastError

logger = logging.getLogger("plancast.server.web")

_HTTP_CODES = {
    400: ErrorCode.INVALID_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.INVALID_REQUEST,
    413: ErrorCode.MESSAGE_TOO_LARGE,
}


def error_response(code: ErrorCode, message: str, status: int | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": str(code), "message": message}},
        status_code=status or HTTP_STATUS.get(code, 500),
    )


async def plancast_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PlancastError)
    response = error_response(exc.code, exc.message)
    if isinstance(exc, RateLimited):
        response.headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    return response


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, ErrorCode.INVALID_REQUEST)
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return error_response(code, message, exc.status_code)


_UNSTORABLE = {
    "22021",  # character_not_in_repertoire: a NUL in text
    "22P05",  # untranslatable_character
    "22001",  # string_data_right_truncation: longer than its column
}
"""PostgreSQL's refusals of a value that SQLite would have stored. Inputs are checked before
they reach the database; this is the net under those checks, so that a value they missed (a
NUL in an id of the path, say) is the client's error and not an internal one."""


async def database_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)
    if getattr(exc.orig, "sqlstate", None) in _UNSTORABLE:
        return error_response(
            ErrorCode.INVALID_REQUEST,
            "the request holds text the database cannot store (a NUL character, or a value "
            "longer than its field allows)",
        )
    return await unexpected_error(request, exc)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    logger.error(
        "unhandled %s on %s %s",
        type(exc).__name__,
        request.method,
        request.url.path,
        exc_info=exc,
    )
    return error_response(ErrorCode.INTERNAL, "internal server error")


async def statement_error(request: Request, exc: Exception) -> Response:
    """A refusal raised while a statement's values were prepared (an encrypted column's own
    checks, ``store/crypto.py``) is that refusal; anything else is unexpected."""
    assert isinstance(exc, StatementError)
    if isinstance(exc.orig, PlancastError):
        return await plancast_error(request, exc.orig)
    return await unexpected_error(request, exc)


EXCEPTION_HANDLERS = {
    PlancastError: plancast_error,
    HTTPException: http_error,
    DBAPIError: database_error,
    StatementError: statement_error,
    Exception: unexpected_error,
}
