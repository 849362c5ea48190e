"""``ignore why PATH…``: whether each path may be loaded, and which rule decided it.

The output follows ``git check-ignore -v``: one line per path, tab-separated,

    out<TAB>.gitignore:3:build/<TAB>build/out.txt
    in<TAB>sub/.plancastignore:2:!keep.md<TAB>sub/keep.md
    in<TAB>::<TAB>app.py

where the middle field is ``source:line:pattern`` of the deciding rule (``::`` when no rule
matched, like ``git check-ignore -v -n``). Sources are project-relative ignore files or
``<default>`` (built-in defaults), ``<global>`` (the global excludes file), ``<info/exclude>``,
``<tracked>`` (git's rules do not apply to tracked files) and ``<builtin>`` (``.git`` and
``.plancast``, never loadable). A file that the rules let in but that ``load`` would still skip
(binary, too large, a symlink that leads out) is ``out`` with ``<scan>::`` and the reason.

``--json`` prints the same as one JSON document, for scripts. Needs no server: like
``load --dry-run``, it works from the project root (or the current folder when none is bound).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("ignore", help="ask the ignore rules: `ignore why PATH…`")
    actions = p.add_subparsers(dest="ignore_action", metavar="ACTION", required=True)
    why = actions.add_parser(
        "why",
        help="say whether each path may be loaded, and the rule (file:line:pattern) that decided",
        description="Like `git check-ignore -v`, for plancast's rules: .gitignore files, "
        ".git/info/exclude, the global excludes file, .plancastignore files and the built-in "
        "defaults.",
    )
    why.add_argument("paths", nargs="+", metavar="PATH")
    why.add_argument("--json", action="store_true", help="print the answers as JSON")
    why.add_argument(
        "--no-default-ignores",
        action="store_true",
        help="answer without the built-in ignores, as `load --no-default-ignores` would",
    )
    why.set_defaults(func=why_command)


def _answer(root: Path, text: str, cwd: Path, default_ignores: bool) -> dict[str, Any]:
    """The verdict for one path as a JSON-ready dict (``error`` set when there is none)."""
    import os

    from plancast.client.context.ignore import explain
    from plancast.client.context.scan import ScanOptions, scan

    try:
        verdict = explain(root, text, default_ignores=default_ignores, cwd=cwd)
    except ValueError:
        return {"path": text, "error": "outside the project"}
    answer: dict[str, Any] = {
        "path": verdict.path or ".",
        "included": verdict.included,
        "source": verdict.source,
        "line": verdict.line or None,
        "pattern": verdict.pattern or None,
        "matched": verdict.matched,
        "reason": verdict.reason,
        "skipped": None,
    }
    full = os.path.join(cwd, text)
    if verdict.included and os.path.lexists(full) and not os.path.isdir(full):
        # The rules let it in; would `load` still leave it out?
        options = ScanOptions(default_ignores=default_ignores)
        result = scan(root, [text], options, cwd=cwd)
        if not result.files and result.skipped:
            answer["included"] = False
            answer["skipped"] = result.skipped[0].reason
            answer["reason"] = f"skipped: {result.skipped[0].reason}"
    return answer


def _line(answer: dict[str, Any]) -> str:
    status = "in" if answer["included"] else "out"
    if answer["skipped"]:
        return f"out\t<scan>::{answer['skipped']}\t{answer['path']}"
    if answer["source"] is None:
        return f"{status}\t::\t{answer['path']}"
    line = answer["line"] or ""
    return f"{status}\t{answer['source']}:{line}:{answer['pattern'] or ''}\t{answer['path']}"


def why_command(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.project import find_root

    root = find_root(session.cwd) or session.cwd
    answers = [_answer(root, text, session.cwd, not args.no_default_ignores) for text in args.paths]
    if args.json:
        import json

        session.output.line(json.dumps({"root": str(root), "paths": answers}, indent=2))
    else:
        for answer in answers:
            if "error" not in answer:
                session.output.line(_line(answer))
    failed = [a for a in answers if "error" in a]
    for answer in failed:
        session.output.error(f"{answer['path']}: {answer['error']} ({root})")
    return 1 if failed else 0
