"""Signing up, verifying an address, signing in, resetting a password, joining by invite.

The flows of team mode, over the account, code, session and org records, with the
emails they send. Rules:

1. Nothing tells whether an address has an account: sign-up and reset answer the same
   either way, and a sign-in for an unknown address costs the same hash as a known one.
2. A failed attempt is committed before the request is refused, so a client that
   retries cannot undo its count.
3. An email is sent after its transaction commits; if it fails, the account stays and a
   later sign-in (or a new reset request) sends a new code.
4. Each flow's audit entry (``domain/audit.py``) is written in the transaction of what it
   records: ids and reasons, never the address, the password or a code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.config import Settings
from plancast.server.domain import accounts, audit, codes, orgs, sessions
from plancast.server.domain.audit import AuditAction, Entry
from plancast.server.domain.passwords import (
    check_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from plancast.server.errors import Forbidden, InvalidRequest, RateLimited, Unauthorized
from plancast.shared import ErrorCode

DAY_S = 86400.0


class Mail(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Issued:
    """A new sign-in: the session, and its token (shown to the client once)."""

    session: sessions.Session
    token: str


class SignIn:
    def __init__(
        self,
        db: AsyncEngine,
        mail: Mail,
        settings: Settings,
        on_revoked: Callable[[list[str]], None] = lambda ids: None,
    ) -> None:
        self._db = db
        self._mail = mail
        self._settings = settings
        self._on_revoked = on_revoked  # stops the streams and connections of ended sessions

    @property
    def max_s(self) -> float:
        return self._settings.session_max_days * DAY_S

    @property
    def idle_s(self) -> float:
        return self._settings.session_idle_days * DAY_S

    async def sign_up(self, email: str, password: str, invite_code: str | None = None) -> None:
        """Make an account, and email a code to verify the address.

        Raises:
            InvalidRequest: a bad address or password, or an invite that does not fit.
            Forbidden: sign-up is by invite and there is none.
        """
        email = accounts.normalize_email(email)
        check_strength(password)
        password_hash = await hash_password(password)
        async with self._db.begin() as conn:
            existing = await accounts.find_user(conn, email)
            if existing is not None:
                code = None
                if existing.email_verified_at is None:
                    code = await self._fresh_code(conn, existing.id, "verify")
            else:
                invite = await orgs.find_invite(conn, invite_code) if invite_code else None
                if invite_code and (invite is None or invite.email != email):
                    raise InvalidRequest(
                        "this invite is not valid for this address (used, expired or for "
                        "another address): ask for a new one"
                    )
                first = await accounts.count_users(conn) == 0
                if invite is None and self._settings.signup != "open" and not first:
                    raise Forbidden(
                        "this server takes new accounts by invite only: ask an admin for one"
                    )
                user_id = await accounts.create_user(conn, email, password_hash)
                if invite is not None:
                    await orgs.accept_invite(conn, invite, user_id)
                    org_id = invite.org_id
                else:
                    org_id = await orgs.create(conn, f"{email.partition('@')[0]}'s org", user_id)
                await audit.record(
                    conn,
                    Entry(AuditAction.SIGNED_UP, org_id=org_id, user_id=user_id),
                    *([_accepted(invite, user_id)] if invite is not None else []),
                )
                code = await self._fresh_code(conn, user_id, "verify")
        if code is not None:
            await self._mail.send(email, "Your plancast code", _code_text(code, "verify"))
        elif existing is not None:
            await self._mail.send(
                email,
                "Sign-up attempt on plancast",
                "Someone, maybe you, tried to make a plancast account with this address, "
                "which has one already. Sign in, or reset your password if you forgot it. "
                "If it was not you, you need do nothing.\n",
            )

    async def verify(self, email: str, code: str, kind: str = "cli") -> Issued:
        """Verify the address with its emailed code, and sign in."""
        email = accounts.normalize_email(email)
        async with self._db.begin() as conn:
            user = await accounts.find_user(conn, email)
            outcome = await codes.redeem(conn, user.id if user else None, "verify", code)
        codes.check(outcome)
        assert user is not None
        async with self._db.begin() as conn:
            await accounts.mark_verified(conn, user.id)
            issued = await self._issue(conn, user.id, kind)
            await audit.record(
                conn, Entry(AuditAction.EMAIL_VERIFIED, user_id=user.id), _signed_in(issued)
            )
            return issued

    async def sign_in(self, email: str, password: str, kind: str = "cli") -> Issued:
        """Check the password and open a session.

        Raises:
            RateLimited: too many failures in a row for this account: wait.
            Unauthorized: a wrong address or password (the message does not say which).
            Forbidden (email_not_verified): right password, address not verified yet; a
                new code was sent.
        """
        email = accounts.normalize_email(email)
        async with self._db.connect() as conn:
            user = await accounts.find_user(conn, email)
        if user is not None and (wait := accounts.blocked_for(user)) > 0:
            async with self._db.begin() as conn:
                await audit.record(conn, _failed(user.id, "blocked"))
            raise RateLimited(
                "too many failed sign-ins for this account: wait, or reset the password",
                retry_after=wait,
            )
        ok = await verify_password(user.password_hash if user else None, password)
        async with self._db.begin() as conn:
            if user is not None:
                await accounts.record_signin(conn, user.id, ok)
            if user is None:
                await audit.record(conn, _failed(None, "unknown_account"))
            elif not ok:
                await audit.record(conn, _failed(user.id, "wrong_password"))
        if not ok or user is None:
            raise Unauthorized("wrong email address or password")
        if user.email_verified_at is None:
            async with self._db.begin() as conn:
                code = await self._fresh_code(conn, user.id, "verify")
                await audit.record(conn, _failed(user.id, "email_not_verified"))
            await self._mail.send(email, "Your plancast code", _code_text(code, "verify"))
            raise Forbidden(
                "verify your address first: a new code was sent to it",
                code=ErrorCode.EMAIL_NOT_VERIFIED,
            )
        async with self._db.begin() as conn:
            if user.password_hash and needs_rehash(user.password_hash):
                await accounts.set_password(conn, user.id, await hash_password(password))
            issued = await self._issue(conn, user.id, kind)
            await audit.record(conn, _signed_in(issued))
            return issued

    async def check_password(self, user_id: str, password: str) -> None:
        """Ask again for the password before an irreversible step (deleting the account).

        A wrong one counts as a failed sign-in, so a stolen session cannot guess it faster.

        Raises:
            RateLimited: too many failures in a row for this account: wait.
            Forbidden: the password is wrong.
        """
        async with self._db.connect() as conn:
            user = await accounts.get_user(conn, user_id)
        if user is not None and (wait := accounts.blocked_for(user)) > 0:
            raise RateLimited(
                "too many wrong passwords for this account: wait, or reset the password",
                retry_after=wait,
            )
        if await verify_password(user.password_hash if user else None, password):
            return
        if user is not None:
            async with self._db.begin() as conn:
                await accounts.record_signin(conn, user.id, False)
                await audit.record(conn, _failed(user.id, "wrong_password_recheck"))
        raise Forbidden("that is not the account's password")

    async def request_reset(self, email: str) -> None:
        """Email a reset code if the address has an account; answer the same if not."""
        email = accounts.normalize_email(email)
        async with self._db.begin() as conn:
            user = await accounts.find_user(conn, email)
            if user is None:
                return
            try:
                code = await codes.issue(conn, user.id, "reset")
            except RateLimited:
                return  # refusing would tell that the address has an account
        await self._mail.send(email, "Your plancast password reset code", _code_text(code, "reset"))

    async def reset(self, email: str, code: str, password: str, kind: str = "cli") -> Issued:
        """Set a new password with an emailed code; every other session of the account ends."""
        email = accounts.normalize_email(email)
        check_strength(password)
        password_hash = await hash_password(password)
        async with self._db.begin() as conn:
            user = await accounts.find_user(conn, email)
            outcome = await codes.redeem(conn, user.id if user else None, "reset", code)
        codes.check(outcome)
        assert user is not None
        async with self._db.begin() as conn:
            await accounts.set_password(conn, user.id, password_hash)
            await accounts.mark_verified(conn, user.id)  # the code proved the address
            ended = await sessions.revoke_all(conn, user.id)
            issued = await self._issue(conn, user.id, kind)
            await audit.record(
                conn,
                Entry(
                    AuditAction.PASSWORD_RESET,
                    user_id=user.id,
                    target=issued.session.id,
                    detail={"sessions_ended": len(ended)},
                ),
            )
        self._on_revoked(ended)
        return issued

    async def sign_out(self, user_id: str, session_id: str, everywhere: bool = False) -> int:
        async with self._db.begin() as conn:
            if everywhere:
                ended = await sessions.revoke_all(conn, user_id)
            else:
                ended = [session_id] if await sessions.revoke(conn, user_id, session_id) else []
            await audit.record(
                conn,
                Entry(
                    AuditAction.SIGNED_OUT,
                    user_id=user_id,
                    target=session_id,
                    detail={"sessions_ended": len(ended), "everywhere": everywhere},
                ),
            )
        self._on_revoked(ended)
        return len(ended)

    def end_sessions(self, session_ids: list[str]) -> None:
        """Tell the streams and connections of sessions ended elsewhere (a revoke route)."""
        self._on_revoked(session_ids)

    async def accept_invite(self, user_id: str, session_id: str, code: str) -> orgs.OrgRef:
        """Join an org by invite as a signed-in user, and switch the session to it."""
        async with self._db.begin() as conn:
            user = await accounts.get_user(conn, user_id)
            invite = await orgs.find_invite(conn, code)
            if invite is None or user is None or invite.email != user.email:
                raise InvalidRequest(
                    "this invite is not valid for your address (used, expired or for "
                    "another address): ask for a new one"
                )
            await orgs.accept_invite(conn, invite, user_id)
            await sessions.switch_org(conn, session_id, invite.org_id)
            await audit.record(conn, _accepted(invite, user_id))
            joined = {o.id: o for o in await orgs.orgs_of(conn, user_id)}
        return joined[invite.org_id]

    async def _fresh_code(self, conn: AsyncConnection, user_id: str, purpose: str) -> str:
        return await codes.issue(conn, user_id, purpose)

    async def _issue(self, conn: AsyncConnection, user_id: str, kind: str) -> Issued:
        if kind not in sessions.KINDS:
            raise InvalidRequest("kind must be cli or web")
        mine = await orgs.orgs_of(conn, user_id)
        org_id = mine[0].id if mine else None
        session, token = await sessions.create(conn, user_id, org_id, kind, self.max_s)
        return Issued(session, token)


def _signed_in(issued: Issued) -> Entry:
    s = issued.session
    return Entry(AuditAction.SIGNED_IN, user_id=s.user_id, target=s.id, detail={"kind": s.kind})


def _failed(user_id: str | None, reason: str) -> Entry:
    """A refused sign-in: the account's id when the address has one, and why; no address."""
    return Entry(AuditAction.SIGNIN_FAILED, user_id=user_id, detail={"reason": reason})


def _accepted(invite: orgs.Invite, user_id: str) -> Entry:
    return Entry(
        AuditAction.INVITE_ACCEPTED,
        org_id=invite.org_id,
        user_id=user_id,
        target=invite.id,
        detail={"role": str(invite.role)},
    )


def _code_text(code: str, purpose: str) -> str:
    what = "verify your address" if purpose == "verify" else "reset your password"
    minutes = int(codes.TTL_S // 60)
    return (
        f"Your plancast code to {what} is:\n\n    {code}\n\n"
        f"It works once, for {minutes} minutes. If you did not ask for it, ignore this email.\n"
    )
