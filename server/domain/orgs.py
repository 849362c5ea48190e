"""Orgs, their members and roles, and invites (team mode).

Rules:

1. An org always keeps an owner: the last owner can be neither demoted nor removed.
2. Who may do what is ``principal.authorize``'s table; the extra rules here are the ones
   that depend on the target: only an owner may touch an owner, or make one.
3. An invite is a random code, stored as its SHA-256, good once, until it expires, and
   only for the address it was sent to.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import new_id, now
from plancast.server.domain.principal import Action, Principal, Role, authorize
from plancast.server.errors import Conflict, InvalidRequest, NotFound
from plancast.server.store.schema import invites, memberships, orgs, users

MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class Member:
    user_id: str
    email: str | None
    role: Role
    joined_at: float


@dataclass(frozen=True, slots=True)
class OrgRef:
    id: str
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class Invite:
    id: str
    org_id: str
    email: str
    role: Role
    expires_at: float
    created_at: float
    accepted_at: float | None


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidRequest("role must be owner, admin or member") from None


def check_org_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or any(ord(c) < 32 for c in name):
        raise InvalidRequest(f"an org name needs 1 to {MAX_NAME} printable characters")
    return name


async def create(conn: AsyncConnection, name: str, owner_id: str) -> str:
    org_id = new_id("org")
    at = now()
    await conn.execute(orgs.insert().values(id=org_id, name=check_org_name(name), created_at=at))
    await conn.execute(
        memberships.insert().values(org_id=org_id, user_id=owner_id, role=Role.OWNER, created_at=at)
    )
    return org_id


async def role_of(conn: AsyncConnection, org_id: str, user_id: str) -> Role | None:
    value = await conn.scalar(
        select(memberships.c.role).where(
            memberships.c.org_id == org_id, memberships.c.user_id == user_id
        )
    )
    return None if value is None else Role(value)


async def orgs_of(conn: AsyncConnection, user_id: str) -> list[OrgRef]:
    rows = await conn.execute(
        select(orgs.c.id, orgs.c.name, memberships.c.role)
        .join(memberships, memberships.c.org_id == orgs.c.id)
        .where(memberships.c.user_id == user_id)
        .order_by(memberships.c.created_at, orgs.c.id)
    )
    return [OrgRef(r.id, r.name, Role(r.role)) for r in rows]


async def members(conn: AsyncConnection, org_id: str) -> list[Member]:
    rows = await conn.execute(
        select(users.c.id, users.c.email, memberships.c.role, memberships.c.created_at)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.org_id == org_id)
        .order_by(memberships.c.created_at, users.c.id)
    )
    return [Member(r.id, r.email, Role(r.role), r.created_at) for r in rows]


async def _owners(conn: AsyncConnection, org_id: str) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(memberships)
        .where(memberships.c.org_id == org_id, memberships.c.role == Role.OWNER)
    )
    return int(count or 0)


async def _lock_org(conn: AsyncConnection, org_id: str) -> None:
    """Serialize role changes in one org, so two can't each remove "another" last owner."""
    await conn.execute(select(orgs.c.id).where(orgs.c.id == org_id).with_for_update())


async def set_role(conn: AsyncConnection, p: Principal, user_id: str, role: Role) -> None:
    """Change a member's role, as ``p``.

    Raises:
        NotFound: not a member of p's org.
        Forbidden: p's role may not make this change.
        Conflict: it would leave the org without an owner.
    """
    await _lock_org(conn, p.org_id)
    current = await role_of(conn, p.org_id, user_id)
    if current is None:
        raise NotFound("no such member in this org")
    authorize(p, Action.MANAGE_MEMBERS)
    if Role.OWNER in (current, role):
        authorize(p, Action.MANAGE_OWNERS)
    if current == Role.OWNER and role != Role.OWNER and await _owners(conn, p.org_id) == 1:
        raise Conflict("an org keeps at least one owner: make another member owner first")
    await conn.execute(
        update(memberships)
        .where(memberships.c.org_id == p.org_id, memberships.c.user_id == user_id)
        .values(role=role)
    )


async def remove_member(conn: AsyncConnection, p: Principal, user_id: str) -> None:
    """Remove a member, as ``p`` (anyone may leave; removing others needs the right role)."""
    await _lock_org(conn, p.org_id)
    current = await role_of(conn, p.org_id, user_id)
    if current is None:
        raise NotFound("no such member in this org")
    if user_id != p.user_id:
        authorize(p, Action.MANAGE_MEMBERS)
        if current == Role.OWNER:
            authorize(p, Action.MANAGE_OWNERS)
    if current == Role.OWNER and await _owners(conn, p.org_id) == 1:
        raise Conflict("an org keeps at least one owner: make another member owner first")
    await conn.execute(
        delete(memberships).where(
            memberships.c.org_id == p.org_id, memberships.c.user_id == user_id
        )
    )


# -- invites ------------------------------------------------------------------------------


def _hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _invite(row: object) -> Invite:
    m = row._mapping  # type: ignore[attr-defined]
    return Invite(
        m["id"], m["org_id"], m["email"], Role(m["role"]),
        m["expires_at"], m["created_at"], m["accepted_at"],
    )  # fmt: skip


async def invite(
    conn: AsyncConnection, p: Principal, email: str, role: Role, ttl_s: float
) -> tuple[Invite, str]:
    """A new invite to p's org, and its code (shown once, sent by email)."""
    authorize(p, Action.INVITE)
    if role == Role.OWNER:
        authorize(p, Action.MANAGE_OWNERS)
    already = await conn.scalar(
        select(users.c.id)
        .join(memberships, memberships.c.user_id == users.c.id)
        .where(memberships.c.org_id == p.org_id, users.c.email == email)
    )
    if already is not None:
        raise Conflict("this address already belongs to a member of the org")
    code = "pci_" + secrets.token_urlsafe(24)
    at = now()
    row = Invite(new_id("inv"), p.org_id, email, role, at + ttl_s, at, None)
    await conn.execute(
        invites.insert().values(
            id=row.id,
            org_id=row.org_id,
            email=email,
            role=role,
            token_hash=_hash(code),
            invited_by=p.user_id,
            expires_at=row.expires_at,
            created_at=at,
        )
    )
    return row, code


async def list_invites(conn: AsyncConnection, p: Principal) -> list[Invite]:
    authorize(p, Action.INVITE)
    rows = await conn.execute(
        select(invites)
        .where(invites.c.org_id == p.org_id, invites.c.accepted_at.is_(None))
        .order_by(invites.c.created_at)
    )
    return [_invite(r) for r in rows]


async def cancel_invite(conn: AsyncConnection, p: Principal, invite_id: str) -> None:
    authorize(p, Action.INVITE)
    result = await conn.execute(
        delete(invites).where(
            invites.c.id == invite_id,
            invites.c.org_id == p.org_id,
            invites.c.accepted_at.is_(None),
        )
    )
    if result.rowcount == 0:
        raise NotFound("no such pending invite in this org")


async def find_invite(conn: AsyncConnection, code: str) -> Invite | None:
    """The live invite a code names (not used, not expired), or None."""
    row = (
        await conn.execute(
            select(invites)
            .where(
                invites.c.token_hash == _hash(code.strip()),
                invites.c.accepted_at.is_(None),
                invites.c.expires_at > now(),
            )
            .with_for_update()
        )
    ).first()
    return None if row is None else _invite(row)


async def accept_invite(conn: AsyncConnection, found: Invite, user_id: str) -> None:
    """Join the invite's org with its role, and spend the invite (used once)."""
    result = await conn.execute(
        update(invites)
        .where(invites.c.id == found.id, invites.c.accepted_at.is_(None))
        .values(accepted_at=now(), accepted_by=user_id)
    )
    if result.rowcount == 0:
        raise InvalidRequest("this invite was already used")
    if await role_of(conn, found.org_id, user_id) is None:
        await conn.execute(
            memberships.insert().values(
                org_id=found.org_id, user_id=user_id, role=found.role, created_at=now()
            )
        )
