"""Change commands: diff, apply, reject.

The server holds the pending operations; the client computes what they do to
the files on disk (which the server never sees) and writes them safely.
"""

from __future__ import annotations

import argparse
from typing import Any

from plancast.client.apply.changeset import FileResult, PendingChange, compute, write_all
from plancast.client.session import Session
from plancast.shared import (
    ErrorCode,
    PlancastError,
    check_relative_path,
    op_from_dict,
    unified_diff,
)


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="show pending changes as a unified diff")
    p.add_argument("paths", nargs="*", help="only these files")
    p.set_defaults(func=diff)
    p = sub.add_parser("apply", help="write pending changes into the project")
    p.set_defaults(func=apply)
    p = sub.add_parser("reject", help="drop pending changes (all, or only the files named)")
    p.add_argument("paths", nargs="*", help="only these files")
    p.set_defaults(func=reject)


def _pending(session: Session) -> list[PendingChange]:
    raw = session.api.get(f"/plans/{session.plan_id}/changes")["changes"]
    return [PendingChange(c["id"], c["path"], op_from_dict(c["op"])) for c in raw]


def _project_paths(session: Session, paths: list[str]) -> set[str]:
    """Paths as typed (relative to the current directory) → project-relative."""
    root = session.binding.root.resolve()
    chosen = set()
    for path in paths:
        absolute = (session.cwd / path).resolve()
        try:
            chosen.add(check_relative_path(absolute.relative_to(root).as_posix()))
        except ValueError:
            raise PlancastError(
                f"{path} is outside the project", code=ErrorCode.UNSAFE_PATH
            ) from None
    return chosen


def _results(session: Session, paths: list[str]) -> list[FileResult]:
    pending = _pending(session)
    if paths:
        chosen = _project_paths(session, paths)
        pending = [c for c in pending if c.path in chosen]
    return compute(session.binding.root, pending)


def diff(session: Session, args: argparse.Namespace) -> int:
    results = _results(session, args.paths)
    if not results:
        session.output.line("no pending changes")
        return 0
    for result in results:
        if result.ok:
            session.output.diff(unified_diff(result.path, result.old, result.new))
        else:
            session.output.error(f"{result.path}: {result.error}")
    return 0 if all(r.ok for r in results) else 1


def apply(session: Session, args: argparse.Namespace) -> int:
    results = _results(session, [])
    if not results:
        session.output.line("no pending changes")
        return 0
    good = [r for r in results if r.ok]
    try:
        write_all(good)
    except OSError as exc:
        raise PlancastError(
            f"writing failed ({exc.strerror or exc}); every file was restored",
            code=ErrorCode.INTERNAL,
        ) from None
    if good:
        ids = [cid for r in good for cid in r.change_ids]
        session.api.post(f"/plans/{session.plan_id}/changes/apply", {"ids": ids})
        for result in good:
            verb = "created" if result.old is None else "updated"
            session.output.line(f"  {verb} {result.path}", "green")
    for result in results:
        if not result.ok:
            session.output.error(f"not applied: {result.path}: {result.error} (still pending)")
    if len(good) < len(results):
        session.output.note("fix or `plancast reject` the files above")
        return 1
    return 0


def reject(session: Session, args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.paths:
        body["paths"] = sorted(_project_paths(session, args.paths))
    moved = session.api.post(f"/plans/{session.plan_id}/changes/reject", body)["changes"]
    if not moved:
        session.output.line("nothing to reject")
        return 0
    for path in sorted({c["path"] for c in moved}):
        session.output.line(f"  rejected {path}", "red")
    return 0
