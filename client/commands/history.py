"""History commands: log (the branch's versions, or every version) and rewind (and its undo).

A rewind moves the current branch's head on the server and deletes nothing. The files on disk
are the user's, so the client offers to bring them along from its apply journal
(``apply.journal``): at a terminal it asks; ``--revert`` and ``--no-revert`` answer for
scripts; with neither and no terminal it leaves the files alone and says how to restore them.

Only ``argparse`` is imported at module level: every command module is imported for
``plancast --help``, which must start fast. Each command imports what it uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.apply.journal import RestorePlan
    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("log", help="list the current branch's versions (--all: every version)")
    p.add_argument(
        "--all",
        action="store_true",
        help="every version of the plan, those a rewind left behind too, and where each "
        "branch points",
    )
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(func=log)
    p = sub.add_parser(
        "rewind",
        help="point the current branch at an earlier (or any) version; nothing is deleted",
    )
    p.add_argument("version", nargs="?", help="a version number or id (`plancast log --all`)")
    p.add_argument("--undo", action="store_true", help="undo the branch's latest rewind")
    files = p.add_mutually_exclusive_group()
    files.add_argument(
        "--revert",
        action="store_true",
        default=None,
        help="bring the applied files on disk along, without asking",
    )
    files.add_argument(
        "--no-revert",
        dest="revert",
        action="store_false",
        help="leave the files on disk as they are, without asking",
    )
    p.set_defaults(func=rewind)


# -- log --------------------------------------------------------------------------------------


def _chain(head_id: str, parents: dict[str, str | None]) -> set[str]:
    """The ids of the versions that lead to ``head_id``, itself included."""
    seen: set[str] = set()
    cursor: str | None = head_id
    while cursor is not None and cursor in parents and cursor not in seen:
        seen.add(cursor)
        cursor = parents[cursor]
    return seen


def log(session: Session, args: argparse.Namespace) -> int:
    params = {"all": "1"} if args.all else {}
    data = session.api.get(f"/plans/{session.plan_id}/versions", **params)
    found: list[dict[str, Any]] = list(data["versions"])
    heads: list[dict[str, Any]] = list(data.get("branches", []))
    branch, head_id = str(data["branch"]), str(data["head"]["id"])
    parents = {str(v["id"]): v.get("parent_id") for v in found}
    ours = _chain(head_id, parents)
    chains = {str(b["name"]): _chain(str(b["head_id"]), parents) for b in heads}
    for version in found:
        vid = str(version["id"])
        version["head"] = vid == head_id
        version["heads"] = [str(b["name"]) for b in heads if b["head_id"] == vid]
        version["on_branch"] = vid in ours
        version["on_branches"] = [name for name, chain in chains.items() if vid in chain]
    if args.json:
        session.output.json({"branch": branch, "head": data["head"], "versions": found})
        return 0
    import time

    now = time.time()
    out = session.output
    out.note(f"branch {branch} · at version {data['head']['number']}")
    for version in reversed(found):
        mark = "*" if version["head"] else " " if version["on_branch"] else "·"
        text = (
            f"{mark} {version['number']:>4}  {version['kind']:<8} {version['description']}"
            f"  ({_ago(now - float(version['created_at']))})"
        )
        if version["heads"]:
            text += f"  [{', '.join(version['heads'])}]"
        style: tuple[str, ...] = ("bold",) if version["head"] else ()
        if not version["on_branch"]:
            others = version["on_branches"]
            text += f"  (on {', '.join(others)})" if others else "  (on no branch)"
            style = ("dim",)
        out.line(text, *style)
    if args.all and any(not v["on_branches"] for v in found):
        out.note("versions on no branch were left by a rewind; `plancast rewind N` reaches them")
    return 0


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{max(int(seconds), 0)}s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)}m ago"
    if seconds < 129600:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


# -- rewind -----------------------------------------------------------------------------------


def rewind(session: Session, args: argparse.Namespace) -> int:
    from plancast.shared import ErrorCode, PlancastError

    if args.undo == (args.version is not None):
        raise PlancastError(
            "give the version to rewind to (`plancast log --all` lists them), or --undo",
            code=ErrorCode.INVALID_REQUEST,
        )
    plan_id = session.plan_id
    if args.undo:
        move = session.api.post(f"/plans/{plan_id}/rewind/undo", {})
    else:
        move = session.api.post(f"/plans/{plan_id}/rewind", {"version": args.version})
    before, after = move["from"], move["to"]
    verb = "undid the last rewind" if move["kind"] == "undo" else "rewound"
    session.output.line(
        f"{verb}: branch {move['branch']} is at version {after['number']} "
        f"(was {before['number']}); no version was deleted"
    )
    if move["kind"] == "rewind":
        session.output.note("`plancast rewind --undo` moves it back")
    return _bring_files(session, args, move)


def _bring_files(session: Session, args: argparse.Namespace, move: dict[str, Any]) -> int:
    """Offer to revert (or re-apply) the files the move left out of date; see the docstring."""
    from plancast.client.apply import journal

    revert = [(str(c["id"]), str(c["path"])) for c in move["revert"]]
    reapply = [(str(c["id"]), str(c["path"])) for c in move["reapply"]]
    if not revert and not reapply:
        return 0
    binding = session.binding
    plan = journal.plan_restore(binding.root, journal.load(binding.project_id), revert, reapply)
    out = session.output
    for path in plan.unknown:
        out.note(
            f"not restoring {path}: the apply journal on this machine has no record of its "
            "change (applied elsewhere, with --review, or long ago); it is left as it is",
            "yellow",
        )
    if not plan.files:
        _report_conflicts(session, plan)
        return 1 if plan.conflicts else 0
    decision = _decide(session, args, _question(plan, move))
    if decision is None:
        out.note(_how_to_restore(move), "yellow")
        return 0
    if not decision:
        out.note("the files on disk were left as they are")
        return 0
    _restore(session, plan)
    _report_conflicts(session, plan)
    return 1 if plan.conflicts else 0


def _question(plan: RestorePlan, move: dict[str, Any]) -> str:
    names = ", ".join(r.path for r in plan.files[:4]) + (" …" if len(plan.files) > 4 else "")
    actions = {r.action for r in plan.files}
    verb = {"reverted": "revert", "re-applied": "apply again"}.get(
        actions.pop() if len(actions) == 1 else "", "restore"
    )
    skipped = f" ({len(plan.conflicts)} changed on disk will be skipped)" if plan.conflicts else ""
    return (
        f"{verb} {len(plan.files)} file(s) to match version {move['to']['number']}: "
        f"{names}{skipped}?"
    )


def _decide(session: Session, args: argparse.Namespace, question: str) -> bool | None:
    """The flag's answer; else the user's, at a terminal; else None (nobody to ask)."""
    import sys

    from plancast.client.ui.output import isatty

    if args.revert is not None:
        return bool(args.revert)
    if not isatty(sys.stdin):
        return None
    from plancast.client.commands._upload import confirm

    return confirm(session, question)


def _how_to_restore(move: dict[str, Any]) -> str:
    if move["kind"] == "undo":
        again = (
            f"`plancast rewind {move['from']['number']} --no-revert` and "
            "`plancast rewind --undo --revert`"
        )
    else:
        again = (
            f"`plancast rewind --undo --no-revert` and "
            f"`plancast rewind {move['to']['number']} --revert`"
        )
    return (
        "the files on disk were left as they are (no terminal to ask; pass --revert or "
        f"--no-revert to decide). To bring them along now: {again}"
    )


def _restore(session: Session, plan: RestorePlan) -> None:
    from plancast.client.apply import journal
    from plancast.shared import ErrorCode, PlancastError

    try:
        journal.restore(plan)
    except OSError as exc:
        raise PlancastError(
            f"restoring the files failed ({exc.strerror or exc}); every file was put back "
            "as it was",
            code=ErrorCode.INTERNAL,
        ) from None
    for r in plan.files:
        if r.new is None:
            session.output.line(f"  removed {r.path}", "red")
        else:
            style = "green" if r.action == "re-applied" else "yellow"
            session.output.line(f"  {r.action} {r.path}", style)


def _report_conflicts(session: Session, plan: RestorePlan) -> None:
    for path, why in plan.conflicts:
        session.output.error(f"not restored: {path}: {why}; it is left as it is")
