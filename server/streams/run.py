"""One stream's work, from its first event to its ``End``: what a ``StreamService`` task runs.

Rules:

1. ``work`` streams the planner's reply, summarizing the conversation before it when it has
   passed the plan's budget (a failed summary only says so), continuing while the reply asks
   within the plan's bound, and trying ``fallback`` only for a model that produced nothing.
   File blocks become changes as they close, and are built once the reply is over (the
   builder model tries again at a file whose edit did not land). Then the namer and the
   committer run; neither can fail the stream.
2. A ``StreamRun`` only gathers: the reply, its changes, their builds, the usage of each model
   call. Nothing of it is saved before ``finish``.
3. ``finish`` saves it all in one transaction (the reply joins the conversation with its
   changes, partial if the stream did not finish) and only then publishes ``End``, so a
   client that sees ``End`` can read the changes at once. It runs on every path, and a
   failure to save still ends the stream (``failed``, ``internal``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import context as context_domain
from plancast.server.domain import convo, plan_names, versions
from plancast.server.domain.convo import Message
from plancast.server.domain.ids import new_id, now
from plancast.server.llm import prompts
from plancast.server.llm.errors import ProviderError
from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta
from plancast.server.store.database import storable
from plancast.server.store.schema import usage as usage_table
from plancast.server.streams import records
from plancast.server.streams.builds import (
    BuiltChange,
    RebuildRequest,
    ReplyBuild,
    context_files,
    rebuild_messages,
)
from plancast.server.streams.deadlines import StreamLimits, within_limits
from plancast.server.streams.eventlog import EventLog
from plancast.server.streams.live import LiveStream
from plancast.server.streams.outcome import record_reply
from plancast.server.streams.roles import (
    RoleCalls,
    clean_commit_message,
    clean_name,
    clean_summary,
)
from plancast.server.workers.pool import Worker
from plancast.shared import (
    BlockOpened,
    ChangeEvent,
    Delta,
    End,
    ErrorCode,
    FileOp,
    ModelSpec,
    OpParsed,
    ParseProblem,
    PlancastError,
    PlanModels,
    ReplyEvent,
    ReplyParser,
    Status,
    StreamEvent,
    estimate_tokens,
)

logger = logging.getLogger("plancast.server.streams")

REBUILD_ATTEMPTS = 2
"""Times the builder model may try at one file before its build is reported as failed."""

KEEP_TURNS = 2
"""Messages a summary leaves as they are: the latest prompt and the reply before it."""


class StreamRun:
    """One stream's model calls and what they gather, for ``finish`` to save (rule 2)."""

    def __init__(
        self,
        db: AsyncEngine,
        eventlog: EventLog,
        live: LiveStream,
        *,
        mode: str,
        models: PlanModels,
        worker: Worker,
        limits: StreamLimits,
        on_call_failed: Callable[[str, str], None],
    ) -> None:
        self._db = db
        self._eventlog = eventlog
        self._worker = worker
        self._limits = limits
        self._on_call_failed = on_call_failed  # (model, error code) of a failed planner call
        self.live = live
        self.mode = mode
        self.models = models
        self.calls = RoleCalls(worker, models, limits)
        self.model: ModelSpec | None = None
        self.reply: list[str] = []
        self.ops: list[tuple[str, FileOp]] = []
        self.problems: list[str] = []
        self.first_token: float | None = None
        self.commit_message: str | None = None
        # The conversation's first and latest prompts, read once by ``_plan``.
        self.first_prompt = ""
        self.last_prompt = ""
        self.build = ReplyBuild({})
        self.built: list[BuiltChange] | None = None
        self.build_started = False  # a stop during the rebuilds leaves every change unbuilt
        self.reply_complete = False  # the planner's reply ended (whatever happens after it)

    async def work(self, fallback: ModelSpec | None) -> None:
        """Every model call of the stream (rule 1); raises what ends it early."""
        await self._plan(fallback)
        if self.mode != "continue":
            await self._name()
        if self.ops and self.mode != "chat":
            await self._commit_message()

    def _publish(self, kind: type[StreamEvent], **fields: object) -> None:
        self._eventlog.append(self.live.emit(kind, **fields))

    async def _plan(self, fallback: ModelSpec | None) -> None:
        """The planner's reply: summarize first if due, then stream it, continuing if asked."""
        live, publish = self.live, self._publish
        planner = self.models.roles["planner"]
        publish(Status, stage="planning", detail=str(planner.model))
        async with self._db.connect() as conn:
            context = await context_domain.list_items(
                conn, live.org_id, live.plan_id, live.branch, with_content=True
            )
            history = await convo.list_messages(conn, live.org_id, live.plan_id, live.branch)
        self.build = ReplyBuild(context_files(context))
        prompts_sent = [m.content for m in history if m.role == "user"]
        self.first_prompt, self.last_prompt = (
            (prompts_sent[0], prompts_sent[-1]) if prompts_sent else ("", "")
        )
        history = await self._summarize(history)
        system = prompts.system_prompt(self.mode, context)
        base = prompts.conversation(history, None)
        parser = ReplyParser()
        parts = 1 + (self.models.auto_continue if self.mode != "chat" else 0)
        for part in range(parts):
            messages = base
            if self.reply:
                messages = (
                    *base,
                    ChatMessage("assistant", "".join(self.reply)),
                    ChatMessage("user", prompts.CONTINUE_PROMPT),
                )
                publish(Status, stage="continuing", detail=f"part {part + 1} of at most {parts}")
            chosen = self.calls.pick("planner", system, messages)
            candidates = [chosen.model] if fallback is None or part else [chosen.model, fallback]
            produced = len(self.reply)
            for n, candidate in enumerate(candidates):
                self.model = candidate
                started, first, usage = time.monotonic(), None, None
                request = ChatRequest(model=candidate, system=system, messages=messages)
                try:
                    async for output in within_limits(
                        self._worker.stream_chat(request), self._limits
                    ):
                        if isinstance(output, TextDelta):
                            if first is None:
                                first = time.monotonic()
                                self.first_token = self.first_token or first
                            delta = storable(output.text)
                            self.reply.append(delta)
                            publish(Delta, text=delta)
                            self._handle(parser.feed(delta))
                        else:
                            usage = output
                    break
                except ProviderError as exc:
                    self._on_call_failed(str(candidate), str(exc.code))
                    # A fallback only replaces a model that produced nothing:
                    # two models' text is never spliced into one reply.
                    if len(self.reply) > produced or n + 1 == len(candidates):
                        raise
                    publish(
                        Status,
                        stage="fallback",
                        detail=f"{candidate} failed ({exc.code}); trying {candidates[n + 1]}",
                    )
                finally:
                    self.calls.record("planner", str(candidate), usage, started, first)
            new_text = "".join(self.reply[produced:])
            asks = _asks_to_continue(new_text)
            if not asks and parser.current_block is None:
                break
            if asks and not new_text.endswith("\n"):  # the next part starts a line of its own
                self.reply.append("\n")
                publish(Delta, text="\n")
                self._handle(parser.feed("\n"))
        self._handle(parser.finish())
        self.reply_complete = True
        if self.ops:
            self.build_started = True
            self.built = await self.build.finish(
                self._rebuild,
                max_attempts=REBUILD_ATTEMPTS,
                on_note=lambda note: publish(Status, stage=note.stage, detail=note.detail),
            )
            for built in self.built:  # say which changes will never land, and why
                if built.status == "failed":
                    publish(
                        ChangeEvent,
                        change_id=built.change_id,
                        path=built.path,
                        op=built.op.OP,
                        status="failed",
                        detail=str(built.build.get("reason") or "the build failed"),
                    )

    async def _rebuild(self, request: RebuildRequest) -> str:
        """One try of the builder model at a file whose proposed change did not land."""
        system, user = rebuild_messages(request)
        return await self.calls.text("builder", system, (ChatMessage("user", user),))

    def _handle(self, events: list[ReplyEvent]) -> None:
        for event in events:
            if isinstance(event, BlockOpened):
                self._publish(Status, stage="building", detail=event.path)
            elif isinstance(event, OpParsed) and self.mode != "chat":
                change_id = new_id("chg")
                self.ops.append((change_id, event.op))
                self._publish(ChangeEvent, change_id=change_id, path=event.op.path, op=event.op.OP)
                note = self.build.add(change_id, event.op)
                if note is not None:
                    self._publish(Status, stage=note.stage, detail=note.detail)
            elif isinstance(event, ParseProblem):
                self.problems.append(event.message)
                self._publish(Status, stage="problem", detail=event.message)

    async def _summarize(self, history: list[Message]) -> list[Message]:
        """Condense the older turns once the conversation passes the plan's budget.

        The summary joins the plan before the turns it keeps, in a version of its own; a
        failed summary is reported and the plan goes on with the whole conversation.
        """
        recent = prompts.since_summary(history)
        tokens = sum(estimate_tokens(m.content) for m in recent)
        if tokens <= self.models.summary_tokens or len(recent) <= KEEP_TURNS + 1:
            return history
        older, kept = list(recent[:-KEEP_TURNS]), list(recent[-KEEP_TURNS:])
        self._publish(Status, stage="summarizing", detail=f"{len(older)} messages")
        try:
            text = clean_summary(
                await self.calls.text(
                    "summarizer", prompts.SUMMARIZER, prompts.summary_request(older)
                )
            )
            if text is None:
                raise PlancastError("the summarizer replied with nothing")
        except (PlancastError, ProviderError) as exc:
            message = exc.message if isinstance(exc, PlancastError) else str(exc)
            self._publish(Status, stage="summary_failed", detail=message)
            return history
        live = self.live
        async with self._db.begin() as conn:
            summary = await convo.insert_message(
                conn,
                live.org_id,
                live.plan_id,
                role="summary",
                mode=self.mode,
                content=text,
                stream_id=live.id,
            )
            kept_ids = {m.id for m in kept}

            def mutate(state: versions.PlanState) -> versions.PlanState:
                at = min(
                    (n for n, mid in enumerate(state.messages) if mid in kept_ids),
                    default=len(state.messages),
                )
                messages = (*state.messages[:at], summary.id, *state.messages[at:])
                return dataclasses.replace(state, messages=messages)

            await versions.commit(
                conn,
                live.org_id,
                live.plan_id,
                live.branch,
                "summary",
                f"summarized {len(older)} earlier messages",
                mutate,
            )
        self._publish(Status, stage="summarized", detail=f"{len(older)} messages")
        return [*history[: len(history) - len(recent)], summary, *kept]

    async def _name(self) -> None:
        """Name a plan whose name nobody chose, from its first prompt (never blocks)."""
        live = self.live
        async with self._db.connect() as conn:
            draft = await plan_names.draft_name(conn, live.org_id, live.plan_id)
            if draft is None:
                return
        prompt = self.first_prompt
        if not prompt:
            return
        try:
            name = clean_name(
                await self.calls.text("namer", prompts.NAMER, prompts.name_request(prompt))
            )
        except (PlancastError, ProviderError):
            name = None
        if name is None:
            self._publish(Status, stage="name_failed", detail="the plan keeps its name")
            return
        async with self._db.begin() as conn:
            given = await plan_names.give_name(conn, live.org_id, live.plan_id, draft, name)
        if given:
            self._publish(Status, stage="named", detail=given)

    async def _commit_message(self) -> None:
        """The committer's message for this reply's changes, kept for ``apply --commit``."""
        prompt = self.last_prompt
        paths = sorted({op.path for _, op in self.ops})
        try:
            self.commit_message = clean_commit_message(
                await self.calls.text(
                    "committer",
                    prompts.COMMITTER,
                    prompts.commit_request(prompt, paths, "".join(self.reply)),
                )
            )
        except (PlancastError, ProviderError):
            self.commit_message = None
        if self.commit_message is None:
            self._publish(Status, stage="commit_message_failed", detail="")

    async def finish(self, status: str, error: PlancastError | None) -> None:
        """Save what the run gathered, then publish ``End`` (rule 3); never raises.

        If saving fails, the stream still ends, ``failed`` with ``internal``.
        """
        live = self.live
        text = "".join(self.reply)
        code = str(error.code) if error else None
        message = error.message if error else None
        try:
            if not self.build_started and self.ops:  # stopped or failed: build without the model
                self.built = await self.build.finish(None)
            await self._eventlog.flush()
            async with self._db.begin() as conn:
                await record_reply(
                    conn,
                    live,
                    self.mode,
                    text,
                    self.ops,
                    status,
                    self.built,
                    reply_complete=self.reply_complete,
                )
                if self.calls.records:
                    at = now()
                    await conn.execute(
                        usage_table.insert(),
                        [
                            {
                                "id": new_id("use"),
                                "org_id": live.org_id,
                                "plan_id": live.plan_id,
                                "stream_id": live.id,
                                "model": r.model,
                                "role": r.role,
                                "input_tokens": r.input_tokens,
                                "output_tokens": r.output_tokens,
                                "first_token_ms": r.first_token_ms,
                                "duration_ms": r.duration_ms,
                                "created_at": at,
                            }
                            for r in self.calls.records
                        ],
                    )
                await records.finish(
                    conn,
                    live.id,
                    status=status,
                    last_seq=live.last_seq + 1,
                    error_code=code,
                    error_message=message,
                    commit_message=self.commit_message,
                )
            end = live.emit(
                End, status=status, error_code=code, error_message=message, changes=len(self.ops)
            )
            self._eventlog.append(end)
            await self._eventlog.flush()
        except Exception:
            logger.exception("stream %s could not be finalised", live.id)
            if not live.ended:
                live.emit(
                    End,
                    status="failed",
                    error_code=ErrorCode.INTERNAL,
                    error_message="the stream could not be saved",
                    changes=0,
                )
        logger.info(
            "stream %s ended status=%s events=%d reply_chars=%d changes=%d calls=%d",
            live.id,
            status,
            live.last_seq,
            len(text),
            len(self.ops),
            len(self.calls.records),
        )


def _asks_to_continue(text: str) -> bool:
    """Whether the planner ended this part with the continue marker, alone on its line."""
    tail = text.rstrip().rsplit("\n", 1)[-1].strip()
    return tail.replace(" ", "") == prompts.CONTINUE_MARKER
