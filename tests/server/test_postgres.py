"""PostgreSQL itself: the engine's settings, and the atomic guarantees under writers at once.

On SQLite, writers take turns (``BEGIN IMMEDIATE``), so the guarantees below cannot be raced
there. On PostgreSQL they can: here every writer has a connection of its own, as server
replicas have, opens its transaction and waits at a barrier, and then all write together. What
must hold (DESIGN invariants 2 and 4, and idempotent requests):

- one running stream per plan branch: exactly one of N starts wins, the others are told who;
- a branch head moves by compare-and-set: N writers' commits all land, none is lost, the
  history stays one line; N rewinds from the same head: the ones that land form a chain;
- an idempotency key is claimed once; a user's stream limit holds;
- replicas that start at once on an empty database migrate it once.

These tests run on PostgreSQL whatever ``PLANCAST_TEST_DB`` says: they start the session's
cluster (``tests/pg.py``) and fail, saying why, where it cannot be started.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from plancast.server.domain import head_moves, plans, projects, versions
from plancast.server.domain.accounts import LOCAL_ORG_ID, LOCAL_USER_ID, ensure_local_principal
from plancast.server.errors import Busy, Conflict
from plancast.server.store.database import POOL_SIZE, create_engine, migrate
from plancast.server.store.schema import branches, orgs, streams
from plancast.server.store.schema import head_moves as head_moves_table
from plancast.server.streams import records
from plancast.server.web.idempotency import _claim
from tests import pg

WRITERS = 12
"""Writers racing at once, each on a connection of its own (a replica's)."""

T = TypeVar("T")


@pytest.fixture
def pg_folder(tmp_path: Path) -> Iterator[Path]:
    """A data folder whose database is on PostgreSQL, dropped at the end on either backend."""
    folder = tmp_path / "pg"
    yield folder
    pg.forget(folder)


@pytest.fixture
async def replicas(pg_folder: Path) -> AsyncIterator[list[AsyncEngine]]:
    """``WRITERS`` engines on one migrated database: one per replica, as in production."""
    url = pg.postgres_url(pg_folder)
    engines = [create_engine(url) for _ in range(WRITERS)]
    yield engines
    for engine in engines:
        await engine.dispose()


async def at_once(
    engines: list[AsyncEngine], write: Callable[[AsyncConnection, int], Awaitable[T]]
) -> list[T | BaseException]:
    """Run ``write(conn, n)`` on every engine in a transaction each, all past a barrier at once.

    Each writer has begun its transaction and run a statement (so holds a snapshot and a
    connection) before the barrier lets them all write. Returns results or exceptions, in order.
    """
    barrier = asyncio.Barrier(len(engines))

    async def one(n: int, engine: AsyncEngine) -> T:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT 1"))
            await barrier.wait()
            return await write(conn, n)

    return await asyncio.gather(
        *(one(n, engine) for n, engine in enumerate(engines)), return_exceptions=True
    )


async def new_plan(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        project = await projects.create_project(conn, LOCAL_ORG_ID, "races")
        return (await plans.create_plan(conn, LOCAL_ORG_ID, project.id, None)).id


def start(
    plan_id: str, branch: str, n: int, tag: str = ""
) -> Callable[[AsyncConnection], Awaitable[str]]:
    """A start of stream ``st_{branch}_{n}{tag}`` (its request id unique alike)."""
    stream_id = f"st_{branch}_{n}{tag}"

    async def insert(conn: AsyncConnection) -> str:
        await records.insert_running(
            conn,
            stream_id=stream_id,
            org_id=LOCAL_ORG_ID,
            plan_id=plan_id,
            branch=branch,
            mode="tell",
            model="openai/gpt-4.1",
            request_id=f"req-{stream_id}",
            owner=f"rep_{n}",
            user_id=LOCAL_USER_ID,
        )
        return stream_id

    return insert


# -- one running stream per branch ------------------------------------------------------------


async def test_one_of_n_replicas_starting_a_stream_on_a_branch_wins(
    replicas: list[AsyncEngine],
) -> None:
    plan_id = await new_plan(replicas[0])
    for round_ in range(4):  # the branch is free again once the winner has ended
        results = await at_once(
            replicas, lambda conn, n, tag=f"_r{round_}": start(plan_id, "main", n, tag)(conn)
        )
        winners = [r for r in results if isinstance(r, str)]
        assert len(winners) == 1, (round_, results)
        losers = [r for r in results if not isinstance(r, str)]
        assert len(losers) == WRITERS - 1
        assert all(isinstance(e, Busy) and e.stream_id == winners[0] for e in losers), losers
        async with replicas[0].begin() as conn:
            running = await conn.scalar(
                select(func.count())
                .select_from(streams)
                .where(streams.c.plan_id == plan_id, streams.c.status == "running")
            )
            assert running == 1
            await records.finish(
                conn, winners[0], status="finished", last_seq=1, error_code=None, error_message=None
            )


async def test_streams_on_different_branches_all_start_at_once(
    replicas: list[AsyncEngine],
) -> None:
    plan_id = await new_plan(replicas[0])
    results = await at_once(replicas, lambda conn, n: start(plan_id, f"b{n}", n)(conn))
    assert results == [f"st_b{n}_{n}" for n in range(WRITERS)]


async def test_the_per_user_stream_limit_holds_for_starts_at_once(
    replicas: list[AsyncEngine],
) -> None:
    """The check the engine makes before a start: lock the user, count, then insert."""
    limit = 3
    plan_id = await new_plan(replicas[0])

    async def start_within_limit(conn: AsyncConnection, n: int) -> str:
        await records.lock_user(conn, LOCAL_USER_ID)
        if await records.count_running_for_user(conn, LOCAL_USER_ID) >= limit:
            raise Busy("over the limit", stream_id=None)
        return await start(plan_id, f"b{n}", n)(conn)

    results = await at_once(replicas, start_within_limit)
    assert sum(isinstance(r, str) for r in results) == limit, results
    assert all(isinstance(r, (str, Busy)) for r in results), results


# -- branch heads -----------------------------------------------------------------------------


async def test_commits_of_n_replicas_on_one_branch_all_land_in_one_line(
    replicas: list[AsyncEngine],
) -> None:
    plan_id = await new_plan(replicas[0])
    per_writer = 4

    async def commit_several(conn: AsyncConnection, n: int) -> list[int]:
        numbers = []
        for k in range(per_writer):
            version = await versions.commit(
                conn,
                LOCAL_ORG_ID,
                plan_id,
                "main",
                "test",
                f"writer {n} commit {k}",
                lambda s, n=n, k=k: replace(s, messages=(*s.messages, f"msg_{n}_{k}")),
            )
            numbers.append(version.number)
        return numbers

    results = await at_once(replicas, commit_several)
    assert all(isinstance(r, list) for r in results), results
    total = WRITERS * per_writer
    assert sorted(n for r in results for n in r) == list(range(2, total + 2))  # type: ignore[union-attr]
    async with replicas[0].connect() as conn:
        chain = await versions.history(conn, LOCAL_ORG_ID, plan_id, "main")
    # One line: every version's parent is the one before it, and none was lost to a race.
    assert [v.number for v in chain] == list(range(1, total + 2))
    assert all(v.parent_id == p.id for p, v in zip(chain, chain[1:], strict=False))
    expected = {f"msg_{n}_{k}" for n in range(WRITERS) for k in range(per_writer)}
    assert sorted(chain[-1].state.messages) == sorted(expected)  # each mutation kept


async def test_commits_on_different_branches_of_a_plan_get_distinct_numbers(
    replicas: list[AsyncEngine],
) -> None:
    plan_id = await new_plan(replicas[0])
    async with replicas[0].begin() as conn:
        root = await versions.head(conn, LOCAL_ORG_ID, plan_id, "main")
        for n in range(1, WRITERS):
            await conn.execute(
                branches.insert().values(
                    id=f"br_{n}",
                    org_id=LOCAL_ORG_ID,
                    plan_id=plan_id,
                    name=f"b{n}",
                    head_id=root.id,
                    created_at=0.0,
                )
            )

    async def commit(conn: AsyncConnection, n: int) -> int:
        branch = "main" if n == 0 else f"b{n}"
        version = await versions.commit(
            conn, LOCAL_ORG_ID, plan_id, branch, "test", f"on {branch}", lambda s: s
        )
        return version.number

    results = await at_once(replicas, commit)
    assert sorted(results) == list(range(2, WRITERS + 2)), results  # type: ignore[type-var]


async def test_rewinds_from_one_head_at_once_move_it_as_a_chain(
    replicas: list[AsyncEngine],
) -> None:
    """A rewind is a compare-and-set on the head: no two of them move it from the same place."""
    plan_id = await new_plan(replicas[0])
    async with replicas[0].begin() as conn:
        for _ in range(WRITERS):
            await versions.commit(conn, LOCAL_ORG_ID, plan_id, "main", "test", "v", lambda s: s)
        start_head = await versions.head(conn, LOCAL_ORG_ID, plan_id, "main")
    assert start_head.number == WRITERS + 1

    async def rewind(conn: AsyncConnection, n: int) -> str:
        move = await head_moves.rewind(conn, LOCAL_ORG_ID, plan_id, "main", str(n + 1))
        return move.after.id

    results = await at_once(replicas, rewind)
    landed = [r for r in results if isinstance(r, str)]
    assert landed, results
    assert all(isinstance(r, (str, Conflict)) for r in results), results
    async with replicas[0].connect() as conn:
        moves = (
            await conn.execute(
                select(head_moves_table.c.from_id, head_moves_table.c.to_id)
                .where(head_moves_table.c.plan_id == plan_id)
                .order_by(head_moves_table.c.created_at)
            )
        ).all()
        final = await versions.head(conn, LOCAL_ORG_ID, plan_id, "main")
    assert len(moves) == len(landed)
    froms = [start_head.id] + [to for _, to in moves[:-1]]
    assert [f for f, _ in moves] == froms  # each move starts where the previous one left it
    assert final.id == moves[-1][1]


# -- idempotency keys, migrations, the engine -------------------------------------------------


async def test_an_idempotency_key_is_claimed_once_by_requests_at_once(
    replicas: list[AsyncEngine],
) -> None:
    barrier = asyncio.Barrier(WRITERS)

    async def claim(engine: AsyncEngine) -> Any:
        await barrier.wait()
        return await _claim(engine, LOCAL_ORG_ID, "race-key-0001", "POST", "/api/v1/projects")

    results = await asyncio.gather(*(claim(e) for e in replicas), return_exceptions=True)
    assert results.count(None) == 1, results  # the one that runs the request
    others = [r for r in results if r is not None]
    assert all(isinstance(e, Conflict) and "still running" in e.message for e in others), others


async def test_replicas_starting_at_once_migrate_an_empty_database_once(
    pg_folder: Path,
) -> None:
    url = pg.postgres_url(pg_folder, migrated=False)
    engines = [create_engine(url) for _ in range(4)]
    barrier = asyncio.Barrier(len(engines))

    async def start_up(engine: AsyncEngine) -> str:
        await barrier.wait()
        revision = await migrate(engine)
        async with engine.begin() as conn:
            await ensure_local_principal(conn)
        return revision

    try:
        async with asyncio.timeout(60):  # unserialized, they can wait on each other for ever
            revisions = await asyncio.gather(*(start_up(e) for e in engines))
        assert len(set(revisions)) == 1 and revisions[0] != "base"
        async with engines[0].connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(orgs)) == 1
            assert await conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        for engine in engines:
            await engine.dispose()


async def test_the_engine_runs_read_committed_whatever_the_database_default(
    pg_folder: Path,
) -> None:
    """The compare-and-set retries must see the winner's commit: a snapshot would hide it."""
    url = pg.postgres_url(pg_folder)
    name = pg.database_name(pg_folder)
    pg.cluster().fetch(
        "postgres", f'ALTER DATABASE "{name}" SET default_transaction_isolation = serializable'
    )
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SHOW transaction_isolation")) == "read committed"
            assert await conn.scalar(text("SHOW application_name")) == "plancast-server"
        assert engine.pool.size() == POOL_SIZE  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_a_pooled_connection_cut_by_the_server_is_replaced(pg_folder: Path) -> None:
    """Pre-ping: a connection the server closed (restart, idle timeout) is not handed out."""
    engine = create_engine(pg.postgres_url(pg_folder))
    try:
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        ((ended,),) = pg.cluster().fetch("postgres", "SELECT pg_terminate_backend($1)", pid)
        assert ended is True
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()
