"""``usage``: what the plan's model calls cost, in tokens and time (``--project``: every plan).

The server keeps one row of metadata per model call (model, role, tokens in and out, time to
the first token, duration) and sums them; this command only shows the sums. Tokens are the
provider's own counts. Time is the calls' durations added up, and the first-token time is the
median over the calls, so one slow start does not hide how fast the others began.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session

COLUMNS = ("calls", "tokens in", "tokens out", "time", "first token")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "usage",
        help="tokens and time of the plan's model calls (time summed, first token: median)",
    )
    p.add_argument(
        "--project", action="store_true", help="every plan of the project, not only this one"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON, for scripts")
    p.set_defaults(func=usage)


def usage(session: Session, args: argparse.Namespace) -> int:
    if args.project:
        report = session.api.get(f"/projects/{session.binding.project_id}/usage")
    else:
        report = session.api.get(f"/plans/{session.plan_id}/usage")
    out = session.output
    if args.json:
        out.json(report)
        return 0
    total = report["total"]
    if not total["calls"]:
        out.line("no model calls yet" + (" in this project" if args.project else " in this plan"))
        return 0
    for line in render(report, project=args.project):
        out.line(line)
    return 0


def render(report: dict[str, Any], *, project: bool = False) -> list[str]:
    """The report as an aligned table: by model, by role, (by plan), then the total."""
    sections: list[tuple[str, list[dict[str, Any]]]] = [
        ("by model", report["by_model"]),
        ("by role", report["by_role"]),
    ]
    if project:
        named = [g | {"key": g.get("name") or g["key"]} for g in report["by_plan"]]
        sections.append(("by plan", named))
    rows: list[tuple[str, ...]] = []
    for title, groups in sections:
        rows.append((title, *COLUMNS))
        rows += [(f"  {g['key']}", *_cells(g)) for g in groups]
        rows.append(("",) * (len(COLUMNS) + 1))
    rows.append(("total", *_cells(report["total"])))
    width = [max(len(row[n]) for row in rows) for n in range(len(COLUMNS) + 1)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(width[0])] + [
            c.rjust(w) for c, w in zip(row[1:], width[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _cells(group: dict[str, Any]) -> tuple[str, ...]:
    first = group["median_first_token_ms"]
    return (
        f"{group['calls']:,}",
        f"{group['input_tokens']:,}",
        f"{group['output_tokens']:,}",
        _seconds(group["duration_ms"]),
        "—" if first is None else _seconds(first),
    )


def _seconds(ms: int) -> str:
    if ms < 60_000:
        return f"{ms / 1000:.1f}s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    return f"{minutes}m{seconds:02d}s"
