"""Building a reply's changes on the server as it streams, and rebuilding those that fail.

The deterministic build is ``plancast.shared.Builder``; this module feeds it, asks the
builder model to rebuild what did not land, and says what to store for each change.

Rules:

1. A ``ReplyBuild`` starts from the plan's context files. A path that is not among them is
   unknown (``Builder`` rule 2): a file written or moved there builds as a new file; any
   other op there leaves its build ``unbuilt``, and the client applies those changes to
   the file on disk (the server never reads the user's files).
2. ``add()`` builds each op as the parser yields it: no I/O, a few milliseconds, and a
   ``BuildNote`` to publish when something new is known about its file.
3. ``finish()`` validates every build. A build that failed on its text, not on what exists
   where (``missing``, ``exists``), and that does not end deleted, goes to the builder
   model: ``rebuild(RebuildRequest)`` returns the builder's reply, whose one
   ``<pc:file>`` block for the path is the new file (``extract_file``). That text takes
   the original's line ends and final newline, then is validated as a whole file. Up to
   ``max_attempts`` tries; an exception, a reply without the block or a refused text is a
   failed attempt, and the next request says why the last one failed. Without ``rebuild``
   (a stream that was stopped), failed builds stay failed. Cancellation is not caught.
4. ``finish()`` returns one ``BuiltChange`` per change added, in order. The last change of
   each build carries the build: its ``result``, its ``base_sha256`` (of the original's
   UTF-8, when it built and had one) and a ``build`` dict with ``status``, ``strategy``,
   ``attempts``, ``reason``, ``path``, ``source``, ``steps`` and ``changes`` (the ids of
   all its changes, in order). Its earlier changes carry no result and a ``build`` dict
   with ``status`` and ``result_in``, the id of that last change. Every change of a failed
   build has status ``failed``; all others ``pending``.
5. Notes and reasons name paths and lines, never file content beyond an edit's first find
   line. A rebuild that raised is described by its ``PlancastError`` message, or else by
   its exception's class name only.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from plancast.server.domain.context import ContextItem
from plancast.shared import (
    Builder,
    BuildOutcome,
    EditFile,
    FileOp,
    MoveFile,
    OpParsed,
    PlancastError,
    ReplyParser,
    WriteFile,
    apply_ops,
)

NoteStage = Literal["built", "rebuild", "rebuilding", "rebuilt", "failed", "unbuilt"]
ChangeStatus = Literal["pending", "failed"]


@dataclass(frozen=True, slots=True)
class BuildNote:
    """Something to tell the watchers about a file's build: a ``Status`` event's fields."""

    stage: NoteStage
    detail: str


@dataclass(frozen=True, slots=True)
class RebuildRequest:
    """What the builder model gets to write a file again.

    ``path`` is where the file ends up; ``original`` its text before the reply (None: a
    new file); ``proposal_text`` the reply's ops for it, written in the reply format;
    ``reason`` why they could not be applied as written (and, from the second attempt,
    why the last rebuild was refused); ``attempt`` counts from 1.
    """

    path: str
    original: str | None = field(repr=False)
    proposal_text: str = field(repr=False)
    reason: str
    attempt: int = 1


RebuildFn = Callable[[RebuildRequest], Awaitable[str]]
"""Calls the builder model with ``rebuild_messages(request)``; returns its whole reply."""


@dataclass(frozen=True, slots=True)
class BuiltChange:
    """A change as it is to be stored, with its build (rule 4)."""

    change_id: str
    path: str
    op: FileOp
    result: str | None = field(repr=False)
    base_sha256: str | None
    build: dict[str, Any]
    status: ChangeStatus


class ReplyBuild:
    """The builds of one reply's changes (see the module rules).

    Args:
        context: the plan's context files, ``{path: text}`` (``context_files`` makes it).
    """

    def __init__(self, context: Mapping[str, str]) -> None:
        self._builder = Builder(context)
        self._changes: list[tuple[str, FileOp]] = []
        self._said: dict[int, str] = {}  # key → the status the last note told

    def __len__(self) -> int:
        return len(self._changes)

    def add(self, change_id: str, op: FileOp) -> BuildNote | None:
        """Build the next change of the reply.

        Returns:
            A note for its file, or None when there is nothing new to say (its build had
            already failed, or was unbuilt).

        Raises:
            RuntimeError: ``finish()`` was called already.
        """
        outcome = self._builder.add(op)
        self._changes.append((change_id, op))
        said = self._said.get(outcome.key)
        self._said[outcome.key] = outcome.status
        if said in ("failed", "unbuilt"):
            return None
        if outcome.status == "built":
            return BuildNote("built", f"built {outcome.path} ({outcome.steps[-1]})")
        if outcome.status == "unbuilt":
            return BuildNote(
                "unbuilt",
                f"{outcome.path} is not in the plan's context; it will be built against the "
                "file on disk when applied",
            )
        if any(p.structural for p in outcome.problems):
            return BuildNote("failed", f"{outcome.path} cannot be built: {outcome.reason}")
        return BuildNote("rebuild", f"{outcome.path} needs a rebuild: {outcome.reason}")

    async def finish(
        self,
        rebuild: RebuildFn | None,
        *,
        max_attempts: int = 2,
        concurrency: int = 1,
        on_note: Callable[[BuildNote], None] | None = None,
    ) -> list[BuiltChange]:
        """Validate, rebuild what failed on its text, and say what to store (rules 3, 4).

        Args:
            rebuild: calls the builder model; None to rebuild nothing.
            max_attempts: rebuilds tried per file, at least 1.
            concurrency: how many files are rebuilt at once, at least 1.
            on_note: told when each rebuild attempt starts and how each rebuilt file ends,
                for ``Status`` events.

        Returns:
            One ``BuiltChange`` per change added, in the order they were added.

        Raises:
            ValueError: ``max_attempts`` or ``concurrency`` is less than 1.
            RuntimeError: ``finish()`` was called already.
        """
        if max_attempts < 1 or concurrency < 1:
            raise ValueError("max_attempts and concurrency must be >= 1")
        if self._builder.finished:
            raise RuntimeError("finish() was called already")
        outcomes = self._builder.finish()
        tell = on_note or (lambda note: None)
        attempts: dict[int, int] = {}
        reasons: dict[int, str] = {}
        doomed = [o for o in outcomes if _rebuildable(o)]
        if rebuild is not None and doomed:
            gate = asyncio.Semaphore(concurrency)

            async def one(outcome: BuildOutcome) -> BuildOutcome | str:
                async with gate:
                    return await self._rebuild(outcome, rebuild, max_attempts, tell, attempts)

            done = await asyncio.gather(*(one(o) for o in doomed))
            for outcome, rebuilt in zip(doomed, done, strict=True):
                if isinstance(rebuilt, str):
                    reasons[outcome.key] = rebuilt
                else:
                    outcomes[outcome.key] = rebuilt
        return self._stored(outcomes, attempts, reasons)

    async def _rebuild(
        self,
        outcome: BuildOutcome,
        rebuild: RebuildFn,
        max_attempts: int,
        tell: Callable[[BuildNote], None],
        attempts: dict[int, int],
    ) -> BuildOutcome | str:
        """Rebuild one file: the outcome that built, or why it could not be rebuilt."""
        proposal = proposal_text(self._changes[i][1] for i in outcome.ops)
        first = outcome.reason
        why = ""
        for attempt in range(1, max_attempts + 1):
            attempts[outcome.key] = attempt
            tell(BuildNote("rebuilding", f"{outcome.path} (attempt {attempt} of {max_attempts})"))
            reason = first if not why else f"{first}. The last rebuild was refused: {why}"
            request = RebuildRequest(outcome.path, outcome.original, proposal, reason, attempt)
            try:
                reply = await rebuild(request)
            except Exception as exc:  # rule 3: a failed attempt, described safely (rule 5)
                why = f"the builder call failed ({_describe(exc)})"
                continue
            text = extract_file(reply, outcome.path)
            if text is None:
                why = f"the builder's reply held no single <pc:file> block for {outcome.path}"
                continue
            if outcome.original is not None:  # the original's line ends and final newline
                text = apply_ops(outcome.original, [WriteFile(outcome.path, text)])
            assert text is not None, "a write always leaves a text"
            done = self._builder.rebuilt(outcome.key, text)
            if done.ok:
                tell(BuildNote("rebuilt", f"rebuilt {outcome.path}"))
                return done
            why = done.reason
        tries = "once" if max_attempts == 1 else f"{max_attempts} times"
        reason = f"{first}; rebuilding it failed {tries}, last: {why}"
        tell(BuildNote("failed", f"{outcome.path} cannot be built: {reason}"))
        return reason

    def _stored(
        self,
        outcomes: Sequence[BuildOutcome],
        attempts: Mapping[int, int],
        reasons: Mapping[int, str],
    ) -> list[BuiltChange]:
        rows: dict[int, BuiltChange] = {}
        for outcome in outcomes:
            ids = [self._changes[i][0] for i in outcome.ops]
            last = ids[-1]
            status: ChangeStatus = "failed" if outcome.status == "failed" else "pending"
            for index in outcome.ops:
                change_id, op = self._changes[index]
                if index != outcome.ops[-1]:
                    build: dict[str, Any] = {"status": outcome.status, "result_in": last}
                    rows[index] = BuiltChange(change_id, op.path, op, None, None, build, status)
                    continue
                build = {
                    "status": outcome.status,
                    "strategy": outcome.strategy,
                    "attempts": attempts.get(outcome.key, 0),
                    "reason": reasons.get(outcome.key, outcome.reason) or None,
                    "path": outcome.path,
                    "source": outcome.source,
                    "steps": list(outcome.steps),
                    "changes": ids,
                }
                base = None
                if outcome.ok and outcome.original is not None:
                    base = hashlib.sha256(outcome.original.encode()).hexdigest()
                rows[index] = BuiltChange(
                    change_id, op.path, op, outcome.result, base, build, status
                )
        return [rows[i] for i in range(len(self._changes))]


def _rebuildable(outcome: BuildOutcome) -> bool:
    return (
        outcome.status == "failed"
        and outcome.exists is not False
        and not any(p.structural for p in outcome.problems)
    )


def _describe(exc: Exception) -> str:
    if isinstance(exc, PlancastError):
        return exc.message
    return type(exc).__name__


def context_files(items: Iterable[ContextItem]) -> dict[str, str]:
    """``{path: text}`` of the context items of kind ``file`` that carry their content."""
    return {
        item.name: item.content
        for item in items
        if item.kind == "file" and item.content is not None
    }


# -- the builder's prompt ---------------------------------------------------------------------

BUILDER_SYSTEM = """\
You are plancast's builder. A change proposed for a file could not be applied as written.
You get the file as it is, the proposed change and why it failed. Write the whole file as it
must be after the change: every line, with the change made as it was meant.

Rules:
- Reply with exactly one block and nothing else:
<pc:file path="relative/path">
the complete file
</pc:file>
- Keep every line the change does not touch exactly as it is, in the same order.
- Never leave anything out: no placeholders such as "... rest of the file unchanged ...".
- Make each change once: do not repeat lines that were already there.
- Do not wrap the file in markdown code fences."""


def rebuild_messages(request: RebuildRequest) -> tuple[str, str]:
    """The builder model's system prompt and user message for a rebuild.

    Returns:
        ``(system, user)``.
    """
    if request.original is None:
        current = f"The file {request.path} does not exist yet.\n"
    else:
        body = request.original + ("" if request.original.endswith("\n") else "\n")
        current = (
            f"The file {request.path} as it is now:\n"
            f'<pc:original path="{request.path}">\n{body}</pc:original>\n'
        )
    user = (
        f"{current}\n"
        f"The proposed change, in the reply format:\n{request.proposal_text}\n"
        f"Why it could not be applied as written: {request.reason}\n\n"
        f'Write the whole of {request.path} after the change, in one <pc:file path="'
        f'{request.path}"> block.'
    )
    return BUILDER_SYSTEM, user


def extract_file(reply: str, path: str) -> str | None:
    """The file's text in the builder's reply: its one ``<pc:file>`` block for ``path``.

    Returns:
        The block's content, or None when the reply holds no such block, more than one
        block, or any other op.
    """
    parser = ReplyParser()
    events = parser.feed(reply) + parser.finish()
    ops = [e.op for e in events if isinstance(e, OpParsed)]
    if len(ops) != 1 or not isinstance(ops[0], WriteFile) or ops[0].path != path:
        return None
    return ops[0].content


def proposal_text(ops: Iterable[FileOp]) -> str:
    """Ops written back in the reply format (what the parser reads them from)."""
    parts = []
    for op in ops:
        if isinstance(op, WriteFile):
            parts.append(f'<pc:file path="{op.path}">\n{_body(op.content)}</pc:file>\n')
        elif isinstance(op, EditFile):
            parts.append(
                f'<pc:edit path="{op.path}">\n<pc:find>\n{_body(op.find)}</pc:find>\n'
                f"<pc:replace>\n{_body(op.replace)}</pc:replace>\n</pc:edit>\n"
            )
        elif isinstance(op, MoveFile):
            parts.append(f'<pc:move path="{op.path}" to="{op.to}" />\n')
        else:
            parts.append(f'<pc:delete path="{op.path}" />\n')
    return "".join(parts)


def _body(text: str) -> str:
    return text if not text or text.endswith("\n") else text + "\n"
