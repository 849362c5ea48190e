"""Change commands: diff, apply (all at once, or ``--review`` hunk by hunk), reject.

The server holds the pending operations; the client computes what they do to
the files on disk (which the server never sees) and writes them safely.

``apply --review`` asks about each hunk with a one-key question at a terminal, or reads one
answer a line from stdin when it is not one (``printf 'y\\nn\\n' | plancast apply --review``;
the end of the input answers ``q``). The interactive session hands in its own question
(``args.ask_key``) so that it asks on the session's input and output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plancast.client.apply.changeset import (
    FileResult,
    PendingChange,
    compute,
    read_text,
    write_all,
)
from plancast.client.session import Session
from plancast.client.ui.output import isatty
from plancast.shared import (
    ErrorCode,
    PlancastError,
    check_relative_path,
    diff_header,
    op_from_dict,
    unified_diff,
)

if TYPE_CHECKING:
    from plancast.client.apply.review import Answer, FileReview, HunkStep
    from plancast.client.ui.keys import Choice

AskKey = Callable[..., str]
"""``ask(question, choices, *, cancel)`` → the action of the key pressed (``ui.keys.ask``)."""


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="show pending changes as a unified diff")
    p.add_argument("paths", nargs="*", help="only these files")
    p.set_defaults(func=diff)
    p = sub.add_parser("apply", help="write pending changes into the project")
    p.add_argument(
        "--review",
        action="store_true",
        help="choose hunk by hunk what to write: y take, n skip, a take the rest of the file, "
        "d skip the rest of the file, q stop (like git add -p)",
    )
    p.set_defaults(func=apply, ask_key=None)
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
    if getattr(args, "review", False):
        return review(session, getattr(args, "ask_key", None))
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


# -- apply --review ---------------------------------------------------------------------------


def review(session: Session, ask_key: AskKey | None = None) -> int:
    """Walk the pending changes hunk by hunk, write the hunks taken, tell the server.

    See ``apply.review`` for what each answer and each file's status mean. A file taken in
    part is written with its hunks taken and its changes are marked applied (the server's
    statuses are per change, and a change is a whole op); the output says how many hunks
    were skipped. A file with no hunk taken is not touched: rejected when every hunk was
    answered, left pending when the review stopped first.
    """
    from plancast.client.apply.review import walk

    results = _results(session, [])
    if not results:
        session.output.line("no pending changes")
        return 0
    out = session.output
    for result in results:
        if not result.ok:
            out.error(f"not reviewed: {result.path}: {result.error} (still pending)")
    ask = ask_key or _terminal_ask(session)
    reviews = walk(results, lambda step: _ask_hunk(session, step, ask))
    ok = _write_reviewed(session, reviews) and all(r.ok for r in results)
    pending = [r.result.path for r in reviews if r.status == "pending"]
    pending += [r.path for r in results if not r.ok]
    if pending:
        out.note(f"still pending: {', '.join(pending)}")
    return 0 if ok else 1


def _ask_hunk(session: Session, step: HunkStep, ask: AskKey) -> Answer:
    from plancast.client.apply.review import ANSWERS
    from plancast.client.ui.keys import Choice

    out, result = session.output, step.result
    if step.number == 1:
        out.line()
        out.diff(diff_header(result.path, result.old, result.new))
        if not step.hunk.text:
            out.line("(a new, empty file)", "dim")
    out.diff(step.hunk.text)
    choices = [
        Choice("y", "yes", "y"),
        Choice("n", "no", "n"),
        Choice("a", "yes to rest", "a"),
        Choice("d", "no to rest", "d"),
        Choice("q", "quit", "q"),
    ]
    answer = ask(f"take hunk {step.number}/{step.hunks}?", choices, cancel="q")
    return next((a for a in ANSWERS if a == answer), "q")


def _terminal_ask(session: Session) -> AskKey:
    """One key at a terminal; one answer a line when stdin is not one."""
    if isatty(sys.stdin):
        from plancast.client.ui.keys import ask

        return ask

    def ask_line(question: str, choices: Sequence[Choice], *, cancel: str) -> str:
        keys = {c.key: c.action for c in choices}
        while True:
            session.output.err.write(f"{question} [{'/'.join(keys)}] ")
            session.output.err.flush()
            line = sys.stdin.readline()
            if not line:  # the end of the input: stop, take nothing more
                session.output.err.write("\n")
                return cancel
            answer = line.strip().lower()[:1]
            if answer in keys:
                return keys[answer]

    return ask_line


def _write_reviewed(session: Session, reviews: Sequence[FileReview]) -> bool:
    """Write the hunks taken and mark the changes; ``False`` if a file could not be."""
    out = session.output
    chosen = [r for r in reviews if r.status in ("applied", "partial")]
    moved_on = {  # a file edited while the user was answering is not overwritten
        r.result.path
        for r in chosen
        if r.result.target is None or read_text(r.result.target) != r.result.old
    }
    for path in sorted(moved_on):
        out.error(f"not applied: {path} changed on disk during the review (still pending)")
    chosen = [r for r in chosen if r.result.path not in moved_on]
    try:
        write_all([r.to_write() for r in chosen])
    except OSError as exc:
        raise PlancastError(
            f"writing failed ({exc.strerror or exc}); every file was restored",
            code=ErrorCode.INTERNAL,
        ) from None
    applied = [cid for r in chosen for cid in r.result.change_ids]
    if applied:
        session.api.post(f"/plans/{session.plan_id}/changes/apply", {"ids": applied})
    rejected = [r for r in reviews if r.status == "rejected"]
    if rejected:
        ids = [cid for r in rejected for cid in r.result.change_ids]
        session.api.post(f"/plans/{session.plan_id}/changes/reject", {"ids": ids})
    written = {r.result.path for r in chosen}
    for r in reviews:
        if r.result.path in written:
            verb = "created" if r.result.old is None else "updated"
            if r.status == "applied":
                out.line(f"  {verb} {r.result.path}", "green")
            else:
                taken = f"{len(r.taken)} of {len(r.hunks)} hunks"
                out.line(
                    f"  {verb} {r.result.path} with {taken}; {r.skipped} skipped "
                    "(its changes are marked applied)",
                    "yellow",
                )
        elif r.status == "rejected":
            out.line(f"  rejected {r.result.path}", "red")
    if not applied and not rejected:
        out.line("nothing applied")
    return not moved_on
