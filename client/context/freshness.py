"""Which loaded files changed on disk since they were sent: the basis of ``plancast update``.

Rules:

Rule 1 (the hash): the server keeps ``sha256`` of each item's content as UTF-8
        (``server/domain/context.py``: ``content.encode("utf-8", "surrogatepass")``). The client
        sends a file as its bytes decoded as UTF-8 with replacement (``read_text``), which
        never yields a surrogate, so :func:`content_sha256` of the same text gives the same hash.
Rule 2 (redacted files): a file sent with ``--redact-secrets`` was stored redacted. It is fresh
        when its redacted text hashes to the stored value, because redaction is deterministic;
        otherwise it would look changed forever.
Rule 3 (kinds): only ``file`` items are compared. Notes, stdin, trees and URLs have no file
        behind them; loading them again refreshes them.
Rule 4 (gone): a file item whose path no longer names a regular file (deleted, now a
        directory) is *removed*, not changed; ``update`` offers to drop it from the context.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Staleness", "content_sha256", "file_text", "find_stale"]

#: A loaded file that grew past this is "changed" without being read (``update`` then reports
#: it as too large, like ``load``); the default of ``ScanOptions.max_file_bytes``.
MAX_COMPARE_BYTES = 1 << 20


def file_text(path: Path) -> str | None:
    """A file's text as ``load`` sends it: UTF-8 with undecodable bytes replaced (Rule 1).

    Returns ``None`` when the file cannot be read.
    """
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return data.decode("utf-8", errors="replace")


def content_sha256(text: str) -> str:
    """The hash the server stores for an item whose content is ``text`` (Rule 1)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(slots=True)
class Staleness:
    """Loaded files, sorted by path: ``changed`` on disk, ``removed`` from disk, ``fresh``."""

    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        """Whether anything loaded differs from the disk."""
        return bool(self.changed or self.removed)


def _regular_file_size(path: Path) -> int | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def _matches_stored(text: str, stored: str) -> bool:
    if content_sha256(text) == stored:
        return True
    from plancast.client.context.secrets import find_secrets, redact

    findings = find_secrets(text)
    return bool(findings) and content_sha256(redact(text, findings)) == stored  # Rule 2


def find_stale(root: Path, items: Iterable[Mapping[str, Any]]) -> Staleness:
    """Compare the context's file items with the files under ``root``.

    Args:
        root: The project root that item names are relative to.
        items: Context items as ``GET /plans/{id}/context`` returns them (``kind``, ``name``,
            ``sha256``); other kinds are skipped (Rule 3).

    Returns:
        Which files changed, which are gone (Rule 4), and which are as sent.
    """
    result = Staleness()
    for item in items:
        if item.get("kind") != "file":
            continue
        name = str(item["name"])
        path = root / name
        size = _regular_file_size(path)
        if size is None:
            result.removed.append(name)
            continue
        text = file_text(path) if size <= MAX_COMPARE_BYTES else None
        if text is not None and _matches_stored(text, str(item.get("sha256", ""))):
            result.fresh.append(name)
        else:
            result.changed.append(name)
    for names in (result.changed, result.removed, result.fresh):
        names.sort()
    return result
