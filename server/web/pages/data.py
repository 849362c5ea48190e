"""Your data: download its export, delete your account, and (owners) delete the org.

The same sequences as the REST routes run behind each (``web/data_lifecycle.py``): the
export is audited alike, a deletion stops the streams concerned first, and a deleted org's
data key is forgotten by every replica. A deletion that is refused (a wrong password, the
last owner of a shared org, a wrong name typed, a stream still running) shows this page
again with the reason, and deletes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from plancast.server.domain.principal import Action
from plancast.server.web import data_lifecycle
from plancast.server.web.pages import cookies
from plancast.server.web.pages.errors import page, status_of
from plancast.server.web.pages.forms import field
from plancast.server.web.pages.render import redirect, render
from plancast.server.web.pages.viewer import Viewer, form_post, signed_in
from plancast.shared import PlancastError

DONE = {"org_deleted": "The org was deleted, with all its data."}
"""What a POST did, shown after its redirect (``?done=`` names one)."""


def _show(request: Request, viewer: Viewer, error: PlancastError | None = None) -> Response:
    status, headers = status_of(error) if error else (200, {})
    return render(
        request,
        "data.html",
        status=status,
        headers=headers,
        viewer=viewer,
        can_delete_org=viewer.may(Action.DELETE_ORG),
        error=error.message if error else None,
        notice=DONE.get(request.query_params.get("done", "")),
    )


@page
async def show(request: Request) -> Response:
    return _show(request, await signed_in(request))


@page
async def export(request: Request) -> Response:
    """A download (``Content-Disposition: attachment``), never shown in the page itself."""
    viewer = await signed_in(request)
    data = await data_lifecycle.export_account(request.app.state, viewer.user_id)
    return JSONResponse(data, headers=data_lifecycle.EXPORT_HEADERS)


@page
async def delete_account(request: Request) -> Response:
    viewer, form = await form_post(request)
    try:
        request.app.state.throttle.check(request)  # a password is asked: as sign-in does
        await data_lifecycle.delete_account(
            request.app.state, viewer.user_id, field(form, "password")
        )
    except PlancastError as exc:
        return _show(request, viewer, exc)
    response = redirect("/web/signin?done=account_deleted")
    cookies.clear_session(response, request)
    return response


@page
async def delete_org(request: Request) -> Response:
    """Afterwards the session acts in no org: this page says so, and offers the way on."""
    viewer, form = await form_post(request, Action.DELETE_ORG)
    try:
        await data_lifecycle.delete_org(request.app.state, viewer.acting, field(form, "confirm"))
    except PlancastError as exc:
        return _show(request, viewer, exc)
    return redirect("/web/data?done=org_deleted")
