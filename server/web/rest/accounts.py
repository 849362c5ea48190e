"""Team mode's account routes: sign up, verify, sign in, reset, sessions, orgs of the user.

The flows are ``domain/signin.py``'s; these parse, throttle by address and render. A
session token appears in exactly one place: the body of the response that issues it.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from plancast.server.domain import orgs, sessions
from plancast.server.domain.accounts import get_user
from plancast.server.domain.signin import Issued, SignIn
from plancast.server.errors import InvalidRequest, NotFound
from plancast.server.web import org_actions
from plancast.server.web.auth import identify
from plancast.server.web.rest.inputs import field_str, read_json


def _flows(request: Request) -> SignIn:
    if request.app.state.settings.mode != "team":
        raise InvalidRequest("this server runs in local mode: it has no accounts")
    request.app.state.throttle.check(request)
    flows: SignIn = request.app.state.signin
    return flows


def _str(data: dict[str, Any], key: str) -> str:
    value = field_str(data, key)
    assert value is not None
    return value


def _kind(data: dict[str, Any]) -> str:
    return field_str(data, "kind", required=False) or "cli"


def _issued(issued: Issued) -> JSONResponse:
    s = issued.session
    return JSONResponse(
        {
            "token": issued.token,
            "session_id": s.id,
            "user_id": s.user_id,
            "org_id": s.org_id,
            "expires_at": s.expires_at,
        }
    )


async def sign_up(request: Request) -> Response:
    flows = _flows(request)
    data = await read_json(request)
    await flows.sign_up(
        _str(data, "email"), _str(data, "password"), field_str(data, "invite", required=False)
    )
    return JSONResponse({"status": "code_sent"}, status_code=202)


async def verify(request: Request) -> Response:
    flows = _flows(request)
    data = await read_json(request)
    return _issued(await flows.verify(_str(data, "email"), _str(data, "code"), _kind(data)))


async def sign_in(request: Request) -> Response:
    flows = _flows(request)
    data = await read_json(request)
    return _issued(await flows.sign_in(_str(data, "email"), _str(data, "password"), _kind(data)))


async def request_reset(request: Request) -> Response:
    flows = _flows(request)
    data = await read_json(request)
    await flows.request_reset(_str(data, "email"))
    return JSONResponse({"status": "code_sent_if_account"}, status_code=202)


async def reset(request: Request) -> Response:
    flows = _flows(request)
    data = await read_json(request)
    issued = await flows.reset(
        _str(data, "email"), _str(data, "code"), _str(data, "password"), _kind(data)
    )
    return _issued(issued)


async def sign_out(request: Request) -> Response:
    who = await identify(request)
    data = await read_json(request)
    everywhere = data.get("everywhere", False)
    if not isinstance(everywhere, bool):
        raise InvalidRequest("field 'everywhere' must be true or false")
    ended = await request.app.state.signin.sign_out(who.user_id, who.session_id, everywhere)
    return JSONResponse({"ended": ended})


async def list_sessions(request: Request) -> Response:
    who = await identify(request)
    async with request.app.state.db.connect() as conn:
        mine = await sessions.list_for_user(conn, who.user_id)
    return JSONResponse(
        {
            "sessions": [
                {
                    "id": s.id,
                    "kind": s.kind,
                    "created_at": s.created_at,
                    "last_seen_at": s.last_seen_at,
                    "expires_at": s.expires_at,
                    "current": s.id == who.session_id,
                }
                for s in mine
            ]
        }
    )


async def revoke_session(request: Request) -> Response:
    who = await identify(request)
    session_id = request.path_params["session_id"]
    await org_actions.revoke_session(request.app.state, who.user_id, session_id)
    return JSONResponse({"ended": 1})


async def account(request: Request) -> Response:
    who = await identify(request)
    async with request.app.state.db.connect() as conn:
        user = await get_user(conn, who.user_id)
        mine = await orgs.orgs_of(conn, who.user_id)
    return JSONResponse(
        {
            "user_id": who.user_id,
            "email": user.email if user else None,
            "session_id": who.session_id,
            "org_id": who.org_id,
            "orgs": [{"id": o.id, "name": o.name, "role": o.role} for o in mine],
        }
    )


async def switch_org(request: Request) -> Response:
    who = await identify(request)
    org_id = _str(await read_json(request), "org_id")
    async with request.app.state.db.begin() as conn:
        if await orgs.role_of(conn, org_id, who.user_id) is None:
            raise NotFound("you are not a member of that org")
        await sessions.switch_org(conn, who.session_id, org_id)
    return JSONResponse({"org_id": org_id})


async def accept_invite(request: Request) -> Response:
    who = await identify(request)
    request.app.state.throttle.check(request)
    code = _str(await read_json(request), "code")
    joined = await request.app.state.signin.accept_invite(who.user_id, who.session_id, code)
    return JSONResponse({"org_id": joined.id, "name": joined.name, "role": joined.role})


ROUTES = [
    Route("/api/v1/auth/signup", sign_up, methods=["POST"]),
    Route("/api/v1/auth/verify", verify, methods=["POST"]),
    Route("/api/v1/auth/signin", sign_in, methods=["POST"]),
    Route("/api/v1/auth/reset-request", request_reset, methods=["POST"]),
    Route("/api/v1/auth/reset", reset, methods=["POST"]),
    Route("/api/v1/auth/signout", sign_out, methods=["POST"]),
    Route("/api/v1/auth/sessions", list_sessions, methods=["GET"]),
    Route("/api/v1/auth/sessions/{session_id}", revoke_session, methods=["DELETE"]),
    Route("/api/v1/account", account, methods=["GET"]),
    Route("/api/v1/account/org", switch_org, methods=["POST"]),
    Route("/api/v1/invites/accept", accept_invite, methods=["POST"]),
]
