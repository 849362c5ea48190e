"""Security headers on every HTTP response, and no CORS grant anywhere.

The app's own responses are checked in-process (JSON, a probe, errors, a refused Host, an
unexpected 500, SSE); what the middleware keeps and adds is checked on a small app of its own.
Over TLS, Strict-Transport-Security is checked in ``test_tls.py``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from plancast.server.app import create_app
from plancast.server.domain import projects
from plancast.server.web.security_headers import API_CONTENT_SECURITY_POLICY, SecurityHeaders
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import Server, load_settings, openai_creds, start_message

EXPECTED = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "cross-origin-opener-policy": "same-origin",
}
BROWSER = {"Origin": "https://evil.example"}  # a cross-origin page asking


def assert_secured(response: httpx.Response) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (name, response.headers)
    assert "strict-transport-security" not in response.headers  # no TLS here
    assert not any(name.startswith("access-control-") for name in response.headers)


def test_a_json_api_response(server: Server) -> None:
    server.new_project()
    response = server.get("/api/v1/projects", headers=BROWSER)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert_secured(response)
    assert response.headers["cache-control"] == "no-store"


def test_a_probe_outside_the_api_is_not_marked_no_store(server: Server) -> None:
    response = server.client.get("/healthz", headers=BROWSER)
    assert response.status_code == 200
    assert_secured(response)
    assert "cache-control" not in response.headers


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/api/v1/projects", False, 401),
        ("/api/v1/no-such-route", True, 404),
        ("/no-such-page", True, 404),
        ("/api/v1/streams/st_unknown/events", False, 401),
        ("/api/v1/streams/st_unknown/events", True, 404),
    ],
)
def test_an_error_response(server: Server, path: str, token: bool, status: int) -> None:
    headers = (server.auth if token else {}) | BROWSER
    response = server.client.get(path, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]["code"] in ("unauthorized", "not_found")
    assert_secured(response)
    if path.startswith("/api/"):
        assert response.headers["cache-control"] == "no-store"


def test_a_cors_preflight_is_not_granted(server: Server) -> None:
    response = server.client.options(
        "/api/v1/projects",
        headers=BROWSER
        | {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 405
    assert_secured(response)


def test_a_refused_host_name(server: Server) -> None:
    response = server.client.get("http://rebound.example/healthz", headers=BROWSER)
    assert response.status_code == 403
    assert_secured(response)


def test_an_unexpected_error(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The 500 is answered outside Starlette's ``Middleware`` entries (see app._App).
    async def broken(*_args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(projects, "list_projects", broken)
    settings = load_settings(data_dir)
    app = create_app(settings)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        token = (settings.data_dir / "local-token").read_text().strip()
        response = client.get(
            "/api/v1/projects", headers={"Authorization": f"Bearer {token}"} | BROWSER
        )
    assert response.status_code == 500
    assert_secured(response)
    assert response.headers["cache-control"] == "no-store"


def test_an_sse_stream(server: Server, plan_id: str, emulator: Emulator) -> None:
    emulator.push(Reply(text="hello"))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator)))
    url = f"/api/v1/streams/{events[0].stream_id}/events"
    with server.client.stream("GET", url, headers=server.auth | BROWSER) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert_secured(response)
        assert response.headers.get_list("cache-control") == ["no-store"]  # its own, once


# -- the middleware on its own --------------------------------------------------------------


async def page(_request: Request) -> PlainTextResponse:
    return PlainTextResponse(
        "<p>hi</p>",
        headers={
            "Content-Security-Policy": "default-src 'self'",
            "X-Frame-Options": "SAMEORIGIN",
            "Cache-Control": "max-age=60",
        },
    )


async def data(_request: Request) -> JSONResponse:
    return JSONResponse({"ok": True}, headers={"Cache-Control": "private, max-age=5"})


def client_for(**options: object) -> TestClient:
    routes = [Route("/page", page), Route("/api/data", data)]
    app = Starlette(routes=routes)
    return TestClient(SecurityHeaders(app, **options))  # type: ignore[arg-type]


def test_a_header_the_route_set_is_kept() -> None:
    with client_for() as client:
        response = client.get("/page")
        assert response.headers.get_list("content-security-policy") == ["default-src 'self'"]
        assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
        assert response.headers.get_list("cache-control") == ["max-age=60"]
        assert response.headers["x-content-type-options"] == "nosniff"  # the others added
        api = client.get("/api/data")
        assert api.headers.get_list("cache-control") == ["private, max-age=5"]


def test_the_content_security_policy_is_a_parameter() -> None:
    policy = "default-src 'self'; frame-ancestors 'none'"
    assert policy != API_CONTENT_SECURITY_POLICY
    with client_for(content_security_policy=policy) as client:
        assert client.get("/api/data").headers["content-security-policy"] == policy


def test_hsts_only_when_told_tls_is_on() -> None:
    with client_for() as client:
        assert "strict-transport-security" not in client.get("/api/data").headers
    with client_for(hsts=True) as client:
        response = client.get("/api/data")
    assert response.headers.get_list("strict-transport-security") == ["max-age=63072000"]


def test_a_missing_route_under_api_is_no_store_too() -> None:
    with client_for() as client:
        response = client.get("/api/missing")
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-frame-options"] == "DENY"
