"""Signing in from a browser: password, the emailed code when the address is not verified
yet, password reset, and signing out.

The flows are ``domain/signin.py``'s, with sessions of kind ``web``. The forms shown before a
session exists are CSRF-checked against the pre-session cookie (``cookies.py``) and throttled
per client address like the REST account routes. A form shown again after a failure keeps
the address, never the password or the code.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain.signin import Issued, SignIn
from plancast.server.web.pages import cookies, csrf
from plancast.server.web.pages.errors import page, status_of
from plancast.server.web.pages.forms import field, read_form
from plancast.server.web.pages.render import redirect, render
from plancast.server.web.pages.viewer import form_post
from plancast.shared import ErrorCode, PlancastError

_NEXT = re.compile(r"/web/[A-Za-z0-9_\-/]*")


def _next(value: str | None) -> str:
    """Where to go after signing in: a page of ours, never another site (open redirect)."""
    if value and _NEXT.fullmatch(value) and "//" not in value:
        return value
    return "/web/"


def _form(
    request: Request,
    name: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> Response:
    """A form page shown before sign-in, with its CSRF token (and the pre-session cookie)."""
    key, new = cookies.presession_key(request)
    response = render(
        request, name, status=status, headers=headers, csrf=csrf.token(key), **context
    )
    if new:
        cookies.set_presession(response, request, key)
    return response


def _refused(request: Request, name: str, exc: PlancastError, **context: object) -> Response:
    status, headers = status_of(exc)
    return _form(request, name, status=status, headers=headers, error=exc.message, **context)


async def _anonymous_post(request: Request) -> tuple[SignIn, dict[str, str]]:
    form = await read_form(request)
    csrf.check(request, form, request.cookies.get(cookies.PRESESSION_COOKIE))
    request.app.state.throttle.check(request)
    flows: SignIn = request.app.state.signin
    return flows, form


def _signed_in(request: Request, issued: Issued, to: str) -> Response:
    response = redirect(to)
    cookies.set_session(response, request, issued)
    return response


DONE = {"account_deleted": "Your account was deleted, with its data."}
"""Why the browser was sent here (``?done=``): no session is left to show it elsewhere."""


@page
async def show_signin(request: Request) -> Response:
    to = _next(request.query_params.get("next"))
    notice = DONE.get(request.query_params.get("done", ""))
    return _form(request, "signin.html", email="", next=to, notice=notice)


@page
async def sign_in(request: Request) -> Response:
    flows, form = await _anonymous_post(request)
    email, to = field(form, "email"), _next(form.get("next"))
    try:
        issued = await flows.sign_in(email, field(form, "password"), kind="web")
    except PlancastError as exc:
        if exc.code == ErrorCode.EMAIL_NOT_VERIFIED:
            notice = "Your address is not verified yet: we emailed you a code."
            return _form(request, "verify.html", email=email, next=to, notice=notice)
        return _refused(request, "signin.html", exc, email=email, next=to)
    return _signed_in(request, issued, to)


@page
async def show_verify(request: Request) -> Response:
    return _form(request, "verify.html", email="", next="/web/")


@page
async def verify(request: Request) -> Response:
    flows, form = await _anonymous_post(request)
    email, to = field(form, "email"), _next(form.get("next"))
    try:
        issued = await flows.verify(email, field(form, "code"), kind="web")
    except PlancastError as exc:
        return _refused(request, "verify.html", exc, email=email, next=to)
    return _signed_in(request, issued, to)


@page
async def show_reset(request: Request) -> Response:
    return _form(request, "reset.html", email="", step="request")


@page
async def reset(request: Request) -> Response:
    """Two steps on one page: ask for a code, then give it with the new password."""
    flows, form = await _anonymous_post(request)
    email = field(form, "email")
    if field(form, "step") != "complete":
        try:
            await flows.request_reset(email)
        except PlancastError as exc:
            return _refused(request, "reset.html", exc, email=email, step="request")
        notice = "If this address has an account, we emailed it a code."
        return _form(request, "reset.html", email=email, step="complete", notice=notice)
    try:
        issued = await flows.reset(email, field(form, "code"), field(form, "password"), "web")
    except PlancastError as exc:
        return _refused(request, "reset.html", exc, email=email, step="complete")
    return _signed_in(request, issued, "/web/")


@page
async def sign_out(request: Request) -> Response:
    """This session, or with ``everywhere`` every session of the account (the CLI's too)."""
    viewer, form = await form_post(request)
    flows: SignIn = request.app.state.signin
    everywhere = field(form, "everywhere") == "1"
    await flows.sign_out(viewer.user_id, viewer.session_id, everywhere=everywhere)
    response = redirect("/web/signin")
    cookies.clear_session(response, request)
    return response
