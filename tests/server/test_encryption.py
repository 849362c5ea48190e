"""Encryption at rest (issue 8, part 5; DESIGN invariant 9).

- plan content is ciphertext in the database (and on disk, for SQLite), readable through
  the API;
- rotating the master key re-wraps the data keys: the new key opens them, the old does not;
- after an org is deleted (its data key shredded), a backup made before restores, and that
  org's content in it is unreadable while the other org's reads back whole;
- a backup is encrypted, holds no data key, and needs the master key to restore.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import convo, plans, projects
from plancast.server.domain.ids import now
from plancast.server.store import crypto
from plancast.server.store.backup import backup, restore
from plancast.server.store.crypto import (
    Keyring,
    KeyUnavailable,
    LocalMasterKey,
    new_master_key_text,
    parse_master_key,
    shred,
)
from plancast.server.store.database import create_engine, migrate
from plancast.server.store.schema import data_keys, messages, orgs
from tests import pg
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    Server,
    check_sequence,
    openai_creds,
    query,
    start_message,
    text_cells,
)

MARKER = "zq-secret-content-" + uuid.uuid4().hex


def test_content_is_ciphertext_in_the_database_and_plain_through_the_api(
    server: Server, emulator: Emulator
) -> None:
    plan_id = server.new_plan()
    context = {"items": [{"kind": "file", "name": "a.py", "content": f"# {MARKER}\n"}]}
    server.ok("POST", f"/api/v1/plans/{plan_id}/context", context)
    reply = f"Done {MARKER}.\n<pc:file path=\"b.py\">\nx = '{MARKER}'\n</pc:file>\n"
    emulator.push(Reply(text=reply, chunk_chars=8))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator), prompt=MARKER))
    assert check_sequence(events).status == "finished"
    assert MARKER in server.convo(plan_id)[-1]["content"]
    assert (
        MARKER
        in server.ok("GET", f"/api/v1/plans/{plan_id}/context?content=1")["items"][0]["content"]
    )
    for table, column in [
        ("messages", "content"),
        ("context_items", "content"),
        ("changes", "op"),
        ("stream_events", "data"),
    ]:
        values = [row[0] for row in query(server.data_dir, f"SELECT {column} FROM {table}")]
        assert values, table
        assert all(v.startswith("pce1:") for v in values), table
        assert not any(MARKER in v for v in values), table
    assert server.app.state.streams  # the stream's server is the one read above


def test_no_table_holds_clear_content_after_idempotent_requests(
    server: Server, emulator: Emulator
) -> None:
    """A retried request gets the stored response, so that response is stored: it can quote
    plan content (a rewind lists the versions it passed, a prompt's description its text)."""
    plan_id = server.new_plan()
    again = {"Idempotency-Key": "key-" + uuid.uuid4().hex}
    context = {"items": [{"kind": "file", "name": "a.py", "content": f"# {MARKER}\n"}]}
    loaded = server.post(f"/api/v1/plans/{plan_id}/context", context, headers=again)
    assert loaded.status_code == 200, loaded.text
    emulator.push(Reply(text=f"reply {MARKER}\n", chunk_chars=5))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator), prompt=MARKER))
    assert check_sequence(events).status == "finished"
    once = {"Idempotency-Key": "key-" + uuid.uuid4().hex}
    body = {"version": 3}  # the prompt's version: its description quotes the prompt
    moved = server.post(f"/api/v1/plans/{plan_id}/rewind", body, headers=once)
    assert moved.status_code == 200 and MARKER in moved.text
    retried = server.post(f"/api/v1/plans/{plan_id}/rewind", body, headers=once)
    assert retried.json() == moved.json()  # the stored response, read back through its key
    stored = query(server.data_dir, "SELECT body FROM idempotency_keys")
    assert len(stored) == 2 and all(value.startswith("pce1:") for (value,) in stored)
    clear = {table for table, values in text_cells(server.data_dir).items() for v in values
             if MARKER in v}  # fmt: skip
    assert clear == set()


@pytest.mark.sqlite_only
def test_no_clear_content_in_the_sqlite_files(server: Server, emulator: Emulator) -> None:
    plan_id = server.new_plan()
    emulator.push(Reply(text=f"reply {MARKER}\n", chunk_chars=5))
    server.run_stream(start_message(plan_id, openai_creds(emulator), prompt=f"ask {MARKER}"))
    server.wait_stream_ended(server.streams(plan_id)[0]["id"])
    found = [
        path.name
        for path in server.data_dir.iterdir()
        if path.is_file() and MARKER.encode() in path.read_bytes()
    ]
    where = [
        f"{table}.{column}"
        for (table,) in query(server.data_dir, "SELECT name FROM sqlite_master WHERE type='table'")
        for (column, *_rest) in [
            (c[1],) for c in query(server.data_dir, f"PRAGMA table_info({table})")
        ]
        if query(
            server.data_dir,
            f"SELECT count(*) FROM {table} WHERE CAST({column} AS TEXT) LIKE ?",
            f"%{MARKER}%",
        )[0][0]
    ]
    assert (found, where) == ([], [])


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    folder = tmp_path / "db"
    folder.mkdir()
    eng = create_engine(pg.database_url(folder))
    await migrate(eng)
    yield eng
    await eng.dispose()
    pg.forget(folder)


async def _org_with_message(
    engine: AsyncEngine, keys: Keyring, org_id: str, content: str
) -> tuple[str, str]:
    """An org, a plan, and one message in it under the org's key: (plan id, message id)."""
    async with engine.begin() as conn:
        await conn.execute(orgs.insert().values(id=org_id, name=org_id, created_at=now()))
        await keys.use_org(conn, org_id)
        project = await projects.create_project(conn, org_id, "p")
        plan = await plans.create_plan(conn, org_id, project.id, "q")
        message = await convo.insert_message(
            conn, org_id, plan.id, role="user", mode="tell", content=content
        )
    return plan.id, message.id


async def _read(engine: AsyncEngine, message_id: str) -> str:
    async with engine.connect() as conn:
        value = await conn.scalar(select(messages.c.content).where(messages.c.id == message_id))
    assert isinstance(value, str)
    return value


def _fresh_process(*org_ids: str) -> None:
    """Forget the unwrapped keys, as a restarted server has none."""
    for org_id in org_ids:
        crypto.forget(org_id)


async def test_rotation_rewraps_the_data_keys(engine: AsyncEngine) -> None:
    old = parse_master_key(new_master_key_text())
    new = parse_master_key(new_master_key_text())
    org = "org_rot" + uuid.uuid4().hex[:8]
    _, message_id = await _org_with_message(engine, Keyring(old), org, f"a {MARKER}")
    async with engine.begin() as conn:
        assert await Keyring(old).rewrap(conn, new) >= 1
        ids = set((await conn.execute(select(data_keys.c.master_key_id))).scalars())
    assert ids == {new.key_id}
    _fresh_process(org)
    async with engine.begin() as conn:
        with pytest.raises(KeyUnavailable):
            await Keyring(old).for_org(conn, org)
    async with engine.begin() as conn:
        await Keyring(new).for_org(conn, org)
    assert await _read(engine, message_id) == f"a {MARKER}"


async def test_after_shredding_an_old_backup_is_unreadable_for_that_org_only(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    master = LocalMasterKey(bytes(range(1, 33)))
    keys = Keyring(master)
    a, b = "org_a" + uuid.uuid4().hex[:8], "org_b" + uuid.uuid4().hex[:8]
    _, in_a = await _org_with_message(engine, keys, a, f"of A {MARKER}")
    _, in_b = await _org_with_message(engine, keys, b, f"of B {MARKER}")
    file = tmp_path / "plancast.backup"
    rows = await backup(engine, master, file)
    assert rows >= 8
    raw = file.read_bytes()
    assert MARKER.encode() not in raw and b"org_a" not in raw  # encrypted as a whole

    async with engine.begin() as conn:
        assert await shred(conn, a) == 1
        await conn.execute(orgs.delete().where(orgs.c.id == a))  # the org's rows go with it
    assert await restore(engine, master, file) == rows
    _fresh_process(a, b)

    async with engine.begin() as conn:
        await keys.for_org(conn, b)  # as the next request of org B does
        assert (await conn.scalar(text("SELECT count(*) FROM data_keys"))) == 1
    assert await _read(engine, in_b) == f"of B {MARKER}"
    with pytest.raises(Exception) as caught:
        await _read(engine, in_a)
    assert "KeyUnavailable" in repr(caught.value) or isinstance(caught.value, KeyUnavailable)


async def test_a_backup_needs_its_master_key(engine: AsyncEngine, tmp_path: Path) -> None:
    master = LocalMasterKey(bytes(range(1, 33)))
    await _org_with_message(engine, Keyring(master), "org_c" + uuid.uuid4().hex[:8], "c")
    file = tmp_path / "b"
    await backup(engine, master, file)
    with pytest.raises(ValueError, match="does not open this backup"):
        await restore(engine, LocalMasterKey(bytes(32)), file)
    (tmp_path / "junk").write_bytes(b"not a backup")
    with pytest.raises(ValueError, match="not a plancast backup"):
        await restore(engine, master, tmp_path / "junk")


def test_a_master_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(ValueError, match="not base64"):
        parse_master_key("not base64!")
    with pytest.raises(ValueError, match="32 bytes"):
        parse_master_key("AAAA")
    key = parse_master_key(new_master_key_text())
    assert key.key_id.startswith("mk_") and "LocalMasterKey" in repr(key)
