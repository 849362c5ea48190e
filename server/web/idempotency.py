"""Idempotency keys: a state-changing request retried after a timeout is applied once.

A client sends ``Idempotency-Key: K`` with a POST. The first request with K runs
and its response is stored; a retry with K gets that stored response without
running again. A retry that arrives while the first still runs gets
``conflict``; reusing K for another route is ``conflict`` too. Keys are
scoped to the org and forgotten after ``KEEP_S``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plancast.server.domain.ids import now
from plancast.server.errors import Conflict, InvalidRequest
from plancast.server.store.schema import idempotency_keys as keys
from plancast.server.web.auth import authenticate

KEEP_S = 24 * 3600
_KEY = re.compile(r"[A-Za-z0-9_-]{8,64}")

Handler = Callable[[Request], Awaitable[Response]]


def idempotent(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def wrapper(request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        if key is None:
            return await handler(request)
        if not _KEY.fullmatch(key):
            raise InvalidRequest("Idempotency-Key must be 8-64 letters, digits, '-' or '_'")
        org_id = (await authenticate(request)).org_id
        db = request.app.state.db
        stored = await _claim(db, org_id, key, request.method, request.url.path)
        if stored is not None:
            return stored
        try:
            response = await handler(request)
        except BaseException:
            async with db.begin() as conn:  # let a retry run it again
                await conn.execute(delete(keys).where(keys.c.org_id == org_id, keys.c.key == key))
            raise
        async with db.begin() as conn:
            await conn.execute(
                update(keys)
                .where(keys.c.org_id == org_id, keys.c.key == key)
                .values(status=response.status_code, body=bytes(response.body).decode())
            )
        return response

    return wrapper


async def _claim(db: AsyncEngine, org_id: str, key: str, method: str, path: str) -> Response | None:
    """Record the key for this request, or return the response stored under it."""
    async with db.begin() as conn:
        await conn.execute(delete(keys).where(keys.c.created_at < now() - KEEP_S))
        try:
            async with conn.begin_nested():
                await conn.execute(
                    keys.insert().values(
                        org_id=org_id, key=key, method=method, path=path, created_at=now()
                    )
                )
            return None
        except IntegrityError:
            row = (
                await conn.execute(
                    select(keys.c.method, keys.c.path, keys.c.status, keys.c.body).where(
                        keys.c.org_id == org_id, keys.c.key == key
                    )
                )
            ).one()
    if (row.method, row.path) != (method, path):
        raise Conflict("this Idempotency-Key was already used for another request")
    if row.status is None:
        raise Conflict("a request with this Idempotency-Key is still running; retry shortly")
    return JSONResponse(json.loads(row.body), status_code=row.status)


async def forget_under(conn: AsyncConnection, org_id: str, prefix: str) -> None:
    """Drop the stored responses of requests to the routes below ``prefix`` (a deleted plan's).

    A stored response can hold the resource's content (a change's text), which must go with it.
    """
    await conn.execute(
        delete(keys).where(keys.c.org_id == org_id, keys.c.path.startswith(prefix, autoescape=True))
    )
