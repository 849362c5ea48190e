"""Context commands: load, ls, rm, clear.

``load`` decides what may leave the machine with the client's context scanner,
which follows git's ignore rules exactly (see ``plancast.client.context``).
``load --dry-run`` needs no server: it only shows what would be sent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from plancast.client.apply.changeset import read_text
from plancast.client.project import find_root
from plancast.client.session import Session
from plancast.shared import ErrorCode, PlancastError

MAX_BATCH_BYTES = 8 * 1024 * 1024


def register(sub: Any) -> None:
    p = sub.add_parser("load", help="load files, folders (-r), globs, notes (-n) or stdin")
    p.add_argument("paths", nargs="*", help="files, folders or globs; '-' reads stdin")
    p.add_argument("-r", "--recursive", action="store_true", help="load folders recursively")
    p.add_argument("-n", "--note", action="append", default=[], help="add a note to the context")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be loaded, one path per line; needs no server",
    )
    p.add_argument("--force", action="store_true", help="load named files even if ignored")
    p.add_argument(
        "--no-default-ignores",
        action="store_true",
        help="turn off the built-in ignores (.env files, keys, virtualenvs …)",
    )
    p.set_defaults(func=load)
    p = sub.add_parser("ls", help="list the plan's context")
    p.set_defaults(func=ls)
    p = sub.add_parser("rm", help="remove context items (paths, folders or globs)")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=rm)
    p = sub.add_parser("clear", help="remove all context")
    p.set_defaults(func=clear)


def _scan(session: Session, args: argparse.Namespace, root: Path) -> list[tuple[str, Path]]:
    from plancast.client.context.scan import ScanOptions, scan

    targets = [p for p in args.paths if p != "-"]
    if not targets:
        return []
    options = ScanOptions(
        recursive=args.recursive,
        default_ignores=not args.no_default_ignores,
        force=args.force,
    )
    result = scan(root, targets, options, cwd=session.cwd)
    for warning in result.warnings:
        session.output.note(f"warning: {warning}", "yellow")
    for skipped in result.skipped:
        session.output.note(f"skipped {skipped.path}: {skipped.reason}")
    return [(found.path, found.abs_path) for found in result.files]


def load(session: Session, args: argparse.Namespace) -> int:
    root = (find_root(session.cwd) or session.cwd) if args.dry_run else session.binding.root
    files = _scan(session, args, root)
    if args.dry_run:
        for path, _ in files:
            session.output.line(path)
        return 0
    items: list[dict[str, str]] = []
    for path, location in files:
        text = read_text(location)
        if text is not None:
            items.append({"kind": "file", "name": path, "content": text})
    for n, note in enumerate(args.note, 1):
        items.append({"kind": "note", "name": f"note {n}", "content": note})
    wants_stdin = "-" in args.paths or (not args.paths and not args.note and not sys.stdin.isatty())
    if wants_stdin:
        items.append({"kind": "stdin", "name": "stdin", "content": sys.stdin.read()})
    if not items:
        raise PlancastError(
            "nothing to load: name files or folders (with -r), a note with -n, or pipe text in",
            code=ErrorCode.INVALID_REQUEST,
        )
    totals = {"added": [], "updated": [], "unchanged": []}
    for batch in _batches(items):
        result = session.api.post(f"/plans/{session.plan_id}/context", {"items": batch})
        for key in totals:
            totals[key] += result[key]
    out = session.output
    out.line(
        f"loaded {len(totals['added'])} new, {len(totals['updated'])} updated, "
        f"{len(totals['unchanged'])} unchanged"
    )
    for name in totals["added"]:
        out.line(f"  + {name}", "green")
    for name in totals["updated"]:
        out.line(f"  ~ {name}", "yellow")
    return 0


def _batches(items: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    batches: list[list[dict[str, str]]] = [[]]
    size = 0
    for item in items:
        length = len(item["content"].encode("utf-8", "surrogatepass")) + len(item["name"]) + 64
        if batches[-1] and size + length > MAX_BATCH_BYTES:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += length
    return batches


def ls(session: Session, args: argparse.Namespace) -> int:
    items = session.api.get(f"/plans/{session.plan_id}/context")["items"]
    if not items:
        session.output.line("the context is empty; `plancast load PATH…` adds files")
        return 0
    width = max(len(i["name"]) for i in items)
    for item in items:
        session.output.line(f"{item['kind']:<6} {item['name']:<{width}}  ~{item['tokens']} tokens")
    total = sum(i["tokens"] for i in items)
    session.output.line(f"{len(items)} item(s), ~{total} tokens", "dim")
    return 0


def rm(session: Session, args: argparse.Namespace) -> int:
    removed = session.api.post(f"/plans/{session.plan_id}/context/remove", {"names": args.names})
    if not removed["removed"]:
        raise PlancastError(
            "no context item matches; `plancast ls` lists them", code=ErrorCode.NOT_FOUND
        )
    for name in removed["removed"]:
        session.output.line(f"  - {name}", "red")
    return 0


def clear(session: Session, args: argparse.Namespace) -> int:
    removed = session.api.post(f"/plans/{session.plan_id}/context/remove", {"all": True})
    session.output.line(f"removed {len(removed['removed'])} item(s)")
    return 0
