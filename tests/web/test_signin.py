"""Signing in from the pages: the emailed code, wrong passwords, reset, sign-out, redirects."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.server.helpers import Server
from tests.server.team import PASSWORD, Mailbox, call, sign_up
from tests.web.helpers import csrf_of, page_sign_in, post_form, sign_up_unverified

NEW_PASSWORD = "another horse, stapled"


def session_cookie_set(response: httpx.Response) -> bool:
    lines = response.headers.get_list("set-cookie")
    return any(line.startswith("plancast_session=pcs_") for line in lines)


def test_an_unverified_address_signs_in_with_the_emailed_code(
    team: Server, mailbox: Mailbox
) -> None:
    sign_up_unverified(team, "ann@example.org")
    form = team.client.get("/web/signin")
    fields = {"email": "ann@example.org", "password": PASSWORD, "next": "/web/"}
    verify = post_form(team, "/web/signin", fields | {"csrf": csrf_of(form.text)})
    assert verify.status_code == 200
    assert "Verify your address" in verify.text
    assert 'value="ann@example.org"' in verify.text
    assert PASSWORD not in verify.text
    assert not session_cookie_set(verify)

    code = mailbox.code_for("ann@example.org")
    wrong = "00000000" if code != "00000000" else "11111111"
    fields = {"email": "ann@example.org", "next": "/web/", "csrf": csrf_of(verify.text)}
    refused = post_form(team, "/web/verify", fields | {"code": wrong})
    assert refused.status_code == 400
    assert wrong not in refused.text and "Verify your address" in refused.text
    assert not session_cookie_set(refused)

    signed_in = post_form(team, "/web/verify", fields | {"code": code})
    assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/web/")
    assert session_cookie_set(signed_in)
    home = team.client.get("/web/")
    assert 'id="role">owner<' in home.text
    assert code not in home.text


def test_a_wrong_password_shows_the_form_again_without_it(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    form = team.client.get("/web/signin")
    typed = "not the password at all"
    fields = {"email": "ann@example.org", "password": typed, "csrf": csrf_of(form.text)}
    response = post_form(team, "/web/signin", fields)
    assert response.status_code == 401
    assert "wrong email address or password" in response.text
    assert typed not in response.text and 'value="ann@example.org"' in response.text
    assert not session_cookie_set(response)


def test_a_reset_from_the_page_signs_in_and_ends_the_other_sessions(
    team: Server, mailbox: Mailbox
) -> None:
    cli_token = sign_up(team, mailbox, "ann@example.org")
    form = team.client.get("/web/reset")
    step = post_form(
        team,
        "/web/reset",
        {"csrf": csrf_of(form.text), "email": "ann@example.org", "step": "request"},
    )
    assert step.status_code == 200 and 'name="code"' in step.text
    code = mailbox.code_for("ann@example.org")
    fields = {"csrf": csrf_of(step.text), "email": "ann@example.org", "step": "complete"}
    done = post_form(team, "/web/reset", fields | {"code": code, "password": NEW_PASSWORD})
    assert (done.status_code, done.headers["location"]) == (303, "/web/")
    assert session_cookie_set(done)
    assert call(team, "GET", "/api/v1/account", cli_token).status_code == 401
    assert team.client.get("/web/sessions").status_code == 200
    signin = {"email": "ann@example.org", "password": NEW_PASSWORD}
    assert call(team, "POST", "/api/v1/auth/signin", None, signin).status_code == 200

    # An unknown address gets the same answer, and no email.
    before = len(mailbox.messages)
    again = post_form(
        team,
        "/web/reset",
        {"csrf": csrf_of(form.text), "email": "nobody@example.org", "step": "request"},
    )
    assert again.status_code == 200 and 'name="code"' in again.text
    assert len(mailbox.messages) == before


@pytest.mark.parametrize(
    ("asked", "lands"),
    [
        ("/web/members", "/web/members"),
        ("https://evil.example/", "/web/"),
        ("//evil.example/web/", "/web/"),
        ("/web//evil.example", "/web/"),
    ],
)
def test_signing_in_returns_to_our_own_pages_only(
    team: Server, mailbox: Mailbox, asked: str, lands: str
) -> None:
    sign_up(team, mailbox, "ann@example.org")
    form = team.client.get("/web/signin", params={"next": asked})
    fields = {"email": "ann@example.org", "password": PASSWORD, "next": asked}
    response = post_form(team, "/web/signin", fields | {"csrf": csrf_of(form.text)})
    assert (response.status_code, response.headers["location"]) == (303, lands)


def test_signed_out_pages_send_the_browser_to_sign_in(team: Server, mailbox: Mailbox) -> None:
    for path in ("/web/", "/web/members", "/web/sessions", "/web/plans/pl_x/live"):
        response = team.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/web/signin?next=%2Fweb%2F")
    sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    csrf = csrf_of(team.client.get("/web/").text)

    out = post_form(team, "/web/signout", {"csrf": csrf})
    assert (out.status_code, out.headers["location"]) == (303, "/web/signin")
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith("plancast_session=")]
    assert cleared and "Max-Age=0" in cleared[0]
    assert team.client.get("/web/", follow_redirects=False).status_code == 303


def test_a_revoked_sessions_cookie_is_dropped(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    stale = team.client.cookies.get("plancast_session")
    out = post_form(team, "/web/signout", {"csrf": csrf_of(team.client.get("/web/").text)})
    assert out.status_code == 303
    team.client.cookies.set("plancast_session", stale or "", domain="127.0.0.1", path="/")
    response = team.client.get("/web/sessions", follow_redirects=False)
    assert response.status_code == 303
    assert any(
        line.startswith("plancast_session=") and "Max-Age=0" in line
        for line in response.headers.get_list("set-cookie")
    )


def test_sign_out_everywhere_ends_the_cli_sessions_too(team: Server, mailbox: Mailbox) -> None:
    cli_token = sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    page = team.client.get("/web/sessions")
    assert page.text.count('data-session="ses_') == 2
    assert "web (this one)" in page.text and ">cli<" in page.text
    out = post_form(team, "/web/signout", {"csrf": csrf_of(page.text), "everywhere": "1"})
    assert out.status_code == 303
    assert call(team, "GET", "/api/v1/account", cli_token).status_code == 401
    assert team.client.get("/web/sessions", follow_redirects=False).status_code == 303


def test_revoking_this_browsers_own_session_signs_it_out(team: Server, mailbox: Mailbox) -> None:
    cli_token = sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    page = team.client.get("/web/sessions")
    current = re.search(r'data-session="(ses_[a-z0-9]+)" data-current="1"', page.text)
    assert current
    out = post_form(team, f"/web/sessions/{current[1]}/revoke", {"csrf": csrf_of(page.text)})
    assert (out.status_code, out.headers["location"]) == (303, "/web/signin")
    assert team.client.get("/web/sessions", follow_redirects=False).status_code == 303
    assert call(team, "GET", "/api/v1/account", cli_token).status_code == 200  # the other stays
