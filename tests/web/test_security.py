"""The pages' cookies, CSRF checks and headers; and where the session cookie counts."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from plancast.server.app import create_app
from plancast.server.web.pages.headers import PAGE_CONTENT_SECURITY_POLICY
from plancast.server.web.pages.render import TEMPLATE_DIR
from tests.server.helpers import Server, load_settings, running
from tests.server.team import Mailbox, sign_up, team_settings
from tests.web.helpers import ORIGIN, csrf_of, page_sign_in, post_form


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of a response, by cookie name (the whole header line)."""
    headers = response.headers.get_list("set-cookie")
    return {SimpleCookie(line).popitem()[0]: line for line in headers}


def flags(line: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in line.split(";")[1:]}


def test_the_session_cookie_is_httponly_strict_and_not_secure_on_loopback_http(
    team: Server, mailbox: Mailbox
) -> None:
    sign_up(team, mailbox, "ann@example.org")
    form = team.client.get("/web/signin")
    presession = set_cookies(form)["plancast_presession"]
    assert {"httponly", "samesite", "path"} <= flags(presession)
    assert "secure" not in flags(presession)
    assert "SameSite=strict" in presession and "Path=/web" in presession

    response = page_sign_in(team, mailbox, "ann@example.org")
    session = set_cookies(response)["plancast_session"]
    assert {"httponly", "samesite", "path", "max-age"} <= flags(session)
    assert "SameSite=strict" in session and "Path=/;" in session + ";"
    assert "secure" not in flags(session)  # loopback over plain HTTP: see cookies.py
    assert response.headers["location"] == "/web/"
    home = team.client.get("/web/")
    assert home.status_code == 200 and "ann@example.org" in home.text


@pytest.mark.parametrize(
    ("host", "base_url"),
    [("0.0.0.0", "http://127.0.0.1"), ("127.0.0.1", "https://127.0.0.1")],
    ids=["beyond-loopback", "loopback-over-https"],
)
def test_cookies_are_secure_unless_on_loopback_over_plain_http(
    tmp_path: Path, mailbox: Mailbox, host: str, base_url: str
) -> None:
    settings = team_settings(tmp_path / "data", mailbox, host=host)
    # No lifespan needed: the sign-in form reads no database.
    client = TestClient(create_app(settings), base_url=base_url)
    response = client.get("/web/signin")
    assert response.status_code == 200
    assert "secure" in flags(set_cookies(response)["plancast_presession"])


def test_a_post_needs_the_sessions_csrf_token_and_our_origin(
    team: Server, mailbox: Mailbox
) -> None:
    sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    token = csrf_of(team.client.get("/web/members").text)
    invite = {"email": "bob@example.org", "role": "member"}

    refused = [
        post_form(team, "/web/members/invite", invite),  # no token
        post_form(team, "/web/members/invite", invite | {"csrf": "0" * 64}),  # a wrong one
        post_form(team, "/web/members/invite", invite | {"csrf": token}, {}),  # no origin
        post_form(
            team,
            "/web/members/invite",
            invite | {"csrf": token},
            {"Origin": "http://evil.example"},
        ),
        post_form(
            team,
            "/web/members/invite",
            invite | {"csrf": token},
            {"Referer": "http://evil.example/page"},
        ),
    ]
    for response in refused:
        assert response.status_code == 403, response.text
        assert "That did not work" in response.text  # a page, not JSON
    assert not any(m["To"] == "bob@example.org" for m in mailbox.messages)

    accepted = post_form(team, "/web/members/invite", invite | {"csrf": token})
    assert (accepted.status_code, accepted.headers["location"]) == (
        303,
        "/web/members?done=invited",
    )
    assert mailbox.code_for("bob@example.org").startswith("pci_")
    same_site = post_form(
        team,
        "/web/members/invite",
        {"email": "cy@example.org", "role": "member", "csrf": token},
        {"Referer": "http://127.0.0.1/web/members"},  # no Origin: the Referer counts
    )
    assert same_site.status_code == 303

    # The token belongs to the session: after signing in anew, the old one is refused.
    assert post_form(team, "/web/signout", {"csrf": token}).status_code == 303
    page_sign_in(team, mailbox, "ann@example.org")
    stale = post_form(team, "/web/members/invite", invite | {"csrf": token})
    assert stale.status_code == 403


def test_the_sign_in_form_needs_its_pre_session_token(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    fields = {"email": "ann@example.org", "password": "correct horse battery", "next": "/web/"}
    response = post_form(team, "/web/signin", fields)  # no token, no pre-session cookie
    assert response.status_code == 403
    assert "plancast_session" not in set_cookies(response)

    token = csrf_of(team.client.get("/web/signin").text)
    foreign = post_form(team, "/web/signin", fields | {"csrf": token}, {"Origin": "null"})
    assert foreign.status_code == 403
    team.client.cookies.clear()  # another browser: the token was made for the first one's key
    team.client.get("/web/signin")
    response = post_form(team, "/web/signin", fields | {"csrf": token})
    assert response.status_code == 403
    assert "plancast_session" not in set_cookies(response)


def test_the_cookie_counts_on_pages_and_sse_only(team: Server, mailbox: Mailbox) -> None:
    sign_up(team, mailbox, "ann@example.org")
    page_sign_in(team, mailbox, "ann@example.org")
    assert team.client.cookies.get("plancast_session")
    assert team.client.get("/web/sessions").status_code == 200
    for method, path in [
        ("GET", "/api/v1/account"),
        ("GET", "/api/v1/projects"),
        ("POST", "/api/v1/projects"),
        ("GET", "/api/v1/auth/sessions"),
        ("POST", "/api/v1/auth/signout"),
    ]:
        response = team.client.request(
            method, path, json={"name": "x"} if method == "POST" else None
        )
        assert response.status_code == 401, (method, path, response.text)
    # SSE takes it: an unknown stream is "not found", not "unauthorized".
    sse = team.client.get("/api/v1/streams/st_nosuchstream/events")
    assert sse.status_code == 404, sse.text
    team.client.cookies.clear()
    assert team.client.get("/api/v1/streams/st_nosuchstream/events").status_code == 401


def test_pages_send_their_own_policy_and_templates_have_no_inline_code(team: Server) -> None:
    response = team.client.get("/web/signin")
    headers = response.headers
    assert headers["content-security-policy"] == PAGE_CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in PAGE_CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in PAGE_CONTENT_SECURITY_POLICY
    assert (headers["referrer-policy"], headers["cache-control"]) == ("same-origin", "no-store")
    assert (headers["x-frame-options"], headers["x-content-type-options"]) == ("DENY", "nosniff")
    script = team.client.get("/web/static/live.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    # The API keeps its own, stricter policy.
    api = team.client.get("/api/v1/health")
    assert api.headers["content-security-policy"].startswith("default-src 'none'")

    templates = sorted(TEMPLATE_DIR.glob("*.html"))
    assert len(templates) >= 8
    for path in templates:
        text = path.read_text()
        scripts = re.findall(r"(<script\b[^>]*>)(.*?)</script>", text, re.DOTALL | re.I)
        assert len(scripts) == text.lower().count("<script"), path.name
        for tag, body in scripts:
            assert 'src="/web/static/' in tag and not body.strip(), (path.name, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), path.name  # no onclick= and the like
        assert not re.search(r"<style\b|\sstyle\s*=", text), path.name
        assert "javascript:" not in text, path.name


def test_local_mode_serves_no_pages(tmp_path: Path) -> None:
    with running(load_settings(tmp_path / "data")) as server:
        for path in ("/web/", "/web/signin", "/web/static/live.js"):
            assert server.client.get(path).status_code == 404, path
        assert server.client.post("/web/signin", headers=ORIGIN).status_code == 404
