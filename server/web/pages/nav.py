"""The pages' navigation: each entry shows only to viewers whose role allows its action.

A new page adds its line here. Hiding an entry only tidies the header: the page itself
authorizes its viewer (``viewer.signed_in``), so a typed URL is refused all the same.
"""

from __future__ import annotations

from dataclasses import dataclass

from plancast.server.domain.principal import PERMISSIONS, Action, Role


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    needs: Action | None = None  # None: any signed-in user, member of an org or not


NAV: tuple[NavItem, ...] = (
    NavItem("/web/", "Home"),
    NavItem("/web/members", "Members", Action.SEE_MEMBERS),
    NavItem("/web/sessions", "Sessions"),
    NavItem("/web/audit", "Audit log", Action.SEE_AUDIT),
    NavItem("/web/usage", "Usage", Action.SEE_ORG_USAGE),
    NavItem("/web/data", "Your data"),  # export and delete: anyone's; deleting the org, owners'
)


def visible(role: Role | None) -> list[NavItem]:
    """The entries a viewer with ``role`` in their current org (None: no org) may open."""
    return [
        item
        for item in NAV
        if item.needs is None or (role is not None and item.needs in PERMISSIONS[role])
    ]
