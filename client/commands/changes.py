"""Change commands: diff, apply (all at once, or ``--review`` hunk by hunk), reject.

The server holds the pending operations; the client computes what they do to
the files on disk (which the server never sees) and writes them safely.

Rules:

1. ``diff`` is coloured when stdout is a colour terminal (``--color=auto``, and not
   ``NO_COLOR``); ``always`` and ``never`` decide regardless. ``--git`` writes git's extended
   format (``apply.gitdiff``), byte for byte the text ``git apply`` reads: lines are written as
   they are (a ``"\\r"`` stays), and with ``--git`` stdout holds the patch and nothing else.
2. ``apply --review`` and ``reject --review`` ask about each hunk with a one-key question at a
   terminal, or read one answer a line from stdin when it is not one (``printf 'y\\nn\\n' |
   plancast apply --review``; the end of the input answers ``q``). The interactive session
   hands in its own question (``args.ask_key``) so that it asks on the session's input and
   output.
3. ``reject --review`` turns the walk's question around: a hunk taken is a hunk rejected. A
   file with every hunk rejected has its changes rejected; a file with some is sent back to
   the server as the text with only the hunks kept (``changes/reject-hunks``), computed here
   against the disk, and stays pending as one change that writes that text.
4. ``apply --commit`` (or ``-m MESSAGE``) checks for git and a repository before it writes
   anything, then commits exactly the files it wrote (``apply.gitcommit``). A commit that
   fails leaves the apply done, and says so.
5. A move shows as git shows a rename: its source and destination are one entry, in ``diff``
   (plain or ``--git``), in what ``apply`` prints and in the commit. In a review, a deletion
   and the files a move ties together are one question each (``apply.review``, rule 2).
6. ``diff`` and ``apply`` (before it writes) say which changes the server could not build, one
   line a file on stderr (``not built: PATH — REASON``), so never in a patch on stdout. They
   are those of the replies under review: the failed changes of the streams that proposed the
   pending ones, and of the latest reply that proposed changes on the branch (even once its
   other changes are applied). A failed change is never pending, so it is never written.

Only ``argparse`` is imported at module level: every command module is imported for
``plancast --help``, which must start fast. Each command imports what it uses.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from pathlib import Path

    from plancast.client.apply.changeset import FileResult, PendingChange
    from plancast.client.apply.gitcommit import FileChange
    from plancast.client.apply.gitdiff import GitFile
    from plancast.client.apply.review import Answer, FileReview, HunkStep
    from plancast.client.session import Session
    from plancast.client.ui.keys import Choice
    from plancast.client.ui.output import Output

AskKey = Callable[..., str]
"""``ask(question, choices, *, cancel)`` → the action of the key pressed (``ui.keys.ask``)."""


def register(sub: Any) -> None:
    p = sub.add_parser("diff", help="show pending changes as a unified diff")
    p.add_argument("paths", nargs="*", help="only these files")
    p.add_argument(
        "--git",
        action="store_true",
        help="git's extended format (new, deleted and moved files), for `git apply`",
    )
    p.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the diff: auto (at a colour terminal), always or never",
    )
    p.set_defaults(func=diff)
    p = sub.add_parser("apply", help="write pending changes into the project")
    p.add_argument(
        "--review",
        action="store_true",
        help="choose hunk by hunk what to write: y take, n skip, a take the rest of the file, "
        "d skip the rest of the file, q stop (like git add -p)",
    )
    p.add_argument(
        "--commit",
        action="store_true",
        help="then commit the files written with git (only those), with the committer "
        "model's message, or one made from the prompt",
    )
    p.add_argument("-m", "--message", help="the commit message (implies --commit)")
    p.set_defaults(func=apply, ask_key=None)
    p = sub.add_parser("reject", help="drop pending changes (all, or only the files named)")
    p.add_argument(
        "paths",
        nargs="*",
        help="only these files; a file named here also loses the record of a change to it "
        "that could not be built (`diff` stops naming it)",
    )
    p.add_argument(
        "-p",
        "--review",
        action="store_true",
        help="choose hunk by hunk what to drop: y reject, n keep, a reject the rest of the "
        "file, d keep the rest of the file, q stop",
    )
    p.set_defaults(func=reject, ask_key=None)


# -- what is pending --------------------------------------------------------------------------


class _Pending:
    """The plan's pending changes as the server lists them (only those of ``paths``, if any)."""

    def __init__(self, session: Session, paths: Sequence[str]) -> None:
        from plancast.client.apply.changeset import PendingChange

        raw = session.api.get(f"/plans/{session.plan_id}/changes")["changes"]
        chosen = _project_paths(session, paths) if paths else None
        self.changes = [PendingChange.from_dict(c) for c in raw]
        self.chosen = chosen
        self.streams = {c.stream_id for c in self.changes if c.stream_id}  # before ``paths``
        if chosen is not None:
            self.changes = [c for c in self.changes if chosen & set(c.op.paths)]
        self.stream_of = {c.id: c.stream_id for c in self.changes}

    def results(self, session: Session) -> list[FileResult]:
        from plancast.client.apply.changeset import compute

        return compute(session.binding.root, self.changes)

    def entries(self, results: Sequence[FileResult]) -> list[_Entry]:
        """``results`` as a patch shows them: a move's two files as one entry (a rename).

        A move's destination is paired with its source when the source ends gone and the
        destination is new; the source then has no entry of its own. Anything else (a file
        moved onto a path that was written again, say) stays one entry a file: a deletion
        and a creation, which ``git apply`` takes just as well.
        """
        from plancast.shared import MoveFile

        origin: dict[str, str] = {}  # a path's file came from there, through moves
        for change in self.changes:
            op = change.op
            if isinstance(op, MoveFile):
                origin[op.to] = origin.pop(op.path, op.path)
            elif op.OP in ("delete", "write"):  # another file now, or none
                origin.pop(op.path, None)
        by_path = {r.path: r for r in results}
        paired: dict[str, FileResult] = {}
        for result in results:
            source = by_path.get(origin.get(result.path, ""))
            if (
                source is not None
                and result.ok
                and source.ok
                and result.old is None
                and result.new is not None
                and source.old is not None
                and source.new is None
            ):
                paired[result.path] = source
        sources = {s.path for s in paired.values()}
        return [_Entry(r, paired.get(r.path)) for r in results if r.path not in sources]


class NotBuilt(NamedTuple):
    """A file the server could not build: never pending, so never written (rule 6)."""

    path: str
    reason: str


def not_built(
    failed: Sequence[PendingChange], streams: set[str], chosen: set[str] | None = None
) -> list[NotBuilt]:
    """The failed builds of ``failed`` that came from ``streams``, one per file, in plan order.

    A build's changes all fail together; the last of them carries the build's ``reason`` and
    ``path`` (where the file ends up), the others name it in ``result_in``. Only the builds
    that touch one of ``chosen`` are kept, when it is given.
    """
    by_id = {c.id: c for c in failed}
    groups: dict[str, list[PendingChange]] = {}
    for change in failed:
        if change.status != "failed" or change.stream_id not in streams:
            continue
        last = (change.build or {}).get("result_in") or change.id
        groups.setdefault(str(last), []).append(change)
    found = []
    for last_id, members in groups.items():
        if chosen is not None and not any(chosen & set(c.op.paths) for c in members):
            continue
        last = by_id.get(last_id, members[-1])
        build = last.build or {}
        path = build.get("path") or last.path
        reason = build.get("reason") or "the server could not build it"
        found.append(NotBuilt(str(path), " ".join(str(reason).split())))
    return found


def _tell_not_built(session: Session, pending: _Pending) -> None:
    """Say on stderr which changes of the replies under review did not build (rule 6).

    The replies under review are the streams of the pending changes, and the latest stream
    that proposed changes on the branch: what the user just told, even when none of its
    changes is pending (all failed, or the others applied or rejected). The failures of an
    older reply none of whose changes are pending any more are not repeated.
    """
    from plancast.client.apply.changeset import PendingChange

    url = f"/plans/{session.plan_id}/changes"
    raw = session.api.get(url, status="failed")["changes"]
    failed = [PendingChange.from_dict(c) for c in raw if c.get("status") == "failed"]
    if not failed:
        return
    every = session.api.get(url, status="all")["changes"]  # only when something failed
    latest = next((c["stream_id"] for c in reversed(every) if c.get("stream_id")), None)
    streams = pending.streams | ({latest} if latest else set())
    for item in not_built(failed, streams, pending.chosen):
        session.output.note(f"not built: {item.path} — {item.reason}", "yellow")


class _Entry(NamedTuple):
    """One file as a patch shows it, or a move: ``source`` holds the file it moved from."""

    result: FileResult
    source: FileResult | None

    @property
    def verb(self) -> str:
        if self.source is not None:
            return f"moved {self.source.path} →"
        if self.result.new is None:
            return "deleted"
        return "created" if self.result.old is None else "updated"

    def git_file(self, root: Path) -> GitFile:
        """For ``git_diff``, with the mode the file has on disk before the change."""
        import stat

        from plancast.client.apply.gitdiff import EXECUTABLE, REGULAR, GitFile

        before = self.source or self.result
        try:
            executable = (root / before.path).stat().st_mode & stat.S_IXUSR
        except OSError:  # a new file
            executable = 0
        old = before.old if self.source else self.result.old
        source = self.source.path if self.source else None
        mode = EXECUTABLE if executable else REGULAR
        return GitFile(self.result.path, old, self.result.new, source=source, mode=mode)

    def file_change(self) -> FileChange:
        from plancast.client.apply.gitcommit import FileChange

        if self.source is not None:
            return FileChange(self.result.path, "R", self.source.path)
        if self.result.new is None:
            return FileChange(self.result.path, "D")
        return FileChange(self.result.path, "A" if self.result.old is None else "M")


def _project_paths(session: Session, paths: Sequence[str]) -> set[str]:
    """Paths as typed (relative to the current directory) → project-relative."""
    from plancast.shared import ErrorCode, PlancastError, check_relative_path

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


# -- diff -------------------------------------------------------------------------------------


def diff(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.ui.output import Output

    pending = _Pending(session, args.paths)
    results = pending.results(session)
    git = getattr(args, "git", False)
    if not results:
        if git:  # stdout is the patch: an empty one
            session.output.note("no pending changes")
        else:
            session.output.line("no pending changes")
        _tell_not_built(session, pending)
        return 0
    shown = session.output
    if args.color != "auto":
        shown = Output(shown.out, shown.err, color=args.color == "always")
    for entry in pending.entries(results):
        result = entry.result
        if not result.ok:
            session.output.error(f"{result.path}: {result.error}")
        elif git or entry.source is not None:  # a move shows as git shows it, rename and all
            from plancast.client.apply.gitdiff import git_diff

            write_diff(shown, git_diff(entry.git_file(session.binding.root)))
        else:
            from plancast.shared import unified_diff

            write_diff(shown, unified_diff(result.path, result.old, result.new))
    _tell_not_built(session, pending)
    return 0 if all(r.ok for r in results) else 1


def write_diff(out: Output, text: str) -> None:
    """Write a diff exactly as it is (rule 1), each line coloured by its kind when ``out`` is.

    A diff starts in its header (bold, as git shows ``diff --git``, ``new file mode``,
    ``---``, ``+++``); an ``@@`` line starts a hunk, where ``+`` and ``-`` mark lines.
    """
    if not out.color:
        out.write(text)
        return
    styled, in_hunk = [], False
    for line in text.split("\n"):
        if line.startswith("diff --git "):
            in_hunk = False
        if line.startswith("@@"):
            in_hunk, style = True, ("cyan",)
        elif not in_hunk:
            style = ("bold",)
        elif line.startswith("+"):
            style = ("green",)
        elif line.startswith("-"):
            style = ("red",)
        else:
            style = ()
        styled.append(out.style(line, *style) if line else line)
    out.write("\n".join(styled))


# -- apply ------------------------------------------------------------------------------------


def apply(session: Session, args: argparse.Namespace) -> int:
    git = None
    if getattr(args, "commit", False) or getattr(args, "message", None) is not None:
        from plancast.client.apply import gitcommit

        git = gitcommit.check(session.binding.root)  # before anything is written (rule 4)
    pending = _Pending(session, [])
    _tell_not_built(session, pending)  # rule 6: before anything is written
    if getattr(args, "review", False):
        code, written = _review(session, pending, getattr(args, "ask_key", None))
    else:
        code, written = _apply_all(session, pending)
    if written:
        from plancast.client.apply.journal import record_apply

        record_apply(session, written)  # so that `plancast rewind` can offer to revert them
    if git is not None:
        _commit(session, args, git, pending, written)
    return code


def _apply_all(session: Session, pending: _Pending) -> tuple[int, list[FileResult]]:
    from plancast.client.apply.changeset import write_all

    results = pending.results(session)
    if not results:
        session.output.line("no pending changes")
        return 0, []
    good = [r for r in results if r.ok]
    _write(write_all, good)
    if good:
        ids = list(dict.fromkeys(cid for r in good for cid in r.change_ids))
        session.api.post(f"/plans/{session.plan_id}/changes/apply", {"ids": ids})
        for entry in pending.entries(good):
            session.output.line(f"  {entry.verb} {entry.result.path}", "green")
    for result in results:
        if not result.ok:
            session.output.error(f"not applied: {result.path}: {result.error} (still pending)")
    if len(good) < len(results):
        session.output.note("fix or `plancast reject` the files above")
        return 1, good
    return 0, good


def _write(write_all: Callable[[list[FileResult]], None], results: list[FileResult]) -> None:
    from plancast.shared import ErrorCode, PlancastError

    try:
        write_all(results)
    except OSError as exc:
        raise PlancastError(
            f"writing failed ({exc.strerror or exc}); every file was restored",
            code=ErrorCode.INTERNAL,
        ) from None


def _commit(
    session: Session,
    args: argparse.Namespace,
    git: str,
    pending: _Pending,
    written: Sequence[FileResult],
) -> None:
    from plancast.client.apply import gitcommit

    if not written:
        raise gitcommit.GitCommitError("nothing was applied, so nothing was committed")
    entries = pending.entries(written)
    files = [e.file_change() for e in entries if e.result.new != e.result.old or e.source]
    if not files:
        raise gitcommit.GitCommitError(
            "the changes applied left every file as it was, so there is nothing to commit"
        )
    ids = [cid for r in written for cid in r.change_ids]
    message = args.message or _committer_message(session, pending, ids)
    if not message:
        message = gitcommit.default_message(_latest_prompt(session), files)
    try:
        done = gitcommit.commit(git, session.binding.root, files, message)
    except gitcommit.GitCommitError as exc:
        raise gitcommit.GitCommitError(
            f"{exc.message}. The changes were applied (the files are written) but not committed."
        ) from None
    if done.ignored:
        session.output.note(f"not committed, git ignores them: {', '.join(done.ignored)}")
    session.output.line(f"committed {done.sha} {done.subject}", "green")


def _committer_message(session: Session, pending: _Pending, ids: Sequence[str]) -> str:
    """The committer role's messages of the streams that proposed ``ids``, in their order."""
    streams = list(dict.fromkeys(s for cid in ids if (s := pending.stream_of.get(cid))))
    found = []
    for stream_id in streams:
        message = session.api.get(f"/streams/{stream_id}").get("commit_message") or ""
        if message.strip():
            found.append(message.strip())
    return "\n\n".join(found) + "\n" if found else ""


def _latest_prompt(session: Session) -> str | None:
    messages = session.api.get(f"/plans/{session.plan_id}/convo")["messages"]
    prompts = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
    return prompts[-1] if prompts else None


# -- reject -----------------------------------------------------------------------------------


def reject(session: Session, args: argparse.Namespace) -> int:
    if getattr(args, "review", False):
        return _reject_review(session, args)
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


def _reject_review(session: Session, args: argparse.Namespace) -> int:
    """Walk the pending changes hunk by hunk; drop the hunks chosen (rule 3)."""
    from plancast.client.apply.review import walk

    pending = _Pending(session, args.paths)
    results = pending.results(session)
    out = session.output
    if not results:
        out.line("no pending changes")
        return 0
    for result in results:
        if not result.ok:
            out.error(f"not reviewed: {result.path}: {result.error} (still pending)")
    ask = getattr(args, "ask_key", None) or _terminal_ask(session)
    reviews = walk(results, lambda step: _ask_hunk(session, pending, step, ask, rejecting=True))
    whole = [r for r in reviews if r.status == "applied" and r.hunks]
    parts = [r for r in reviews if r.status == "partial"]
    moved_on = _changed_on_disk(parts)  # the text kept would be computed from a stale file
    for path in sorted(moved_on):
        out.error(f"not rejected: {path} changed on disk during the review (still pending)")
    if whole:
        ids = list(dict.fromkeys(cid for r in whole for cid in r.change_ids))
        session.api.post(f"/plans/{session.plan_id}/changes/reject", {"ids": ids})
    parts = [r for r in parts if r.result.path not in moved_on]
    for r in parts:
        kept = r.kept_text() or ""  # two hunks at least, so the file exists: never None
        body = {"path": r.result.path, "ids": r.change_ids, "content": kept}
        session.api.post(f"/plans/{session.plan_id}/changes/reject-hunks", body)
    for r in whole:
        for path in (x.path for x in r.results):
            out.line(f"  rejected {path}", "red")
    for r in parts:
        out.line(
            f"  rejected {len(r.taken)} of {len(r.hunks)} hunks of {r.result.path}; "
            f"the other {r.skipped} stay pending",
            "yellow",
        )
    if not whole and not parts:
        out.line("nothing rejected")
    return 0 if not moved_on and all(r.ok for r in results) else 1


def _changed_on_disk(reviews: Sequence[FileReview]) -> set[str]:
    """The files of ``reviews`` that are no longer what the walk showed (edited meanwhile)."""
    from plancast.client.apply.changeset import read_text

    return {
        r.result.path
        for r in reviews
        if any(x.target is None or read_text(x.target) != x.old for x in r.results)
    }


# -- apply --review ---------------------------------------------------------------------------


def _review(
    session: Session, pending: _Pending, ask_key: AskKey | None
) -> tuple[int, list[FileResult]]:
    """Walk the pending changes hunk by hunk, write the hunks taken, tell the server.

    See ``apply.review`` for what each answer and each file's status mean. A file taken in
    part is written with its hunks taken and its changes are marked applied (the server's
    statuses are per change, and a change is a whole op); the output says how many hunks
    were skipped. A file with no hunk taken is not touched: rejected when every hunk was
    answered, left pending when the review stopped first. Deletions, and files a move ties
    together, are one question each.

    Returns:
        The exit code, and the files written (for ``--commit``).
    """
    from plancast.client.apply.review import walk

    results = pending.results(session)
    if not results:
        session.output.line("no pending changes")
        return 0, []
    out = session.output
    for result in results:
        if not result.ok:
            out.error(f"not reviewed: {result.path}: {result.error} (still pending)")
    ask = ask_key or _terminal_ask(session)
    reviews = walk(results, lambda step: _ask_hunk(session, pending, step, ask))
    ok, written = _write_reviewed(session, pending, reviews)
    ok = ok and all(r.ok for r in results)
    left = [x.path for r in reviews if r.status == "pending" for x in r.results]
    left += [r.path for r in results if not r.ok]
    if left:
        out.note(f"still pending: {', '.join(left)}")
    return (0 if ok else 1), written


def _ask_hunk(
    session: Session, pending: _Pending, step: HunkStep, ask: AskKey, *, rejecting: bool = False
) -> Answer:
    from plancast.client.apply.review import ANSWERS
    from plancast.client.ui.keys import Choice
    from plancast.shared import diff_header

    out, result = session.output, step.result
    out.line()
    if step.whole:  # a deletion, or files a move ties together: shown as git shows them
        from plancast.client.apply.gitdiff import git_diff

        for entry in pending.entries([result, *step.tied]):
            write_diff(out, git_diff(entry.git_file(session.binding.root)))
        files = 1 + len(step.tied)
        what = "this deletion" if files == 1 else f"the change of these {files} files"
        question = f"{'reject' if rejecting else 'take'} {what}?"
    else:
        if step.number == 1:
            out.diff(diff_header(result.path, result.old, result.new))
            if not step.hunk.text:
                out.line("(a new, empty file)", "dim")
        out.diff(step.hunk.text)
        question = f"{'reject' if rejecting else 'take'} hunk {step.number}/{step.hunks}?"
    if rejecting:
        choices = [
            Choice("y", "reject", "y"),
            Choice("n", "keep", "n"),
            Choice("a", "reject the rest", "a"),
            Choice("d", "keep the rest", "d"),
            Choice("q", "quit", "q"),
        ]
    else:
        choices = [
            Choice("y", "yes", "y"),
            Choice("n", "no", "n"),
            Choice("a", "yes to rest", "a"),
            Choice("d", "no to rest", "d"),
            Choice("q", "quit", "q"),
        ]
    answer = ask(question, choices, cancel="q")
    return next((a for a in ANSWERS if a == answer), "q")


def _terminal_ask(session: Session) -> AskKey:
    """One key at a terminal; one answer a line when stdin is not one."""
    from plancast.client.ui.output import isatty

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


def _write_reviewed(
    session: Session, pending: _Pending, reviews: Sequence[FileReview]
) -> tuple[bool, list[FileResult]]:
    """Write the hunks taken and mark the changes; ``False`` if a file could not be."""
    from plancast.client.apply.changeset import write_all

    out = session.output
    chosen = [r for r in reviews if r.status in ("applied", "partial")]
    moved_on = _changed_on_disk(chosen)  # a file edited while the user answered is kept
    for path in sorted(moved_on):
        out.error(f"not applied: {path} changed on disk during the review (still pending)")
    chosen = [r for r in chosen if r.result.path not in moved_on]
    written = [w for r in chosen for w in r.to_write()]
    _write(write_all, written)
    applied = list(dict.fromkeys(cid for r in chosen for cid in r.change_ids))
    if applied:
        session.api.post(f"/plans/{session.plan_id}/changes/apply", {"ids": applied})
    rejected = [r for r in reviews if r.status == "rejected"]
    if rejected:
        ids = list(dict.fromkeys(cid for r in rejected for cid in r.change_ids))
        session.api.post(f"/plans/{session.plan_id}/changes/reject", {"ids": ids})
    done = {id(r) for r in chosen}
    for r in reviews:
        if id(r) in done and r.status == "partial":
            verb = "created" if r.result.old is None else "updated"
            taken = f"{len(r.taken)} of {len(r.hunks)} hunks"
            out.line(
                f"  {verb} {r.result.path} with {taken}; {r.skipped} skipped "
                "(its changes are marked applied)",
                "yellow",
            )
        elif id(r) in done:
            for entry in pending.entries(r.results):
                out.line(f"  {entry.verb} {entry.result.path}", "green")
        elif r.status == "rejected":
            for path in (x.path for x in r.results):
                out.line(f"  rejected {path}", "red")
    if not applied and not rejected:
        out.line("nothing applied")
    return not moved_on, written
