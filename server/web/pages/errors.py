"""The one place where a page's errors become pages.

No live session: the browser goes to the sign-in page (and a stale cookie is dropped), coming
back to the page it asked for after signing in. Any other ``PlancastError``: an error page
with the error's HTTP status and its message, which the domain wrote for people. Anything
else reaches the app's handler (``web/errors.py``), which logs it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.errors import HTTP_STATUS, RateLimited, Unauthorized
from plancast.server.web.pages.cookies import clear_session
from plancast.server.web.pages.render import redirect, render
from plancast.shared import PlancastError

Handler = Callable[[Request], Awaitable[Response]]


def status_of(exc: PlancastError) -> tuple[int, dict[str, str]]:
    """The HTTP status of an error, and its headers (``Retry-After`` for a rate limit)."""
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["retry-after"] = str(max(1, math.ceil(exc.retry_after)))
    return HTTP_STATUS.get(exc.code, 500), headers


def page(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Unauthorized:
            back = request.url.path if request.method in ("GET", "HEAD") else "/web/"
            response = redirect("/web/signin?" + urlencode({"next": back}))
            clear_session(response, request)
            return response
        except PlancastError as exc:
            status, headers = status_of(exc)
            return render(request, "error.html", status=status, headers=headers, error=exc.message)

    return run
