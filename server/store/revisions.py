"""Whether the database holds the schema this code was written for (for ``/readyz``).

The code's head revision is read once from the migration scripts; the database's is what
Alembic recorded in ``alembic_version``. They differ while a migration is pending (the
database is behind, as when a replica of an older release migrated nothing) or once a newer
release has migrated it (ahead): either way this server should not take traffic.

Nothing here repeats a database URL or a driver's error text (which can hold a host, a user
or a password): a failure is described by the exception's class name only.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.store.database import MIGRATIONS_DIR

VERSION_TABLE = "alembic_version"  # where Alembic records the revision (its default name)


@dataclass(frozen=True, slots=True)
class SchemaCheck:
    """``reason`` is None when the database answered and is at the code's head."""

    revision: str | None  # the database's, when it could be read
    reason: str | None

    @property
    def ready(self) -> bool:
        return self.reason is None


@functools.cache
def code_heads() -> frozenset[str]:
    """The head revision(s) of the migration scripts shipped with this code."""
    return frozenset(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


async def check_schema(engine: AsyncEngine, timeout_s: float) -> SchemaCheck:
    """Ask the database for its revision (two small catalog and table reads), within
    ``timeout_s``: that it answers at all is the reachability check."""
    try:
        async with asyncio.timeout(timeout_s):
            async with engine.connect() as conn:
                found = await conn.run_sync(_database_heads)
    except TimeoutError:
        return SchemaCheck(None, f"the database did not answer within {timeout_s:g} s")
    except Exception as exc:  # whatever the driver raised: it is the answer, not a bug
        return SchemaCheck(None, f"the database cannot be reached ({type(exc).__name__})")
    wanted = code_heads()
    revision = ",".join(sorted(found)) or None
    if found == wanted:
        return SchemaCheck(revision, None)
    needed = ",".join(sorted(wanted))
    if not found:
        return SchemaCheck(None, f"the database has no migrations applied; it needs {needed}")
    return SchemaCheck(
        revision, f"the database is at revision {revision}; this code needs {needed}"
    )


def _database_heads(connection: Connection) -> frozenset[str]:
    # Plain queries rather than Alembic's MigrationContext, which logs two INFO lines each
    # time: a probe every few seconds would fill the log with them.
    if not inspect(connection).has_table(VERSION_TABLE):
        return frozenset()
    rows = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return frozenset(str(revision) for (revision,) in rows)
