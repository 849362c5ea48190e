"""Fixtures for the whole suite.

Every test runs in a clean environment: no provider key, server URL or token of
the developer's leaks in, and HOME and the XDG folders point into a temp folder,
so nothing reads or writes the real user's files (like httpx's clean_environ).

The database backend is chosen for the whole session by ``PLANCAST_TEST_DB`` (``tests/pg.py``):
on PostgreSQL each test's databases are dropped when it ends, the tests marked ``sqlite_only``
are deselected, and the cluster is removed when the session ends, whatever happened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from plancast.server.store import crypto
from tests import pg
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


def pytest_report_header() -> str:
    return f"plancast database backend: {pg.BACKEND} ({pg.ENV})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On PostgreSQL, deselect the tests of SQLite itself (marked ``sqlite_only``).

    Deselected, not skipped: they are not missing work on this backend, they do not apply.
    """
    if not pg.POSTGRESQL:
        return
    dropped = [item for item in items if item.get_closest_marker("sqlite_only") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker("sqlite_only") is None]


def pytest_sessionfinish() -> None:
    # Even after failures or Ctrl-C; a session killed outright leaves its cluster to the next
    # one, which removes it (tests/pg.py).
    pg.shutdown()


@pytest.fixture(autouse=True)
def drop_test_databases(request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL, drop the databases made for the test's data folders once it has ended.

    Autouse fixtures are set up first and torn down last, so the servers that used them
    (fixtures or the test itself) have stopped by then.
    """
    if not pg.POSTGRESQL:
        yield
        return
    tmp_path: Path = request.getfixturevalue("tmp_path")
    yield
    pg.drop_under(tmp_path)


@pytest.fixture(autouse=True)
def test_data_key() -> Iterator[crypto.DataKey]:
    """An org data key for the tests that write through the domain without an app.

    An app sets its own per request and stream (``Keyring.enter``); these tests, which call
    the domain functions on an engine of their own, get this one, as a request would.
    """
    key = crypto.DataKey("dk_tests", "org_tests", AESGCM(bytes(range(32))))
    crypto._OPEN[key.key_id] = key
    token = crypto.use_key(key)
    yield key
    crypto._CURRENT.reset(token)
