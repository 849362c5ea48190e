"""The home page: who is signed in, their orgs (and switching between them), and the current
org's projects and plans, each plan linking to its live view."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from plancast.server.domain import plans, projects, sessions
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import NotFound
from plancast.server.web.pages.errors import page
from plancast.server.web.pages.forms import field
from plancast.server.web.pages.render import redirect, render
from plancast.server.web.pages.viewer import form_post, signed_in

MAX_PROJECTS = 50  # a home page, not a browser of everything: the CLI lists the rest


@page
async def show(request: Request) -> Response:
    viewer = await signed_in(request)
    listed: list[tuple[projects.Project, list[plans.Plan]]] = []
    more = False
    if viewer.org is not None:  # still a member of the session's org
        org = viewer.org
        authorize(Principal(viewer.user_id, org.id, org.role, viewer.session_id), Action.READ)
        async with request.app.state.db.connect() as conn:
            found = await projects.list_projects(conn, org.id)
            for project in found[:MAX_PROJECTS]:
                listed.append((project, await plans.list_plans(conn, org.id, project.id)))
        more = len(found) > MAX_PROJECTS
    return render(request, "home.html", viewer=viewer, projects=listed, more=more)


@page
async def switch_org(request: Request) -> Response:
    """Act in another of the user's orgs, as ``POST /api/v1/account/org`` does."""
    viewer, form = await form_post(request)
    org_id = field(form, "org_id")
    if org_id not in {o.id for o in viewer.orgs}:
        raise NotFound("you are not a member of that org")
    async with request.app.state.db.begin() as conn:
        await sessions.switch_org(conn, viewer.session_id, org_id)
    return redirect("/web/")
