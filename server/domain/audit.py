"""The audit log: who did what to which id, and when.

Rules:

1. Append-only: this module records and lists, and nothing changes an entry. The one delete
   is an org's deletion (``domain/lifecycle.py``): its entries go with it, and a new entry,
   with only the org's id, says that it was deleted.
2. No secrets and no content: a password, a session token, an emailed code, an invite code, a
   provider key, a prompt or a file never reaches an entry. ``target`` is an id; ``detail``
   holds ids, roles, reasons, counts and model names, and ``Entry`` refuses text of any other
   shape, shaped like an address, a token, an invite code or an emailed code, or that the log
   redaction filter would hide. Not even an email address is written, so deleting an account
   leaves nothing personal here.
3. An entry with an org belongs to that org. Account events (signing in, out, exports) have
   no org; an org's admins see those of its current members.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from plancast.server.domain.ids import now
from plancast.server.logs import redact
from plancast.server.store.schema import audit_log, memberships

MAX_LIMIT = 500
OTHER_MODEL = "other"

_MODEL = re.compile(r"[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9._:@/+-]{1,128}")
_DETAIL_TEXT = re.compile(r"[A-Za-z0-9_.:@/+-]{0,160}")  # ids, roles, reasons, model names
# Shapes that are never an id, a role or a model: an address, a session token or invite code
# (``pcs_``/``pci_`` and 43 or 32 characters), a long run like a token's body, a code's digits.
_NEVER = re.compile(
    r"[^@]+@[^@]+\.[^@]+|(?:pcs|pci)_[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}|^[0-9]{6,}$"
)


class AuditAction(StrEnum):
    SIGNED_UP = "account.signed_up"
    EMAIL_VERIFIED = "account.email_verified"
    SIGNED_IN = "account.signed_in"
    SIGNIN_FAILED = "account.signin_failed"
    SIGNED_OUT = "account.signed_out"
    SESSION_REVOKED = "account.session_revoked"
    PASSWORD_RESET = "account.password_reset"
    EXPORTED = "account.exported"
    ACCOUNT_DELETED = "account.deleted"
    ROLE_CHANGED = "member.role_changed"
    MEMBER_REMOVED = "member.removed"
    INVITE_CREATED = "invite.created"
    INVITE_ACCEPTED = "invite.accepted"
    INVITE_CANCELLED = "invite.cancelled"
    ORG_DELETED = "org.deleted"
    PLANS_PURGED = "plans.purged"
    STREAM_STARTED = "stream.started"
    WORKER_STARTED = "worker.started"
    WORKER_EXITED = "worker.exited"


Detail = Mapping[str, str | int | float | bool | None]


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing that happened; checked when built, so a secret-shaped value cannot be one."""

    action: AuditAction
    org_id: str | None = None
    user_id: str | None = None
    target: str | None = None
    detail: Detail = field(default_factory=dict)
    created_at: float = field(default_factory=now)
    id: int | None = None  # set once stored

    def __post_init__(self) -> None:
        for value in (self.org_id, self.user_id, self.target, *self.detail.values()):
            if isinstance(value, str) and not _safe(value):
                raise ValueError("an audit entry holds ids, roles, reasons and counts only")


def _safe(text: str) -> bool:
    return bool(_DETAIL_TEXT.fullmatch(text)) and not _NEVER.search(text) and redact(text) == text


def safe_model(model: str) -> str:
    """A model name fit for the log, else ``other``: the name is the client's text, and a
    mistyped one can be a pasted key."""
    if not _MODEL.fullmatch(model) or not _safe(model):
        return OTHER_MODEL
    return model


async def record(conn: AsyncConnection, *entries: Entry) -> None:
    """Append ``entries``, in the caller's transaction (so they commit with what they say)."""
    if not entries:
        return
    await conn.execute(
        audit_log.insert(),
        [
            {
                "org_id": e.org_id,
                "user_id": e.user_id,
                "action": str(e.action),
                "target": e.target,
                "detail": json.dumps(dict(e.detail), sort_keys=True),
                "created_at": e.created_at,
            }
            for e in entries
        ],
    )


async def list_entries(
    conn: AsyncConnection, org_id: str, *, before: int | None = None, limit: int = 100
) -> list[Entry]:
    """The org's entries, newest first, with ids below ``before`` (Rule 3 says which)."""
    members = select(memberships.c.user_id).where(memberships.c.org_id == org_id)
    query = select(audit_log).where(
        or_(
            audit_log.c.org_id == org_id,
            and_(audit_log.c.org_id.is_(None), audit_log.c.user_id.in_(members)),
        )
    )
    if before is not None:
        query = query.where(audit_log.c.id < before)
    rows = await conn.execute(
        query.order_by(audit_log.c.id.desc()).limit(max(1, min(limit, MAX_LIMIT)))
    )
    return [_entry(row._mapping) for row in rows]


async def list_for_user(conn: AsyncConnection, user_id: str) -> list[Entry]:
    """Every entry about what the user did, oldest first (for their data export)."""
    rows = await conn.execute(
        select(audit_log).where(audit_log.c.user_id == user_id).order_by(audit_log.c.id)
    )
    return [_entry(row._mapping) for row in rows]


def _entry(m: Mapping[str, Any]) -> Entry:
    return Entry(
        AuditAction(m["action"]),
        m["org_id"],
        m["user_id"],
        m["target"],
        json.loads(m["detail"]),
        m["created_at"],
        m["id"],
    )


def as_json(entry: Entry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "action": str(entry.action),
        "org_id": entry.org_id,
        "user_id": entry.user_id,
        "target": entry.target,
        "detail": dict(entry.detail),
        "created_at": entry.created_at,
    }
