"""Fixtures for the whole suite.

Every test runs in a clean environment: no provider key, server URL or token of
the developer's leaks in, and HOME and the XDG folders point into a temp folder,
so nothing reads or writes the real user's files (like httpx's clean_environ).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.emulator.fixtures import emulator, emulator_server  # noqa: F401

_LEAKY_PREFIXES = ("PLANCAST_", "OPENAI_", "ANTHROPIC_", "AZURE_OPENAI_", "OLLAMA_", "GIT_")


@pytest.fixture(autouse=True)
def clean_environ(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private HOME and XDG folders, and none of the developer's plancast/provider settings."""
    saved = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    for key in list(os.environ):
        if key.startswith(_LEAKY_PREFIXES):
            del os.environ[key]
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_STATE_HOME": str(home / ".local" / "state"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
            "NO_COLOR": "1",
        }
    )
    try:
        yield home
    finally:
        os.environ.clear()
        os.environ.update(saved)
