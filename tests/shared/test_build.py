"""The deterministic build: files followed through writes, edits, moves and deletes."""

from __future__ import annotations

import pytest

from plancast.shared import (
    Builder,
    BuildOutcome,
    BuildProblem,
    DeleteFile,
    EditFile,
    MoveFile,
    WriteFile,
    build_file,
    build_files,
)

PY = "import os\n\n\ndef main():\n    return os.getcwd()\n"


def edit(path: str, find: str, replace: str) -> EditFile:
    return EditFile(path, find, replace)


def kinds(outcome: BuildOutcome) -> list[str]:
    return [p.kind for p in outcome.problems]


# -- one file ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "ops", "strategy", "result"),
    [
        (None, [WriteFile("a.py", "x = 1\n")], "new", "x = 1\n"),
        ("x = 0\r\n", [WriteFile("a.py", "x = 1\n")], "write", "x = 1\r\n"),
        (PY, [edit("a.py", "    return os.getcwd()\n", "    return 1\n")], "exact", None),
        (PY, [edit("a.py", "return os.getcwd()\n", "return 1\n")], "whitespace", None),
        (
            PY,
            [
                edit("a.py", "import os\n", "import sys\n"),
                edit("a.py", "return os.getcwd()\n", "return sys.argv\n"),
            ],
            "whitespace",
            None,
        ),
        (PY, [WriteFile("a.py", "x = 1\n"), edit("a.py", "x = 1\n", "x = 2\n")], "write", None),
        (None, [WriteFile("a.py", "x = 1\n"), edit("a.py", "x = 1\n", "x = 2\n")], "new", None),
        (PY, [DeleteFile("a.py")], "delete", None),
        (PY, [DeleteFile("a.py"), WriteFile("a.py", "y = 1\n")], "write", "y = 1\n"),
        (None, [WriteFile("a.py", "y = 1\n"), DeleteFile("a.py")], "delete", None),
    ],
)
def test_the_strategy_says_how_the_result_came_about(
    original: str | None, ops: list[WriteFile | EditFile | DeleteFile], strategy: str, result: str
) -> None:
    outcome = build_file("a.py", original, ops)
    assert (outcome.status, outcome.strategy) == ("built", strategy)
    assert outcome.ok and outcome.reason == ""
    if result is not None:
        assert outcome.result == result
    assert outcome.original == original
    assert outcome.ops == tuple(range(len(ops)))


def test_an_edit_result_and_its_steps() -> None:
    outcome = build_file(
        "a.py",
        PY,
        [
            edit("a.py", "import os\n", "import sys\n"),
            edit("a.py", "return os.getcwd()\n", "return sys.argv\n"),
        ],
    )
    assert outcome.result == "import sys\n\n\ndef main():\n    return sys.argv\n"
    assert outcome.steps == ("exact", "whitespace")
    assert (outcome.path, outcome.source, outcome.paths, outcome.exists) == (
        "a.py",
        "a.py",
        ("a.py",),
        True,
    )


def test_a_delete_builds_to_no_result() -> None:
    outcome = build_file("a.py", PY, [DeleteFile("a.py")])
    assert outcome.deleted and outcome.result is None and outcome.exists is False
    assert not build_file("a.py", PY, [WriteFile("a.py", "")]).deleted


@pytest.mark.parametrize(
    ("original", "op", "kind", "message"),
    [
        (PY, edit("a.py", "nope\n", "x\n"), "not_found", "the find text starting 'nope'"),
        ("x\nx\n", edit("a.py", "x\n", "y\n"), "ambiguous", "matches 2 places (lines 1, 2)"),
        (None, edit("a.py", "x\n", "y\n"), "missing", "cannot edit a.py: the file does not"),
        (None, DeleteFile("a.py"), "missing", "cannot delete a.py: the file does not exist"),
        (
            "x = 1\ny = 2\nz = 3\n",
            edit("a.py", "z = 3\n", "x = 1\ny = 2\nz = 4\n"),
            "duplicate",
            "repeats the 2 lines just above",
        ),
    ],
)
def test_an_op_that_cannot_land_fails_the_file(
    original: str | None, op: EditFile | DeleteFile, kind: str, message: str
) -> None:
    outcome = build_file("a.py", original, [op])
    assert outcome.status == "failed" and not outcome.ok
    assert kinds(outcome) == [kind]
    assert message in outcome.reason
    assert outcome.result is None and outcome.strategy is None


def test_the_first_problem_stops_the_text_but_not_the_record() -> None:
    outcome = build_file(
        "a.py",
        PY,
        [
            edit("a.py", "nope\n", "x\n"),
            edit("a.py", "also nope\n", "y\n"),
            edit("a.py", "import os\n", "import sys\n"),
        ],
    )
    assert kinds(outcome) == ["not_found"]  # the later edits were not tried
    assert outcome.ops == (0, 1, 2) and outcome.steps == ()


def test_finish_validates_the_final_text_against_the_original() -> None:
    broken = build_file("a.py", PY, [edit("a.py", "def main():\n", "def main(:\n")])
    assert kinds(broken) == ["syntax"]
    assert broken.reason == "a.py would not parse as Python at line 4; it did before the change"
    mended = build_file(  # broken by the first edit, mended by the second
        "a.py",
        PY,
        [
            edit("a.py", "def main():\n", "def main(:\n"),
            edit("a.py", "def main(:\n", "def go():\n"),
        ],
    )
    assert mended.ok
    elided = build_file("a.py", PY, [WriteFile("a.py", "import os\n# ...\n")])
    assert kinds(elided) == ["elision"]  # a rewrite that drops most of the file
    kept = build_file("a.py", PY, [edit("a.py", "import os\n", "import os\n# ...\n")])
    assert kept.ok  # an edit: a lone ellipsis is allowed


def test_build_file_takes_one_path_and_no_moves() -> None:
    with pytest.raises(ValueError, match="at least one op"):
        build_file("a.py", None, [])
    with pytest.raises(ValueError, match="got an op for b.py, not a.py"):
        build_file("a.py", None, [WriteFile("b.py", "")])
    with pytest.raises(ValueError, match="cannot move a.py; use build_files"):
        build_file("a.py", "x", [MoveFile("a.py", "b.py")])


# -- moves and several files ------------------------------------------------------------------


def test_a_move_carries_the_file_and_its_edits() -> None:
    ops = [
        edit("a.py", "x = 1\n", "x = 2\n"),
        MoveFile("a.py", "lib/b.py"),
        edit("lib/b.py", "x = 2\n", "x = 3\n"),
        WriteFile("c.py", "c\n"),
    ]
    moved, new = build_files({"a.py": "x = 1\n"}, ops)
    assert (moved.source, moved.path, moved.paths) == ("a.py", "lib/b.py", ("a.py", "lib/b.py"))
    assert (moved.result, moved.strategy, moved.steps) == (
        "x = 3\n",
        "exact",
        ("exact", "move", "exact"),
    )
    assert moved.ops == (0, 1, 2) and new.ops == (3,)
    assert (new.key, new.strategy) == (1, "new")


def test_a_move_alone_is_a_move() -> None:
    (moved,) = build_files({"a.py": "x\n"}, [MoveFile("a.py", "b.py")])
    assert (moved.strategy, moved.result, moved.original) == ("move", "x\n", "x\n")


def test_the_source_of_a_move_is_empty_afterwards() -> None:
    builder = Builder({"a.py": "old\n"})
    builder.add(MoveFile("a.py", "b.py"))
    again = builder.add(WriteFile("a.py", "fresh\n"))
    assert (again.key, again.original, again.strategy) == (1, None, "new")
    builder.add(MoveFile("b.py", "c.py"))
    outcomes = builder.finish()
    assert [o.result for o in outcomes] == ["old\n", "fresh\n"]
    assert builder.occupants() == {"a.py": 1, "b.py": None, "c.py": 0}
    edit_gone = build_files({"a.py": "x\n"}, [MoveFile("a.py", "b.py"), edit("a.py", "x\n", "")])
    assert kinds(edit_gone[1]) == ["missing"]


@pytest.mark.parametrize(
    ("originals", "ops", "problem"),
    [
        ({"a.py": "a", "b.py": "b"}, [MoveFile("a.py", "b.py")], "b.py already exists"),
        (
            {"a.py": "a"},
            [WriteFile("b.py", "b\n"), MoveFile("a.py", "b.py")],
            "b.py already exists",
        ),
        ({"a.py": None}, [MoveFile("a.py", "b.py")], "cannot move a.py: the file does not"),
        ({"a.py": "a"}, [DeleteFile("a.py"), MoveFile("a.py", "b.py")], "cannot move a.py"),
    ],
)
def test_a_move_needs_its_file_and_a_free_destination(
    originals: dict[str, str | None], ops: list[WriteFile | MoveFile | DeleteFile], problem: str
) -> None:
    builder = Builder(originals)
    for op in ops:
        builder.add(op)
    move = len(ops) - 1
    (failed,) = [o for o in builder.finish() if move in o.ops]
    assert failed.status == "failed" and problem in failed.reason
    assert failed.problems[0].structural
    assert builder.occupants().get("a.py") == failed.key  # the file stayed put


def test_a_move_onto_a_deleted_file_is_fine() -> None:
    deleted, moved = build_files(
        {"a.py": "a\n", "b.py": "b\n"}, [DeleteFile("b.py"), MoveFile("a.py", "b.py")]
    )
    assert deleted.deleted and (moved.path, moved.result) == ("b.py", "a\n")


def test_a_failed_file_still_moves_and_is_still_deleted() -> None:
    builder = Builder({"a.py": "a\n", "c.py": "c\n"})
    builder.add(edit("a.py", "nope\n", ""))
    builder.add(MoveFile("a.py", "b.py"))
    builder.add(edit("c.py", "nope\n", ""))
    builder.add(DeleteFile("c.py"))
    builder.add(WriteFile("a.py", "new\n"))  # a.py was freed by the failed file's move
    moved, deleted, fresh = builder.finish()
    assert (moved.status, moved.path, moved.exists) == ("failed", "b.py", True)
    assert (deleted.status, deleted.exists) == ("failed", False)
    assert fresh.ok and fresh.original is None


# -- unknown paths ----------------------------------------------------------------------------


def test_unknown_paths_are_built_only_when_an_op_creates_them() -> None:
    outcomes = build_files(
        {},
        [
            WriteFile("new.py", "n\n"),
            edit("old.py", "x\n", "y\n"),
            MoveFile("gone.py", "here.py"),
            DeleteFile("other.py"),
        ],
    )
    assert [(o.path, o.status) for o in outcomes] == [
        ("new.py", "built"),
        ("old.py", "unbuilt"),
        ("here.py", "unbuilt"),
        ("other.py", "unbuilt"),
    ]
    assert all(o.result is None and not o.problems for o in outcomes[1:])
    assert outcomes[1].exists is None


def test_an_unknown_build_stays_unbuilt_whatever_comes_after() -> None:
    builder = Builder({"b.py": "b\n"})
    assert builder.add(edit("a.py", "x\n", "y\n")).status == "unbuilt"
    assert builder.add(WriteFile("a.py", "whole\n")).status == "unbuilt"
    assert builder.add(MoveFile("a.py", "b.py")).status == "unbuilt"  # b.py exists, though
    (outcome,) = builder.finish()
    assert outcome.status == "unbuilt" and not outcome.problems


def test_a_move_onto_an_unknown_occupant_makes_the_build_unbuilt() -> None:
    builder = Builder({"a.py": "a\n"})
    builder.add(edit("b.py", "x\n", "y\n"))  # b.py: unknown
    moved = builder.add(MoveFile("a.py", "b.py"))
    assert moved.status == "unbuilt"
    assert build_files({"a.py": "a\n"}, [MoveFile("a.py", "new/b.py")])[0].ok  # assumed free


# -- finishing and rebuilding -----------------------------------------------------------------


def test_finish_is_final() -> None:
    builder = Builder({"a.py": PY})
    builder.add(edit("a.py", "import os\n", "import sys\n"))
    assert not builder.finished
    first = builder.finish()
    assert builder.finished and builder.finish() == first == builder.outcomes()
    with pytest.raises(RuntimeError, match="add\\(\\) after finish\\(\\)"):
        builder.add(WriteFile("b.py", ""))


def failed_builder() -> Builder:
    builder = Builder({"a.py": PY})
    builder.add(edit("a.py", "nope\n", ""))
    builder.finish()
    return builder


def test_a_rebuilt_text_takes_the_place_of_a_failed_build() -> None:
    builder = failed_builder()
    refused = builder.rebuilt(0, "import os\n\n\ndef main(:\n")
    assert refused.status == "failed" and kinds(refused) == ["syntax"]
    assert kinds(builder.outcomes()[0]) == ["not_found"]  # left as it was
    elided = builder.rebuilt(0, "import os\n# ...\n")
    assert kinds(elided) == ["elision"]  # a rebuild is a whole-file text
    done = builder.rebuilt(0, PY + "\nmain()\n")
    assert (done.status, done.strategy, done.result) == ("built", "rebuilt", PY + "\nmain()\n")
    assert builder.outcomes()[0] == done


def test_a_given_strategy_is_kept_and_decides_the_checks() -> None:
    builder = failed_builder()
    done = builder.rebuilt(0, "import os\n# ...\n", strategy="exact")
    assert (done.ok, done.strategy) == (True, "exact")  # an edit-built text: weak is allowed


def test_what_a_rebuild_cannot_fix() -> None:
    with pytest.raises(RuntimeError, match="after finish"):
        Builder({}).rebuilt(0, "")
    builder = Builder({"a.py": "a\n", "b.py": "b\n", "d.py": "d\n"})
    builder.add(edit("a.py", "nope\n", ""))
    builder.add(MoveFile("a.py", "b.py"))
    builder.add(edit("u.py", "x\n", ""))
    builder.add(DeleteFile("d.py"))
    builder.finish()
    still = builder.rebuilt(0, "fine\n")
    assert kinds(still) == ["exists"]  # the text problem went, the structural one stays
    with pytest.raises(ValueError, match="unbuilt"):
        builder.rebuilt(1, "x\n")
    with pytest.raises(ValueError, match="ends deleted"):
        builder.rebuilt(2, "x\n")
    with pytest.raises(ValueError, match="no build with key 9"):
        builder.rebuilt(9, "x\n")


# -- outcomes ---------------------------------------------------------------------------------


def test_outcomes_validate_when_built() -> None:
    problem = BuildProblem("not_found", "x")
    base = {"key": 0, "path": "a", "source": "a"}
    with pytest.raises(ValueError, match="key"):
        BuildOutcome(key=-1, path="a", source="a", status="built", strategy="new")
    with pytest.raises(ValueError, match="status"):
        BuildOutcome(**base, status="done", strategy=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a failed build has problems"):
        BuildOutcome(**base, status="failed", strategy=None)
    with pytest.raises(ValueError, match="a failed build has problems"):
        BuildOutcome(**base, status="built", strategy="new", problems=(problem,))
    with pytest.raises(ValueError, match="only a build that built"):
        BuildOutcome(**base, status="unbuilt", strategy="new")
    with pytest.raises(ValueError, match="only a build that built"):
        BuildOutcome(**base, status="failed", strategy=None, result="x", problems=(problem,))
    with pytest.raises(ValueError, match="strategy must be one of"):
        BuildOutcome(**base, status="built", strategy=None)
    two = BuildOutcome(
        **base, status="failed", strategy=None, problems=(problem, BuildProblem("syntax", "y"))
    )
    assert two.reason == "x; y"
    assert "result" not in repr(BuildOutcome(**base, status="built", strategy="new", result="S"))
