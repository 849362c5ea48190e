"""File ops: built safe, and their JSON form."""

from __future__ import annotations

import pytest

from plancast.shared import (
    DeleteFile,
    EditFile,
    ErrorCode,
    FileOp,
    MoveFile,
    ReplyFormatError,
    UnsafePathError,
    WriteFile,
    op_from_dict,
    op_to_dict,
)


def test_ops_normalise_their_path() -> None:
    assert WriteFile("./a//b.py", "x").path == "a/b.py"
    assert EditFile("a\\b.py", "x", "y").path == "a/b.py"
    assert MoveFile("./a.py", "b//c.py") == MoveFile("a.py", "b/c.py")
    assert DeleteFile("x/./y").path == "x/y"
    assert (WriteFile.OP, EditFile.OP, MoveFile.OP, DeleteFile.OP) == (
        "write",
        "edit",
        "move",
        "delete",
    )


@pytest.mark.parametrize("path", ["../a", "/a", ".git/config", ""])
def test_ops_refuse_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePathError):
        WriteFile(path, "")
    with pytest.raises(UnsafePathError):
        EditFile(path, "x", "")
    with pytest.raises(UnsafePathError):
        MoveFile(path, "ok.py")
    with pytest.raises(UnsafePathError):
        MoveFile("ok.py", path)
    with pytest.raises(UnsafePathError):
        DeleteFile(path)


def test_a_move_needs_two_different_paths() -> None:
    with pytest.raises(ReplyFormatError, match="move of a.py names the same path twice"):
        MoveFile("a.py", "./a.py")


def test_paths_are_every_path_an_op_touches() -> None:
    assert WriteFile("a", "").paths == ("a",)
    assert EditFile("a", "x", "").paths == ("a",)
    assert MoveFile("a", "b").paths == ("a", "b")
    assert DeleteFile("a").paths == ("a",)


def test_an_edit_needs_a_find() -> None:
    with pytest.raises(ReplyFormatError, match="edit of a.py has an empty find block") as info:
        EditFile("a.py", "", "x")
    assert info.value.code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize(
    "op",
    [
        WriteFile("a.py", "x\n"),
        EditFile("b/c.py", "old\n", ""),
        MoveFile("a.py", "lib/a.py"),
        DeleteFile("old.txt"),
    ],
)
def test_ops_round_trip_through_dicts(op: FileOp) -> None:
    data = op_to_dict(op)
    assert data["op"] == op.OP
    assert op_from_dict(data) == op


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        ({"op": "write", "path": "a"}, ReplyFormatError, "write op is missing 'content'"),
        ({"op": "edit", "path": "a", "find": "x"}, ReplyFormatError, "missing 'replace'"),
        ({"op": "copy", "path": "a"}, ReplyFormatError, "unknown op 'copy'"),
        ({"op": "move", "path": "a"}, ReplyFormatError, "move op is missing 'to'"),
        ({"op": "move", "path": "a", "to": "a"}, ReplyFormatError, "same path twice"),
        ({"op": "move", "path": "a", "to": "/a"}, UnsafePathError, "absolute"),
        ({"op": "delete"}, ReplyFormatError, "delete op is missing 'path'"),
        ({}, ReplyFormatError, "unknown op None"),
        ({"op": "write", "path": "../a", "content": ""}, UnsafePathError, "climbs out"),
        ({"op": "edit", "path": "a", "find": "", "replace": ""}, ReplyFormatError, "empty find"),
    ],
)
def test_bad_dicts_are_refused(data: dict[str, str], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        op_from_dict(data)
