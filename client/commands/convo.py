"""``convo``: the plan's conversation."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("convo", help="show the plan's conversation")
    p.add_argument("--json", action="store_true", help="print the messages as JSON, for scripts")
    p.set_defaults(func=convo)


def convo(session: Session, args: argparse.Namespace) -> int:
    messages = session.api.get(f"/plans/{session.plan_id}/convo")["messages"]
    out = session.output
    if args.json:
        out.json(messages)
        return 0
    if not messages:
        out.line('no conversation yet; `plancast tell "…"` starts one')
    for message in messages:
        who = "you" if message["role"] == "user" else "plancast"
        flag = "" if message["status"] == "complete" else f" [{message['status']}]"
        out.line(f"── {who} ({message['mode']}){flag}", "bold", "cyan")
        out.line(message["content"].rstrip("\n"))
        out.line()
    return 0
