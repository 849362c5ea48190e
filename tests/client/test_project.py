"""Binding a directory to a project, and finding the binding from below."""

from __future__ import annotations

from pathlib import Path

import pytest

from plancast.client.project import ProjectBinding, find_root, load_binding, require_plan
from plancast.shared import PlancastError


def test_binding_round_trips_and_is_found_from_subfolders(tmp_path: Path) -> None:
    ProjectBinding(tmp_path, "prj_1", "pl_1").save()
    (tmp_path / "a" / "b").mkdir(parents=True)
    assert find_root(tmp_path / "a" / "b") == tmp_path.resolve()
    binding = load_binding(tmp_path / "a" / "b")
    assert (binding.project_id, binding.plan_id) == ("prj_1", "pl_1")
    assert (tmp_path / ".plancast" / ".gitignore").read_text() == "*\n"


def test_no_binding_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(PlancastError, match="plancast new"):
        load_binding(tmp_path)


def test_damaged_binding_is_reported(tmp_path: Path) -> None:
    (tmp_path / ".plancast").mkdir()
    (tmp_path / ".plancast" / "project.json").write_text("{not json")
    with pytest.raises(PlancastError, match="damaged"):
        load_binding(tmp_path)


def test_no_current_plan_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(PlancastError, match="plancast new"):
        require_plan(ProjectBinding(tmp_path, "prj_1"))
