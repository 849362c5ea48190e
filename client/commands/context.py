"""Context commands: load, update, ls, rm, clear; and the stale-context check before a stream.

``load`` decides what may leave the machine with the client's context scanner, which follows
git's ignore rules exactly (see ``plancast.client.context``), then reads each file once, and
in that same open refuses binary, oversized and non-regular files (``scan.read_files``), then
guards, shows and uploads the rest (``_upload.py``). ``load --dry-run`` needs no server: it
only shows what would be sent, after the same checks (it reads the head of each file).

``update`` re-sends the loaded files whose content changed on disk, by comparing each file's
hash with the one the server keeps (``context/freshness.py``). ``tell``, ``chat`` and
``continue`` call :func:`warn_if_stale` first: a one-line warning, or an automatic update
with ``PLANCAST_AUTO_UPDATE=1``. It never asks, so that a stream can start unattended.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.commands._upload import SecretGuard, Uploaded
    from plancast.client.session import Session

AUTO_UPDATE_ENV = "PLANCAST_AUTO_UPDATE"
#: Names shown in one-line warnings before "+N more".
_SHOWN_NAMES = 5


def register(sub: Any) -> None:
    p = sub.add_parser(
        "load", help="load files, folders (-r), globs, URLs, trees (--tree), notes (-n) or stdin"
    )
    p.add_argument(
        "paths", nargs="*", help="files, folders, globs or http(s) URLs; '-' reads stdin"
    )
    p.add_argument("-r", "--recursive", action="store_true", help="load folders recursively")
    p.add_argument("-n", "--note", action="append", default=[], help="add a note to the context")
    p.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="PATH",
        help="add the names (not contents) of the loadable files under PATH as a tree",
    )
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
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="upload without asking, even above PLANCAST_CONFIRM_TOKENS (default 100000)",
    )
    _add_secret_flags(p)
    p.set_defaults(func=load)

    p = sub.add_parser("update", help="re-send the loaded files that changed on disk")
    p.add_argument(
        "-y",
        "--yes",
        action="store_true",
        help="answer yes: upload above PLANCAST_CONFIRM_TOKENS, and drop files gone from disk",
    )
    _add_secret_flags(p)
    p.set_defaults(func=update)

    p = sub.add_parser("ls", help="list the plan's context")
    p.add_argument("--json", action="store_true", help="print the items as JSON, for scripts")
    p.set_defaults(func=ls)
    p = sub.add_parser("rm", help="remove context items (paths, folders or globs)")
    p.add_argument("names", nargs="+")
    p.set_defaults(func=rm)
    p = sub.add_parser("clear", help="remove all context")
    p.set_defaults(func=clear)


def _add_secret_flags(parser: Any) -> None:
    """``--redact-secrets`` / ``--allow-secrets``, for every command that uploads files."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--redact-secrets",
        action="store_true",
        help="upload files with secrets, each value replaced by [REDACTED:<rule>]",
    )
    group.add_argument(
        "--allow-secrets",
        action="store_true",
        help="upload files with secrets as they are (the default holds them back)",
    )


def _error(message: str) -> Exception:
    from plancast.shared import ErrorCode, PlancastError

    return PlancastError(message, code=ErrorCode.INVALID_REQUEST)


# --- load ---------------------------------------------------------------------------------


def _scan_files(
    session: Session,
    args: argparse.Namespace,
    root: Path,
    targets: list[str],
    *,
    defer_checks: bool = True,
) -> list[Any]:
    """The loadable files among ``targets``, with warnings and skip reasons on stderr.

    With ``defer_checks`` no file is opened yet: :func:`_read_and_guard` checks each file
    (binary, size, type) in the open that reads it. Without, each file's head is read here.
    """
    from plancast.client.context.progress import ScanProgress
    from plancast.client.context.scan import ScanOptions, scan

    if not targets:
        return []
    options = ScanOptions(
        recursive=args.recursive,
        default_ignores=not args.no_default_ignores,
        force=args.force,
        defer_checks=defer_checks,
    )
    with ScanProgress(session.output.err) as progress:
        result = scan(root, targets, options, cwd=session.cwd, progress=progress)
    for warning in result.warnings:
        session.output.note(f"warning: {warning}", "yellow")
    for skipped in result.skipped:
        session.output.note(f"skipped {skipped.path}: {skipped.reason}")
    return list(result.files)


def _read_and_guard(session: Session, files: list[Any], guard: SecretGuard) -> int:
    """Read each found file once, as it will be sent, and pass it through the secret guard.

    The read refuses binary, oversized, non-regular and unreadable files (a scan with
    ``defer_checks`` left those checks to it); each is reported as skipped, with the reason,
    before anything is sent. Returns how many were skipped.
    """
    from plancast.client.context.nogc import paused_gc
    from plancast.client.context.progress import Progress, is_large
    from plancast.client.context.scan import MAX_FILE_BYTES, Skipped, read_files

    size = sum(found.size or 0 for found in files)
    skipped = 0
    with (
        paused_gc(),
        Progress(session.output.err, "reading", len(files), show=is_large(len(files), size)) as bar,
    ):
        for got in read_files(files, MAX_FILE_BYTES):
            bar.advance()
            if isinstance(got, Skipped):
                session.output.note(f"skipped {got.path}: {got.reason}")
                skipped += 1
                continue
            guard.add({"kind": "file", "name": got.path, "content": got.text})
    return skipped


def _tree_items(session: Session, args: argparse.Namespace, root: Path) -> list[dict[str, str]]:
    """One ``tree`` item per ``--tree PATH``: names of the loadable files under PATH."""
    from plancast.client.context.scan import ScanOptions, scan
    from plancast.client.context.tree import render_tree

    items = []
    options = ScanOptions(
        recursive=True,
        default_ignores=not args.no_default_ignores,
        defer_checks=True,  # names only: nothing is read, binary files are part of the layout
    )
    for target in args.tree:
        full = Path(os.path.normpath(os.path.join(session.cwd, target)))
        try:
            rel = full.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            raise _error(f"--tree {target}: outside the project {root}") from None
        if not full.is_dir():
            raise _error(f"--tree {target}: not a folder")
        result = scan(root, [target], options, cwd=session.cwd)
        for skipped in result.skipped:
            if skipped.path in (rel, target):
                raise _error(f"--tree {target}: {skipped.reason}")
        prefix = "" if rel == "." else rel + "/"
        names = [f.path[len(prefix) :] for f in result.files if f.path.startswith(prefix)]
        label = "." if rel == "." else rel
        items.append(
            {"kind": "tree", "name": f"tree:{label}", "content": render_tree(names, label)}
        )
    return items


def _url_items(session: Session, urls: list[str]) -> tuple[list[dict[str, str]], int]:
    """Fetch each URL (the client fetches; the server never does). Returns items and failures."""
    from plancast.client.context.urls import UrlFetchError, fetch_url

    items = []
    failures = 0
    for url in urls:
        try:
            page = fetch_url(url)
        except UrlFetchError as exc:
            session.output.error(exc.message)
            failures += 1
            continue
        session.output.note(f"fetched {page.name} ({page.content_type}, {len(page.text):,} chars)")
        items.append({"kind": "url", "name": page.name, "content": page.text})
    return items, failures


def load(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.commands import _upload
    from plancast.client.context.urls import is_url, public_name
    from plancast.client.project import find_root, require_plan

    urls = [t for t in args.paths if is_url(t)]
    targets = [t for t in args.paths if t != "-" and not is_url(t)]
    if args.dry_run:
        # The scan reads each file's head, for the same checks the read would make.
        root = find_root(session.cwd) or session.cwd
        for found in _scan_files(session, args, root, targets, defer_checks=False):
            session.output.line(found.path)
        return 0
    for url in urls:
        if not url.lower().startswith(("http://", "https://")):
            raise _error(f"cannot load {public_name(url)}: only http and https URLs can be loaded")
    root = session.binding.root
    require_plan(session.binding)  # no plan: fail before reading anything
    guard = _upload.SecretGuard(session, _upload.secret_policy(args))
    _read_and_guard(session, _scan_files(session, args, root, targets), guard)
    others = _tree_items(session, args, root)
    url_items, failures = _url_items(session, urls)
    others += url_items
    others += [
        {"kind": "note", "name": f"note {n}", "content": note}
        for n, note in enumerate(args.note, 1)
    ]
    wants_stdin = "-" in args.paths or (
        not args.paths and not args.note and not args.tree and not sys.stdin.isatty()
    )
    if wants_stdin:
        others.append({"kind": "stdin", "name": "stdin", "content": sys.stdin.read()})
    for item in others:
        if item["kind"] == "tree":
            guard.keep(item)  # names only: nothing to guard
        else:
            guard.add(item)
    guarded = guard.finish()
    if not guarded.items:
        if guarded.blocked or failures:
            session.output.error("nothing was loaded")
            return 1
        raise _error(
            "nothing to load: name files or folders (with -r), URLs, --tree PATH, "
            "a note with -n, or pipe text in"
        )
    uploaded = _upload.send(session, guarded.items, yes=args.yes)
    if uploaded is None:
        return 1
    _report(session, uploaded)
    return 1 if guarded.blocked or failures else 0


def _report(session: Session, uploaded: Uploaded) -> None:
    out = session.output
    out.line(
        f"loaded {len(uploaded.added)} new, {len(uploaded.updated)} updated, "
        f"{len(uploaded.unchanged)} unchanged"
    )
    for name in uploaded.added:
        out.line(f"  + {name}", "green")
    for name in uploaded.updated:
        out.line(f"  ~ {name}", "yellow")


# --- update and the stale check -------------------------------------------------------------


def _context_items(session: Session) -> list[dict[str, Any]]:
    return list(session.api.get(f"/plans/{session.plan_id}/context")["items"])


def _refresh(
    session: Session, changed: list[str], args: argparse.Namespace, *, yes: bool, quiet: bool
) -> tuple[Uploaded | None, int]:
    """Re-read, guard and send ``changed`` files. Returns the upload and how many were held."""
    from plancast.client.commands import _upload
    from plancast.client.context.scan import ScanOptions, scan

    root = session.binding.root
    # Not forced, even for a file once loaded with --force: the rules may have changed since,
    # and a forced symlink's target is not checked (it could now lead to an ignored .env).
    result = scan(root, changed, ScanOptions(defer_checks=True), cwd=root)
    for skipped in result.skipped:
        hint = ""
        if skipped.reason.startswith("ignored"):
            hint = f" (`plancast load --force {skipped.path}` sends it anyway)"
        session.output.note(f"skipped {skipped.path}: {skipped.reason}{hint}", "yellow")
    guard = _upload.SecretGuard(session, _upload.secret_policy(args))
    refused = _read_and_guard(session, list(result.files), guard)
    guarded = guard.finish()
    held = len(guarded.blocked) + len(result.skipped) + refused
    if not guarded.items:
        return None, held
    return _upload.send(session, guarded.items, yes=yes, quiet=quiet), held


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" (+{len(names) - _SHOWN_NAMES} more)" if len(names) > _SHOWN_NAMES else "")


def update(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.context.freshness import find_stale

    staleness = find_stale(session.binding.root, _context_items(session))
    out = session.output
    if not staleness.stale:
        out.line(f"the context is up to date ({len(staleness.fresh)} file(s) as on disk)")
        return 0
    status = 0
    if staleness.changed:
        uploaded, held = _refresh(session, staleness.changed, args, yes=args.yes, quiet=False)
        if uploaded is None:
            status = 1
        else:
            out.line(f"updated {len(uploaded.updated) + len(uploaded.added)} file(s)")
            for name in uploaded.updated + uploaded.added:
                out.line(f"  ~ {name}", "yellow")
        if held:
            status = 1
    if staleness.removed:
        out.line(f"gone from disk: {', '.join(staleness.removed)}", "red")
        status = max(status, _offer_rm(session, staleness.removed, args.yes))
    return status


def _offer_rm(session: Session, removed: list[str], yes: bool) -> int:
    """Drop files gone from disk from the context, when the user says so."""
    import glob
    import shlex

    from plancast.client.commands import _upload

    command = "plancast rm " + " ".join(shlex.quote(glob.escape(n)) for n in removed)
    if not yes:
        if not _upload.isatty(sys.stdin):
            session.output.note(f"`{command}` removes them from the context (or update --yes)")
            return 0
        if not _upload.confirm(session, f"remove {len(removed)} file(s) from the context?"):
            session.output.note(f"kept; `{command}` removes them later")
            return 0
    names = [glob.escape(name) for name in removed]
    result = session.api.post(f"/plans/{session.plan_id}/context/remove", {"names": names})
    for name in result["removed"]:
        session.output.line(f"  - {name}", "red")
    return 0


def _auto_update_enabled() -> bool:
    return os.environ.get(AUTO_UPDATE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def warn_if_stale(session: Session, ask: Callable[[str], str] | None = None) -> None:
    """Before a stream: find loaded files that changed on disk, and update them or say so.

    With ``PLANCAST_AUTO_UPDATE=1`` the changed files are re-sent first (the secret guard still
    holds back files with secrets). Otherwise, at a terminal, the user is asked whether to
    update them first; without one (a script), one warning line names them and the stream
    goes ahead with the context as loaded, so a stream can always start unattended.
    """
    from plancast.client.context.freshness import find_stale

    staleness = find_stale(session.binding.root, _context_items(session))
    if not staleness.stale:
        return
    out = session.output
    update = _auto_update_enabled()
    if not update and staleness.changed and (ask is not None or sys.stdin.isatty()):
        question = (
            f"{len(staleness.changed)} loaded file(s) changed on disk "
            f"({_names(staleness.changed)}); update them first? [Y/n] "
        )
        try:
            answer = (ask or input)(question).strip().lower()
        except EOFError:
            answer = "n"
        update = answer in ("", "y", "yes")
    if update and staleness.changed:
        args = argparse.Namespace(redact_secrets=False, allow_secrets=False)
        uploaded, _held = _refresh(session, staleness.changed, args, yes=True, quiet=True)
        if uploaded is not None:
            names = uploaded.updated + uploaded.added
            out.note(f"updated {len(names)} changed file(s) before sending: {_names(names)}")
        if staleness.removed:
            out.note(
                f"warning: gone from disk but still in the context: {_names(staleness.removed)} "
                "(`plancast update` offers to remove them)",
                "yellow",
            )
        return
    parts = []
    if staleness.changed:
        parts.append(f"changed on disk: {_names(staleness.changed)}")
    if staleness.removed:
        parts.append(f"gone from disk: {_names(staleness.removed)}")
    out.note(
        f"warning: stale context ({'; '.join(parts)}); `plancast update` re-sends them",
        "yellow",
    )


# --- ls, rm, clear ----------------------------------------------------------------------------


def ls(session: Session, args: argparse.Namespace) -> int:
    items = _context_items(session)
    if args.json:
        import json

        session.output.line(json.dumps({"items": items}, indent=2, ensure_ascii=False))
        return 0
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
    from plancast.shared import ErrorCode, PlancastError

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
