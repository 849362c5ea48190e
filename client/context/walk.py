"""The pruning directory walker: lists loadable entries under a directory, as git would.

Rules:

Rule 1: The walker lists directories itself with ``os.scandir`` (types come from the listing, so
        most entries cost no ``stat``) and reads each directory's ignore files from that listing
        before deciding its entries.
Rule 2: An ignored directory is not entered (nothing below it can be re-included), except that
        a directory ignored only by git's own rules is entered for the tracked files below it,
        and then only tracked entries are listed inside it.
Rule 3: Symlinks are listed (as git lists them) but never followed; whether their target may be
        loaded is decided by the scanner. Sockets, FIFOs and devices are not listed (git does not
        list them either).
Rule 4: With the defaults on, a directory that no rule matched is dropped when its listing shows
        ``pyvenv.cfg`` (it is a virtualenv).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from plancast.client.context.defaults import PYVENV_MARKER
from plancast.client.context.ignore import (
    ALWAYS_IGNORED_NAMES,
    GITIGNORE,
    MISS,
    PLANCASTIGNORE,
    TRACKED,
    IgnoreEngine,
    RuleSet,
    split_path_rules,
)
from plancast.client.context.patterns import Rule

__all__ = ["WalkOutput", "walk"]


@dataclass(slots=True)
class WalkOutput:
    """What a walk found: loadable entries (unsorted) and directories it could not list."""

    files: list[tuple[bytes, os.DirEntry[bytes]]] = field(default_factory=list)
    errors: list[tuple[bytes, str]] = field(default_factory=list)


def walk(
    engine: IgnoreEngine,
    start: bytes,
    rules: RuleSet,
    *,
    entered: bool,
    tracked_only: bool = False,
    max_depth: int | None = None,
) -> WalkOutput:
    """Walk the directory ``start`` and collect the regular files and symlinks to load.

    Args:
        engine: The ignore engine of this scan.
        start: Root-relative directory, ``b""`` for the root or ending in ``b"/"``.
        rules: The RuleSet that decides ``start``'s entries when ``entered`` is true, else the one
            that decided ``start`` itself (its own ignore files are then read from its listing).
        entered: See ``rules``.
        tracked_only: Only tracked entries may be listed (``start`` is git-ignored, Rule 2).
        max_depth: Most path components below ``start`` for a listed file; ``None``: no limit.
    """
    out = WalkOutput()
    files = out.files
    root_prefix = engine.root_b.rstrip(b"/") + b"/"
    check_venv = engine.default_ignores
    tracked = engine.tracked
    always = ALWAYS_IGNORED_NAMES
    # (directory, rules that decided it, rules read?, tracked only?, depth, venv check?,
    #  path patterns still alive)
    pending: list[tuple[bytes, RuleSet, bool, bool, int, bool, tuple[Rule, ...]]] = [
        (start, rules, entered, tracked_only, 0, False, rules.path_rules)
    ]
    while pending:
        dir_rel, rs, is_entered, t_only, depth, venv_check, alive = pending.pop()
        try:
            with os.scandir(root_prefix + dir_rel) as it:
                entries = list(it)
        except OSError as exc:
            out.errors.append((dir_rel, exc.strerror or type(exc).__name__))
            continue
        names = [e.name for e in entries]
        if venv_check and PYVENV_MARKER in names:
            continue
        if not is_entered and (GITIGNORE in names or PLANCASTIGNORE in names):
            parent_rs = rs
            rs = engine.enter_listed(dir_rel, rs, entries)
            if rs is not parent_rs and rs.new_path_rules:
                alive = rs.new_path_rules + alive
        if alive:
            alive, here = split_path_rules(alive, dir_rel)
        else:
            here = ()
        file_tables = rs.files
        dir_tables = rs.dirs
        file_memo = file_tables.memo if file_tables is not None else {}
        dir_memo = dir_tables.memo if dir_tables is not None else {}
        deeper = max_depth is None or depth + 1 < max_depth
        for e in entries:
            name = e.name
            if name in always:
                continue
            try:
                if e.is_symlink():
                    is_dir = False
                elif e.is_dir():
                    is_dir = True
                elif not e.is_file():
                    continue  # socket, FIFO, device: git does not list them either
                else:
                    is_dir = False
            except OSError:
                continue
            rel = dir_rel + name
            if t_only and tracked is not None:
                if not (tracked.any_under(rel + b"/") if is_dir else tracked.contains(rel)):
                    continue
            if here:
                rule = rs.decide(rel, name, is_dir, here)
            elif is_dir:
                rule = dir_memo.get(name, MISS)  # type: ignore[assignment]
                if rule is MISS:
                    rule = None if dir_tables is None else dir_tables.best(name)
            else:
                rule = file_memo.get(name, MISS)  # type: ignore[assignment]
                if rule is MISS:
                    rule = None if file_tables is None else file_tables.best(name)
            if rule is None or rule.negated:
                if is_dir:
                    if deeper:
                        venv = rule is None and check_venv
                        pending.append((rel + b"/", rs, False, t_only, depth + 1, venv, alive))
                else:
                    files.append((rel, e))
                continue
            if not rule.git or engine.resolve_tracked(rs, rel, name, is_dir, rule) is not TRACKED:
                continue
            if is_dir:
                if deeper:
                    pending.append((rel + b"/", rs, False, True, depth + 1, False, alive))
            else:
                files.append((rel, e))
    return out
