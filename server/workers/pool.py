"""Per-stream worker processes: the only processes that ever hold a provider key.

Rules:

1. Workers are forked from the fork server (``forkserver.py``): a fresh
   interpreter, started once, that has imported the SDKs and holds nothing of
   the server's state. The server process itself never forks a worker.
2. A few idle workers wait, each with a fresh key pair, so a stream does not
   wait for one to start. An idle worker has never seen a key.
3. ``reserve`` hands one worker's public key to a client as a seal, valid for
   ``seal_ttl_s``. ``claim`` gives the worker to the stream that names the seal,
   once, and only to the user who reserved it. A seal nobody claims in time is
   killed with its worker.
4. A worker serves one stream (its model and any fallback model) and then
   exits. ``close`` asks it to, after a reply that finished; ``kill`` sends
   SIGKILL through a pidfd, so it can never hit a recycled PID: for a stream
   that was stopped, failed or timed out, a start that was refused or retried,
   an expired seal, a revoked session, and shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from plancast.server.domain.ids import new_id
from plancast.server.domain.principal import Principal
from plancast.server.errors import Busy
from plancast.server.llm import errors as llm_errors
from plancast.server.llm.calls import RetryPolicy
from plancast.server.llm.types import ChatRequest, ModelOutput, TextDelta, Usage
from plancast.server.workers.channel import JOIN_CHARS, Channel, ChannelClosed
from plancast.server.workers.forkserver import ForkServer
from plancast.shared import ErrorCode, PlancastError

logger = logging.getLogger("plancast.server.workers")


class SealRefused(PlancastError):
    code = ErrorCode.BAD_SEAL


@dataclass(frozen=True, slots=True)
class Seal:
    """What a client needs to seal credentials for one stream."""

    seal_id: str  # also the id the stream will have
    public_key: str  # the worker's X25519 public key, base64url
    expires_at: float  # Unix time


class Worker:
    """The server's side of one worker process. It sees ciphertext and model output only."""

    def __init__(self, pid: int, pidfd: int, channel: Channel, public_key: str, pool: WorkerPool):
        self.pid = pid
        self.public_key = public_key
        self._pidfd = pidfd
        self._channel = channel
        self._pool = pool
        self._calls = 0
        self.claimed_for: tuple[str, str, str] | None = None  # (stream, org, user) ids
        self._exited = asyncio.Event()
        asyncio.get_running_loop().add_reader(pidfd, self._on_exit)

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = -1
        self._channel.close()
        self._exited.set()
        self._pool._forget(self)

    @property
    def exited(self) -> bool:
        return self._exited.is_set()

    async def open(
        self,
        sealed: str,
        *,
        seal_id: str,
        expires_at: float,
        require: list[str],
        timeout: float,
        retry: RetryPolicy,
    ) -> None:
        """Hand the sealed credentials to the worker and wait until it has opened them.

        Raises:
            PlancastError: ``bad_seal`` or ``missing_credentials``, as the worker found.
        """
        try:
            self._channel.send(
                {
                    "t": "open",
                    "sealed": sealed,
                    "seal_id": seal_id,
                    "expires_at": expires_at,
                    "require": require,
                    "timeout": timeout,
                    "retry": {
                        "attempts": retry.attempts,
                        "base_delay_s": retry.base_delay_s,
                        "max_wait_s": retry.max_wait_s,
                    },
                }
            )
            await self._channel.drain()
            async with asyncio.timeout(10):
                answer = await self._channel.receive()
        except (ChannelClosed, TimeoutError):
            raise PlancastError("the stream's worker process failed to start") from None
        if answer.get("t") != "opened":
            raise _error_from(answer)

    async def stream_chat(self, request: ChatRequest) -> AsyncIterator[ModelOutput]:
        """One model call in the worker: its output, then the end.

        Each ``TextDelta`` holds the text of one line from the worker (which already joins
        the deltas the SDK parsed together) and of the delta lines that arrived behind it
        and wait unread: a server that falls behind a worker catches up in one event, not
        one per line. In order, and the exact text; usage and the end are never joined.

        Raises:
            ProviderError: as classified in the worker (``llm.errors``), or
                ``provider_error`` when the worker died mid-call.
        """
        self._calls += 1
        call_id = self._calls
        channel = self._channel
        finished = False
        try:
            channel.send(
                {
                    "t": "chat",
                    "id": call_id,
                    "model": str(request.model),
                    "system": request.system,
                    "messages": [[m.role, m.content] for m in request.messages],
                    "max_tokens": request.max_tokens,
                }
            )
            await channel.drain()
            while True:
                message = await channel.receive()
                if message.get("id") != call_id:
                    continue  # the tail of a call abandoned earlier
                kind = message.get("t")
                if kind == "delta":
                    text = str(message["text"])
                    if channel.ready:
                        text = await self._join_ready(call_id, text)
                    yield TextDelta(text)
                elif kind == "usage":
                    yield Usage(int(message["input"]), int(message["output"]))
                elif kind == "done":
                    finished = True
                    return
                elif kind == "error":
                    finished = True
                    raise _error_from(message)
        except ChannelClosed:
            finished = True
            raise llm_errors.ProviderError(
                "The stream's worker process ended during the model call."
            ) from None
        finally:
            if not finished:
                with contextlib.suppress(ChannelClosed):
                    channel.send({"t": "cancel", "id": call_id})

    async def _join_ready(self, call_id: int, text: str) -> str:
        """``text`` and that of the delta lines of ``call_id`` already read behind it."""
        parts, size = [text], len(text)
        while (waiting := self._channel.peek()) is not None:
            if waiting.get("t") != "delta" or waiting.get("id") != call_id:
                break  # usage, the end, or another call's line: handled one by one
            more = str(waiting.get("text"))
            size += len(more)
            if size > JOIN_CHARS:
                break
            await self._channel.receive()  # the line just looked at: returns it at once
            parts.append(more)
        return "".join(parts)

    async def close(self, grace_s: float = 2.0) -> None:
        """Ask the worker to exit; kill it if it has not within ``grace_s``."""
        if not self.exited:
            with contextlib.suppress(ChannelClosed):
                self._channel.send({"t": "close"})
                await self._channel.drain()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(grace_s):
                    await self._exited.wait()
        if not self.exited:
            self.kill()
            await self.wait_exited()

    def kill(self) -> None:
        """SIGKILL by PID: for stop, time-outs and shutdown, where nothing is to be saved."""
        if not self.exited:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)

    async def wait_exited(self, timeout: float = 5.0) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._exited.wait()
        await self._channel.wait_closed()
        return self.exited


_PROVIDER_ERRORS: dict[str, type[llm_errors.ProviderError]] = {
    cls.code: cls
    for cls in (
        llm_errors.ProviderError,
        llm_errors.ProviderAuthError,
        llm_errors.ProviderRateLimited,
        llm_errors.ProviderUnavailable,
        llm_errors.ProviderTimeout,
        llm_errors.ProviderBadResponse,
    )
}


def _error_from(message: dict[str, Any]) -> PlancastError:
    """The worker's error as the exception the engine expects; its text is the worker's own."""
    code = str(message.get("code", ErrorCode.INTERNAL))
    text = str(message.get("message", "the model call failed"))
    provider_cls = _PROVIDER_ERRORS.get(code)
    if provider_cls is not None:
        error = provider_cls.__new__(provider_cls)
        PlancastError.__init__(error, text)
        retry_after = message.get("retry_after")
        error.retry_after = float(retry_after) if retry_after is not None else None
        return error
    try:
        return PlancastError(text, code=ErrorCode(code))
    except ValueError:
        return PlancastError(text)


@dataclass(slots=True)
class _Reservation:
    worker: Worker
    seal: Seal
    org_id: str
    user_id: str
    session_id: str | None
    timer: asyncio.TimerHandle


class WorkerPool:
    def __init__(
        self,
        *,
        idle: int = 2,
        max_workers: int = 64,
        seal_ttl_s: float = 60.0,
        max_reserved_per_user: int = 8,
        start_timeout_s: float = 30.0,
    ) -> None:
        self._idle_target = idle
        self._max_workers = max_workers
        self._seal_ttl = seal_ttl_s
        self._max_reserved = max_reserved_per_user
        self._start_timeout = start_timeout_s
        self._forkserver: ForkServer | None = None
        self._idle: list[Worker] = []
        self._reserved: dict[str, _Reservation] = {}
        self._workers: set[Worker] = set()
        self._starting = 0
        self._refill_task: asyncio.Task[None] | None = None
        self._closed = False
        # Told "started" and "exited" for every worker process: the audit log.
        self.listeners: list[Callable[[str, Worker], None]] = []

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the fork server (if this process has none yet) and the idle workers."""
        self._forkserver = ForkServer.shared()
        self._refill()

    async def shutdown(self) -> None:
        """Kill every worker: idle, reserved and running."""
        self._closed = True
        if self._refill_task is not None:
            self._refill_task.cancel()
            await asyncio.gather(self._refill_task, return_exceptions=True)
        for reservation in self._reserved.values():
            reservation.timer.cancel()
        self._reserved.clear()
        workers = list(self._workers)
        for worker in workers:
            worker.kill()
        await asyncio.gather(*(w.wait_exited() for w in workers))
        self._idle.clear()

    @property
    def ready(self) -> bool:
        """True once the idle workers wanted are waiting (the fork server has started)."""
        return len(self._idle) >= min(self._idle_target, self._max_workers)

    def pids(self) -> list[int]:
        """Every live worker's PID (for tests and metrics)."""
        return sorted(w.pid for w in self._workers if not w.exited)

    def busy_pids(self) -> list[int]:
        """The PIDs of workers that run a stream: neither idle nor reserved."""
        waiting = {w.pid for w in self._idle} | {r.worker.pid for r in self._reserved.values()}
        return sorted(set(self.pids()) - waiting)

    # -- seals ----------------------------------------------------------------------------

    async def reserve(self, principal: Principal) -> Seal:
        """A seal for one new stream of ``principal``.

        Raises:
            Busy: the user holds too many unclaimed seals, or the server runs
                as many workers as it may.
        """
        held = sum(1 for r in self._reserved.values() if r.user_id == principal.user_id)
        if held >= self._max_reserved:
            raise Busy(
                f"you hold {held} unused stream seals, the most this server allows; "
                "they expire within a minute",
                stream_id=None,
            )
        worker = self._idle.pop() if self._idle else await self._spawn_counted()
        self._refill()
        seal = Seal(new_id("st"), worker.public_key, round(time.time() + self._seal_ttl, 3))
        timer = asyncio.get_running_loop().call_later(
            self._seal_ttl + 1.0, self._expire, seal.seal_id
        )
        self._reserved[seal.seal_id] = _Reservation(
            worker, seal, principal.org_id, principal.user_id, principal.session_id, timer
        )
        return seal

    def claim(self, seal_id: str, principal: Principal) -> tuple[Worker, Seal]:
        """Take the worker a seal names, for the stream of the same id.

        Raises:
            SealRefused: unknown, expired, already used, or another user's seal.
        """
        reservation = self._reserved.get(seal_id)
        if reservation is None or (reservation.org_id, reservation.user_id) != (
            principal.org_id,
            principal.user_id,
        ):
            raise SealRefused(
                "unknown, expired or already used seal; ask for a new one and start again"
            )
        del self._reserved[seal_id]
        reservation.timer.cancel()
        if reservation.worker.exited:
            raise SealRefused("the seal's worker process has gone; ask for a new seal")
        if time.time() > reservation.seal.expires_at:
            reservation.worker.kill()
            raise SealRefused("the seal has expired; ask for a new one and start again")
        reservation.worker.claimed_for = (seal_id, reservation.org_id, reservation.user_id)
        return reservation.worker, reservation.seal

    def revoke_session(self, session_id: str) -> None:
        """Kill the workers of every unused seal that ``session_id`` reserved."""
        for seal_id, reservation in list(self._reserved.items()):
            if reservation.session_id == session_id:
                del self._reserved[seal_id]
                reservation.timer.cancel()
                reservation.worker.kill()

    def drop_unclaimed(self, seal_ids: Iterable[str]) -> None:
        """Kill the workers of those of ``seal_ids`` no start has claimed (their socket closed)."""
        for seal_id in seal_ids:
            reservation = self._reserved.pop(seal_id, None)
            if reservation is not None:
                reservation.timer.cancel()
                reservation.worker.kill()

    def _expire(self, seal_id: str) -> None:
        reservation = self._reserved.pop(seal_id, None)
        if reservation is not None:
            logger.info("seal %s expired unused; its worker was stopped", seal_id)
            reservation.worker.kill()

    # -- workers --------------------------------------------------------------------------

    def _tell(self, event: str, worker: Worker) -> None:
        for listener in self.listeners:
            try:
                listener(event, worker)
            except Exception:
                logger.exception("a worker listener failed")

    def _forget(self, worker: Worker) -> None:
        self._tell("exited", worker)
        self._workers.discard(worker)
        if worker in self._idle:
            self._idle.remove(worker)
            self._refill()

    def _refill(self) -> None:
        if self._closed or (self._refill_task is not None and not self._refill_task.done()):
            return
        self._refill_task = asyncio.get_running_loop().create_task(
            self._fill(), name="plancast-worker-pool"
        )

    async def _fill(self) -> None:
        while not self._closed and len(self._idle) + self._starting < self._idle_target:
            if len(self._workers) + self._starting >= self._max_workers:
                return
            try:
                worker = await self._spawn_counted()
            except Exception:
                logger.exception("starting an idle worker failed; will retry on demand")
                return
            if self._closed:
                worker.kill()
                return
            self._idle.append(worker)

    async def _spawn_counted(self) -> Worker:
        if len(self._workers) + self._starting >= self._max_workers:
            raise Busy(
                "the server runs as many model workers as it may; try again shortly",
                stream_id=None,
            )
        self._starting += 1
        try:
            return await self._spawn()
        finally:
            self._starting -= 1

    async def _spawn(self) -> Worker:
        assert self._forkserver is not None, "start() the pool first"
        parent_end, child_end = socket.socketpair()
        pidfd = -1
        channel: Channel | None = None
        try:
            try:
                pid = await asyncio.to_thread(self._forkserver.spawn, child_end)
            finally:
                child_end.close()
            pidfd = os.pidfd_open(pid)
            channel = await Channel.over(parent_end)
            async with asyncio.timeout(self._start_timeout):
                ready = await channel.receive()
            worker = Worker(pid, pidfd, channel, str(ready["public_key"]), self)
        except BaseException as exc:
            # Cancelled (shutdown) or failed: a worker whose pipe closes exits by itself.
            if pidfd >= 0:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.close(pidfd)
            if channel is not None:
                await asyncio.shield(channel.wait_closed())
            else:
                parent_end.close()
            if isinstance(exc, (ChannelClosed, TimeoutError, OSError)):
                raise PlancastError("a model worker process failed to start") from None
            raise
        self._workers.add(worker)
        self._tell("started", worker)
        return worker
