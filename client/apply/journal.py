"""The apply journal: what each apply did to the project's files, so that a rewind can undo it.

The server never reads the user's files (DESIGN invariant 5), so only the client can put a file
back as it was before a change was applied, or apply it again after an undone rewind.

Rules:

1. Each ``plancast apply`` that writes files adds one record: for each file, the ids of the
   changes applied to it, its path, its text before and after (``None``: no file; a move has
   an entry for each of its two paths). Records live in
   ``$XDG_STATE_HOME/plancast/journal/<project-id>/``, one file each, 0600 in a 0700 folder:
   they hold file contents.
2. The journal is bounded: the newest ``MAX_RECORDS`` applies, and at most ``MAX_BYTES`` in
   all; the oldest records go first (the newest is kept whatever its size). A change whose
   record is gone is reported as unknown, and its file is left alone.
3. For each change, the newest record naming it counts (a change applied, reverted by a
   rewind, then applied again), with every file of that record the change touched.
4. Restoring never clobbers. A file is reverted only while its content (sha256) is what the
   apply wrote, and applied again only while it is what the apply found; with several records
   for one file, each step must hand its content to the next. Any other file is skipped and
   reported, except one that is already as the move wants it: there is nothing to do.
5. Files are written and removed with ``changeset.write_all``: atomic, and if anything fails,
   every file is put back as it was.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plancast.client.apply.changeset import FileResult, write_all
from plancast.client.apply.paths import resolve_inside
from plancast.client.config import private_dir, state_dir, write_private
from plancast.shared import PlancastError, UnsafePathError

if TYPE_CHECKING:
    from plancast.client.session import Session

MAX_RECORDS = 200
MAX_BYTES = 64 * 1024 * 1024
FORMAT = 1
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_RECORD = re.compile(r"\d{20}-[0-9a-f]{8}\.json")


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of one apply."""

    record: str  # the record's file name: records sort by it, oldest first
    plan_id: str
    path: str
    change_ids: tuple[str, ...]
    before: str | None
    after: str | None


@dataclass(frozen=True, slots=True)
class Restore:
    """One file to put in another state: ``new`` is None to remove it."""

    path: str
    target: Path
    current: str | None
    new: str | None
    action: str  # "reverted", "re-applied", or "restored" (both, for one file)


@dataclass(slots=True)
class RestorePlan:
    files: list[Restore] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is skipped)
    unknown: list[str] = field(default_factory=list)  # paths the journal has no record for


def journal_dir(project_id: str) -> Path:
    """Where the records of ``project_id`` are kept.

    Raises:
        ValueError: the id could name a folder outside the journal.
    """
    if not _SAFE_ID.fullmatch(project_id):
        raise ValueError("a project id is 1-64 letters, digits, '-' or '_'")
    return state_dir() / "journal" / project_id


# -- recording ------------------------------------------------------------------------------


def record_apply(session: Session, results: Sequence[FileResult]) -> None:
    """Record the files an apply just wrote; a failure is a warning, never an error.

    The files are already written and the apply stands: losing its record only means that a
    later rewind will not offer to revert them.
    """
    try:
        record(session.binding.project_id, session.plan_id, results)
    except (OSError, ValueError, PlancastError) as exc:
        session.output.note(
            f"could not record this apply in the journal ({exc}); "
            "a rewind will not offer to revert these files",
            "yellow",
        )


def record(project_id: str, plan_id: str, results: Sequence[FileResult]) -> Path | None:
    """Add one record for the results written; returns its file (None: nothing to record)."""
    files = [
        {"path": r.path, "change_ids": list(r.change_ids), "before": r.old, "after": r.new}
        for r in results
        if r.ok and r.change_ids and (r.old is not None or r.new is not None)
    ]
    if not files:
        return None
    folder = private_dir(journal_dir(project_id))
    stamp = time.time_ns()
    existing = _records(folder)
    if existing:  # names sort in the order records were made, even within one clock tick
        stamp = max(stamp, int(existing[-1].name[:20]) + 1)
    name = f"{stamp:020d}-{secrets.token_hex(4)}.json"
    body = {"format": FORMAT, "plan_id": plan_id, "at": time.time(), "files": files}
    path = folder / name
    write_private(path, json.dumps(body, ensure_ascii=False))
    _prune(folder)
    return path


def _records(folder: Path) -> list[Path]:
    try:
        names = sorted(p.name for p in folder.iterdir() if _RECORD.fullmatch(p.name))
    except FileNotFoundError:
        return []
    return [folder / n for n in names]


def _prune(folder: Path) -> None:
    """Drop the oldest records beyond the bounds of Rule 2."""
    paths = _records(folder)
    sizes = []
    for path in paths:
        try:
            sizes.append(path.stat().st_size)
        except FileNotFoundError:
            sizes.append(0)
    count, total = len(paths), sum(sizes)
    for path, size in zip(paths[:-1], sizes[:-1], strict=True):  # never the newest
        if count <= MAX_RECORDS and total <= MAX_BYTES:
            break
        path.unlink(missing_ok=True)
        count, total = count - 1, total - size


def load(project_id: str) -> list[Entry]:
    """Every entry of the journal, oldest record first; damaged records are skipped."""
    entries: list[Entry] = []
    for path in _records(journal_dir(project_id)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            entries.extend(_entries(path.name, data))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
    return entries


def _entries(name: str, data: Any) -> Iterable[Entry]:
    if data.get("format") != FORMAT:
        return []
    found = []
    for item in data["files"]:
        before, after = item["before"], item["after"]
        if not all(text is None or isinstance(text, str) for text in (before, after)):
            raise ValueError("a damaged entry")
        ids = tuple(str(c) for c in item["change_ids"])
        found.append(Entry(name, str(data["plan_id"]), str(item["path"]), ids, before, after))
    return found


def forget_plan(project_id: str, plan_id: str) -> int:
    """Delete the records of a deleted plan; returns how many there were."""
    gone = 0
    for path in _records(journal_dir(project_id)):
        try:
            if json.loads(path.read_text(encoding="utf-8")).get("plan_id") == plan_id:
                path.unlink(missing_ok=True)
                gone += 1
        except (OSError, ValueError, AttributeError):
            continue
    return gone


# -- restoring ------------------------------------------------------------------------------


def plan_restore(
    root: Path,
    entries: Sequence[Entry],
    revert: Sequence[tuple[str, str]],
    reapply: Sequence[tuple[str, str]] = (),
) -> RestorePlan:
    """What to write so that the files of ``revert`` are as before their changes were applied,
    and those of ``reapply`` as after; nothing is written here.

    ``revert`` and ``reapply`` are (change id, path) pairs, as the server names them after a
    rewind or an undo.
    """
    latest: dict[str, str] = {}  # change id → the newest record naming it (Rule 3)
    for entry in entries:  # oldest first
        for cid in entry.change_ids:
            latest[cid] = entry.record
    undo: dict[str, list[Entry]] = {}  # path → the entries to undo there
    redo: dict[str, list[Entry]] = {}
    unknown: dict[str, None] = {}
    for wanted, into in ((revert, undo), (reapply, redo)):
        for cid, path in wanted:
            found = [e for e in entries if e.record == latest.get(cid) and cid in e.change_ids]
            if not found:
                unknown[path] = None
            for entry in found:
                into.setdefault(entry.path, [])
                if entry not in into[entry.path]:
                    into[entry.path].append(entry)
    plan = RestorePlan(unknown=list(unknown))
    for path in dict.fromkeys([*undo, *redo]):
        if path in unknown:  # a change of it the journal never saw: its content is unsure
            continue
        back, again = undo.get(path, []), redo.get(path, [])
        try:
            target = resolve_inside(root, path)
            current = _read(target)
        except UnsafePathError as exc:
            plan.conflicts.append((path, exc.message))
            continue
        except OSError as exc:
            plan.conflicts.append((path, f"cannot read it ({exc.strerror or exc})"))
            continue
        content, why = _walk(current, back, again)
        if why is not None:
            plan.conflicts.append((path, why))
        elif content != current:
            action = "restored" if back and again else "reverted" if back else "re-applied"
            plan.files.append(Restore(path, target, current, content, action))
    return plan


def _walk(
    current: str | None, undo: Sequence[Entry], redo: Sequence[Entry]
) -> tuple[str | None, str | None]:
    """The file's content after undoing ``undo`` (newest first), then redoing ``redo``
    (oldest first), with None for no file; or, when a step does not find the content it
    expects (Rule 4), the reason as the second item. A file already where the steps lead is
    left as it is: there is nothing to do, and nothing to clobber.
    """
    steps = [
        (e.after, e.before, "it changed on disk since the apply wrote it")
        for e in sorted(undo, key=lambda e: e.record, reverse=True)
    ] + [
        (e.before, e.after, "it changed on disk since that change was reverted")
        for e in sorted(redo, key=lambda e: e.record)
    ]
    content = current
    for expected, result, why in steps:
        if _digest(content) != _digest(expected):
            if _digest(current) == _digest(steps[-1][1]):
                return current, None
            return None, why
        content = result
    return content, None


def _read(target: Path) -> str | None:
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return None
    return data.decode("utf-8", errors="surrogateescape")


def _digest(text: str | None) -> str | None:
    if text is None:
        return None
    return hashlib.sha256(text.encode("utf-8", errors="surrogateescape")).hexdigest()


def restore(plan: RestorePlan) -> None:
    """Write (and remove) the plan's files, all or nothing (Rule 5).

    Raises:
        OSError: a write or a removal failed; every file is as it was before the call.
    """
    write_all(
        [FileResult(r.path, [], old=r.current, new=r.new, target=r.target) for r in plan.files]
    )
