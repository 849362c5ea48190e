"""``plancast-server`` commands besides serving: master keys, backups.

They run with the server's own settings (the same flags and environment), against its
database, while the server runs or not: a backup reads in one transaction, a restore and a
rotation write in one. Their output names files and counts, never a key.
"""

from __future__ import annotations

import os
from pathlib import Path

from plancast.server.config import Settings
from plancast.server.store import backup as backups
from plancast.server.store.crypto import (
    MASTER_KEY_FILE,
    Keyring,
    MasterKey,
    load_master_key,
    new_master_key_text,
    parse_master_key,
)
from plancast.server.store.database import create_engine, migrate


def _master(settings: Settings) -> MasterKey:
    return load_master_key(
        settings.data_dir,
        key_text=settings.master_key,
        key_file=settings.master_key_file,
        kms_plugin=settings.kms_plugin,
    )


def new_master_key() -> str:
    return new_master_key_text()


async def rotate_master_key(settings: Settings, new_key_file: Path) -> str:
    """Re-wrap every data key under the key in ``new_key_file``; returns what to do next."""
    new = parse_master_key(new_key_file.read_text())
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        async with engine.begin() as conn:
            count = await Keyring(_master(settings)).rewrap(conn, new)
    finally:
        await engine.dispose()
    default = settings.data_dir / MASTER_KEY_FILE
    if not (settings.master_key or settings.master_key_file or settings.kms_plugin):
        # The key lived in the data folder: it is replaced there, atomically.
        tmp = default.with_name(MASTER_KEY_FILE + ".new")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(new_key_file.read_text().strip() + "\n")
        os.replace(tmp, default)
        return f"re-wrapped {count} data key(s); {default} now holds the new master key"
    return (
        f"re-wrapped {count} data key(s) under {new.key_id}; now point every replica at the "
        "new key (master_key_file or master_key) and restart them. Keep the old key as long "
        "as you keep backups made under it."
    )


async def run_backup(settings: Settings, path: Path) -> int:
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await backups.backup(engine, _master(settings), path)
    finally:
        await engine.dispose()


async def run_restore(settings: Settings, path: Path) -> int:
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        return await backups.restore(engine, _master(settings), path)
    finally:
        await engine.dispose()
