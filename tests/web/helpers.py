"""Helpers for the web pages' tests: reading forms out of pages, signing in through them.

In-process tests drive the app with Starlette's ``TestClient``, whose cookie jar plays the
browser's; the browser tests (``test_pages.py``) drive Debian's chromium through Playwright.
"""

from __future__ import annotations

import re

import httpx

from tests.server.helpers import Server
from tests.server.team import PASSWORD, Mailbox, call

ORIGIN = {"Origin": "http://127.0.0.1"}
"""The in-process server's own origin: the test client's base URL."""

_CSRF = re.compile(r'name="csrf" value="([0-9a-f]{64})"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field in the page"
    return found[1]


def post_form(
    server: Server, path: str, fields: dict[str, str], headers: dict[str, str] | None = None
) -> httpx.Response:
    """A form POST as a browser on one of our pages sends it (unless ``headers`` says else)."""
    return server.client.post(
        path, data=fields, headers=ORIGIN if headers is None else headers, follow_redirects=False
    )


def sign_up_unverified(server: Server, email: str, invite: str | None = None) -> None:
    body = {"email": email, "password": PASSWORD} | ({"invite": invite} if invite else {})
    response = call(server, "POST", "/api/v1/auth/signup", None, body)
    assert response.status_code == 202, response.text


def page_sign_in(server: Server, mailbox: Mailbox, email: str) -> httpx.Response:
    """Sign in through the pages (with the emailed code if the address is unverified)."""
    form = server.client.get("/web/signin")
    assert form.status_code == 200, form.text
    fields = {"csrf": csrf_of(form.text), "email": email, "password": PASSWORD, "next": "/web/"}
    response = post_form(server, "/web/signin", fields)
    if response.status_code == 200 and "Verify your address" in response.text:
        code = mailbox.code_for(email)
        fields = {"csrf": csrf_of(response.text), "email": email, "code": code, "next": "/web/"}
        response = post_form(server, "/web/verify", fields)
    assert response.status_code == 303, response.text
    return response
