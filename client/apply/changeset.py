"""Turning pending changes into file contents, and writing them safely.

Rules:

1. Results are computed for every file before anything is written. Changes are built in
   runs of one reply (consecutive changes of one stream), each run on the files as the runs
   before it left them, with ``plancast.shared.Builder`` and the files on disk as its
   originals: the same build, and the same checks, as on the server.
2. A build the server made is used as it is when it is still valid here: the server's
   build covers exactly the same changes, and the text it was built on is the text this
   build starts from (its ``base_sha256``; no text for a new file). Otherwise (the file
   changed since it was loaded, or the server could not build it) the changes are built
   here. A change whose build failed on the server is never written.
3. Files that changes tie together (a move's source and destination, and any file a later
   change touches with them) succeed or fail together. A file that fails is reported with
   its reason and left alone, and so is every file tied to it: never half-applied.
4. Each file is written to a temporary file beside it and renamed over it (atomic on
   POSIX); a deleted file is first renamed aside. If any write fails, every file already
   written is put back as it was (or removed, if it was new), deleted files are renamed
   back, then the error is raised. Folders a delete or a move empties are left in place.
5. A file moved to a path that does not exist takes its source's permissions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plancast.client.apply.paths import resolve_inside
from plancast.shared import (
    BUILD_STRATEGIES,
    Builder,
    BuildOutcome,
    BuildStrategy,
    FileOp,
    PlancastError,
    op_from_dict,
)


@dataclass(frozen=True, slots=True)
class PendingChange:
    """A change as the server lists it; the build fields are absent on older servers."""

    id: str
    path: str
    op: FileOp
    result: str | None = field(default=None, repr=False)
    base_sha256: str | None = None
    build: Mapping[str, Any] | None = None
    status: str = "pending"
    stream_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingChange:
        """A change from its REST form (``GET /plans/{id}/changes``).

        Raises:
            ReplyFormatError: its op is not a valid op.
            UnsafePathError: one of its paths is not safe.
        """
        build = data.get("build")
        return cls(
            str(data["id"]),
            str(data["path"]),
            op_from_dict(data["op"]),
            result=data.get("result"),
            base_sha256=data.get("base_sha256"),
            build=build if isinstance(build, Mapping) else None,
            status=str(data.get("status", "pending")),
            stream_id=data.get("stream_id"),
        )


@dataclass(slots=True)
class FileResult:
    """What the changes do to one file: ``new`` is None when it ends deleted (or moved away).

    ``together`` lists the files that are applied with this one or not at all (rule 3),
    itself included; ``strategy`` how its text was built, when it was; ``moved_from`` the
    path its file was at before moves brought it here, when they did.
    """

    path: str
    change_ids: list[str]
    old: str | None = None
    new: str | None = None
    error: str | None = None
    target: Path | None = field(default=None, repr=False)
    together: tuple[str, ...] = ()
    strategy: str | None = None
    moved_from: str | None = None
    mode: int | None = field(default=None, repr=False)  # for a new file (rule 5)

    @property
    def ok(self) -> bool:
        return self.error is None


def read_text(path: Path) -> str | None:
    """A file's text, or None if it does not exist. Undecodable bytes are replaced."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data.decode("utf-8", errors="replace")


def compute(root: Path, changes: Sequence[PendingChange]) -> list[FileResult]:
    """What each changed file would become, in first-change order, without writing."""
    return _Computation(root, changes).run()


def write_all(results: Sequence[FileResult]) -> None:
    """Write every successful result atomically, rolling all back if one fails.

    Raises:
        OSError: a write failed; the files are as they were before the call.
    """
    done: list[tuple[FileResult, Path | None]] = []  # each file written, and a deleted one's copy
    try:
        for result in results:
            if not result.ok or result.target is None or result.new == result.old:
                continue
            if result.new is None:
                done.append((result, _set_aside(result.target)))
            else:
                _write_atomic(result.target, result.new, mode=result.mode)
                done.append((result, None))
    except BaseException:
        for result, aside in reversed(done):
            assert result.target is not None
            if aside is not None:
                os.replace(aside, result.target)
            elif result.old is None:
                result.target.unlink(missing_ok=True)
            else:
                _write_atomic(result.target, result.old)
        raise
    for _, aside in done:
        if aside is not None:
            with contextlib.suppress(OSError):  # a leftover copy is untidy, not wrong
                aside.unlink()


# -- computing --------------------------------------------------------------------------------


@dataclass(slots=True)
class _Build:
    """One build of one run: its changes, every path they name, why it failed (or None)."""

    outcome: BuildOutcome
    changes: list[PendingChange]
    error: str | None
    touches: frozenset[str]


class _Computation:
    def __init__(self, root: Path, changes: Sequence[PendingChange]) -> None:
        self.root = root
        self.changes = changes
        self.paths: dict[str, None] = {}  # every path, in first-change order
        self.targets: dict[str, Path] = {}
        self.disk: dict[str, str | None] = {}
        self.errors: dict[str, str] = {}  # a path that cannot be read or written
        self.builds: list[_Build] = []
        self.strategy: dict[str, str | None] = {}
        self.source: dict[str, str] = {}  # a path's final file came from this one
        self.parent: dict[str, str] = {}  # union-find over paths (rule 3)

    def run(self) -> list[FileResult]:
        for change in self.changes:
            for path in change.op.paths:
                if path not in self.paths:
                    self.paths[path] = None
                    self._load(path)
        state = dict(self.disk)
        for run in _runs(self.changes):
            self._build_run(run, state)
        return [self._result(path, state) for path in self.paths]

    def _load(self, path: str) -> None:
        self.parent[path] = path
        self.disk[path] = None
        try:
            self.targets[path] = target = resolve_inside(self.root, path)
            self.disk[path] = read_text(target)
        except PlancastError as exc:
            self.errors[path] = exc.message
        except OSError as exc:
            self.errors[path] = f"cannot read {path}: {exc.strerror}"

    def _build_run(self, run: list[PendingChange], state: dict[str, str | None]) -> None:
        touched = dict.fromkeys(p for change in run for p in change.op.paths)
        builder = Builder({path: state[path] for path in touched})
        for change in run:
            builder.add(change.op)
        builder.finish()
        for outcome in builder.outcomes():
            owned = [run[i] for i in outcome.ops]
            outcome = _with_server_build(builder, outcome, owned)
            error = outcome.reason or None
            refused = [c for c in owned if c.status == "failed"]
            if refused:
                reason = next((str(c.build["reason"]) for c in refused if _reason(c)), "")
                error = "the server could not build it" + (f": {reason}" if reason else "")
            touches = frozenset(p for c in owned for p in c.op.paths)
            self.builds.append(_Build(outcome, owned, error, touches))
            for path in touches:
                self._join(outcome.source, path)
        outcomes = builder.outcomes()
        for path, key in builder.occupants().items():
            occupant = outcomes[key] if key is not None else None
            if occupant is None or occupant.ok:
                state[path] = occupant.result if occupant is not None else None
                self.strategy[path] = occupant.strategy if occupant is not None else "move"
                if occupant is not None and occupant.source != path:
                    self.source[path] = occupant.source
                else:
                    self.source.pop(path, None)

    def _result(self, path: str, state: Mapping[str, str | None]) -> FileResult:
        root = self._find(path)
        together = tuple(p for p in self.paths if self._find(p) == root)
        mine = [b for b in self.builds if path in b.touches]
        result = FileResult(
            path,
            [c.id for b in mine for c in b.changes],
            old=self.disk[path],
            target=self.targets.get(path),
            together=together,
        )
        error = self._error(path, together)
        if error is not None:
            result.error = error
            return result
        result.new = state[path]
        result.strategy = self.strategy.get(path)
        source = result.moved_from = self.source.get(path)
        if result.old is None and result.new is not None and source in self.targets:
            with contextlib.suppress(OSError):
                result.mode = stat.S_IMODE(self.targets[source].stat().st_mode)
        return result

    def _error(self, path: str, together: tuple[str, ...]) -> str | None:
        """Why ``path`` cannot be applied: its own problem, or one of a file tied to it."""
        own = self._own_error(path)
        if own is not None:
            return own
        for other in together:
            theirs = self._own_error(other)
            if theirs is not None:
                return f"it goes together with {other}, which cannot be applied: {theirs}"
        return None

    def _own_error(self, path: str) -> str | None:
        if path in self.errors:
            return self.errors[path]
        return next((b.error for b in self.builds if b.error and path in b.touches), None)

    def _find(self, path: str) -> str:
        while self.parent[path] != path:
            self.parent[path] = self.parent[self.parent[path]]
            path = self.parent[path]
        return path

    def _join(self, a: str, b: str) -> None:
        self.parent[self._find(a)] = self._find(b)


def _runs(changes: Sequence[PendingChange]) -> Iterator[list[PendingChange]]:
    """Consecutive changes of one stream (rule 1)."""
    run: list[PendingChange] = []
    for change in changes:
        if run and change.stream_id != run[-1].stream_id:
            yield run
            run = []
        run.append(change)
    if run:
        yield run


def _with_server_build(
    builder: Builder, outcome: BuildOutcome, owned: list[PendingChange]
) -> BuildOutcome:
    """The build with the server's result in place, when that is still valid (rule 2)."""
    last = owned[-1]
    build = last.build
    if (
        build is None
        or build.get("status") != "built"
        or build.get("changes") != [c.id for c in owned]
        or last.result is None
        or outcome.exists is not True
        or any(p.structural for p in outcome.problems)
        or last.base_sha256 != _sha256(outcome.original)
    ):
        return outcome
    return builder.rebuilt(outcome.key, last.result, strategy=_strategy(build.get("strategy")))


def _strategy(value: object) -> BuildStrategy:
    """The server's strategy name, or ``rebuilt`` (validated as a whole file) if unknown."""
    return next((s for s in BUILD_STRATEGIES if s == value), "rebuilt")


def _reason(change: PendingChange) -> bool:
    return bool(change.build and change.build.get("reason"))


def _sha256(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


# -- writing ----------------------------------------------------------------------------------


def _set_aside(target: Path) -> Path:
    """Rename a file to be deleted to a unique name beside it, so it can be put back."""
    fd, aside = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".plancast")
    os.close(fd)
    try:
        os.replace(target, aside)
    except BaseException:
        Path(aside).unlink(missing_ok=True)
        raise
    return Path(aside)


def _write_atomic(target: Path, text: str, *, mode: int | None = None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        if mode is None:
            mode = 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".plancast")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
