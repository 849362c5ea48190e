"""Encryption at rest: plan content under per-org data keys, wrapped by a master key.

Layout (DESIGN invariant 9):

- **Master key**: 32 bytes from ``master_key`` (base64, from the environment), a file
  (``master_key_file``), or a KMS plugin (``kms_plugin = "module:factory"``). It never
  encrypts data; it only wraps data keys. With none configured, the server makes one in its
  data folder on first start (mode 0600); replicas must then share it.
- **Data keys**: one random AES-256 key per org, stored wrapped (AES-256-GCM under the master
  key, bound to the org and key id) in ``data_keys``. Unwrapped keys live in this process's
  memory only, after the org's first request.
- **Content**: the columns typed ``Encrypted`` (context, conversation, changes, stream events,
  commit messages) hold ``pce1:<key id>:<base64(nonce | ciphertext | tag)>``, AES-256-GCM
  with the column's name as associated data, so a value cannot be moved to another column.
- **Shredding**: deleting an org deletes its data-key row. Backups (``backup.py``) never
  carry ``data_keys``, so the org's content in any old backup becomes unreadable, and only
  that org's.

Which key encrypts a write is the org of the request or stream being served: ``use_org``
sets it in a context variable (request handlers and stream tasks each run in their own
context). A write to an encrypted column with no org key set raises: nothing is ever stored
in clear by mistake.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import hashlib
import importlib
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.types import TypeDecorator

logger = logging.getLogger("plancast.server.store")

PREFIX = "pce1:"
MASTER_KEY_FILE = "master.key"


class KeyUnavailable(Exception):
    """Content whose data key is not here: its org was deleted (shredded), or a bug."""


class MasterKey(Protocol):
    """What wraps data keys; a KMS plugin returns one of these."""

    key_id: str

    def wrap(self, key: bytes, aad: bytes) -> bytes: ...

    def unwrap(self, blob: bytes, aad: bytes) -> bytes: ...


class LocalMasterKey:
    """A 32-byte master key held by the server (from the environment or a file)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != 32:
            raise ValueError("a master key is 32 bytes (44 characters of base64)")
        self._aes = AESGCM(secret)
        self.key_id = "mk_" + hashlib.sha256(b"plancast master key id" + secret).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"LocalMasterKey({self.key_id})"

    def wrap(self, key: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aes.encrypt(nonce, key, aad)

    def unwrap(self, blob: bytes, aad: bytes) -> bytes:
        try:
            return self._aes.decrypt(blob[:12], blob[12:], aad)
        except InvalidTag:
            raise KeyUnavailable(
                "a data key does not open with this master key (wrong or rotated master key)"
            ) from None


def parse_master_key(text: str) -> LocalMasterKey:
    """A master key from its base64 text (what ``plancast-server new-master-key`` prints)."""
    try:
        secret = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the master key is not base64") from None
    return LocalMasterKey(secret)


def new_master_key_text() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def load_master_key(
    data_dir: Path,
    *,
    key_text: str = "",
    key_file: Path | None = None,
    kms_plugin: str = "",
    shared: bool = False,
) -> MasterKey:
    """The configured master key; made in ``data_dir`` if none is configured.

    Raises:
        ValueError: a configured key is malformed, unreadable, or the plugin fails to load
            (the text never repeats a key).
    """
    if kms_plugin:
        module_name, _, attr = kms_plugin.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr or "master_key")
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"cannot load kms_plugin {kms_plugin!r}: {exc}") from None
        key: MasterKey = factory()
        return key
    if key_text:
        return parse_master_key(key_text)
    if key_file is not None:
        try:
            return parse_master_key(Path(key_file).read_text())
        except OSError as exc:
            raise ValueError(f"cannot read master_key_file {key_file}: {exc.strerror}") from None
    path = data_dir / MASTER_KEY_FILE
    try:
        return parse_master_key(path.read_text())
    except FileNotFoundError:
        pass
    text = new_master_key_text()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
    # On a database that replicas may share, every one of them needs this same key.
    logger.log(
        logging.WARNING if shared else logging.INFO,
        "made a new master key in %s: back it up apart from the database (without it, "
        "nothing stored can be read)%s",
        path,
        "; give every replica the same one (master_key_file)" if shared else "",
    )
    return parse_master_key(text)


# -- data keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataKey:
    key_id: str
    org_id: str
    aes: AESGCM

    def __repr__(self) -> str:
        return f"DataKey({self.key_id}, org={self.org_id})"


_OPEN: dict[str, DataKey] = {}  # key id → unwrapped key, in this process only
_BY_ORG: dict[str, DataKey] = {}
_CURRENT: contextvars.ContextVar[DataKey | None] = contextvars.ContextVar(
    "plancast_data_key", default=None
)


def _aad(org_id: str, key_id: str) -> bytes:
    return f"plancast data key|{org_id}|{key_id}".encode()


class Keyring:
    """Data keys of orgs: loaded, made, re-wrapped and shredded through the database."""

    def __init__(self, master: MasterKey) -> None:
        self.master = master

    async def for_org(self, conn: AsyncConnection, org_id: str) -> DataKey:
        """The org's data key, made on first use (one per org, whichever replica asks)."""
        found = _BY_ORG.get(org_id)
        if found is not None:
            return found
        from plancast.server.store.schema import data_keys

        row = (await conn.execute(select(data_keys).where(data_keys.c.org_id == org_id))).first()
        if row is None:
            key_id = "dk_" + secrets.token_hex(8)
            secret = AESGCM.generate_key(bit_length=256)
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        data_keys.insert().values(
                            key_id=key_id,
                            org_id=org_id,
                            wrapped=self.master.wrap(secret, _aad(org_id, key_id)),
                            master_key_id=self.master.key_id,
                            created_at=time.time(),
                        )
                    )
            except IntegrityError:  # another replica made it first: use theirs
                pass
            row = (
                await conn.execute(select(data_keys).where(data_keys.c.org_id == org_id))
            ).first()
            assert row is not None
        secret = self.master.unwrap(bytes(row.wrapped), _aad(org_id, row.key_id))
        key = DataKey(row.key_id, org_id, AESGCM(secret))
        _OPEN[key.key_id] = key
        _BY_ORG[org_id] = key
        return key

    async def use_org(self, conn: AsyncConnection, org_id: str) -> DataKey:
        """Make the org's key the one writes in this context encrypt with."""
        key = await self.for_org(conn, org_id)
        _CURRENT.set(key)
        return key

    async def enter(self, db: AsyncEngine, org_id: str) -> DataKey:
        """``use_org``, opening a connection only for an org this process has no key of yet."""
        key = _BY_ORG.get(org_id)
        if key is None:
            async with db.begin() as conn:
                key = await self.for_org(conn, org_id)
        _CURRENT.set(key)
        return key

    async def rewrap(self, conn: AsyncConnection, new: MasterKey) -> int:
        """Wrap every data key under ``new`` instead (master key rotation); returns the count."""
        from plancast.server.store.schema import data_keys

        rows = list(await conn.execute(select(data_keys).with_for_update()))
        for row in rows:
            aad = _aad(row.org_id, row.key_id)
            secret = self.master.unwrap(bytes(row.wrapped), aad)
            await conn.execute(
                data_keys.update()
                .where(data_keys.c.key_id == row.key_id)
                .values(wrapped=new.wrap(secret, aad), master_key_id=new.key_id)
            )
        return len(rows)


async def shred(conn: AsyncConnection, org_id: str) -> int:
    """Delete the org's data key: its content, here and in every backup, stays unreadable."""
    from plancast.server.store.schema import data_keys

    result = await conn.execute(delete(data_keys).where(data_keys.c.org_id == org_id))
    forget(org_id)
    return int(result.rowcount or 0)


def forget(org_id: str) -> None:
    """Drop an org's unwrapped key from this process (after a shred, here or elsewhere)."""
    key = _BY_ORG.pop(org_id, None)
    if key is not None:
        _OPEN.pop(key.key_id, None)


def use_key(key: DataKey | None) -> contextvars.Token[DataKey | None]:
    return _CURRENT.set(key)


def current_key() -> DataKey | None:
    return _CURRENT.get()


# -- values ------------------------------------------------------------------------------


class Sealed(str):
    """Text already encrypted (``seal``): stored as it is, not encrypted twice."""

    __slots__ = ()


def seal(text: str, column: str, key: DataKey | None = None) -> Sealed:
    """``text`` encrypted for ``column`` under ``key`` (default: this context's org key).

    Raises:
        KeyUnavailable: no org key is set in this context.
    """
    key = key or _CURRENT.get()
    if key is None:
        raise KeyUnavailable(f"no org data key is set to encrypt {column}")
    nonce = os.urandom(12)
    body = key.aes.encrypt(nonce, text.encode(), column.encode())
    return Sealed(f"{PREFIX}{key.key_id}:{base64.b64encode(nonce + body).decode()}")


def unseal(value: str, column: str) -> str:
    """The text of a stored value; a value stored before encryption is returned as it is.

    Raises:
        KeyUnavailable: its data key is not loaded here (its org was shredded, or the org's
            key was never loaded in this process), or the value was tampered with.
    """
    if not value.startswith(PREFIX):
        return value
    key_id, _, body = value[len(PREFIX) :].partition(":")
    key = _OPEN.get(key_id)
    if key is None:
        raise KeyUnavailable(f"the data key of this {column} value is not available")
    raw = base64.b64decode(body)
    try:
        return key.aes.decrypt(raw[:12], raw[12:], column.encode()).decode()
    except InvalidTag:
        raise KeyUnavailable(f"a {column} value does not decrypt (damaged or moved)") from None


class Encrypted(TypeDecorator[str]):
    """A text column stored encrypted under its org's data key (see the module's text)."""

    impl = Text
    cache_ok = True

    def __init__(self, column: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Any) -> str | None:
        if value is None or isinstance(value, Sealed):
            return value
        if "\x00" in value:
            # The check on every statement (database._refuse_nul) sees only ciphertext here,
            # so the two backends' rule is kept before encrypting.
            from plancast.server.errors import InvalidRequest

            raise InvalidRequest("text holding a NUL (\\u0000) character cannot be stored")
        return seal(value, self.column)

    def process_result_value(self, value: str | None, dialect: Any) -> str | None:
        return None if value is None else unseal(value, self.column)
