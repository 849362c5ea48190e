"""The stream engine: starts, runs, stops and recovers plan streams.

Rules:

1. A stream belongs to the server. ``start`` records it, spawns its task and
   returns; the task runs to its end whether or not anyone watches. Stopping
   is a command (``stop``); a watcher going away changes nothing.
2. Every stream ends with exactly one ``End`` event, and its reply (partial if
   it did not finish) joins the conversation in the same version as the
   changes it proposed. ``End`` is published after that version is committed,
   so a client that sees it can read the changes at once.
3. The server never holds a plaintext provider key. A stream's model calls run
   in its own worker process (``workers``), which opens the client's sealed
   credentials; the worker exits (or is killed) the moment the model calls are
   over, on every path: finished, stopped, failed, shut down, before ``End``.
4. A request id makes ``start`` idempotent: a retried start attaches to the
   stream the first attempt created.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import context as context_domain
from plancast.server.domain import convo, plans, versions
from plancast.server.domain.ids import new_id, now
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import Busy, InvalidRequest
from plancast.server.llm import calls, prompts
from plancast.server.llm.errors import ProviderError
from plancast.server.llm.types import ChatRequest, TextDelta, Usage
from plancast.server.store.schema import usage as usage_table
from plancast.server.streams import records
from plancast.server.streams.deadlines import DEFAULT_LIMITS, StreamLimits, within_limits
from plancast.server.streams.eventlog import EventLog, read_events
from plancast.server.streams.live import LiveStream
from plancast.server.streams.outcome import append_messages, record_reply
from plancast.server.streams.recovery import recover_orphans
from plancast.server.streams.registry import StreamRegistry
from plancast.server.workers.pool import Worker, WorkerPool
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
    ReplyEvent,
    ReplyParser,
    Snapshot,
    StartStream,
    Status,
    StreamEvent,
)

logger = logging.getLogger("plancast.server.streams")


@dataclass(frozen=True, slots=True)
class StartedStream:
    stream_id: str
    plan_id: str
    branch: str


class StreamService:
    def __init__(
        self,
        engine: AsyncEngine,
        eventlog: EventLog,
        workers: WorkerPool,
        *,
        provider_timeout_s: float,
        replica_id: str,
        retry: calls.RetryPolicy = calls.DEFAULT_RETRY,
        limits: StreamLimits = DEFAULT_LIMITS,
        max_streams_per_user: int = 8,
    ) -> None:
        self._db = engine
        self._eventlog = eventlog
        self._workers = workers
        self._timeout = provider_timeout_s
        self._retry = retry
        self._limits = limits
        self._max_per_user = max_streams_per_user
        self._replica = replica_id
        self.registry = StreamRegistry()
        self._lease_task: asyncio.Task[None] | None = None

    def start_lease_renewal(self) -> None:
        """Keep this process's running streams leased, so no replica takes them for dead."""
        self._lease_task = asyncio.create_task(self._renew_leases(), name="plancast-leases")

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(records.LEASE_S / 3)
            running = [s.id for s in self.registry.running()]
            try:
                async with self._db.begin() as conn:
                    await records.renew_leases(conn, running, self._replica)
            except Exception:
                logger.exception("renewing stream leases failed; will retry")

    # -- commands -------------------------------------------------------------------------

    async def start(self, principal: Principal, request: StartStream) -> StartedStream:
        """Record and launch a stream.

        The stream gets the id of the seal it names, and that seal's worker.

        Raises:
            NotFound: unknown plan or branch.
            Busy: the branch already runs a stream.
            PlancastError: ``bad_seal``, ``missing_credentials`` or
                ``invalid_request``, before any work.
        """
        authorize(principal, Action.WRITE)
        model = ModelSpec.parse(request.model)
        fallback = ModelSpec.parse(request.fallback_model) if request.fallback_model else None
        worker, seal = self._workers.claim(request.seal_id, principal)
        try:
            await worker.open(  # fails here, before any work, on a bad seal or a missing key
                request.sealed,
                seal_id=seal.seal_id,
                expires_at=seal.expires_at,
                require=sorted({model.provider} | ({fallback.provider} if fallback else set())),
                timeout=self._timeout,
                retry=self._retry,
            )
            async with self._db.begin() as conn:
                existing = await records.by_request_id(conn, principal.org_id, request.request_id)
                if existing is not None:
                    worker.kill()
                    if existing.plan_id != request.plan_id:
                        raise InvalidRequest("request_id was already used for another plan")
                    return StartedStream(existing.id, existing.plan_id, existing.branch)
                await plans.get_plan(conn, principal.org_id, request.plan_id)
                await versions.head(conn, principal.org_id, request.plan_id, request.branch)
                running = await records.count_running_for_user(conn, principal.user_id)
                if running >= self._max_per_user:
                    raise Busy(
                        f"you already run {running} streams, the most this server allows at "
                        "once; wait for one to end or stop one (`plancast ps` lists them)",
                        stream_id=None,
                    )
                stream_id = seal.seal_id
                await records.insert_running(
                    conn,
                    stream_id=stream_id,
                    org_id=principal.org_id,
                    plan_id=request.plan_id,
                    branch=request.branch,
                    mode=request.mode,
                    model=str(model),
                    request_id=request.request_id,
                    owner=self._replica,
                    user_id=principal.user_id,
                )
                if request.prompt.strip():
                    message = await convo.insert_message(
                        conn,
                        principal.org_id,
                        request.plan_id,
                        role="user",
                        mode=request.mode,
                        content=request.prompt,
                        stream_id=stream_id,
                    )
                    await versions.commit(
                        conn,
                        principal.org_id,
                        request.plan_id,
                        request.branch,
                        "prompt",
                        _clip(request.prompt),
                        lambda s: append_messages(s, [message.id]),
                    )
                await plans.touch(conn, principal.org_id, request.plan_id)
        except BaseException:
            worker.kill()
            raise
        live = LiveStream(stream_id, principal.org_id, request.plan_id, request.branch)
        live.session_id = principal.session_id
        self.registry.add(live)
        live.task = asyncio.create_task(
            self._run(live, request.mode, model, fallback, worker),
            name=f"stream-{stream_id}",
        )
        logger.info(
            "stream %s started plan=%s branch=%s mode=%s model=%s",
            stream_id,
            request.plan_id,
            request.branch,
            request.mode,
            model,
        )
        return StartedStream(stream_id, request.plan_id, request.branch)

    async def stop(self, principal: Principal, stream_id: str) -> bool:
        """Ask a running stream to stop; returns False if it had already ended."""
        authorize(principal, Action.WRITE)
        live = self.registry.get(stream_id, principal.org_id)
        if live is None:  # ended long ago (or runs on another replica: a later issue)
            async with self._db.connect() as conn:
                await records.get(conn, principal.org_id, stream_id)  # NotFound across orgs
            return False
        if live.ended or live.task is None or live.stop_requested or live.finishing:
            return False
        live.stop_requested = True
        live.task.cancel()
        return True

    def revoke_session(self, session_id: str) -> int:
        """Stop every stream a revoked sign-in session started, and drop its unused seals.

        Each of those streams' workers is killed at once, keys and all; the streams end
        as ``stopped`` with their partial replies. Returns how many streams were stopped.
        """
        self._workers.revoke_session(session_id)
        stopped = 0
        for live in self.registry.running():
            if live.session_id == session_id and live.task is not None and not live.finishing:
                live.stop_requested = True
                live.task.cancel()
                stopped += 1
        return stopped

    async def follow(
        self, principal: Principal, stream_id: str, after: int
    ) -> AsyncIterator[StreamEvent]:
        """Every event of a stream after ``after``, then the live ones, until ``End``."""
        authorize(principal, Action.READ)
        live = self.registry.get(stream_id, principal.org_id)
        if live is not None:
            async for event in live.follow(after):
                yield event
            return
        async with self._db.connect() as conn:
            record = await records.get(conn, principal.org_id, stream_id)  # NotFound across orgs
            after = min(after, record.last_seq or after)  # a huge after: past the end
            stored = await read_events(conn, stream_id, after)
            if not stored and record.status != "running" and record.last_seq:
                # Asked for events past the end (a client may have seen events that a
                # crash lost): the End event, sent again, tells it the stream is over.
                stored = await read_events(conn, stream_id, record.last_seq - 1)
                if not stored:  # its events were purged: say so, with the outcome
                    reply = await convo.reply_of_stream(conn, principal.org_id, stream_id)
                    stored = [
                        Snapshot(
                            stream_id=stream_id,
                            seq=record.last_seq,
                            status=record.status,  # type: ignore[arg-type]
                            error_code=record.error_code,
                            error_message=record.error_message,
                            reply=reply,
                            reason=f"the events of this stream after {after} are no longer kept",
                        )
                    ]
        for event in stored:
            yield event

    async def purge_old_events(self, retention_s: float) -> int:
        """Forget the events of streams that ended more than ``retention_s`` ago."""
        async with self._db.begin() as conn:
            purged = await records.purge_events(conn, now() - retention_s)
        if purged:
            logger.info("purged %d stored events older than %.0f s", purged, retention_s)
        return purged

    async def shutdown(self) -> None:
        """Stop every running stream (they end as interrupted) and wait for them."""
        if self._lease_task is not None:
            self._lease_task.cancel()
        running = self.registry.running()
        for live in running:
            live.shutting_down = True
            if live.task is not None and not live.finishing:
                live.task.cancel()
        await asyncio.gather(*(s.task for s in running if s.task), return_exceptions=True)

    # -- the run --------------------------------------------------------------------------

    async def _run(
        self,
        live: LiveStream,
        mode: str,
        model: ModelSpec,
        fallback: ModelSpec | None,
        worker: Worker,
    ) -> None:
        reply: list[str] = []
        ops: list[tuple[str, FileOp]] = []
        problems: list[str] = []
        parser = ReplyParser()
        status, error = "finished", None
        started = time.monotonic()
        first_token: float | None = None
        usage: Usage | None = None

        def publish(kind: type[StreamEvent], **fields: object) -> None:
            self._eventlog.append(live.emit(kind, **fields))

        def handle(events: list[ReplyEvent]) -> None:
            for event in events:
                if isinstance(event, BlockOpened):
                    publish(Status, stage="building", detail=event.path)
                elif isinstance(event, OpParsed) and mode != "chat":
                    change_id = new_id("chg")
                    ops.append((change_id, event.op))
                    publish(ChangeEvent, change_id=change_id, path=event.op.path, op=event.op.OP)
                elif isinstance(event, ParseProblem):
                    problems.append(event.message)
                    publish(Status, stage="problem", detail=event.message)

        try:
            publish(Status, stage="planning", detail=str(model))
            async with self._db.connect() as conn:
                context = await context_domain.list_items(
                    conn, live.org_id, live.plan_id, live.branch, with_content=True
                )
                history = await convo.list_messages(conn, live.org_id, live.plan_id, live.branch)
            system = prompts.system_prompt(mode, context)
            messages = prompts.conversation(history, None)
            candidates = [model] if fallback is None else [model, fallback]
            for n, candidate in enumerate(candidates):
                model = candidate
                request = ChatRequest(model=candidate, system=system, messages=messages)
                model_output = worker.stream_chat(request)
                try:
                    async for output in within_limits(model_output, self._limits):
                        if isinstance(output, TextDelta):
                            if first_token is None:
                                first_token = time.monotonic()
                            reply.append(output.text)
                            publish(Delta, text=output.text)
                            handle(parser.feed(output.text))
                        else:
                            usage = output
                    break
                except ProviderError as exc:
                    # A fallback only replaces a model that produced nothing:
                    # two models' text is never spliced into one reply.
                    if reply or n + 1 == len(candidates):
                        raise
                    publish(
                        Status,
                        stage="fallback",
                        detail=f"{candidate} failed ({exc.code}); trying {candidates[n + 1]}",
                    )
            handle(parser.finish())
        except asyncio.CancelledError:
            status = "interrupted" if live.shutting_down else "stopped"
        except PlancastError as exc:
            status, error = "failed", exc
        except Exception:
            logger.exception("stream %s failed", live.id)
            status = "failed"
            error = PlancastError("internal error while streaming; the partial reply was kept")
        finally:
            live.finishing = True  # from here on, stop and shutdown wait instead of cancelling
            # The worker's keys go with it, before End says the stream is over: asked to exit
            # after a reply that finished, killed at once on any other outcome.
            if status == "finished":
                await worker.close()
            else:
                worker.kill()
                await worker.wait_exited()
        await self._finish(
            live, mode, model, reply, ops, status, error, usage, started, first_token
        )

    async def _finish(
        self,
        live: LiveStream,
        mode: str,
        model: ModelSpec,
        reply: list[str],
        ops: list[tuple[str, FileOp]],
        status: str,
        error: PlancastError | None,
        usage: Usage | None,
        started: float,
        first_token: float | None,
    ) -> None:
        text = "".join(reply)
        code = str(error.code) if error else None
        message = error.message if error else None
        try:
            await self._eventlog.flush()
            async with self._db.begin() as conn:
                await record_reply(conn, live, mode, text, ops, status)
                if usage is not None or first_token is not None:
                    await conn.execute(
                        usage_table.insert().values(
                            id=new_id("use"),
                            org_id=live.org_id,
                            plan_id=live.plan_id,
                            stream_id=live.id,
                            model=str(model),
                            role="planner",
                            input_tokens=usage.input_tokens if usage else 0,
                            output_tokens=usage.output_tokens if usage else 0,
                            first_token_ms=_ms(first_token - started) if first_token else None,
                            duration_ms=_ms(time.monotonic() - started),
                            created_at=now(),
                        )
                    )
                await records.finish(
                    conn,
                    live.id,
                    status=status,
                    last_seq=live.last_seq + 1,
                    error_code=code,
                    error_message=message,
                )
            end = live.emit(
                End, status=status, error_code=code, error_message=message, changes=len(ops)
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
        finally:
            self.registry.mark_ended(live.id)
        logger.info(
            "stream %s ended status=%s events=%d reply_chars=%d changes=%d",
            live.id,
            status,
            live.last_seq,
            len(text),
            len(ops),
        )

    # -- recovery -------------------------------------------------------------------------

    async def recover(self, *, only_expired: bool) -> int:
        """Mark streams that no process runs any more as interrupted (see ``recovery``)."""
        return await recover_orphans(self._db, only_expired=only_expired)


def _clip(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
