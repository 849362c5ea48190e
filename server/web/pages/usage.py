"""The org's token usage by model and by UTC day, as plain tables (``domain/org_usage.py``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import org_usage
from plancast.server.domain.principal import Action
from plancast.server.web.pages.errors import page
from plancast.server.web.pages.render import render
from plancast.server.web.pages.viewer import signed_in
from plancast.server.web.params import int_param

DAYS = (7, 30, 90)  # the periods linked; any other ?days= up to the domain's limit works too
DEFAULT_DAYS = 30


@page
async def show(request: Request) -> Response:
    viewer = await signed_in(request, Action.SEE_ORG_USAGE)
    days = org_usage.check_days(int_param(request, "days", DEFAULT_DAYS) or 0)
    async with request.app.state.db.connect() as conn:
        report = await org_usage.org_usage(conn, viewer.acting.org_id, days)
    return render(request, "usage.html", viewer=viewer, report=report, choices=DAYS)
