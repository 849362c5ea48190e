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
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from plancast.server.domain import convo, model_settings, plans, versions
from plancast.server.domain.ids import now
from plancast.server.domain.principal import Action, Principal, authorize
from plancast.server.errors import Busy, InvalidRequest
from plancast.server.llm import calls
from plancast.server.store.crypto import Keyring
from plancast.server.streams import records
from plancast.server.streams.cluster import POLL_S, Cluster, notify, notify_events
from plancast.server.streams.deadlines import DEFAULT_LIMITS, StreamLimits
from plancast.server.streams.eventlog import EventLog, read_events
from plancast.server.streams.live import LiveStream
from plancast.server.streams.outcome import append_messages
from plancast.server.streams.recovery import recover_orphans
from plancast.server.streams.registry import StreamRegistry
from plancast.server.streams.run import StreamRun
from plancast.server.workers.pool import Seal, Worker, WorkerPool
from plancast.shared import (
    End,
    ModelSpec,
    PlancastError,
    PlanModels,
    Snapshot,
    StartStream,
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
        lease_s: float = records.LEASE_S,
        cluster: Cluster | None = None,
        keys: Keyring | None = None,
    ) -> None:
        self._keys = keys
        self._db = engine
        self._lease_s = lease_s
        self.cluster = cluster  # other replicas on the same PostgreSQL database, if any
        self._eventlog = eventlog
        self._workers = workers
        self._timeout = provider_timeout_s
        self._retry = retry
        self._limits = limits
        self._max_per_user = max_streams_per_user
        self._replica = replica_id
        self.registry = StreamRegistry()
        self._lease_task: asyncio.Task[None] | None = None
        # Told of each new stream (who, the stream, its model, its worker's pid): the audit log.
        self.start_listeners: list[Callable[[Principal, StartedStream, str, int], None]] = []
        # Told of each planner call a provider failed (model, error code), the ones that a
        # fallback model then replaced included: the metrics' errors by model.
        self.call_failure_listeners: list[Callable[[str, str], None]] = []

    def start_lease_renewal(self) -> None:
        """Keep this process's running streams leased, so no replica takes them for dead."""
        self._lease_task = asyncio.create_task(self._renew_leases(), name="plancast-leases")

    async def _renew_leases(self) -> None:
        """Renew this replica's leases; with replicas, also close the streams of dead ones."""
        while True:
            await asyncio.sleep(self._lease_s / 3)
            running = [s.id for s in self.registry.running()]
            try:
                async with self._db.begin() as conn:
                    await records.renew_leases(conn, running, self._replica, self._lease_s)
                if self.cluster is not None:
                    await self.recover(only_expired=True)
            except Exception:
                logger.exception("renewing stream leases failed; will retry")

    # -- commands -------------------------------------------------------------------------

    async def new_seal(self, principal: Principal) -> Seal:
        """A one-time worker key that ``principal``'s next start seals its provider keys to.

        Raises:
            Busy: the user holds too many unused seals, or no worker may be added.
        """
        authorize(principal, Action.WRITE)
        return await self._workers.reserve(principal)

    def release_seals(self, seal_ids: Iterable[str]) -> None:
        """Give up those of ``seal_ids`` that no start used: the socket they were asked on
        closed, and only a start on that socket would have used them."""
        self._workers.drop_unclaimed(seal_ids)

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
            async with self._db.connect() as conn:
                await plans.get_plan(conn, principal.org_id, request.plan_id)
                head = await versions.head(conn, principal.org_id, request.plan_id, request.branch)
            models = model_settings.from_state(head.state).resolved(model)
            providers = set(models.providers()) | ({fallback.provider} if fallback else set())
            await worker.open(  # fails here, before any work, on a bad seal or a missing key
                request.sealed,
                seal_id=seal.seal_id,
                expires_at=seal.expires_at,
                require=sorted(providers),
                timeout=self._timeout,
                retry=self._retry,
            )
            async with self._db.begin() as conn:
                await records.lock_user(conn, principal.user_id)  # checks below, then writes
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
                    lease_s=self._lease_s,
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
        live.user_id = principal.user_id
        self.registry.add(live)
        live.task = asyncio.create_task(
            self._run(live, request.mode, models, fallback, worker),
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
        started = StartedStream(stream_id, request.plan_id, request.branch)
        for listener in self.start_listeners:
            try:
                listener(principal, started, str(model), worker.pid)
            except Exception:
                logger.exception("a stream start listener failed")
        return started

    async def stop(self, principal: Principal, stream_id: str) -> bool:
        """Ask a running stream to stop; returns False if it had already ended."""
        authorize(principal, Action.WRITE)
        live = self.registry.get(stream_id, principal.org_id)
        if live is None:  # ended, or runs on another replica
            async with self._db.begin() as conn:
                record = await records.get(conn, principal.org_id, stream_id)  # NotFound
                if record.status != "running" or self.cluster is None:
                    return False
                await notify(conn, {"k": "stop", "s": stream_id, "o": principal.org_id})
            return True
        return _request_stop(live)

    def revoke_session(self, session_id: str) -> int:
        """Stop every stream a revoked sign-in session started, and drop its unused seals.

        Each of those streams' workers is killed at once, keys and all; the streams end
        as ``stopped`` with their partial replies. Returns how many streams were stopped.
        """
        self._workers.revoke_session(session_id)
        return self._stop_where(lambda live: live.session_id == session_id)

    def revoke_member(self, org_id: str, user_id: str) -> int:
        """Stop every stream a user removed from an org runs in it (as ``revoke_session``)."""
        return self._stop_where(lambda live: live.org_id == org_id and live.user_id == user_id)

    def stop_here(self, message: dict[str, Any]) -> None:
        """A ``stop`` another replica passed on: acted on by the replica running the stream."""
        live = self.registry.get(str(message.get("s")), str(message.get("o")))
        if live is not None:
            _request_stop(live)

    def _stop_where(self, which: Callable[[LiveStream], bool]) -> int:
        return sum(_request_stop(live) for live in self.registry.running() if which(live))

    async def follow(
        self, principal: Principal, stream_id: str, after: int
    ) -> AsyncIterator[StreamEvent]:
        """Every event of a stream after ``after``, then the live ones, until ``End``."""
        async for ready in self.follow_slices(principal, stream_id, after):
            for event in ready:
                yield event

    async def follow_slices(
        self, principal: Principal, stream_id: str, after: int
    ) -> AsyncIterator[list[StreamEvent]]:
        """``follow``, in lists of the events that are at hand together.

        A watcher sends each list at once (packed, if it holds several): a live stream's
        slice (``LiveStream.follow_slices``), a replay from the database, or the rows one
        read of another replica's stream found. A list is never held back to fill it.
        """
        authorize(principal, Action.READ)
        live = self.registry.get(stream_id, principal.org_id)
        if live is not None:
            async for ready in live.follow_slices(after):
                yield ready
            return
        if self.cluster is not None:
            async for ready in self._follow_remote(principal, stream_id, after):
                yield ready
            return
        stored = await self._stored(principal, stream_id, after)
        if stored:
            yield stored

    async def _follow_remote(
        self, principal: Principal, stream_id: str, after: int
    ) -> AsyncIterator[list[StreamEvent]]:
        """Follow a stream another replica runs, through the event table (``cluster``).

        Subscribe, then read, as a local follower does: a nudge that comes while the rows
        are read sets the waiter taken before, so nothing written in between is missed.
        The sequence number read last is the cursor, so nothing is sent twice.
        """
        assert self.cluster is not None
        async with self._db.connect() as conn:
            record = await records.get(conn, principal.org_id, stream_id)  # NotFound
        if record.status != "running":
            stored = await self._stored(principal, stream_id, after)
            if stored:
                yield stored
            return
        seq = after
        while True:
            nudged = self.cluster.waiter(stream_id)
            try:
                async with self._db.connect() as conn:
                    events = await read_events(conn, stream_id, seq)
                    if not events:
                        record = await records.get(conn, principal.org_id, stream_id)
                ended = next((n for n, e in enumerate(events) if isinstance(e, End)), None)
                if ended is not None:
                    yield events[: ended + 1]
                    return
                if events:
                    yield events
                    seq = events[-1].seq
                elif record.status != "running":
                    # Ended with no End row after ours: the stored path says how.
                    stored = await self._stored(principal, stream_id, seq)
                    if stored:
                        yield stored
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(nudged.wait(), POLL_S)
            finally:
                self.cluster.drop_waiter(stream_id, nudged)

    async def _stored(self, principal: Principal, stream_id: str, after: int) -> list[StreamEvent]:
        """A stream's stored events after ``after`` (or its End, or a snapshot, see below)."""
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
        return stored

    async def purge_old_events(self, retention_s: float) -> int:
        """Forget the events of streams that ended more than ``retention_s`` ago."""
        async with self._db.begin() as conn:
            purged = await records.purge_events(conn, now() - retention_s)
        if purged:
            logger.info("purged %d stored events older than %.0f s", purged, retention_s)
        return purged

    async def shutdown(self) -> None:
        """Stop every running stream (they end as interrupted) and wait for them.

        Also for the streams that published their ``End`` and are still saving: a client has
        seen it, so their last events must reach the database before the process goes.
        """
        if self._lease_task is not None:
            self._lease_task.cancel()
            await asyncio.gather(self._lease_task, return_exceptions=True)
        for live in self.registry.running():
            live.shutting_down = True
            if live.task is not None and not live.finishing:
                live.task.cancel()
        await asyncio.gather(*self.registry.unfinished_tasks(), return_exceptions=True)

    # -- the run --------------------------------------------------------------------------

    async def _run(
        self,
        live: LiveStream,
        mode: str,
        models: PlanModels,
        fallback: ModelSpec | None,
        worker: Worker,
    ) -> None:
        """The stream's task: its ``StreamRun``, the worker's end, then ``finish`` (rule 3)."""
        run = StreamRun(
            self._db,
            self._eventlog,
            live,
            mode=mode,
            models=models,
            worker=worker,
            limits=self._limits,
            on_call_failed=self._call_failed,
        )
        status, error = "finished", None
        try:
            await run.work(fallback)
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
        try:
            await run.finish(status, error)
        finally:
            self.registry.mark_ended(live.id)

    def _call_failed(self, model: str, code: str) -> None:
        for listener in self.call_failure_listeners:
            listener(model, code)

    # -- recovery -------------------------------------------------------------------------

    async def recover(self, *, only_expired: bool) -> int:
        """Mark streams that no process runs any more as interrupted (see ``recovery``)."""
        closed = await recover_orphans(
            self._db,
            only_expired=only_expired,
            owner=self._replica,
            lease_s=self._lease_s,
            cluster_notify=notify_events if self.cluster is not None else None,
            keys=self._keys,
        )
        return len(closed)


def _request_stop(live: LiveStream) -> bool:
    """Cancel a running stream's task (it ends ``stopped``); False if it is past stopping."""
    if live.ended or live.task is None or live.stop_requested or live.finishing:
        return False
    live.stop_requested = True
    live.task.cancel()
    return True


def _clip(text: str, limit: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
