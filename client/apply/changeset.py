"""Turning pending changes into file contents, and writing them safely.

Rules:

1. Results are computed for every file before anything is written. A file
   whose edits do not all land is reported and left alone: never half-applied.
2. Each file is written to a temporary file beside it and renamed over it
   (atomic on POSIX). If any write fails, every file already written is put
   back as it was (or removed, if it was new), then the error is raised.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from plancast.client.apply.paths import resolve_inside
from plancast.shared import EditError, FileOp, UnsafePathError, apply_ops


@dataclass(frozen=True, slots=True)
class PendingChange:
    id: str
    path: str
    op: FileOp


@dataclass(slots=True)
class FileResult:
    path: str
    change_ids: list[str]
    old: str | None = None
    new: str | None = None
    error: str | None = None
    target: Path | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None


def read_text(path: Path) -> str | None:
    """A file's text, or None if it does not exist. Undecodable bytes are replaced."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data.decode("utf-8", errors="replace")


def compute(root: Path, changes: Sequence[PendingChange]) -> list[FileResult]:
    """What each changed file would become, in first-change order, without writing."""
    by_path: dict[str, list[PendingChange]] = {}
    for change in changes:
        by_path.setdefault(change.path, []).append(change)
    results = []
    for path, group in by_path.items():
        result = FileResult(path, [c.id for c in group])
        try:
            result.target = resolve_inside(root, path)
            result.old = read_text(result.target)
            result.new = apply_ops(result.old, [c.op for c in group])
        except (EditError, UnsafePathError) as exc:
            result.error = exc.message
        except OSError as exc:
            result.error = f"cannot read {path}: {exc.strerror}"
        results.append(result)
    return results


def write_all(results: Sequence[FileResult]) -> None:
    """Write every successful result atomically, rolling all back if one fails.

    Raises:
        OSError: a write failed; the files are as they were before the call.
    """
    done: list[FileResult] = []
    try:
        for result in results:
            if not result.ok or result.target is None or result.new is None:
                continue
            if result.new == result.old:
                continue
            _write_atomic(result.target, result.new)
            done.append(result)
    except BaseException:
        for result in reversed(done):
            assert result.target is not None
            if result.old is None:
                result.target.unlink(missing_ok=True)
            else:
                _write_atomic(result.target, result.old)
        raise


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".plancast")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
