"""``convo`` shows the plan's conversation; ``summary`` shows its latest summary.

Once a conversation passes the plan's summary budget, the summarizer condenses its older
turns into a summary message, placed before the turns it kept. ``convo`` still shows every
message (history is never rewritten); the planner sees the latest summary and what follows it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session

WHO = {"user": "you", "assistant": "plancast", "summary": "summary"}


def register(sub: Any) -> None:
    p = sub.add_parser("convo", help="show the plan's conversation")
    p.add_argument("--json", action="store_true", help="print the messages as JSON, for scripts")
    p.set_defaults(func=convo)
    p = sub.add_parser("summary", help="show the latest summary of the plan's conversation")
    p.add_argument("--json", action="store_true", help="print it as JSON, for scripts")
    p.set_defaults(func=summary)


def _messages(session: Session) -> list[dict[str, Any]]:
    return list(session.api.get(f"/plans/{session.plan_id}/convo")["messages"])


def convo(session: Session, args: argparse.Namespace) -> int:
    messages = _messages(session)
    out = session.output
    if args.json:
        out.json(messages)
        return 0
    if not messages:
        out.line('no conversation yet; `plancast tell "…"` starts one')
    for message in messages:
        who = WHO.get(message["role"], message["role"])
        flag = "" if message["status"] == "complete" else f" [{message['status']}]"
        what = "of the messages above" if message["role"] == "summary" else message["mode"]
        out.line(f"── {who} ({what}){flag}", "bold", "magenta" if who == "summary" else "cyan")
        out.line(message["content"].rstrip("\n"))
        out.line()
    return 0


def summary(session: Session, args: argparse.Namespace) -> int:
    messages = _messages(session)
    at = next(
        (n for n in range(len(messages) - 1, -1, -1) if messages[n]["role"] == "summary"), None
    )
    out = session.output
    if args.json:
        out.json(
            None if at is None else messages[at] | {"covers": at, "after": len(messages) - at - 1}
        )
        return 0
    if at is None:
        # Not "within the budget": a summary that failed leaves a long conversation without one.
        out.line(
            f"no summary yet: the conversation ({len(messages)} messages) is summarized once "
            "it passes the plan's summary budget (`plancast models` shows it)"
        )
        return 0
    out.line(
        f"summary of {at} earlier messages ({len(messages) - at - 1} since)", "bold", "magenta"
    )
    out.line(messages[at]["content"].rstrip("\n"))
    return 0
