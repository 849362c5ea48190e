"""Which proxies' X-Forwarded-* headers the server believes (``forwarded_allow_ips``).

The app sees the client address and scheme that uvicorn's proxy-headers middleware gives it,
configured by ``serving.uvicorn_config``. Behind a trusted proxy, the forwarded address is the
client's (the per-address sign-in limit counts it, not the proxy's); from anyone else, the
headers are ignored, so a client cannot pick the address it is counted under.
"""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from plancast.server.config import Settings
from plancast.server.serving import uvicorn_config

FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


async def _who(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None,
                         "scheme": request.url.scheme})  # fmt: skip


async def _seen(peer: str, settings: Settings) -> dict[str, str]:
    """What the app sees of a request that ``peer`` sends with ``FORWARDED``."""
    config = uvicorn_config(Starlette(routes=[Route("/", _who)]), settings)
    config.load()  # wraps the app as uvicorn serves it
    transport = httpx.ASGITransport(app=config.loaded_app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://plancast.test") as c:
        return dict((await c.get("/", headers=FORWARDED)).json())


@pytest.mark.parametrize(
    ("allowed", "peer", "client", "scheme"),
    [
        (None, "127.0.0.1", "203.0.113.9", "https"),  # the default: a proxy on loopback
        (None, "10.0.0.7", "10.0.0.7", "http"),  # anyone else's headers are ignored
        ("10.0.0.7", "10.0.0.7", "203.0.113.9", "https"),
        ("10.0.0.7", "127.0.0.1", "127.0.0.1", "http"),  # the list replaces the default
        ("*", "192.0.2.44", "203.0.113.9", "https"),
    ],
)
async def test_only_the_listed_proxies_headers_are_believed(
    allowed: str | None, peer: str, client: str, scheme: str
) -> None:
    values = {} if allowed is None else {"forwarded_allow_ips": allowed}
    settings = Settings.load(values, environ={})
    assert await _seen(peer, settings) == {"client": client, "scheme": scheme}


async def test_uvicorns_own_variable_does_not_widen_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    settings = Settings.load({}, environ={})
    assert await _seen("10.0.0.7", settings) == {"client": "10.0.0.7", "scheme": "http"}
