"""The apply journal: recording applies, its bounds, and restoring files without clobbering."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from plancast.client.apply import changeset, journal
from plancast.client.apply.changeset import PendingChange, compute, write_all
from plancast.client.config import state_dir
from plancast.shared import WriteFile

PROJECT = "prj_test"
PLAN = "pln_test"


def apply(root: Path, *changes: tuple[str, str, str]) -> list[changeset.FileResult]:
    """Apply (change id, path, new text) writes as ``plancast apply`` does, and record them."""
    results = compute(root, [PendingChange(c, p, WriteFile(p, text)) for c, p, text in changes])
    write_all(results)
    journal.record(PROJECT, PLAN, results)
    return results


def entries() -> list[journal.Entry]:
    return journal.load(PROJECT)


# -- recording ------------------------------------------------------------------------------


def test_a_record_holds_before_and_after_privately(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"), ("chg_2", "b.py", "made\n"))
    (entry_a, entry_b) = entries()
    assert (entry_a.path, entry_a.change_ids, entry_a.before, entry_a.after) == (
        "a.py",
        ("chg_1",),
        "old\n",
        "new\n",
    )
    assert (entry_b.before, entry_b.after, entry_b.plan_id) == (None, "made\n", PLAN)
    folder = state_dir() / "journal" / PROJECT
    (record,) = folder.iterdir()
    assert record.stat().st_mode & 0o777 == 0o600  # it holds file contents
    assert folder.stat().st_mode & 0o777 == 0o700


def test_nothing_applied_records_nothing(tmp_path: Path) -> None:
    assert journal.record(PROJECT, PLAN, []) is None
    failed = changeset.FileResult("a.py", ["chg_1"], error="did not land")
    assert journal.record(PROJECT, PLAN, [failed]) is None
    assert entries() == []


def test_the_journal_keeps_the_newest_records_within_its_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "MAX_RECORDS", 3)
    for n in range(5):
        apply(tmp_path, (f"chg_{n}", f"f{n}.py", "x\n"))
    assert [e.change_ids for e in entries()] == [("chg_2",), ("chg_3",), ("chg_4",)]

    monkeypatch.setattr(journal, "MAX_RECORDS", 100)
    monkeypatch.setattr(journal, "MAX_BYTES", 1500)
    apply(tmp_path, ("chg_big", "big.py", "b" * 1000 + "\n"))
    apply(tmp_path, ("chg_huge", "huge.py", "h" * 4000 + "\n"))  # alone over the bound
    assert [e.change_ids for e in entries()] == [("chg_huge",)]  # the newest is always kept


def test_damaged_records_are_skipped(tmp_path: Path) -> None:
    apply(tmp_path, ("chg_1", "a.py", "a\n"))
    folder = journal.journal_dir(PROJECT)
    (folder / "00000000000000000001-deadbeef.json").write_text("{not json")
    (folder / "00000000000000000002-deadbeef.json").write_text(json.dumps({"format": 99}))
    (folder / "notes.txt").write_text("not a record")
    assert [e.change_ids for e in entries()] == [("chg_1",)]


def test_a_project_id_cannot_lead_out_of_the_journal() -> None:
    with pytest.raises(ValueError):
        journal.journal_dir("../../etc")


def test_forgetting_a_plan_drops_only_its_records(tmp_path: Path) -> None:
    apply(tmp_path, ("chg_1", "a.py", "a\n"))
    other = compute(tmp_path, [PendingChange("chg_2", "b.py", WriteFile("b.py", "b\n"))])
    journal.record(PROJECT, "pln_other", other)
    assert journal.forget_plan(PROJECT, PLAN) == 1
    assert [e.plan_id for e in entries()] == ["pln_other"]


# -- planning a restore ---------------------------------------------------------------------


def test_revert_restores_before_and_removes_created_files(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"), ("chg_2", "b.py", "made\n"))
    plan = journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py"), ("chg_2", "b.py")])
    assert [(r.path, r.new, r.action) for r in plan.files] == [
        ("a.py", "old\n", "reverted"),
        ("b.py", None, "reverted"),
    ]
    assert (plan.conflicts, plan.unknown) == ([], [])
    assert (tmp_path / "a.py").read_text() == "new\n"  # planning writes nothing
    journal.restore(plan)
    assert (tmp_path / "a.py").read_text() == "old\n"
    assert not (tmp_path / "b.py").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py"]  # nothing left aside


def test_a_file_changed_since_the_apply_is_skipped_not_clobbered(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"), ("chg_2", "b.py", "made\n"))
    (tmp_path / "a.py").write_text("new\nand my own edit\n")
    (tmp_path / "b.py").write_text("made\nand mine\n")
    plan = journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py"), ("chg_2", "b.py")])
    assert plan.files == []
    assert [path for path, _ in plan.conflicts] == ["a.py", "b.py"]
    assert "changed on disk" in plan.conflicts[0][1]
    journal.restore(plan)
    assert (tmp_path / "a.py").read_text() == "new\nand my own edit\n"


def test_a_file_already_as_the_target_wants_is_neither_written_nor_a_conflict(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"), ("chg_2", "b.py", "made\n"))
    (tmp_path / "a.py").write_text("old\n")  # the user reverted it by hand
    (tmp_path / "b.py").unlink()
    plan = journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py"), ("chg_2", "b.py")])
    assert (plan.files, plan.conflicts, plan.unknown) == ([], [], [])


def test_changes_the_journal_never_saw_are_reported_unknown(tmp_path: Path) -> None:
    apply(tmp_path, ("chg_1", "a.py", "new\n"))
    plan = journal.plan_restore(
        tmp_path, entries(), [("chg_1", "a.py"), ("chg_elsewhere", "c.py"), ("chg_1", "x.py")]
    )
    assert [r.path for r in plan.files] == ["a.py"]  # the journal knows where chg_1 wrote
    assert plan.unknown == ["c.py"]


def test_several_applies_to_one_file_revert_as_a_chain(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("v0\n")
    apply(tmp_path, ("chg_1", "a.py", "v1\n"))
    apply(tmp_path, ("chg_2", "a.py", "v2\n"))
    both = [("chg_1", "a.py"), ("chg_2", "a.py")]
    (restore,) = journal.plan_restore(tmp_path, entries(), both).files
    assert restore.new == "v0\n"
    (last_only,) = journal.plan_restore(tmp_path, entries(), [("chg_2", "a.py")]).files
    assert last_only.new == "v1\n"
    # A broken chain (the user edited between the two applies) is a conflict.
    (tmp_path / "b.py").write_text("b0\n")
    apply(tmp_path, ("chg_3", "b.py", "b1\n"))
    (tmp_path / "b.py").write_text("b1 edited\n")
    apply(tmp_path, ("chg_4", "b.py", "b2\n"))
    plan = journal.plan_restore(tmp_path, entries(), [("chg_3", "b.py"), ("chg_4", "b.py")])
    assert (plan.files, [p for p, _ in plan.conflicts]) == ([], ["b.py"])


def test_reapply_after_revert_and_the_newest_record_counts(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"))
    journal.restore(journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py")]))
    assert (tmp_path / "a.py").read_text() == "old\n"
    again = journal.plan_restore(tmp_path, entries(), [], [("chg_1", "a.py")])
    assert [(r.new, r.action) for r in again.files] == [("new\n", "re-applied")]
    journal.restore(again)
    assert (tmp_path / "a.py").read_text() == "new\n"
    # Reverted, then applied again by `plancast apply`: two records, the newest counts.
    journal.restore(journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py")]))
    apply(tmp_path, ("chg_1", "a.py", "new\n"))
    (restore,) = journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py")]).files
    assert restore.new == "old\n"


def test_reapply_refuses_a_file_that_is_not_as_the_apply_found_it(tmp_path: Path) -> None:
    apply(tmp_path, ("chg_1", "made.py", "made\n"))
    (tmp_path / "made.py").unlink()
    (tmp_path / "made.py").write_text("someone else's\n")
    plan = journal.plan_restore(tmp_path, entries(), [], [("chg_1", "made.py")])
    assert plan.files == [] and [p for p, _ in plan.conflicts] == ["made.py"]


def test_a_path_that_became_unsafe_is_not_touched(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    apply(root, ("chg_1", "sub/a.py", "new\n"))
    (root / "sub" / "a.py").unlink()
    (root / "sub").rmdir()
    (root / "sub").symlink_to(outside, target_is_directory=True)
    (outside / "a.py").write_text("new\n")
    plan = journal.plan_restore(root, entries(), [("chg_1", "sub/a.py")])
    assert plan.files == [] and "outside the project" in plan.conflicts[0][1]


# -- restoring, all or nothing --------------------------------------------------------------


def test_a_failed_removal_puts_every_file_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text("old\n")
    apply(tmp_path, ("chg_1", "a.py", "new\n"), ("chg_2", "b.py", "made\n"))
    plan = journal.plan_restore(tmp_path, entries(), [("chg_1", "a.py"), ("chg_2", "b.py")])
    real = os.replace

    def failing(src: os.PathLike[str] | str, dst: os.PathLike[str] | str) -> None:
        if Path(src).name == "b.py":
            raise OSError(13, "Permission denied")
        real(src, dst)

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError):
        journal.restore(plan)
    monkeypatch.undo()
    assert (tmp_path / "a.py").read_text() == "new\n"
    assert (tmp_path / "b.py").read_text() == "made\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.py", "b.py"]


def test_a_failed_write_leaves_every_file_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.py").write_text("a0\n")
    (tmp_path / "c.py").write_text("c0\n")
    apply(tmp_path, ("chg_1", "a.py", "a1\n"), ("chg_2", "c.py", "c1\n"), ("chg_3", "n.py", "n\n"))
    plan = journal.plan_restore(
        tmp_path, entries(), [("chg_1", "a.py"), ("chg_2", "c.py"), ("chg_3", "n.py")]
    )
    real = changeset._write_atomic

    def flaky(target: Path, text: str, **kwargs: int | None) -> None:
        if target.name == "c.py":
            raise OSError(28, "No space left on device")
        real(target, text, **kwargs)

    monkeypatch.setattr(changeset, "_write_atomic", flaky)
    with pytest.raises(OSError):
        journal.restore(plan)
    assert [(tmp_path / n).read_text() for n in ("a.py", "c.py", "n.py")] == ["a1\n", "c1\n", "n\n"]
