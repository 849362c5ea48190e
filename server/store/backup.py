"""``plancast-server backup`` and ``restore``: the database in one encrypted file.

A backup holds every table but ``data_keys``: content stays encrypted as stored (under the
orgs' data keys), and the whole file is encrypted again under a one-time backup key that
the master key wraps. Without ``data_keys`` in it, an org deleted after the backup was made
(its data key shredded) cannot be read from it, while every other org restores whole.

File layout: a first line ``plancast-backup 1``, a JSON header line (revision, master key
id, the wrapped backup key, the nonce), then the AES-256-GCM ciphertext of the zlib-packed
JSON lines, one per row, each ``[table, {column: value}]``. Binary values are base64.

Restoring replaces every row of every table but ``data_keys`` in one transaction, on a
database at the same migration revision.
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, Table, bindparam, select, text, type_coerce
from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.store.crypto import Encrypted, KeyUnavailable, MasterKey
from plancast.server.store.schema import data_keys, metadata

MAGIC = b"plancast-backup 1\n"
_AAD = b"plancast backup"


def _tables() -> list[Table]:
    """Every table a backup holds, parents before children (foreign keys)."""
    return [t for t in metadata.sorted_tables if t is not data_keys]


async def _revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


async def backup(engine: AsyncEngine, master: MasterKey, path: Path) -> int:
    """Write the backup file; returns the number of rows in it."""
    lines: list[bytes] = []
    async with engine.connect() as conn:
        for table in _tables():
            # As stored: encrypted columns are read as plain text, not decrypted.
            columns = [type_coerce(c, _stored(c.type)).label(c.name) for c in table.columns]
            for row in await conn.execute(select(*columns)):
                values = {k: _dump(v) for k, v in row._mapping.items()}
                lines.append(json.dumps([table.name, values], separators=(",", ":")).encode())
    backup_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    body = AESGCM(backup_key).encrypt(nonce, zlib.compress(b"\n".join(lines), 6), _AAD)
    header = {
        "revision": await _revision(engine),
        "master_key_id": master.key_id,
        "key": base64.b64encode(master.wrap(backup_key, _AAD)).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "rows": len(lines),
    }
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(MAGIC + json.dumps(header).encode() + b"\n" + body)
    os.replace(tmp, path)
    return len(lines)


async def restore(engine: AsyncEngine, master: MasterKey, path: Path) -> int:
    """Replace the database's rows (all but ``data_keys``) with the backup's; returns the count.

    Raises:
        ValueError: not a plancast backup, another migration revision, or a master key that
            does not open it (the message says which).
    """
    raw = path.read_bytes()
    if not raw.startswith(MAGIC):
        raise ValueError(f"{path} is not a plancast backup")
    header_line, _, body = raw[len(MAGIC) :].partition(b"\n")
    header = json.loads(header_line)
    revision = await _revision(engine)
    if header["revision"] != revision:
        raise ValueError(
            f"the backup is of revision {header['revision']}, the database of {revision}: "
            "restore it with the plancast-server version that made it"
        )
    try:
        key = master.unwrap(base64.b64decode(header["key"]), _AAD)
        packed = AESGCM(key).decrypt(base64.b64decode(header["nonce"]), body, _AAD)
    except (KeyUnavailable, InvalidTag):
        made_under = header["master_key_id"]
        raise ValueError(
            f"the master key does not open this backup (it was made under {made_under})"
        ) from None
    rows: dict[str, list[dict[str, Any]]] = {}
    for line in zlib.decompress(packed).split(b"\n") if packed else ():
        if line:
            name, values = json.loads(line)
            rows.setdefault(name, []).append(values)
    tables = _tables()
    async with engine.begin() as conn:
        for table in reversed(tables):
            await conn.execute(table.delete())
        for table in tables:
            batch = [
                {k: _load(v, table.c[k].type) for k, v in values.items()}
                for values in rows.get(table.name, [])
            ]
            if batch:
                # Inserted as stored: the encrypted columns' values are ciphertext already.
                await conn.execute(_raw_insert(table), batch)
    return sum(len(v) for v in rows.values())


def _raw_insert(table: Table) -> Any:
    """An insert that binds every column as its storage type (no encryption on the way)."""
    values = {c.name: type_coerce(bindparam(c.name), _stored(c.type)) for c in table.columns}
    return table.insert().values(values)


def _stored(kind: Any) -> Any:
    """A column's type as the database stores it (an ``Encrypted`` column: its text)."""
    return kind.impl if isinstance(kind, Encrypted) else kind


def _dump(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(bytes(value)).decode()}
    return value


def _load(value: Any, kind: Any) -> Any:
    if isinstance(value, dict) and "b64" in value and isinstance(kind, LargeBinary):
        return base64.b64decode(value["b64"])
    return value
