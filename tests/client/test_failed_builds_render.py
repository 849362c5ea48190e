"""``not_built``: which failed builds ``diff`` and ``apply`` name, one line a file."""

from __future__ import annotations

from typing import Any

from plancast.client.apply.changeset import PendingChange
from plancast.client.commands.changes import NotBuilt, not_built
from plancast.shared import EditFile, MoveFile, op_to_dict


def change(cid: str, op: Any, stream: str | None, build: dict[str, Any] | None) -> PendingChange:
    data = {"id": cid, "path": op.path, "op": op_to_dict(op), "status": "failed"}
    return PendingChange.from_dict(data | {"stream_id": stream, "build": build})


def edit(path: str) -> EditFile:
    return EditFile(path, "a\n", "b\n")


def failed_build(path: str, reason: str | None, ids: list[str]) -> dict[str, Any]:
    return {"status": "failed", "reason": reason, "path": path, "changes": ids}


def test_one_line_a_build_with_the_reason_its_last_change_carries() -> None:
    two = [
        change("c1", edit("a.py"), "st_1", {"status": "failed", "result_in": "c2"}),
        change("c2", edit("a.py"), "st_1", failed_build("a.py", "no find\ntext", ["c1", "c2"])),
        change("c3", edit("b.py"), "st_1", failed_build("b.py", None, ["c3"])),
        change("c4", edit("c.py"), "st_1", None),  # stored without a build
    ]
    assert not_built(two, {"st_1"}) == [
        NotBuilt("a.py", "no find text"),  # one line: whitespace folded
        NotBuilt("b.py", "the server could not build it"),
        NotBuilt("c.py", "the server could not build it"),
    ]


def test_only_the_streams_and_paths_asked_for() -> None:
    moved = [
        change("c1", MoveFile("old.py", "new.py"), "st_2", {"status": "failed", "result_in": "c2"}),
        change("c2", edit("new.py"), "st_2", failed_build("new.py", "why", ["c1", "c2"])),
    ]
    older = [change("c0", edit("x.py"), "st_1", failed_build("x.py", "old", ["c0"]))]
    every = older + moved
    assert not_built(every, {"st_2"}) == [NotBuilt("new.py", "why")]
    assert not_built(every, {"st_1", "st_2"}, {"old.py"}) == [NotBuilt("new.py", "why")]
    assert not_built(every, {"st_1", "st_2"}, {"x.py"}) == [NotBuilt("x.py", "old")]
    assert not_built(every, set()) == []


def test_a_change_that_is_not_failed_is_never_named() -> None:
    pending = PendingChange.from_dict(
        {"id": "c1", "path": "a.py", "op": op_to_dict(edit("a.py")), "stream_id": "st_1"}
    )  # an older server that ignores ?status= answers with pending changes
    assert not_built([pending], {"st_1"}) == []
