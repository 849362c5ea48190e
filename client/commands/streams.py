"""Stream commands: tell, continue, chat. They start a stream and watch it to its end.

Ctrl-C while watching sends ``stop``: the server ends the stream, keeps the
partial reply, and the End event still arrives here.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from typing import Any

from plancast.client.api.stream import StreamConnection
from plancast.client.credentials import choose_model, credentials_for
from plancast.client.session import Session
from plancast.client.ui.reply_view import ReplyView
from plancast.shared import (
    ChangeEvent,
    Delta,
    End,
    ErrorCode,
    PlancastError,
    StartStream,
    Status,
    StreamEvent,
)


def register(sub: Any) -> None:
    for name, help_text in (
        ("tell", "describe a change; the reply's file changes become pending changes"),
        ("chat", "ask or discuss; never produces changes"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("prompt", nargs="*", help="the prompt (or pipe it on stdin)")
        p.add_argument("-m", "--model", help="provider/model, e.g. anthropic/claude-sonnet-5-5")
        p.set_defaults(func=run_stream, mode=name)
    p = sub.add_parser("continue", help="continue the plan from where the last reply stopped")
    p.add_argument("-m", "--model", help="provider/model")
    p.set_defaults(func=run_stream, mode="continue", prompt=[])


def _prompt(args: argparse.Namespace) -> str:
    text = " ".join(args.prompt).strip()
    if not text and args.mode != "continue" and not sys.stdin.isatty():
        text = sys.stdin.read().strip()
    if not text and args.mode != "continue":
        raise PlancastError(
            f"`plancast {args.mode}` needs a prompt", code=ErrorCode.INVALID_REQUEST
        )
    return text


def run_stream(session: Session, args: argparse.Namespace) -> int:
    prompt = _prompt(args)
    model = choose_model(args.model)
    creds = credentials_for(model)  # a missing key stops us here, before any work
    request = StartStream(
        request_id=secrets.token_hex(12),
        plan_id=session.plan_id,
        mode=args.mode,
        prompt=prompt,
        model=str(model),
        credentials=(creds,),
    )
    with StreamConnection(session.config) as conn:
        started = conn.start(request)
        session.output.note(f"stream {started.stream_id} · {model}")
        end = watch(session, conn, started.stream_id)
    return 0 if end.status == "finished" else 1


def watch(session: Session, conn: StreamConnection, stream_id: str) -> End:
    """Render a stream's events until its End; Ctrl-C asks the server to stop it."""
    renderer = _Renderer(session)
    events = conn.events(stream_id)
    while True:
        try:
            for event in events:
                renderer.show(event)
                if isinstance(event, End):
                    return event
        except KeyboardInterrupt:
            session.output.note("\nstopping… (the partial reply is kept)")
            conn.stop(stream_id)
            events = conn.events(stream_id)
            continue
        raise PlancastError("the stream ended without an end event", code=ErrorCode.INTERNAL)


class _Renderer:
    def __init__(self, session: Session) -> None:
        self.out = session.output
        self.view = ReplyView()
        self.at_line_start = True
        self.changes: list[ChangeEvent] = []

    def _show_text(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.at_line_start = text.endswith("\n")

    def show(self, event: StreamEvent) -> None:
        if isinstance(event, Delta):
            self._show_text(self.view.feed(event.text))
        elif isinstance(event, ChangeEvent):
            self.changes.append(event)
        elif isinstance(event, Status) and event.stage == "problem":
            self._break()
            self.out.note(f"warning: {event.detail}", "yellow")
        elif isinstance(event, End):
            self._show_text(self.view.finish())
            self._break()
            self._end(event)

    def _break(self) -> None:
        if not self.at_line_start:
            self.out.write("\n")
            self.at_line_start = True

    def _end(self, end: End) -> None:
        out = self.out
        if end.status == "finished":
            out.note("── done", "green")
        elif end.status == "stopped":
            out.note(
                "── stopped; the partial reply is kept (`plancast continue` resumes)", "yellow"
            )
        else:
            out.error(end.error_message or f"the stream {end.status}")
        if self.changes:
            paths = sorted({c.path for c in self.changes})
            out.line(f"{len(self.changes)} pending change(s) to {len(paths)} file(s):", "bold")
            for path in paths:
                out.line(f"  {path}")
            out.line("review with `plancast diff`, then `plancast apply` or `plancast reject`")
