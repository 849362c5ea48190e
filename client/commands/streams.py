"""Stream commands: tell, chat, continue start a stream; ps, connect and stop manage them.

A stream runs on the server whether or not anyone watches. Watching is a
cursor: the client remembers the last sequence number it showed and, if the
connection drops, reconnects with backoff and attaches "after" it, so nothing
is shown twice or missed. Ctrl-C asks whether to stop the stream or detach.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any

from plancast.client.api.errors import ConnectionLost, ServerUnavailable
from plancast.client.api.stream import StreamConnection
from plancast.client.credentials import credentials_for
from plancast.client.session import Session
from plancast.client.ui.render import StreamRenderer
from plancast.shared import (
    Delta,
    End,
    ErrorCode,
    ModelSpec,
    PlancastError,
    PlanModels,
    ProviderCredentials,
    Snapshot,
    Started,
)

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)  # about 30 s in all


class Detached(Exception):
    """The user chose to leave the stream running and stop watching."""


def register(sub: Any) -> None:
    for name, help_text in (
        ("tell", "describe a change; the reply's file changes become pending changes"),
        ("chat", "ask or discuss; never produces changes"),
    ):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("prompt", nargs="*", help="the prompt (or pipe it on stdin)")
        _model_options(p)
        p.set_defaults(func=run_stream, mode=name)
    p = sub.add_parser("continue", help="continue the plan from where the last reply stopped")
    _model_options(p)
    p.set_defaults(func=run_stream, mode="continue", prompt=[])
    p = sub.add_parser("ps", help="list this project's running and recent streams")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(func=ps)
    p = sub.add_parser("connect", help="watch a stream (default: the current plan's latest)")
    p.add_argument("stream", nargs="?", help="a stream id from `plancast ps`")
    p.set_defaults(func=connect)
    p = sub.add_parser("stop", help="stop a running stream, keeping its partial reply")
    p.add_argument("stream", nargs="?", help="a stream id (default: the current plan's)")
    p.set_defaults(func=stop)


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("-m", "--model", help="provider/model, e.g. anthropic/claude-sonnet-5-5")
    p.add_argument(
        "--fallback-model",
        help="provider/model to try if the model fails before replying "
        "(env PLANCAST_FALLBACK_MODEL)",
    )
    p.add_argument("--bg", action="store_true", help="start it and return; it runs on")


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
    from plancast.client.commands.models import resolve_for_stream

    prompt = _prompt(args)
    explicit = ModelSpec.parse(args.model) if args.model else None
    resolved = resolve_for_stream(session, explicit, getattr(args, "default_model", None))
    model = resolved.roles["planner"].model
    fallback_name = args.fallback_model or os.environ.get("PLANCAST_FALLBACK_MODEL")
    fallback = ModelSpec.parse(fallback_name) if fallback_name else None
    creds = _credentials(resolved, fallback)  # a missing key stops us here, before any work
    from plancast.client.commands.context import warn_if_stale

    warn_if_stale(session)  # stale loaded files: one warning line, or PLANCAST_AUTO_UPDATE=1
    fields = {
        "request_id": secrets.token_hex(12),
        "plan_id": session.plan_id,
        "branch": session.branch,
        "mode": args.mode,
        "prompt": prompt,
        "model": str(model),
        "fallback_model": str(fallback) if fallback else None,
    }
    started = _start(session, fields, creds)
    if args.bg:
        session.output.line(started.stream_id)
        session.output.note(
            f"running in the background · `plancast connect {started.stream_id}` to watch, "
            f"`plancast stop {started.stream_id}` to stop"
        )
        return 0
    session.output.note(f"stream {started.stream_id} · {model}")
    end = watch(session, started.stream_id)
    return 0 if end is None or end.status == "finished" else 1


def _credentials(resolved: PlanModels, fallback: ModelSpec | None) -> list[ProviderCredentials]:
    """One set of credentials per provider any role of the stream may call.

    A missing key is named with the roles that need it, since a pack can put a role on
    another provider than the planner's.
    """
    models = {role: m.model for role, m in resolved.roles.items()}
    if resolved.large_context is not None:
        models["large_context"] = resolved.large_context.model
    if fallback is not None:
        models["fallback"] = fallback
    out: dict[str, ProviderCredentials] = {}
    for role, model in models.items():
        if model.provider in out:
            continue
        try:
            out[model.provider] = credentials_for(model)
        except PlancastError as exc:
            if role == "planner":
                raise
            roles = [r for r, m in models.items() if m.provider == model.provider]
            raise PlancastError(
                f"this plan's {', '.join(roles)} use{'s' if len(roles) == 1 else ''} {model}: "
                + exc.message,
                code=exc.code,
            ) from None
    return list(out.values())


def _start(
    session: Session, fields: dict[str, Any], credentials: list[ProviderCredentials]
) -> Started:
    """Send ``start``; if the connection drops first, send the same request again.

    The request id makes this safe: a start that did reach the server is not
    repeated, its stream is returned. Each attempt seals the keys anew: a seal
    is good for one start only.
    """
    from plancast.client.api.sealing import sealed_start

    for delay in (*RECONNECT_DELAYS_S[:3], None):
        try:
            with StreamConnection(session.config) as conn:
                return conn.start(sealed_start(conn, credentials, **fields))
        except ConnectionLost:
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def watch(
    session: Session,
    stream_id: str,
    *,
    after: int = 0,
    ask: Callable[[str], str] | None = None,
) -> End | None:
    """Show a stream's events after ``after`` until its End, reconnecting as needed.

    Returns the End, or None when the user detached (the stream goes on).
    """
    renderer = StreamRenderer(session)
    try:
        return _watch(session, stream_id, renderer, after, ask)
    finally:
        renderer.close()  # stops its status line


def _watch(
    session: Session,
    stream_id: str,
    renderer: StreamRenderer,
    after: int,
    ask: Callable[[str], str] | None,
) -> End | None:
    last = after
    failures = 0
    while True:
        try:
            with StreamConnection(session.config) as conn:
                conn.attach(stream_id, last)
                try:
                    for event in conn.events(stream_id):
                        if event.seq <= last and not isinstance(event, End):
                            continue  # already shown before a reconnect
                        last = max(last, event.seq)
                        failures = 0
                        if isinstance(event, Snapshot):  # the events are gone: the saved reply
                            session.output.note(f"({event.reason}; showing the saved reply)")
                            renderer.show(
                                Delta(stream_id=stream_id, seq=event.seq, text=event.reply)
                            )
                        renderer.show(event)
                        if isinstance(event, End):
                            return event
                except KeyboardInterrupt:
                    if _stop_or_detach(session, ask) == "detach":
                        raise Detached from None
                    conn.stop(stream_id)
                    session.output.note("stopping… (the partial reply is kept)")
                    continue
        except Detached:
            renderer.pause()
            session.output.note(
                f"detached; the stream runs on · `plancast connect {stream_id}` to watch it"
            )
            return None
        except (ConnectionLost, ServerUnavailable):
            if failures >= len(RECONNECT_DELAYS_S):
                raise PlancastError(
                    f"lost the connection to the server; the stream may still run there: "
                    f"`plancast connect {stream_id}` to watch it again",
                    code=ErrorCode.INTERNAL,
                ) from None
            renderer.pause()
            session.output.note("connection lost; reconnecting…", "yellow")
            time.sleep(RECONNECT_DELAYS_S[failures])
            failures += 1


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _stop_or_detach(session: Session, ask: Callable[[str], str] | None) -> str:
    """Ctrl-C while watching: stop the stream or detach? Without a terminal: stop."""
    if ask is None:
        if not sys.stdin.isatty():
            return "stop"
        ask = input
    session.output.write("\n")
    while True:
        try:
            answer = ask("[s]top the stream, or [d]etach and leave it running? ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            return "stop"
        if answer in ("s", "stop", ""):
            return "stop"
        if answer in ("d", "detach"):
            return "detach"


def _streams(session: Session) -> list[dict[str, Any]]:
    found = session.api.get(f"/projects/{session.binding.project_id}/streams")["streams"]
    return list(found)


def ps(session: Session, args: argparse.Namespace) -> int:
    found = _streams(session)
    if args.json:
        session.output.line(json.dumps(found, indent=2))
        return 0
    if not found:
        session.output.line("no streams yet in this project")
        return 0
    now = time.time()
    for s in found:
        ago = _ago(now - s["started_at"])
        style = ("green",) if s["status"] == "running" else ()
        session.output.line(
            f"{s['id']}  {s['status']:<11} {s['mode']:<8} {s['plan_name']:<16} "
            f"{s['model']:<28} {ago}",
            *style,
        )
    return 0


def _ago(seconds: float) -> str:
    if seconds < 90:
        return f"{int(seconds)}s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)}m ago"
    if seconds < 129600:
        return f"{int(seconds // 3600)}h ago"
    return f"{int(seconds // 86400)}d ago"


def _default_stream(session: Session, *, running_only: bool) -> str:
    mine = session.api.get(f"/plans/{session.plan_id}/streams")["streams"]
    running = [s for s in mine if s["status"] == "running"]
    chosen = running or ([] if running_only else mine)
    if not chosen:
        what = "running stream" if running_only else "stream"
        raise PlancastError(
            f"the current plan has no {what}; `plancast ps` lists the project's streams",
            code=ErrorCode.NOT_FOUND,
        )
    return str(chosen[-1]["id"])


def connect(session: Session, args: argparse.Namespace) -> int:
    stream_id = args.stream or _default_stream(session, running_only=False)
    end = watch(session, stream_id)
    return 0 if end is None or end.status == "finished" else 1


def stop(session: Session, args: argparse.Namespace) -> int:
    stream_id = args.stream or _default_stream(session, running_only=True)
    with StreamConnection(session.config) as conn:
        conn.stop(stream_id)
        conn.attach(stream_id, 0)
        end = None
        for event in conn.events(stream_id):
            if isinstance(event, End):
                end = event
                break
    assert end is not None  # events() only returns after an End
    session.output.line(f"stream {stream_id} {end.status}")
    return 0
