"""Fixtures for the context tests: a clean git environment (helpers: context_helpers.py).

No test may read the real user's git configuration or global excludes: every test runs with
HOME, XDG_CONFIG_HOME and GIT_CONFIG_GLOBAL pointing into its own temporary directory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from plancast.client.context import gitinfo


@pytest.fixture(autouse=True)
def git_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """Isolate git: an empty home, an empty global config, no system config."""
    home = tmp_path_factory.mktemp("home")
    (home / "gitconfig").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CONFIG_COUNT"):
        monkeypatch.delenv(name, raising=False)
    gitinfo.clear_caches()
    yield home
    gitinfo.clear_caches()
