"""Applying changes: computed before writing, atomic, rolled back, never outside the project."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from plancast.client.apply import changeset
from plancast.client.apply.changeset import PendingChange, compute, write_all
from plancast.client.apply.paths import resolve_inside
from plancast.shared import DeleteFile, EditFile, FileOp, MoveFile, UnsafePathError, WriteFile


def change(n: int, op: FileOp) -> PendingChange:
    return PendingChange(f"chg_{n}", op.path, op)


def test_ops_on_one_file_are_applied_in_order(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("one\ntwo\n")
    results = compute(
        tmp_path,
        [
            change(1, EditFile("a.py", "one\n", "uno\n")),
            change(2, EditFile("a.py", "two\n", "dos\n")),
        ],
    )
    assert [(r.path, r.new, r.change_ids) for r in results] == [
        ("a.py", "uno\ndos\n", ["chg_1", "chg_2"])
    ]
    assert (tmp_path / "a.py").read_text() == "one\ntwo\n"  # compute writes nothing


def test_a_file_with_one_failing_edit_is_not_half_applied(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("one\ntwo\n")
    (result,) = compute(
        tmp_path,
        [
            change(1, EditFile("a.py", "one\n", "uno\n")),
            change(2, EditFile("a.py", "zzz\n", "z\n")),
        ],
    )
    assert not result.ok and "zzz" in (result.error or "")
    write_all([result])
    assert (tmp_path / "a.py").read_text() == "one\ntwo\n"


def test_new_files_and_folders_are_created(tmp_path: Path) -> None:
    results = compute(tmp_path, [change(1, WriteFile("deep/er/new.txt", "hi\n"))])
    write_all(results)
    assert (tmp_path / "deep" / "er" / "new.txt").read_text() == "hi\n"


def test_existing_file_mode_is_kept(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o755)
    write_all(compute(tmp_path, [change(1, WriteFile("run.sh", "echo 2\n"))]))
    assert script.read_text() == "echo 2\n"
    assert script.stat().st_mode & 0o777 == 0o755


def test_a_failed_write_restores_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_text("A\n")
    results = compute(
        tmp_path,
        [
            change(1, WriteFile("a.txt", "A2\n")),
            change(2, WriteFile("new.txt", "N\n")),
            change(3, WriteFile("c.txt", "C\n")),
        ],
    )
    real = changeset._write_atomic
    calls = []

    def flaky(target: Path, text: str, *, mode: int | None = None) -> None:
        calls.append(target.name)
        if target.name == "c.txt":
            raise OSError(28, "No space left on device")
        real(target, text, mode=mode)

    monkeypatch.setattr(changeset, "_write_atomic", flaky)
    with pytest.raises(OSError):
        write_all(results)
    assert (tmp_path / "a.txt").read_text() == "A\n"
    assert not (tmp_path / "new.txt").exists()
    assert not (tmp_path / "c.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".plancast")]  # no temp left


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", ".git/config", "a/../../x", "C:/x"])
def test_lexically_unsafe_paths_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path, path)


def test_symlinked_folder_leading_out_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside the project"):
        resolve_inside(root, "link/file.txt")
    (result,) = compute(root, [change(1, WriteFile("link/file.txt", "x"))])
    assert not result.ok
    write_all([result])
    assert not (outside / "file.txt").exists()


def test_symlinked_file_is_refused_even_inside(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_text("r")
    (tmp_path / "alias.txt").symlink_to(tmp_path / "real.txt")
    with pytest.raises(UnsafePathError, match="symlink"):
        resolve_inside(tmp_path, "alias.txt")


def test_symlinked_folder_inside_the_project_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "src", target_is_directory=True)
    assert resolve_inside(tmp_path, "alias/a.py") == tmp_path / "alias" / "a.py"


def test_project_root_that_is_itself_a_symlink_works(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "root")
    write_all(compute(tmp_path / "root", [change(1, WriteFile("a.txt", "x\n"))]))
    assert (tmp_path / "real" / "a.txt").read_text() == "x\n"


# -- server builds ----------------------------------------------------------------------------

PY = "import os\n\n\ndef main():\n    return os.getcwd()\n"
REBUILT = "import os\n\n\ndef main():\n    return os.getcwd() or '.'\n"
MISSES = EditFile("a.py", "    return cwd\n", "    return cwd or '.'\n")  # lands nowhere


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def built(
    n: int,
    op: FileOp,
    result: str | None,
    base: str | None,
    *,
    ids: list[str] | None = None,
    strategy: str = "rebuilt",
    stream: str | None = "st_1",
    status: str = "pending",
    build_status: str = "built",
    reason: str | None = None,
) -> PendingChange:
    build = {
        "status": build_status,
        "strategy": strategy,
        "attempts": 1,
        "reason": reason,
        "changes": ids or [f"chg_{n}"],
    }
    return PendingChange(
        f"chg_{n}", op.path, op, result, base, build, status=status, stream_id=stream
    )


def test_the_server_build_is_used_when_the_file_is_as_it_was_built_on(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    (result,) = compute(tmp_path, [built(1, MISSES, REBUILT, sha(PY))])
    assert (result.ok, result.new, result.strategy) == (True, REBUILT, "rebuilt")
    write_all([result])
    assert (tmp_path / "a.py").read_text() == REBUILT


def test_a_file_that_drifted_is_built_here(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY + "\n# edited since\n")
    (result,) = compute(tmp_path, [built(1, MISSES, REBUILT, sha(PY))])
    assert not result.ok and "the find text starting 'return cwd'" in (result.error or "")
    landing = EditFile("a.py", "import os\n", "import sys\n")
    (result,) = compute(tmp_path, [built(1, landing, "server text\n", sha(PY))])
    assert result.new == PY.replace("import os", "import sys") + "\n# edited since\n"
    assert result.strategy == "exact"


def test_a_new_file_uses_the_server_build_only_while_it_does_not_exist(tmp_path: Path) -> None:
    op = WriteFile("n.txt", "from the reply\n")
    (result,) = compute(tmp_path, [built(1, op, "from the server\n", None, strategy="new")])
    assert result.new == "from the server\n"
    (tmp_path / "n.txt").write_text("someone made it\r\n")
    (result,) = compute(tmp_path, [built(1, op, "from the server\n", None, strategy="new")])
    assert (result.new, result.strategy) == ("from the reply\r\n", "write")


def test_a_server_build_that_covers_other_changes_is_not_used(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    change = built(2, MISSES, REBUILT, sha(PY), ids=["chg_1", "chg_2"])  # chg_1 was rejected
    (result,) = compute(tmp_path, [change])
    assert not result.ok


@pytest.mark.parametrize(
    "change",
    [
        built(1, MISSES, REBUILT, sha(PY), build_status="unbuilt"),
        PendingChange("chg_1", "a.py", MISSES, REBUILT, sha(PY), None),
        built(1, DeleteFile("a.py"), REBUILT, sha(PY)),  # the reply deletes it here
    ],
)
def test_only_a_built_result_of_the_same_file_is_used(
    tmp_path: Path, change: PendingChange
) -> None:
    (tmp_path / "a.py").write_text(PY)
    (result,) = compute(tmp_path, [change])
    assert result.new != REBUILT


def test_a_server_result_is_checked_again(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    elided = "import os\n# ... rest of the file unchanged ...\n"
    (result,) = compute(tmp_path, [built(1, MISSES, elided, sha(PY), strategy="unknown")])
    assert not result.ok and "placeholder" in (result.error or "")


def test_a_change_whose_build_failed_on_the_server_is_never_written(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    op = EditFile("a.py", "import os\n", "import sys\n")  # would land here
    change = built(
        1, op, None, None, status="failed", build_status="failed", reason="a.py: bad syntax"
    )
    (result,) = compute(tmp_path, [change])
    assert result.error == "the server could not build it: a.py: bad syntax"
    write_all([result])
    assert (tmp_path / "a.py").read_text() == PY
    bare = PendingChange("chg_1", "a.py", op, status="failed")
    assert compute(tmp_path, [bare])[0].error == "the server could not build it"


def test_each_reply_builds_on_the_one_before(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(PY)
    first = EditFile("a.py", "import os\n", "import os\nimport sys\n")
    after_first = PY.replace("import os\n", "import os\nimport sys\n")
    second = EditFile("a.py", "    return os.getcwd()\n", "    return sys.argv[0]\n")
    changes = [
        built(1, first, after_first, sha(PY), strategy="exact", stream="st_1"),
        # built by the server on the context, which did not have the first reply's change:
        built(2, second, PY.replace("os.getcwd()", "sys.argv[0]"), sha(PY), stream="st_2"),
    ]
    (result,) = compute(tmp_path, changes)
    assert result.new == after_first.replace("os.getcwd()", "sys.argv[0]")
    assert result.change_ids == ["chg_1", "chg_2"]


def test_pending_changes_read_from_the_rest_form() -> None:
    data = {
        "id": "chg_1",
        "path": "a.py",
        "op": {"op": "move", "path": "a.py", "to": "b.py"},
        "status": "pending",
        "stream_id": "st_1",
        "position": 0,
        "result": "x\n",
        "base_sha256": "ab" * 32,
        "build": {"status": "built"},
    }
    change = PendingChange.from_dict(data)
    assert change == PendingChange(
        "chg_1",
        "a.py",
        MoveFile("a.py", "b.py"),
        "x\n",
        "ab" * 32,
        {"status": "built"},
        "pending",
        "st_1",
    )
    old = PendingChange.from_dict(
        {"id": "c", "path": "a", "op": {"op": "delete", "path": "a"}, "build": "junk"}
    )
    assert (old.result, old.build, old.status, old.stream_id) == (None, None, "pending", None)


# -- moves and deletes ------------------------------------------------------------------------


def test_a_move_writes_the_destination_and_removes_the_source(tmp_path: Path) -> None:
    script = tmp_path / "run.sh"
    script.write_text("echo 1\n")
    script.chmod(0o750)
    results = compute(
        tmp_path,
        [
            change(1, MoveFile("run.sh", "bin/run.sh")),
            change(2, EditFile("bin/run.sh", "echo 1\n", "echo 2\n")),
        ],
    )
    source, destination = results
    assert (source.path, source.old, source.new) == ("run.sh", "echo 1\n", None)
    assert (destination.path, destination.old, destination.new) == ("bin/run.sh", None, "echo 2\n")
    assert source.change_ids == destination.change_ids == ["chg_1", "chg_2"]
    assert source.together == destination.together == ("run.sh", "bin/run.sh")
    assert (source.moved_from, destination.moved_from) == (None, "run.sh")
    write_all(results)
    assert not script.exists()
    moved = tmp_path / "bin" / "run.sh"
    assert moved.read_text() == "echo 2\n" and moved.stat().st_mode & 0o777 == 0o750
    assert not [p for p in tmp_path.rglob("*.plancast")]


def test_a_delete_removes_the_file(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("bye\n")
    (result,) = compute(tmp_path, [change(1, DeleteFile("old.txt"))])
    assert (result.ok, result.new, result.strategy) == (True, None, "delete")
    write_all([result])
    assert not (tmp_path / "old.txt").exists()
    assert list(tmp_path.iterdir()) == []


def test_files_tied_by_a_move_fail_together(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "c.py").write_text("c\n")
    results = compute(
        tmp_path,
        [
            change(1, MoveFile("a.py", "b.py")),
            change(2, EditFile("b.py", "no such line\n", "")),
            change(3, EditFile("c.py", "c\n", "C\n")),
        ],
    )
    a, b, c = results
    assert (
        b.error == "edit of b.py failed: the find text starting 'no such line' is not in the file"
    )
    assert a.error == b.error  # one build: the file moved from a.py
    assert c.ok and c.together == ("c.py",)
    write_all(results)
    assert (tmp_path / "a.py").read_text() == "x = 1\n" and not (tmp_path / "b.py").exists()
    assert (tmp_path / "c.py").read_text() == "C\n"


def test_a_file_tied_to_one_that_fails_is_left_alone_too(tmp_path: Path) -> None:
    (tmp_path / "p.py").write_text("p\n")
    # r.py does not exist: deleting it fails; the move onto it then works on its own.
    r, p = compute(tmp_path, [change(1, DeleteFile("r.py")), change(2, MoveFile("p.py", "r.py"))])
    assert r.error == "cannot delete r.py: the file does not exist"
    assert p.error == f"it goes together with r.py, which cannot be applied: {r.error}"
    assert (p.change_ids, r.change_ids) == (["chg_2"], ["chg_1", "chg_2"])


def test_a_move_onto_a_file_on_disk_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("a\n")
    (tmp_path / "b.py").write_text("b\n")
    results = compute(tmp_path, [change(1, MoveFile("a.py", "b.py"))])
    assert [r.error for r in results] == ["cannot move a.py to b.py: b.py already exists"] * 2


def test_a_move_through_a_symlink_leading_out_is_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "a.py").write_text("a\n")
    (root / "link").symlink_to(outside, target_is_directory=True)
    source, destination = compute(root, [change(1, MoveFile("a.py", "link/a.py"))])
    assert "outside the project" in (destination.error or "")
    assert "goes together with link/a.py" in (source.error or "")
    write_all([source, destination])
    assert (root / "a.py").exists() and not (outside / "a.py").exists()


def test_a_file_that_cannot_be_read_is_reported(tmp_path: Path) -> None:
    (tmp_path / "folder.py").mkdir()
    (result,) = compute(tmp_path, [change(1, WriteFile("folder.py", "x\n"))])
    assert (result.error or "").startswith("cannot read folder.py:")


def test_a_failed_write_puts_moved_and_deleted_files_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.txt").write_bytes(b"A\xff\n")  # not UTF-8: must come back byte for byte
    (tmp_path / "d.txt").write_text("D\n")
    (tmp_path / "e.txt").write_text("E\n")
    results = compute(
        tmp_path,
        [
            change(1, MoveFile("a.txt", "b.txt")),
            change(2, DeleteFile("d.txt")),
            change(3, WriteFile("e.txt", "E2\n")),
            change(4, WriteFile("z.txt", "Z\n")),
        ],
    )
    real = changeset._write_atomic

    def flaky(target: Path, text: str, *, mode: int | None = None) -> None:
        if target.name == "z.txt":
            raise OSError(28, "No space left on device")
        real(target, text, mode=mode)

    monkeypatch.setattr(changeset, "_write_atomic", flaky)
    with pytest.raises(OSError):
        write_all(results)
    assert (tmp_path / "a.txt").read_bytes() == b"A\xff\n"
    assert not (tmp_path / "b.txt").exists()
    assert (tmp_path / "d.txt").read_text() == "D\n"
    assert (tmp_path / "e.txt").read_text() == "E\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "d.txt", "e.txt"]
