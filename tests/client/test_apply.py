"""Applying changes: computed before writing, atomic, rolled back, never outside the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plancast.client.apply import changeset
from plancast.client.apply.changeset import PendingChange, compute, write_all
from plancast.client.apply.paths import resolve_inside
from plancast.shared import EditFile, UnsafePathError, WriteFile


def change(n: int, op: WriteFile | EditFile) -> PendingChange:
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

    def flaky(target: Path, text: str) -> None:
        calls.append(target.name)
        if target.name == "c.txt":
            raise OSError(28, "No space left on device")
        real(target, text)

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
