"""Building files from a reply's ops: deterministic, validated, and whole or not at all.

The server builds what it can while a reply streams, from the plan's context; the client
builds against the files on disk. Both use this module, so a build means the same thing on
both sides.

Rules:

1. A build follows a file, not a path. Each op joins the file that its path holds at that
   moment. A move carries its file (its text, its ops so far) to ``to``; the source is then
   empty, and a later op there starts a new file with no text. So a file edited, moved and
   edited again is one build, from its source's text to its text at its destination, and
   every op belongs to exactly one build. A build's ``key`` is its place in the order of
   first ops.
2. ``originals`` maps paths to their text before the ops (None: known not to exist). A path
   it lacks is unknown: a file there starts as absent when its first op creates it (a
   write, or a move onto it); any other first op (an edit, a delete, a move away) makes the
   build ``unbuilt``, for good: its text cannot be known here. (The server knows only the
   plan's context; the client knows the disk and builds those.)
3. Each op, in order:

   - ``WriteFile``: the text becomes the content, as ``apply_ops`` writes it (an existing
     file keeps its line ends and its final newline). Step ``new`` over no file, else
     ``write``.
   - ``EditFile``: applied as ``apply_ops`` does (exact, then whitespace-tolerant), then
     checked for duplication (``_validate`` rule 2). Step ``exact`` or ``whitespace``.
   - ``DeleteFile``: the file ends; its text is None. Step ``delete``.
   - ``MoveFile``: the file goes to ``to``. Step ``move``. Moving onto a path whose
     occupant is unknown makes the build ``unbuilt``.

   An edit, a delete or a move of a file that does not exist is a ``missing`` problem; a
   move onto a file that exists is an ``exists`` problem, and the file stays put. A find
   that does not match is ``not_found``, one that matches twice ``ambiguous``.
4. Once a build has a problem, its later ops still join it (they are part of what the
   model proposed), but its text is not computed any more. Its moves still carry it and
   its deletes still end it, so the other files stay where the reply put them.
5. ``finish`` validates every build that got that far (``validate_file``: syntax and
   elision markers, its final text against its original; weak markers count when a write
   replaced existing text). A build ends ``built`` (``result`` is its text, None when it
   ends deleted), ``failed`` (with its ``problems``; no result) or ``unbuilt``.
6. ``rebuilt`` puts a whole text in place of a build's result: a builder model's rebuild
   on the server, or the server's result on the client. The text is validated as a whole
   file when it is a rebuild or a write. Problems with what exists where (``missing``,
   ``exists``) stay: no text fixes them. A build that ends deleted, or is unbuilt, takes
   no text.
7. A build's ``strategy`` says how its result came about, in this order: ``rebuilt`` (a
   text given to ``rebuilt``), ``delete`` (it ends deleted), ``new`` (it had no original),
   ``write`` (a write replaced the text), ``whitespace`` (an edit matched only
   whitespace-tolerantly), ``exact`` (edits matched exactly), ``move``. It is None for a
   build that did not build.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._changes import DeleteFile, EditFile, FileOp, MoveFile, WriteFile
from ._edits import _apply_edit, _first_line, _split, apply_ops
from ._errors import EditAmbiguousError, EditNotFoundError
from ._validate import BuildProblem, ProblemKind, _duplication_problem, validate_file

BuildStatus = Literal["built", "failed", "unbuilt"]
BUILD_STATUSES: tuple[BuildStatus, ...] = ("built", "failed", "unbuilt")
BuildStrategy = Literal["rebuilt", "delete", "new", "write", "whitespace", "exact", "move"]
BUILD_STRATEGIES: tuple[BuildStrategy, ...] = (
    "rebuilt",
    "delete",
    "new",
    "write",
    "whitespace",
    "exact",
    "move",
)


@dataclass(frozen=True, slots=True)
class BuildOutcome:
    """Where one file's build stands: how it was built, or why it was not.

    ``path`` is where the file is after its ops (its last move's ``to``), ``source`` where
    it was before them, ``paths`` every path it stood at, in order. ``ops`` are the
    indexes of its ops among all the ops given; ``steps`` what each op that landed did.
    ``original`` and ``result`` are its text before and after (None: no file).
    ``exists`` says whether the file is there after its ops (None when unknown), which a
    build that failed knows even though it has no result.
    """

    key: int
    path: str
    source: str
    status: BuildStatus
    strategy: BuildStrategy | None
    result: str | None = field(default=None, repr=False)
    original: str | None = field(default=None, repr=False)
    problems: tuple[BuildProblem, ...] = ()
    ops: tuple[int, ...] = ()
    steps: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    exists: bool | None = None

    def __post_init__(self) -> None:
        if self.key < 0:
            raise ValueError("key must be >= 0")
        if self.status not in BUILD_STATUSES:
            raise ValueError(f"status must be one of {', '.join(BUILD_STATUSES)}")
        if (self.status == "failed") != bool(self.problems):
            raise ValueError("a failed build has problems, and only a failed one")
        if self.status != "built" and (self.result is not None or self.strategy is not None):
            raise ValueError("only a build that built has a result and a strategy")
        if self.status == "built" and self.strategy not in BUILD_STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(BUILD_STRATEGIES)}")

    @property
    def ok(self) -> bool:
        return self.status == "built"

    @property
    def deleted(self) -> bool:
        """It built, and the file is gone at its ``path`` (deleted, not moved)."""
        return self.ok and self.result is None

    @property
    def reason(self) -> str:
        """Its problems, joined into one sentence; ``""`` when it has none."""
        return "; ".join(p.message for p in self.problems)


class Builder:
    """Builds the files that a reply's ops touch, one op at a time (see the module rules).

    Sans-I/O: ``add()`` each op as it is parsed, ``finish()`` once the reply is complete,
    then ``rebuilt()`` any build whose text was made again elsewhere.

    Args:
        originals: paths and their text before the ops; None when the file does not exist.
            A path that is missing is unknown (rule 2).
    """

    def __init__(self, originals: Mapping[str, str | None]) -> None:
        self._known: dict[str, str | None] = dict(originals)
        self._at: dict[str, _File] = {}
        self._files: list[_File] = []
        self._count = 0
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def add(self, op: FileOp) -> BuildOutcome:
        """Apply the next op to the file it joins.

        Returns:
            That build as it stands: ``built`` means every op so far landed; validation
            comes at ``finish()``.

        Raises:
            RuntimeError: ``finish()`` was called already.
        """
        if self._finished:
            raise RuntimeError("add() after finish(): the ops are complete")
        file = self._file_for(op)
        file.ops.append(self._count)
        self._count += 1
        if isinstance(op, WriteFile):
            self._write(file, op)
        elif isinstance(op, EditFile):
            self._edit(file, op)
        elif isinstance(op, DeleteFile):
            self._delete(file, op)
        else:
            self._move(file, op)
        return file.outcome()

    def finish(self) -> list[BuildOutcome]:
        """Validate every build (rule 5); a second call validates nothing again.

        Returns:
            Every build, in the order of their first ops.
        """
        if not self._finished:
            self._finished = True
            for file in self._files:
                if file.computing and file.exists:
                    assert file.text is not None, "a file that exists has a text"
                    file.problems.extend(
                        validate_file(file.path, file.original, file.text, whole_file=file.whole)
                    )
        return self.outcomes()

    def outcomes(self) -> list[BuildOutcome]:
        """Every build as it stands, in the order of their first ops."""
        return [file.outcome() for file in self._files]

    def occupants(self) -> dict[str, int | None]:
        """Each path a build stood at, and the key of the build there now (None: empty).

        The text at a path after the ops is its occupant's ``result`` (None when it has
        none: the path is empty, or its file was deleted).
        """
        paths = dict.fromkeys(path for file in self._files for path in file.paths)
        return {path: (self._at[path].key if path in self._at else None) for path in paths}

    def rebuilt(self, key: int, text: str, *, strategy: BuildStrategy = "rebuilt") -> BuildOutcome:
        """Put ``text`` in place of a build's result (rule 6).

        Args:
            key: the build's key.
            text: the file's whole text, as it should be after the build's ops.
            strategy: how that text was made: ``rebuilt`` by a builder model, or the
                strategy the server reported for a result it built.

        Returns:
            The build with that text when it is valid; otherwise the build failed with the
            text's problems (the build itself is left as it was, for another attempt).

        Raises:
            RuntimeError: ``finish()`` was not called yet.
            ValueError: no such build, or it is unbuilt, or it ends deleted.
        """
        if not self._finished:
            raise RuntimeError("rebuilt() comes after finish()")
        if not 0 <= key < len(self._files):
            raise ValueError(f"no build with key {key}")
        file = self._files[key]
        if not file.known:
            raise ValueError(f"the build of {file.path} is unbuilt; it takes no text")
        if file.exists is False:
            raise ValueError(f"the build of {file.path} ends deleted; it takes no text")
        whole = strategy in ("rebuilt", "write")
        problems = [p for p in file.problems if p.structural]
        problems += validate_file(file.path, file.original, text, whole_file=whole)
        if problems:
            return file.outcome(problems)
        file.text, file.problems, file.strategy = text, [], strategy
        return file.outcome()

    # -- ops ----------------------------------------------------------------------------------

    def _file_for(self, op: FileOp) -> _File:
        path = op.path
        file = self._at.get(path)
        if file is None:
            if path in self._known:
                original, known = self._known[path], True
            else:  # rule 2: an unknown path is absent only if this op creates the file
                original, known = None, isinstance(op, WriteFile)
            file = _File(len(self._files), path, original, known)
            self._files.append(file)
            self._at[path] = file
        return file

    def _write(self, file: _File, op: WriteFile) -> None:
        if file.computing:
            file.steps.append("write" if file.exists else "new")
            file.whole = file.whole or bool(file.exists)
            file.text = apply_ops(file.text, [op])
        file.exists = True

    def _edit(self, file: _File, op: EditFile) -> None:
        if file.exists is False:
            file.problem("missing", f"cannot edit {op.path}: the file does not exist")
        if not file.computing:
            return
        assert file.text is not None, "a file that exists has a text"
        try:
            text, match, count = _apply_edit(file.text, op)
        except EditNotFoundError as exc:
            file.problem("not_found", exc.message)
            return
        except EditAmbiguousError as exc:
            file.problem("ambiguous", exc.message)
            return
        duplicate = _duplication_problem(
            op.path, _first_line(op), _split(file.text)[0], _split(text)[0], match.start, count
        )
        if duplicate is not None:
            file.problems.append(duplicate)
            return
        file.text = text
        file.steps.append(match.strategy)

    def _delete(self, file: _File, op: DeleteFile) -> None:
        if file.exists is False:
            file.problem("missing", f"cannot delete {op.path}: the file does not exist")
            return
        if file.computing:
            file.steps.append("delete")
        file.text, file.exists = None, False

    def _move(self, file: _File, op: MoveFile) -> None:
        if file.exists is False:
            file.problem("missing", f"cannot move {op.path}: the file does not exist")
            return
        occupant = self._at.get(op.to)
        if occupant is not None:
            taken = occupant.exists
        elif op.to in self._known:
            taken = self._known[op.to] is not None
        else:
            taken = False  # rule 2: an unknown path that a move creates starts absent
        if taken:
            file.problem("exists", f"cannot move {op.path} to {op.to}: {op.to} already exists")
            return
        if taken is None:  # the occupant's existence is unknown: so is this build's
            file.known = False
        if file.computing:
            file.steps.append("move")
        del self._at[op.path]
        self._known[op.path] = None  # the source is empty now: a later op there starts anew
        self._at[op.to] = file
        file.path = op.to
        file.paths.append(op.to)


class _File:
    """One build's state (rule 1)."""

    def __init__(self, key: int, path: str, original: str | None, known: bool) -> None:
        self.key = key
        self.source = path
        self.path = path
        self.paths = [path]
        self.original = original
        self.known = known
        # Whether the file exists: None when unknown (rule 2).
        self.exists: bool | None = (original is not None) if known else None
        self.text = original
        self.ops: list[int] = []
        self.steps: list[str] = []
        self.problems: list[BuildProblem] = []
        self.whole = False  # a write replaced existing text (weak markers count)
        self.strategy: BuildStrategy | None = None  # set by Builder.rebuilt

    @property
    def computing(self) -> bool:
        """Its text is known: rule 4 stops computing it at the first problem."""
        return self.known and not self.problems

    def problem(self, kind: ProblemKind, message: str) -> None:
        self.problems.append(BuildProblem(kind, message))

    def outcome(self, problems: Sequence[BuildProblem] | None = None) -> BuildOutcome:
        problems = list(self.problems if problems is None else problems)
        status: BuildStatus
        if not self.known:  # rule 2: whatever else is wrong, the client will tell
            status, problems = "unbuilt", []
        elif problems:
            status = "failed"
        else:
            status = "built"
        built = status == "built"
        return BuildOutcome(
            key=self.key,
            path=self.path,
            source=self.source,
            status=status,
            strategy=self._strategy() if built else None,
            result=self.text if built and self.exists else None,
            original=self.original,
            problems=tuple(problems),
            ops=tuple(self.ops),
            steps=tuple(self.steps),
            paths=tuple(self.paths),
            exists=self.exists if self.known else None,
        )

    def _strategy(self) -> BuildStrategy:
        if self.strategy is not None:
            return self.strategy
        if not self.exists:
            return "delete"
        if self.original is None:
            return "new"
        for step, strategy in _STEP_STRATEGIES:
            if step in self.steps:
                return strategy
        return "move"


_STEP_STRATEGIES: tuple[tuple[str, BuildStrategy], ...] = (
    ("write", "write"),
    ("new", "write"),
    ("whitespace", "whitespace"),
    ("exact", "exact"),
)


def build_files(originals: Mapping[str, str | None], ops: Sequence[FileOp]) -> list[BuildOutcome]:
    """Build every file a sequence of ops touches (see the module rules).

    Args:
        originals: paths and their text before the ops (None: the file does not exist);
            a path that is missing is unknown (rule 2).
        ops: the ops, in the order the reply gave them.

    Returns:
        One outcome per build, in the order of their first ops.
    """
    builder = Builder(originals)
    for op in ops:
        builder.add(op)
    return builder.finish()


def build_file(path: str, original: str | None, ops: Sequence[FileOp]) -> BuildOutcome:
    """Build one file from its ops: the one-path case of ``build_files``.

    Args:
        path: the file's path.
        original: its text before the ops, or None when it does not exist.
        ops: one or more writes, edits and deletes of ``path``, in order.

    Returns:
        The file's outcome.

    Raises:
        ValueError: ``ops`` is empty, names another path, or moves the file (a move
            touches two paths: use ``build_files``).
    """
    if not ops:
        raise ValueError("build_file needs at least one op")
    for op in ops:
        if isinstance(op, MoveFile):
            raise ValueError(f"build_file cannot move {op.path}; use build_files")
        if op.path != path:
            raise ValueError(f"build_file got an op for {op.path}, not {path}")
    (outcome,) = build_files({path: original}, ops)
    return outcome
