"""The org's audit log, newest first, a page at a time (``?before=`` the last id seen).

Entries name users by id only (``domain/audit.py`` Rule 2); the page puts a current
member's address beside it, read from the memberships now, so a user who left or deleted
their account stays an id.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import audit, orgs
from plancast.server.domain.principal import Action
from plancast.server.web.pages.errors import page
from plancast.server.web.pages.render import render
from plancast.server.web.pages.viewer import signed_in
from plancast.server.web.params import int_param

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class Row:
    entry: audit.Entry
    actor: str | None  # the member's address, or their id; None: the server itself
    detail: str


def _detail(entry: audit.Entry) -> str:
    return ", ".join(f"{key}: {value}" for key, value in sorted(entry.detail.items()))


@page
async def show(request: Request) -> Response:
    viewer = await signed_in(request, Action.SEE_AUDIT)
    org_id = viewer.acting.org_id
    before = int_param(request, "before", None)
    async with request.app.state.db.connect() as conn:
        found = await audit.list_entries(conn, org_id, before=before, limit=PAGE_SIZE)
        emails = {m.user_id: m.email for m in await orgs.members(conn, org_id)}
    rows = [
        Row(e, emails.get(e.user_id, e.user_id) if e.user_id else None, _detail(e)) for e in found
    ]
    return render(
        request,
        "audit.html",
        viewer=viewer,
        rows=rows,
        paged=before is not None,
        older=found[-1].id if len(found) == PAGE_SIZE else None,
    )
