"""Who is looking at a signed-in page, and what the page may show them.

The session comes from the cookie through ``web/auth.py``, and a page that acts on the org
gets its ``Principal`` from ``authenticate`` and ``authorize``, exactly as a REST route does.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from plancast.server.domain.accounts import get_user
from plancast.server.domain.orgs import OrgRef, orgs_of
from plancast.server.domain.principal import PERMISSIONS, Action, Principal, Role, authorize
from plancast.server.errors import Unauthorized
from plancast.server.web.auth import authenticate, identify, session_token
from plancast.server.web.pages import csrf
from plancast.server.web.pages.forms import read_form
from plancast.server.web.pages.nav import NavItem, visible


@dataclass(frozen=True, slots=True)
class Viewer:
    user_id: str
    session_id: str
    email: str
    org: OrgRef | None  # the session's current org, if they are (still) a member
    orgs: list[OrgRef]
    csrf: str  # for this page's forms
    principal: Principal | None  # set when the page asked for an action

    @property
    def role(self) -> Role | None:
        return self.org.role if self.org else None

    @property
    def nav(self) -> list[NavItem]:
        return visible(self.role)

    @property
    def acting(self) -> Principal:
        """The principal of a page that gave ``signed_in`` an action, already authorized."""
        if self.principal is None:
            raise RuntimeError("signed_in() was called without an action")
        return self.principal

    def may(self, action: Action) -> bool:
        """Whether to show a control; the domain call behind it authorizes for real."""
        return self.role is not None and action in PERMISSIONS[self.role]


async def signed_in(request: Request, action: Action | None = None) -> Viewer:
    """The viewer of a signed-in page; with ``action``, also authorized for it in their org.

    Raises:
        Unauthorized: no live session (the page sends the browser to sign in).
        Forbidden: ``action`` given, and they are not a member of the org or lack the role.
    """
    principal = None
    if action is None:
        who = await identify(request, allow_cookie=True)
        user_id, session_id, org_id = who.user_id, who.session_id, who.org_id
    else:
        principal = await authenticate(request, allow_cookie=True)
        authorize(principal, action)
        user_id, org_id = principal.user_id, principal.org_id
        session_id = principal.session_id or ""
    async with request.app.state.db.connect() as conn:
        user = await get_user(conn, user_id)
        mine = await orgs_of(conn, user_id)
    secret = session_token(request, allow_cookie=True)
    if user is None or secret is None:
        raise Unauthorized("sign in again")
    current = next((o for o in mine if o.id == org_id), None)
    return Viewer(user_id, session_id, user.email, current, mine, csrf.token(secret), principal)


async def form_post(
    request: Request, action: Action | None = None
) -> tuple[Viewer, dict[str, str]]:
    """A signed-in page's POST: its form, once it passed the CSRF checks, and its viewer.

    Raises:
        Unauthorized: no session cookie, or no live session.
        Forbidden: a failed CSRF check, or as ``signed_in``.
    """
    form = await read_form(request)
    secret = session_token(request, allow_cookie=True)
    if secret is None:
        raise Unauthorized("sign in first")
    csrf.check(request, form, secret)
    return await signed_in(request, action), form
