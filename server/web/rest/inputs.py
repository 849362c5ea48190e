"""What every REST handler does first: read the JSON body within limits, pick fields, authorize."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from plancast.server.domain.branches import MAIN, check_name
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import InvalidRequest
from plancast.server.web.auth import authenticate
from plancast.shared import ErrorCode, PlancastError

_NOT_JSON = object()


async def read_json(request: Request) -> dict[str, Any]:
    limit: int = request.app.state.settings.max_request_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PlancastError(
            f"request body is larger than {limit} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
        )
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PlancastError(
                f"request body is larger than {limit} bytes", code=ErrorCode.MESSAGE_TOO_LARGE
            )
    if not body:
        return {}
    data: Any = _NOT_JSON
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        pass
    if data is _NOT_JSON:
        raise InvalidRequest("request body is not valid JSON (or nested too deeply)")
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object")
    return data


def field_str(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"field {key!r} must be a string")
    return value


def field_str_list(data: dict[str, Any], key: str) -> list[str] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(f"field {key!r} must be a list of strings")
    return value


def branch_of(request: Request) -> str:
    """The ``?branch=`` a plan route acts on (default ``main``); a bad name is refused."""
    return check_name(request.query_params.get("branch", MAIN))


async def principal_for(request: Request, action: Action) -> Principal:
    principal = await authenticate(request)
    authorize(principal, action)
    return principal
