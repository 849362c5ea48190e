"""The web pages (team mode only): server-rendered HTML forms, little JavaScript, no build step.

Rules:

1. A page parses, authorizes, calls the domain and renders, as a REST route does; it calls
   the same domain functions, never the server's own API over HTTP.
2. A signed-in page reads the session from the ``plancast_session`` cookie (HttpOnly,
   SameSite=Strict); the JSON API never accepts that cookie, the SSE route does (GET only).
3. Every POST carries a CSRF token and a same-origin ``Origin`` (or ``Referer``), both
   checked before anything else (``csrf.py``); a refusal is a 403 page.
4. No inline script or style: the pages' Content-Security-Policy allows only this server's
   own files (``headers.py``), and the one script is ``static/live.js``.
5. No token, password or code is ever written into a page, a URL or a log line; a form
   that failed is shown again without its password.

Adding a page: a template that extends ``base.html``, a handler with its ``Route`` below,
and a line in ``nav.NAV`` naming the action its viewers need.
"""

from __future__ import annotations

from pathlib import Path

from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from plancast.server.web.pages import audit, data, home, live, members, sessions, signin, usage
from plancast.server.web.pages.headers import PageHeaders

STATIC_DIR = Path(__file__).parent / "static"

_ROUTES: list[BaseRoute] = [
    Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    Route("/signin", signin.show_signin, methods=["GET"]),
    Route("/signin", signin.sign_in, methods=["POST"]),
    Route("/verify", signin.show_verify, methods=["GET"]),
    Route("/verify", signin.verify, methods=["POST"]),
    Route("/reset", signin.show_reset, methods=["GET"]),
    Route("/reset", signin.reset, methods=["POST"]),
    Route("/signout", signin.sign_out, methods=["POST"]),
    Route("/", home.show, methods=["GET"]),
    Route("/org", home.switch_org, methods=["POST"]),
    Route("/members", members.show, methods=["GET"]),
    Route("/members/invite", members.invite, methods=["POST"]),
    Route("/members/{user_id}/role", members.change_role, methods=["POST"]),
    Route("/members/{user_id}/remove", members.remove, methods=["POST"]),
    Route("/invites/{invite_id}/cancel", members.cancel_invite, methods=["POST"]),
    Route("/sessions", sessions.show, methods=["GET"]),
    Route("/sessions/{session_id}/revoke", sessions.revoke, methods=["POST"]),
    Route("/plans/{plan_id}/live", live.show, methods=["GET"]),
    Route("/audit", audit.show, methods=["GET"]),
    Route("/usage", usage.show, methods=["GET"]),
    Route("/data", data.show, methods=["GET"]),
    Route("/data/export", data.export, methods=["GET"]),
    Route("/data/delete-account", data.delete_account, methods=["POST"]),
    Route("/data/delete-org", data.delete_org, methods=["POST"]),
]

ROUTES: list[BaseRoute] = [Mount("/web", routes=_ROUTES, middleware=[Middleware(PageHeaders)])]
"""Served in team mode only: local mode has no accounts, so no one to sign in."""

__all__ = ["ROUTES"]
