"""The session's history: per project, in XDG state, readable by the owner only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plancast.client.ui.history import PrivateFileHistory, history_path, project_history


def test_history_lives_per_project_in_the_xdg_state_folder(tmp_path: Path) -> None:
    os.environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    assert history_path("prj_1") == tmp_path / "state" / "plancast" / "history" / "prj_1"
    with pytest.raises(ValueError):
        history_path("../../etc/passwd")


def test_the_file_is_0600_and_its_folder_0700(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        history = project_history("prj_1")
        history.store_string("my secret plan")
    finally:
        os.umask(old)
    path = history_path("prj_1")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert "my secret plan" in path.read_text()
    assert list(PrivateFileHistory(path).load_history_strings()) == ["my secret plan"]


def test_a_loose_history_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "h"
    path.write_text("")
    path.chmod(0o644)
    PrivateFileHistory(path)
    assert path.stat().st_mode & 0o777 == 0o600
