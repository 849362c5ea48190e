"""Opening the database: engine, connection pragmas, and migrations on start.

SQLite is the zero-set-up default (aiosqlite, WAL, ``secure_delete`` so that a
deleted value does not linger in free pages). PostgreSQL is selected by a
``postgresql+asyncpg://`` URL, for several server replicas on one database. Either
way the schema reaches the database only through the Alembic migrations in
``store/migrations``, and the same queries run on both: the atomic guarantees
(one running stream per branch, head compare-and-set, idempotency keys) come from
unique indexes and conditional updates, which both enforce under concurrent writers.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from plancast.server.errors import InvalidRequest

logger = logging.getLogger("plancast.server.store")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x706C616E63617374  # "plancast": the advisory lock key for migrations


POOL_SIZE = 10
"""PostgreSQL connections a server keeps open. Transactions here are short (no model call runs
inside one), so a few connections serve many streams; bursts borrow up to ``POOL_OVERFLOW``
more, and several replicas must stay well under the server's ``max_connections`` (100)."""
POOL_OVERFLOW = 10


_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",  # the scheme libpq and many hosting services print
}


def storable(text: str) -> str:
    """``text`` as any database stores it: NUL, which PostgreSQL's text cannot hold, as U+FFFD.

    For text a model wrote (clients' text with a NUL is refused instead): the stream shows and
    keeps the same reply on either backend.
    """
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine for ``url``: SQLite with its pragmas, or PostgreSQL.

    A URL without a driver gets the async one shipped with the ``server`` extra, so the URL a
    hosting service prints (``postgres://…``) works as it is.

    PostgreSQL runs at READ COMMITTED whatever the server's default: the compare-and-set
    writes (``versions.commit``, head moves) retry inside their transaction and must then see
    what the winner committed, which a snapshot (REPEATABLE READ) would hide. Pre-ping, because
    a pooled connection can be cut by a server restart or a proxy's idle timeout.

    Raises:
        ValueError: neither a SQLite nor a PostgreSQL URL (the text never repeats the URL,
            which can hold a password).
    """
    parsed = make_url(url)
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        engine = _SQLiteEngine(
            create_async_engine(parsed, connect_args={"timeout": 30}).sync_engine
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
    elif backend == "postgresql":
        engine = create_async_engine(
            parsed,
            isolation_level="READ COMMITTED",
            pool_pre_ping=True,
            pool_size=POOL_SIZE,
            max_overflow=POOL_OVERFLOW,
            pool_timeout=30,
            connect_args={"server_settings": {"application_name": "plancast-server"}},
        )
    else:
        raise ValueError(
            "database_url must be sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB, "
            f"not a {backend!r} URL"
        )
    event.listen(engine.sync_engine, "before_cursor_execute", _refuse_nul)
    return engine


def _refuse_nul(
    _conn: Connection,
    _cursor: Any,
    _statement: str,
    parameters: Any,
    _context: Any,
    executemany: bool,
) -> None:
    """Refuse a statement whose text values hold a NUL, on either backend.

    PostgreSQL's text cannot hold one (SQLite's can): refusing it here, as the client's error,
    keeps the two backends alike, and comes after every more specific check of the request
    (an unsafe path is ``unsafe_path``). Text a model wrote was made ``storable`` before.
    """
    for row in parameters if executemany else (parameters,):
        values = row.values() if isinstance(row, dict) else row
        if any(isinstance(value, str) and "\x00" in value for value in values or ()):
            raise InvalidRequest("text holding a NUL (\\u0000) character cannot be stored")


_WRITES = "plancast_writes"
"""The execution option ``_SQLiteEngine.begin`` sets on the connections it opens."""


class _SQLiteEngine(AsyncEngine):
    """An engine whose ``begin()`` transactions take SQLite's write lock up front.

    Everything that writes runs in ``engine.begin()``; ``engine.connect()`` only reads (nothing
    commits it). Only the writers may take the lock: a reader holding it would block every
    writer for as long as it reads, and all of them for good if its connection were ever left
    open (cancelled mid-read, say), where a WAL reader blocks no one.
    """

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            await conn.execution_options(**{_WRITES: True})
            async with conn.begin():
                yield conn


def _sqlite_begin(connection: Connection) -> None:
    # A deferred transaction that reads and then writes fails at once with SQLITE_BUSY when
    # another writer committed in between; taking the write lock up front makes concurrent
    # writers wait (busy_timeout) instead. Readers begin deferred and never wait for it.
    writes = connection.get_execution_options().get(_WRITES, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, see below
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "secure_delete=ON",
        "busy_timeout=30000",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


async def migrate(engine: AsyncEngine) -> str:
    """Apply every pending migration; returns the revision the database is at."""
    async with engine.begin() as conn:
        return await conn.run_sync(_upgrade)


def _upgrade(connection: Connection) -> str:
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        # Replicas starting at once would run the same migration twice; the lock (held to
        # the end of the transaction, which also holds the DDL) makes the others wait, then
        # find the database at head. SQLite's BEGIN IMMEDIATE does the same there.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
    command.upgrade(config, "head")
    revision = MigrationContext.configure(connection).get_current_revision() or "base"
    logger.info("database schema at revision %s", revision)
    return revision
