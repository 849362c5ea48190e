"""File operations proposed by a model reply.

A reply proposes operations; the server stores each as a pending change; the
client applies them to the files on disk. Both sides use these types, so an op
means the same thing wherever it is read.

Rules:

1. ``path`` (and a move's ``to``) is always a normalised, project-relative POSIX
   path (see ``check_relative_path``): an op that names anything else cannot be
   built.
2. ``WriteFile`` replaces the whole file (or creates it) with ``content``.
3. ``EditFile`` replaces exactly one occurrence of ``find`` with ``replace``;
   ``find`` must not be empty.
4. ``MoveFile`` carries the file at ``path`` to ``to``, which must not exist;
   the two paths differ. ``DeleteFile`` removes the file at ``path``. Both need
   the file to exist.
5. Every op has a ``path``, the one it is filed under (a move's is its source),
   and ``paths``, every path it touches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import ReplyFormatError
from ._paths import check_relative_path


@dataclass(frozen=True, slots=True)
class WriteFile:
    path: str
    content: str
    OP = "write"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_relative_path(self.path))

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True, slots=True)
class EditFile:
    path: str
    find: str
    replace: str
    OP = "edit"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_relative_path(self.path))
        if not self.find:
            raise ReplyFormatError(f"edit of {self.path} has an empty find block")

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)


@dataclass(frozen=True, slots=True)
class MoveFile:
    path: str
    to: str
    OP = "move"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_relative_path(self.path))
        object.__setattr__(self, "to", check_relative_path(self.to))
        if self.path == self.to:
            raise ReplyFormatError(f"move of {self.path} names the same path twice")

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path, self.to)


@dataclass(frozen=True, slots=True)
class DeleteFile:
    path: str
    OP = "delete"

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", check_relative_path(self.path))

    @property
    def paths(self) -> tuple[str, ...]:
        return (self.path,)


FileOp = WriteFile | EditFile | MoveFile | DeleteFile


def op_to_dict(op: FileOp) -> dict[str, Any]:
    """The JSON form of an op, used in the REST API and the database."""
    if isinstance(op, WriteFile):
        return {"op": "write", "path": op.path, "content": op.content}
    if isinstance(op, EditFile):
        return {"op": "edit", "path": op.path, "find": op.find, "replace": op.replace}
    if isinstance(op, MoveFile):
        return {"op": "move", "path": op.path, "to": op.to}
    return {"op": "delete", "path": op.path}


def op_from_dict(data: dict[str, Any]) -> FileOp:
    """Rebuild an op from its JSON form.

    Raises:
        ReplyFormatError: the data does not describe a valid op.
        UnsafePathError: one of its paths is not a safe project-relative path.
    """
    kind = data.get("op")
    try:
        if kind == "write":
            return WriteFile(str(data["path"]), str(data["content"]))
        if kind == "edit":
            return EditFile(str(data["path"]), str(data["find"]), str(data["replace"]))
        if kind == "move":
            return MoveFile(str(data["path"]), str(data["to"]))
        if kind == "delete":
            return DeleteFile(str(data["path"]))
    except KeyError as exc:
        raise ReplyFormatError(f"{kind} op is missing {exc.args[0]!r}") from None
    raise ReplyFormatError(f"unknown op {kind!r}")
