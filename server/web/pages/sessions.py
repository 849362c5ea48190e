"""The account's sessions (web and CLI): when each began and was last used, and revoking
them, one or all. Revoking a session stops its streams and closes its sockets, as the REST
route does; revoking this page's own session signs the browser out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import sessions as domain_sessions
from plancast.server.web import org_actions
from plancast.server.web.pages import cookies
from plancast.server.web.pages.errors import page
from plancast.server.web.pages.render import redirect, render
from plancast.server.web.pages.viewer import form_post, signed_in


@page
async def show(request: Request) -> Response:
    viewer = await signed_in(request)
    async with request.app.state.db.connect() as conn:
        mine = await domain_sessions.list_for_user(conn, viewer.user_id)
    notice = "Session revoked." if request.query_params.get("done") == "revoked" else None
    return render(request, "sessions.html", viewer=viewer, sessions=mine, notice=notice)


@page
async def revoke(request: Request) -> Response:
    viewer, _ = await form_post(request)
    session_id = request.path_params["session_id"]
    await org_actions.revoke_session(request.app.state, viewer.user_id, session_id)
    if session_id != viewer.session_id:
        return redirect("/web/sessions?done=revoked")
    response = redirect("/web/signin")
    cookies.clear_session(response, request)
    return response
