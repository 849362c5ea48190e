"""The database a test runs on: SQLite files, or a throwaway PostgreSQL cluster on loopback.

``PLANCAST_TEST_DB=postgresql`` runs the suite on PostgreSQL (``scripts/test`` runs it once on
each backend). Tests do not name a backend: they ask for ``database_url(data_dir)``, which is
the SQLite file in the data folder, as the server's own default, or else a PostgreSQL database
made for that folder on first use, from a migrated template (``CREATE DATABASE … TEMPLATE``
takes tens of milliseconds, migrating takes far longer). Each test thus gets databases of its
own, and the root conftest drops those under the test's ``tmp_path`` when it ends.

The cluster is started once per session, on first use, with this machine's ``initdb`` and
``pg_ctl`` (from PATH, else Debian's ``/usr/lib/postgresql/*/bin``), in a temp folder, listening
on 127.0.0.1 only, on a free port, with password authentication and its socket in that folder,
so nothing else on the machine can reach it. fsync is off: its data is thrown away. PostgreSQL
refuses to run as root, so under root the cluster belongs to the ``postgres`` user. It is
stopped and removed at the end of the session (``shutdown``, from the root conftest, and at
exit); a cluster left behind by a session that was killed is removed by the next one.

A test that needs PostgreSQL where it cannot be started fails, saying why: it is not skipped.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

ENV = "PLANCAST_TEST_DB"
BACKENDS = ("sqlite", "postgresql")
BACKEND = os.environ.get(ENV, "") or "sqlite"
"""Read once at import: the root conftest removes every ``PLANCAST_*`` variable during tests."""
if BACKEND not in BACKENDS:
    raise pytest.UsageError(f"{ENV} must be one of {', '.join(BACKENDS)}, not {BACKEND!r}")
POSTGRESQL = BACKEND == "postgresql"

SUPERUSER = "plancast"
TEMPLATE = "plancast_template"
_PREFIX = "plancast-pg-"
_OWNER_FILE = "owner.pid"
_START_TIMEOUT_S = 60
_SYSTEM_USER = "postgres"  # the account PostgreSQL runs as when the tests run as root

T = TypeVar("T")


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the text says what is missing."""


@dataclass(frozen=True)
class Cluster:
    """A running throwaway cluster: where it lives and how to reach it."""

    root: Path  # the temp folder: data directory, socket, log, password file
    bin_dir: Path
    port: int
    password: str
    version: int = 0  # server_version_num, e.g. 150018

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL the server is given for ``database``."""
        return f"postgresql+asyncpg://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    async def connect(self, database: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            database=database,
        )

    def fetch(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement in ``database`` from synchronous code; its rows as tuples."""

        async def run() -> list[tuple[Any, ...]]:
            conn = await self.connect(database)
            try:
                return [tuple(row) for row in await conn.fetch(sql, *params)]
            finally:
                await conn.close()

        return run_sync(run)

    def create_database(self, name: str, *, template: str | None = TEMPLATE) -> None:
        source = f" TEMPLATE {template}" if template else ""
        if template and self.version >= 150000:
            # Copying the files is twice as fast here as logging every page (15's default),
            # and keeps the WAL that test_secrets.py scans small.
            source += " STRATEGY FILE_COPY"
        self.fetch("postgres", f'CREATE DATABASE "{name}"{source}')

    def drop_database(self, name: str) -> None:
        # FORCE: a server that a failed test left running must not keep the database alive.
        self.fetch("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def checkpoint(self) -> None:
        """Write every changed page to the data files, so that scanning them sees all data."""
        self.fetch("postgres", "CHECKPOINT")


def run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to the end on a fresh event loop in a thread of its own.

    A thread, because the caller may itself be inside a running loop (an async test).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(_awaited(make))
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="plancast-test-db")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]


async def _awaited(make: Callable[[], Awaitable[T]]) -> T:
    return await make()


# -- the session's cluster --------------------------------------------------------------------

_lock = threading.Lock()
_cluster: Cluster | None = None
_failure: str | None = None
_databases: dict[Path, str] = {}  # data folder → its database, while it exists


def cluster() -> Cluster:
    """The session's cluster, started on first use; a test that cannot have it fails."""
    global _cluster, _failure
    with _lock:
        if _cluster is None and _failure is None:
            try:
                _cluster = _start()
            except (PostgresUnavailable, OSError) as exc:
                _failure = str(exc)  # tried once: every later test fails at once, saying so
        if _cluster is None:
            pytest.fail(f"this test needs PostgreSQL: {_failure}", pytrace=False)
        return _cluster


def shutdown() -> None:
    """Stop the cluster and remove its folder; safe to call more than once."""
    global _cluster
    with _lock:
        found, _cluster = _cluster, None
        _databases.clear()
    if found is not None:
        _remove(found.root, found.bin_dir)


def database_url(data_dir: Path, *, migrated: bool = True) -> str:
    """The database URL of the server whose data folder is ``data_dir``.

    SQLite: the server's default file in that folder. PostgreSQL: a database of the folder's
    own, made on first use from the migrated template (with the local org, as a test's copy of
    the SQLite template has it), or empty (``migrated=False``) for a test of the migrations.
    """
    if not POSTGRESQL:
        return f"sqlite+aiosqlite:///{data_dir / 'plancast.db'}"
    return postgres_url(data_dir, migrated=migrated)


def postgres_url(data_dir: Path, *, migrated: bool = True) -> str:
    """``database_url`` on PostgreSQL whatever the backend: for tests of PostgreSQL itself."""
    db = cluster()
    key = data_dir.resolve()
    with _lock:
        name = _databases.get(key)
        if name is None:
            name = "t_" + hashlib.sha256(str(key).encode()).hexdigest()[:24]
            db.create_database(name, template=TEMPLATE if migrated else None)
            _databases[key] = name
    return db.url(name)


def database_name(data_dir: Path) -> str:
    """The PostgreSQL database made for ``data_dir`` (``postgres_url`` made it)."""
    return _databases[data_dir.resolve()]


def forget(data_dir: Path) -> None:
    """Drop the PostgreSQL database of ``data_dir``, if one was made (a SQLite file stays)."""
    drop_under(data_dir)


def drop_under(folder: Path) -> None:
    """Drop the databases of every data folder inside ``folder`` (a test's ``tmp_path``)."""
    folder = folder.resolve()
    with _lock:
        names = [(path, name) for path, name in _databases.items() if path.is_relative_to(folder)]
        for path, _ in names:
            del _databases[path]
    if names and _cluster is not None:
        for _, name in names:
            _cluster.drop_database(name)


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run SQLite-flavoured ``sql`` on the PostgreSQL database of ``data_dir``.

    ``?`` placeholders become ``$1``, ``$2`` …, and SQLite's implicit ``rowid`` becomes
    ``ctid``: both order the rows of a table that is only appended to (the tests order usage
    rows by it) in the order they were written.
    """
    numbered = iter(range(1, len(params) + 1))
    text = re.sub(r"\?", lambda _: f"${next(numbered)}", sql)
    text = re.sub(r"\browid\b", "ctid", text)
    postgres_url(data_dir)
    return cluster().fetch(database_name(data_dir), text, *params)


# -- starting and stopping --------------------------------------------------------------------


def _binaries() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    raise PostgresUnavailable(
        "initdb and pg_ctl are neither on PATH nor in /usr/lib/postgresql/*/bin; install "
        "PostgreSQL's server (Debian: apt-get install postgresql), or run the suite on "
        f"SQLite only (unset {ENV})"
    )


def _owner() -> pwd.struct_passwd | None:
    """The account the cluster runs as: ``postgres`` under root, else the current user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(_SYSTEM_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"the tests run as root, which PostgreSQL refuses, and there is no "
            f"{_SYSTEM_USER!r} user to run it as"
        ) from None


def _command(args: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return args
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("the tests run as root and runuser is not on PATH")
    return [runuser, "-u", _SYSTEM_USER, "--", *args]


def _run(args: list[str], root: Path, timeout: float = _START_TIMEOUT_S) -> None:
    try:
        done = subprocess.run(
            _command(args),
            cwd=root,  # a folder the cluster's owner can enter (not root's own)
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(f"{Path(args[0]).name} took more than {timeout} s") from None
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{Path(args[0]).name} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start() -> Cluster:
    bin_dir = _binaries()
    owner = _owner()
    _remove_abandoned(bin_dir)
    root = Path(tempfile.mkdtemp(prefix=_PREFIX))
    (root / _OWNER_FILE).write_text(str(os.getpid()))
    try:
        password = secrets.token_urlsafe(24)
        pwfile = root / "pwfile"
        pwfile.write_text(password + "\n")
        if owner is not None:
            for path in (root, pwfile):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        _run(
            [
                str(bin_dir / "initdb"),
                "--pgdata",
                str(root / "data"),
                "--username",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth",
                "scram-sha-256",
                "--encoding",
                "UTF8",
                "--locale",
                "C",  # byte order, as SQLite compares text
                "--no-sync",
            ],
            root,
        )
        pwfile.unlink()
        atexit.register(shutdown)
        return _launch(root, bin_dir, password)
    except BaseException:
        _remove(root, bin_dir)
        raise


def _launch(root: Path, bin_dir: Path, password: str) -> Cluster:
    """Start the server on a free port; another one if that port was taken meanwhile."""
    data = root / "data"
    (data / "pg_hba.conf").write_text(
        "# Only this test session: the socket in a private folder, and loopback TCP.\n"
        "local all all scram-sha-256\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
    )
    socket_dir = str(root).replace("'", "''")
    base = (data / "postgresql.conf").read_text()
    error: PostgresUnavailable | None = None
    for _ in range(3):
        port = _free_port()
        (data / "postgresql.conf").write_text(
            base
            + "\n# plancast tests: loopback only, and speed over durability (thrown away).\n"
            + f"listen_addresses = '127.0.0.1'\nport = {port}\n"
            + f"unix_socket_directories = '{socket_dir}'\n"
            + "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            + "wal_level = minimal\nmax_wal_senders = 0\nmax_wal_size = 64MB\n"
            + "max_connections = 300\nshared_buffers = 64MB\n"
        )
        log = root / "postgres.log"
        try:
            _run(
                [str(bin_dir / "pg_ctl"), "start", "--wait", "--timeout", "60"]
                + ["--pgdata", str(data), "--log", str(log)],
                root,
                timeout=_START_TIMEOUT_S + 10,
            )
        except PostgresUnavailable as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            error = PostgresUnavailable(f"{exc}\n{tail}")
            if "already in use" not in tail:
                break
            continue
        found = Cluster(root, bin_dir, port, password)
        ((version,),) = found.fetch("postgres", "SELECT current_setting('server_version_num')")
        found = replace(found, version=int(version))
        _make_template(found)
        return found
    assert error is not None
    raise error


def _make_template(found: Cluster) -> None:
    """The migrated database with the local org that every test database is copied from."""
    from plancast.server.domain.accounts import ensure_local_principal
    from plancast.server.store.database import create_engine, migrate

    found.create_database(TEMPLATE, template=None)

    async def build() -> None:
        engine = create_engine(found.url(TEMPLATE))
        try:
            await migrate(engine)
            async with engine.begin() as conn:
                await ensure_local_principal(conn)
        finally:
            await engine.dispose()

    run_sync(build)


def _remove(root: Path, bin_dir: Path) -> None:
    """Stop the cluster in ``root`` (immediately: its data is thrown away) and delete it."""
    if (root / "data" / "postmaster.pid").exists():
        with contextlib.suppress(PostgresUnavailable):
            _run(
                [str(bin_dir / "pg_ctl"), "stop", "--mode", "immediate", "--wait"]
                + ["--pgdata", str(root / "data")],
                root,
            )
    shutil.rmtree(root, ignore_errors=True)


def _remove_abandoned(bin_dir: Path) -> None:
    """Remove the clusters of earlier sessions whose test process no longer exists.

    Only folders made here (named so, with the owner file) are touched, and only when the
    process that made them is gone: a session that was killed could not clean up.
    """
    for root in Path(tempfile.gettempdir()).glob(_PREFIX + "*"):
        try:
            pid = int((root / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if pid == os.getpid() or _alive(pid):
            continue
        _remove(root, bin_dir)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
