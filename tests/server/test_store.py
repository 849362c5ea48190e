"""The store: migrations, SQLite's pragmas on every connection, and concurrent writers.

Every test here runs on the suite's backend (``PLANCAST_TEST_DB``), except the checks of SQLite
itself, marked ``sqlite_only``; tests/server/test_postgres.py holds PostgreSQL's own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID, ensure_local_principal
from plancast.server.errors import Busy
from plancast.server.store.database import MIGRATIONS_DIR, create_engine, migrate
from plancast.server.store.schema import metadata, orgs
from plancast.server.streams import records
from tests.pg import database_url
from tests.server.helpers import Server, new_key


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))


async def test_migrations_build_the_schema_on_a_fresh_database(tmp_path: Path) -> None:
    engine = create_engine(database_url(tmp_path, migrated=False))
    try:
        assert await _tables(engine) == set()
        assert await migrate(engine) == _head_revision()
        assert await _tables(engine) == set(metadata.tables) | {"alembic_version"}
    finally:
        await engine.dispose()


async def test_migrated_schema_matches_the_declared_schema(engine: AsyncEngine) -> None:
    def differences(conn: Connection) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_migrating_again_changes_nothing_and_keeps_data(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "kept")
    before = await _tables(engine)
    assert await migrate(engine) == _head_revision()
    assert await migrate(engine) == _head_revision()
    assert await _tables(engine) == before
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        assert (await projects.get_project(conn, LOCAL_ORG_ID, project.id)).name == "kept"
        # The local principal is made once, however often the server starts.
        await ensure_local_principal(conn)
        assert await conn.scalar(select(func.count()).select_from(orgs)) == 1


async def _pragmas(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        found = {}
        for name in ("journal_mode", "secure_delete", "foreign_keys", "busy_timeout"):
            found[name] = await conn.scalar(text(f"PRAGMA {name}"))
        return found


EXPECTED_PRAGMAS = {"journal_mode": "wal", "secure_delete": 1, "foreign_keys": 1}


@pytest.mark.sqlite_only
async def test_every_new_connection_gets_the_pragmas(engine: AsyncEngine) -> None:
    """PRAGMAs are SQLite's: PostgreSQL's connection settings are in test_postgres.py."""
    # Several at once, so that the pool has to open more than one connection.
    results = await asyncio.gather(*(_pragmas(engine) for _ in range(4)))
    for found in results:
        assert {k: found[k] for k in EXPECTED_PRAGMAS} == EXPECTED_PRAGMAS
        assert found["busy_timeout"] > 0


@pytest.mark.sqlite_only
def test_the_apps_connections_get_the_pragmas(server: Server) -> None:
    """PRAGMAs and the WAL file are SQLite's (PostgreSQL's settings: test_postgres.py)."""
    portal = server.client.portal
    assert portal is not None
    found = portal.call(_pragmas, server.app.state.db)
    assert {k: found[k] for k in EXPECTED_PRAGMAS} == EXPECTED_PRAGMAS
    assert (server.data_dir / "plancast.db-wal").exists()


async def test_foreign_keys_are_enforced(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "INSERT INTO plans (id, org_id, project_id, name, created_at) "
                "VALUES ('pl_x', 'org_local', 'prj_missing', 'p', 0)"
            )


@pytest.mark.sqlite_only
async def test_a_deleted_value_does_not_stay_in_the_database_file(
    engine: AsyncEngine, data_dir: Path
) -> None:
    """SQLite's ``secure_delete`` zeroes a deleted row's bytes in the file.

    PostgreSQL has no equivalent: a deleted row stays in its table's pages until vacuumed,
    and in the WAL until the segment is recycled. What must never be in a database at all
    (provider keys) is checked on both backends in test_secrets.py.
    """
    secret = new_key("deleted-")
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, secret)
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM projects WHERE id = ?", (project.id,))
    await engine.dispose()  # the last connection to close checkpoints the WAL
    files = list(data_dir.glob("plancast.db*"))
    assert data_dir / "plancast.db" in files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path.name


async def test_concurrent_commits_on_one_branch_all_succeed_in_order(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "busy")
        plan = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)

    async def commit(n: int) -> int:
        async with engine.begin() as conn:
            version = await versions.commit(
                conn, LOCAL_ORG_ID, plan.id, "main", "test", f"writer {n}", lambda s: s
            )
            return version.number

    numbers = await asyncio.gather(*(commit(n) for n in range(20)))
    assert sorted(numbers) == list(range(2, 22))
    async with engine.connect() as conn:
        chain = await versions.history(conn, LOCAL_ORG_ID, plan.id, "main")
    # Every commit is on the branch: none was lost to a concurrent head move.
    assert [v.number for v in chain] == list(range(1, 22))
    assert {v.description for v in chain[1:]} == {f"writer {n}" for n in range(20)}


async def test_a_reader_in_a_transaction_never_holds_up_a_writer(engine: AsyncEngine) -> None:
    """Only ``begin()`` takes SQLite's write lock up front: a read left open, however long (or
    leaked), must not make the writers wait out the busy timeout (30 s)."""
    reader = await engine.connect().start()
    try:
        await reader.execute(select(func.count()).select_from(orgs))  # its transaction is open
        assert reader.in_transaction()

        async def write() -> None:
            async with engine.begin() as conn:
                await projects.create_project(conn, LOCAL_ORG_ID, "while someone reads")

        await asyncio.wait_for(write(), timeout=5)
    finally:
        await reader.close()
    async with engine.connect() as conn:
        found = await projects.list_projects(conn, LOCAL_ORG_ID)
    assert [p.name for p in found] == ["while someone reads"]


async def test_one_running_stream_per_branch_is_enforced_by_the_database(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "streams")
        plan = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)

    async def claim(n: int) -> str:
        async with engine.begin() as conn:
            await records.insert_running(
                conn,
                stream_id=f"st_{n}",
                org_id=LOCAL_ORG_ID,
                plan_id=plan.id,
                branch="main",
                mode="tell",
                model="openai/gpt-4.1",
                request_id=f"req-{n}",
                owner="rep_test",
            )
        return f"st_{n}"

    results = await asyncio.gather(*(claim(n) for n in range(10)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    losers = [r for r in results if not isinstance(r, str)]
    assert len(winners) == 1
    assert len(losers) == 9 and all(isinstance(e, Busy) for e in losers)
    assert all(e.stream_id == winners[0] for e in losers if isinstance(e, Busy))

    # Once the winner has ended, the branch is free again; another branch never was busy.
    async with engine.begin() as conn:
        await records.finish(
            conn, winners[0], status="finished", last_seq=1, error_code=None, error_message=None
        )
    assert await claim(100) == "st_100"


async def test_a_reused_request_id_is_not_reported_as_busy(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "ids")
        plan = await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)
    fields: dict[str, Any] = {
        "org_id": LOCAL_ORG_ID,
        "plan_id": plan.id,
        "mode": "tell",
        "model": "openai/gpt-4.1",
        "request_id": "same",
        "owner": "rep_test",
    }
    async with engine.begin() as conn:
        await records.insert_running(conn, stream_id="st_a", branch="main", **fields)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await records.insert_running(conn, stream_id="st_b", branch="other", **fields)


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://u:pw@127.0.0.1:5/db", "asyncpg"),  # as hosting services print it
        ("postgresql://u:pw@127.0.0.1:5/db", "asyncpg"),
        ("postgresql+asyncpg://u:pw@127.0.0.1:5/db", "asyncpg"),
        ("sqlite:///plancast.db", "aiosqlite"),
    ],
)
async def test_a_url_without_a_driver_gets_the_async_one(url: str, driver: str) -> None:
    engine = create_engine(url)  # connects only when used
    try:
        assert engine.dialect.driver == driver
    finally:
        await engine.dispose()


def test_a_url_of_another_database_is_refused_without_repeating_it() -> None:
    with pytest.raises(ValueError) as raised:
        create_engine("mysql://admin:hunter2-secret@127.0.0.1/plancast")
    assert "mysql" in str(raised.value) and "hunter2" not in str(raised.value)
