"""The store: migrations, SQLite's pragmas on every connection, and concurrent writers."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID, ensure_local_principal
from plancast.server.errors import Busy
from plancast.server.store.database import MIGRATIONS_DIR, create_engine, migrate
from plancast.server.store.schema import metadata, orgs
from plancast.server.streams import records
from tests.server.helpers import Server, new_key


def _head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        )
        return {name for (name,) in rows}


async def test_migrations_build_the_schema_on_a_fresh_database(tmp_path: Path) -> None:
    engine = create_engine(_url(tmp_path / "fresh.db"))
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


async def test_every_new_connection_gets_the_pragmas(engine: AsyncEngine) -> None:
    # Several at once, so that the pool has to open more than one connection.
    results = await asyncio.gather(*(_pragmas(engine) for _ in range(4)))
    for found in results:
        assert {k: found[k] for k in EXPECTED_PRAGMAS} == EXPECTED_PRAGMAS
        assert found["busy_timeout"] > 0


def test_the_apps_connections_get_the_pragmas(server: Server) -> None:
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


async def test_a_deleted_value_does_not_stay_in_the_database_file(
    engine: AsyncEngine, data_dir: Path
) -> None:
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
