"""File ops: built safe, and their JSON form."""

from __future__ import annotations

import pytest

from plancast.shared import (
    EditFile,
    ErrorCode,
    ReplyFormatError,
    UnsafePathError,
    WriteFile,
    op_from_dict,
    op_to_dict,
)


def test_ops_normalise_their_path() -> None:
    assert WriteFile("./a//b.py", "x").path == "a/b.py"
    assert EditFile("a\\b.py", "x", "y").path == "a/b.py"
    assert (WriteFile.OP, EditFile.OP) == ("write", "edit")


@pytest.mark.parametrize("path", ["../a", "/a", ".git/config", ""])
def test_ops_refuse_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePathError):
        WriteFile(path, "")
    with pytest.raises(UnsafePathError):
        EditFile(path, "x", "")


def test_an_edit_needs_a_find() -> None:
    with pytest.raises(ReplyFormatError, match="edit of a.py has an empty find block") as info:
        EditFile("a.py", "", "x")
    assert info.value.code is ErrorCode.BAD_MESSAGE


@pytest.mark.parametrize("op", [WriteFile("a.py", "x\n"), EditFile("b/c.py", "old\n", "")])
def test_ops_round_trip_through_dicts(op: WriteFile | EditFile) -> None:
    data = op_to_dict(op)
    assert data["op"] == op.OP
    assert op_from_dict(data) == op


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        ({"op": "write", "path": "a"}, ReplyFormatError, "write op is missing 'content'"),
        ({"op": "edit", "path": "a", "find": "x"}, ReplyFormatError, "missing 'replace'"),
        ({"op": "delete", "path": "a"}, ReplyFormatError, "unknown op 'delete'"),
        ({}, ReplyFormatError, "unknown op None"),
        ({"op": "write", "path": "../a", "content": ""}, UnsafePathError, "climbs out"),
        ({"op": "edit", "path": "a", "find": "", "replace": ""}, ReplyFormatError, "empty find"),
    ],
)
def test_bad_dicts_are_refused(data: dict[str, str], error: type[Exception], text: str) -> None:
    with pytest.raises(error, match=text):
        op_from_dict(data)
