"""Branch commands: branches, checkout (-b), delete-branch.

A plan's context, conversation, pending changes and streams belong to one of its branches. The
current branch is remembered per plan in the project binding (``.plancast/project.json``), and
every plan-scoped request carries it (``api.rest``): switching is local, creating and deleting
are the server's.

Only ``argparse`` is imported at module level: every command module is imported for
``plancast --help``, which must start fast. Each command imports what it uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("branches", help="list the current plan's branches")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(func=branches)
    p = sub.add_parser(
        "checkout", help="switch the current plan's branch (-b: create it at the current head)"
    )
    p.add_argument("branch", help="a branch name from `plancast branches`")
    p.add_argument(
        "-b",
        dest="create",
        action="store_true",
        help="create the branch at the current branch's head first",
    )
    p.set_defaults(func=checkout)
    p = sub.add_parser("delete-branch", help="delete a branch of the current plan (not main)")
    p.add_argument("branch", help="the branch to delete; its versions stay")
    p.set_defaults(func=delete_branch)


def _branches(session: Session) -> list[dict[str, Any]]:
    return list(session.api.get(f"/plans/{session.plan_id}/branches")["branches"])


def branches(session: Session, args: argparse.Namespace) -> int:
    found = _branches(session)
    current = session.branch
    if args.json:
        session.output.json([b | {"current": b["name"] == current} for b in found])
        return 0
    width = max(len(b["name"]) for b in found) if found else 4
    for b in found:
        mark = "*" if b["name"] == current else " "
        text = f"{mark} {b['name']:<{width}}  version {b['head_number']}"
        if b.get("stream_id"):
            text += f"  stream {b['stream_id']} running"
        session.output.line(text, *(("bold",) if mark == "*" else ()))
    if current not in {b["name"] for b in found}:
        session.output.note(
            f"the current branch {current!r} is gone; `plancast checkout main` to go back"
        )
    return 0


def checkout(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.project import check_branch_name
    from plancast.shared import ErrorCode, PlancastError

    name = check_branch_name(args.branch)
    plan_id, current = session.plan_id, session.branch
    if args.create:
        made = session.api.post(f"/plans/{plan_id}/branches", {"name": name})
        note = f"created branch {name} at version {made['head_number']} (from {current})"
    else:
        match = [b for b in _branches(session) if b["name"] == name]
        if not match:
            raise PlancastError(
                f"this plan has no branch {name!r}; `plancast branches` lists them, "
                f"`plancast checkout -b {name}` creates it",
                code=ErrorCode.NOT_FOUND,
            )
        if name == current:
            session.output.line(f"already on branch {name}")
            return 0
        note = f"switched to branch {name} (version {match[0]['head_number']})"
    binding = session.binding
    binding.set_branch(plan_id, name)
    binding.save()
    session.output.line(f"{note}; it is now current")
    return 0


def delete_branch(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.project import check_branch_name
    from plancast.shared import ErrorCode, PlancastError

    name = check_branch_name(args.branch)
    if name == "main":
        raise PlancastError(
            "`main` is the plan's first branch and cannot be deleted",
            code=ErrorCode.INVALID_REQUEST,
        )
    if name == session.branch:
        raise PlancastError(
            f"branch {name!r} is the current one; `plancast checkout main` first",
            code=ErrorCode.INVALID_REQUEST,
        )
    gone = session.api.delete(f"/plans/{session.plan_id}/branches/{name}")["deleted"]
    session.output.line(
        f"deleted branch {name} (it was at version {gone['head_number']}); its versions stay "
        "(`plancast log --all`)"
    )
    return 0
