"""The current org on a team server: org, members, invite, invites.

    plancast org [switch ORG]                 your orgs; pick the one to work in (id or name)
    plancast members                          the org's members and their roles
    plancast members role MEMBER ROLE         make a member a member, admin or owner
    plancast members remove MEMBER            remove a member (their streams in the org stop)
    plancast invite EMAIL [--role ROLE]       invite an address; the code goes to its mailbox
    plancast invites [cancel ID]              the pending invites; cancel one

A MEMBER is a user id or an email address from ``plancast members``. The server decides who
may do what (``docs/security.md``, "Roles"), on every request: a refusal is shown with its
``forbidden`` code, never guessed at here. An invite's code is emailed by the server and never
reaches this client. Only ``argparse`` is imported at module level.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from plancast.client.commands._args import list_or

if TYPE_CHECKING:
    from plancast.client.session import Session
    from plancast.shared import PlancastError

ROLES = ("member", "admin", "owner")
ORG_ACTIONS = ("list", "switch")
MEMBER_ACTIONS = ("list", "role", "remove")
INVITE_ACTIONS = ("list", "cancel")


def register(sub: Any) -> None:
    p = sub.add_parser("org", help="your orgs on a team server; `org switch ORG` picks one")
    list_or(p, ORG_ACTIONS, "list (the default), or switch ORG")
    p.add_argument("org", nargs="?", metavar="ORG", help="an org's id or name (`plancast org`)")
    p.set_defaults(func=org)

    p = sub.add_parser(
        "members",
        help="the org's members: `members`, `members role MEMBER ROLE`, `members remove MEMBER`",
    )
    list_or(p, MEMBER_ACTIONS, "list (the default), role MEMBER ROLE, or remove MEMBER")
    p.add_argument("member", nargs="?", metavar="MEMBER", help="a user id or email address")
    p.add_argument("role", nargs="?", choices=ROLES, metavar="ROLE", help=", ".join(ROLES))
    p.add_argument("-y", "--yes", action="store_true", help="`remove` without asking")
    p.add_argument("--json", action="store_true", help="`list` as JSON, for scripts")
    p.set_defaults(func=members)

    p = sub.add_parser("invite", help="invite an email address to the org (owners, admins)")
    p.add_argument("email", help="the address to invite; the code is emailed to it")
    p.add_argument(
        "--role", choices=ROLES, default="member", help="the role it joins with (default member)"
    )
    p.set_defaults(func=invite)

    p = sub.add_parser("invites", help="the org's pending invites; `invites cancel ID`")
    list_or(p, INVITE_ACTIONS, "list (the default), or cancel ID")
    p.add_argument("invite_id", nargs="?", metavar="ID", help="an invite's id or email address")
    p.add_argument("--json", action="store_true", help="`list` as JSON, for scripts")
    p.set_defaults(func=invites)


def _fail(message: str, *, missing: bool = False) -> PlancastError:
    from plancast.shared import ErrorCode, PlancastError

    code = ErrorCode.NOT_FOUND if missing else ErrorCode.INVALID_REQUEST
    return PlancastError(message, code=code)


def _no_extra(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) is not None:
            raise _fail(f"`plancast {args.command} {args.action}` takes no {name.upper()}")


# -- org --------------------------------------------------------------------------------------


def org(session: Session, args: argparse.Namespace) -> int:
    account = session.api.get("/account")
    mine: list[dict[str, Any]] = account.get("orgs", [])
    out = session.output
    if args.action == "list":
        _no_extra(args, "org")
        if not mine:
            out.line("you are in no org; `plancast accept-invite CODE` joins one")
        for o in mine:
            mark = "*" if o["id"] == account.get("org_id") else " "
            style = ("bold",) if mark == "*" else ()
            out.line(f"{mark} {o['name']}  ({o['id']}, {o['role']})", *style)
        return 0
    if not args.org:
        raise _fail("name the org: `plancast org switch ORG` (its id or name, `plancast org`)")
    chosen = _find_org(mine, args.org)
    session.api.post("/account/org", {"org_id": chosen["id"]})
    out.line(f"now working in {chosen['name']} ({chosen['id']}) as {chosen['role']}")
    return 0


def _find_org(mine: list[dict[str, Any]], wanted: str) -> dict[str, Any]:
    by_id = [o for o in mine if o["id"] == wanted]
    by_name = [o for o in mine if o["name"].casefold() == wanted.strip().casefold()]
    found = by_id or by_name
    if len(found) > 1:
        raise _fail(f"{len(found)} of your orgs are named {wanted!r}: give the org's id")
    if not found:
        raise _fail(f"you are in no org {wanted!r}; `plancast org` lists yours", missing=True)
    return found[0]


# -- members ----------------------------------------------------------------------------------


def members(session: Session, args: argparse.Namespace) -> int:
    if args.action == "role":
        return _set_role(session, args)
    if args.action == "remove":
        _no_extra(args, "role")
        return _remove(session, args)
    _no_extra(args, "member", "role")
    import time

    from plancast.client.commands.account import ago, table

    found = session.api.get("/org/members")["members"]
    out = session.output
    if args.json:
        out.json(found)
        return 0
    you = session.config.signin.user_id if session.config.signin else None
    now = time.time()
    rows = [
        (
            m["email"] + (" (you)" if m["user_id"] == you else ""),
            m["role"],
            m["user_id"],
            ago(now - m["joined_at"]),
        )
        for m in found
    ]
    table(out, ("email", "role", "user id", "joined"), rows)
    return 0


def _member(session: Session, wanted: str | None, usage: str) -> dict[str, Any]:
    """The member named by id or address, from the server's list (so typos fail clearly)."""
    if not wanted:
        raise _fail(f"name the member: `plancast members {usage}` (`plancast members`)")
    found: list[dict[str, Any]] = session.api.get("/org/members")["members"]
    key = wanted.strip().casefold()
    match = [m for m in found if m["user_id"] == wanted or m["email"].casefold() == key]
    if not match:
        raise _fail(
            f"no member {wanted!r} in this org; `plancast members` lists them", missing=True
        )
    return match[0]


def _set_role(session: Session, args: argparse.Namespace) -> int:
    if args.role is None:
        raise _fail("name the role: `plancast members role MEMBER ROLE` (" + ", ".join(ROLES) + ")")
    who = _member(session, args.member, "role MEMBER ROLE")
    if who["role"] == args.role:
        session.output.line(f"{who['email']} is {args.role} already")
        return 0
    session.api.patch(f"/org/members/{who['user_id']}", {"role": args.role})
    session.output.line(f"{who['email']} is now {args.role} (was {who['role']})")
    return 0


def _remove(session: Session, args: argparse.Namespace) -> int:
    who = _member(session, args.member, "remove MEMBER")
    if not args.yes:
        import sys

        from plancast.client.ui.output import isatty

        if not isatty(sys.stdin):
            raise _fail(
                f"removing {who['email']} stops their streams in the org, and stdin is not a "
                "terminal to ask; pass --yes to remove them"
            )
        from plancast.client.commands._upload import confirm

        if not confirm(session, f"remove {who['email']} ({who['role']}) from the org?"):
            session.output.note("nobody was removed")
            return 1
    session.api.delete(f"/org/members/{who['user_id']}")
    session.output.line(f"removed {who['email']} from the org; their streams in it stopped")
    return 0


# -- invites ----------------------------------------------------------------------------------


def invite(session: Session, args: argparse.Namespace) -> int:
    import time

    from plancast.client.commands.account import span

    made = session.api.post("/org/invites", {"email": args.email, "role": args.role})
    session.output.line(
        f"invited {made['email']} as {made['role']} ({made['id']}); the code is in their "
        f"mailbox, for {span(made['expires_at'] - time.time())}"
    )
    return 0


def invites(session: Session, args: argparse.Namespace) -> int:
    if args.action == "cancel":
        return _cancel(session, args.invite_id)
    _no_extra(args, "invite_id")
    import time

    from plancast.client.commands.account import ago, span, table

    pending = session.api.get("/org/invites")["invites"]
    out = session.output
    if args.json:
        out.json(pending)
        return 0
    if not pending:
        out.line("no pending invites; `plancast invite EMAIL` sends one")
        return 0
    now = time.time()
    rows = [
        (
            i["id"],
            i["email"],
            i["role"],
            ago(now - i["created_at"]),
            "in " + span(i["expires_at"] - now),
        )
        for i in pending
    ]
    table(out, ("id", "email", "role", "sent", "expires"), rows)
    return 0


def _cancel(session: Session, wanted: str | None) -> int:
    if not wanted:
        raise _fail("name the invite: `plancast invites cancel ID` (`plancast invites`)")
    pending: list[dict[str, Any]] = session.api.get("/org/invites")["invites"]
    key = wanted.strip().casefold()
    match = [i for i in pending if i["id"] == wanted or i["email"].casefold() == key]
    if len(match) > 1:
        raise _fail(f"{len(match)} invites are pending for {wanted}: cancel one by its id")
    if not match:
        raise _fail(f"no pending invite {wanted!r}; `plancast invites` lists them", missing=True)
    session.api.delete(f"/org/invites/{match[0]['id']}")
    session.output.line(f"cancelled the invite of {match[0]['email']} ({match[0]['id']})")
    return 0
