"""Fixtures for the server tests: the app built in-process on a private data folder.

``server`` is the app with default test settings; a test that needs other settings (a small
body limit, a short provider timeout, allowed origins) builds its own with ``running`` and
``load_settings`` from ``tests/server/helpers.py``.

Migrating a fresh SQLite file costs ~100 ms, so the session migrates one template database and
each test starts from a copy of it; tests/server/test_store.py migrates fresh files itself. On
PostgreSQL (``PLANCAST_TEST_DB=postgresql``) each data folder gets a database copied from the
cluster's migrated template instead (``tests/pg.py``): the SQLite copy is then left unused.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.config import Settings
from plancast.server.domain.accounts import ensure_local_principal
from plancast.server.store.database import create_engine, migrate
from tests.pg import database_url
from tests.server.helpers import Server, load_settings, running


async def _migrated(url: str) -> AsyncEngine:
    engine = create_engine(url)
    await migrate(engine)
    async with engine.begin() as conn:
        await ensure_local_principal(conn)
    return engine


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated database with the local org; closed, so its WAL is checkpointed into it."""
    path = tmp_path_factory.mktemp("template") / "plancast.db"

    async def build() -> None:
        engine = await _migrated(f"sqlite+aiosqlite:///{path}")
        await engine.dispose()

    asyncio.run(build())
    return path


@pytest.fixture
def data_dir(tmp_path: Path, template_db: Path) -> Path:
    """The server's data folder, holding a copy of the migrated template database."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    shutil.copyfile(template_db, path / "plancast.db")
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings(data_dir)


@pytest.fixture
def server(settings: Settings) -> Iterator[Server]:
    with running(settings) as srv:
        yield srv


@pytest.fixture
def plan_id(server: Server) -> str:
    """A fresh plan in a fresh project."""
    return server.new_plan()


@pytest.fixture
async def engine(data_dir: Path) -> AsyncIterator[AsyncEngine]:
    """The migrated database with the local org, opened outside any app."""
    eng = await _migrated(database_url(data_dir))
    yield eng
    await eng.dispose()
