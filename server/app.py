"""The Starlette application, declared in one place: routes, errors, middleware, lifespan.

Shutting down (uvicorn's lifespan shutdown, on SIGTERM or SIGINT, after it has closed the
listening socket and the open connections): the streams get ``shutdown_grace_s`` to finish
while no new one starts (``ManagedStreamService.drain``); those still running are then
interrupted and saved; then the workers, the event log and the database go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.types import ASGIApp

from plancast.server.audit_trail import AuditTrail
from plancast.server.config import Settings
from plancast.server.domain.accounts import ensure_local_principal
from plancast.server.domain.ids import new_id
from plancast.server.domain.principal import Role
from plancast.server.domain.signin import SignIn
from plancast.server.llm.calls import RetryPolicy
from plancast.server.mailer import Mailer
from plancast.server.metrics import Metrics
from plancast.server.retention import PlanRetention
from plancast.server.store.crypto import Keyring, forget, load_master_key
from plancast.server.store.database import create_engine, migrate
from plancast.server.streams.cluster import Cluster, notify
from plancast.server.streams.deadlines import StreamLimits
from plancast.server.streams.eventlog import EventLog
from plancast.server.streams.managed import ManagedStreamService
from plancast.server.web import ops, pages, rest, sse
from plancast.server.web.auth import load_or_create_token
from plancast.server.web.connections import Connections
from plancast.server.web.errors import EXCEPTION_HANDLERS
from plancast.server.web.hosts import HostCheck
from plancast.server.web.request_ids import RequestIds
from plancast.server.web.security_headers import SecurityHeaders
from plancast.server.web.throttle import Throttle
from plancast.server.web.websocket import stream_socket
from plancast.server.workers.pool import WorkerPool

logger = logging.getLogger("plancast.server")

LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "::1", "[::1]"]


class _App(Starlette):
    """Starlette with request ids and security headers outside even its error middleware.

    ``Middleware`` entries sit inside the middleware that answers unhandled errors, so a 500
    (and the error line logged for it) would have no request id, when that is the id a user
    reports, nor the security headers. Wrapping the whole stack gives every response and line
    a request id, and every response the headers.
    """

    def build_middleware_stack(self) -> ASGIApp:
        tls = self.state.settings.tls_certfile is not None  # set by create_app before any call
        return RequestIds(SecurityHeaders(super().build_middleware_stack(), hsts=tls))


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_engine(settings.database_url)
        await migrate(engine)
        keys = Keyring(
            load_master_key(
                settings.data_dir,
                key_text=settings.master_key,
                key_file=settings.master_key_file,
                kms_plugin=settings.kms_plugin,
                shared=engine.dialect.name == "postgresql",
            )
        )
        app.state.keys = keys
        async with engine.begin() as conn:
            principal = await ensure_local_principal(conn)
        replica_id = new_id("rep")
        # Replicas need PostgreSQL; on it, they talk through LISTEN/NOTIFY (streams/cluster.py).
        cluster = None
        if engine.dialect.name == "postgresql":
            cluster = Cluster(settings.database_url, replica_id)
            await cluster.start()
        eventlog = EventLog(
            engine,
            flush_ms=settings.event_flush_ms,
            flush_size=settings.event_flush_size,
            notify=cluster is not None,
        )
        eventlog.start()
        workers = WorkerPool(
            idle=settings.idle_workers,
            max_workers=settings.max_workers,
            max_reserved_per_user=settings.max_streams_per_user,
        )
        trail = AuditTrail(engine)  # worker processes and stream starts, written in batches
        trail.start()
        workers.listeners.append(trail.worker_event)
        workers.start()
        service = ManagedStreamService(
            engine,
            eventlog,
            workers,
            provider_timeout_s=settings.provider_timeout_s,
            replica_id=replica_id,
            retry=RetryPolicy(attempts=settings.provider_attempts),
            limits=StreamLimits(
                first_token_s=settings.first_token_timeout_s,
                idle_s=settings.idle_timeout_s,
                deadline_s=settings.stream_deadline_s,
            ),
            max_streams_per_user=settings.max_streams_per_user,
            lease_s=settings.stream_lease_s,
            cluster=cluster,
            keys=keys,
        )
        metrics = Metrics(service, workers)
        metrics.watch_usage(engine)
        service.outcome_listeners.append(metrics.stream_ended)
        service.call_failure_listeners.append(metrics.call_failed)
        service.start_listeners.append(trail.stream_started)
        recovered = await service.recover(
            only_expired=not settings.database_url.startswith("sqlite")
        )
        if recovered:
            logger.info("marked %d interrupted stream(s) from an earlier run", recovered)
        service.start_lease_renewal()
        if settings.event_retention_days > 0:
            await service.purge_old_events(settings.event_retention_days * 86400)
        retention = PlanRetention(engine, settings.plan_retention_days)
        await retention.start()
        app.state.db = engine
        app.state.audit = trail
        app.state.streams = service
        app.state.workers = workers
        app.state.metrics = metrics
        app.state.local_principal = principal
        # Team mode has accounts: no local token exists there, so none can leak.
        app.state.local_token = (
            load_or_create_token(settings.data_dir) if settings.mode == "local" else None
        )
        connections = Connections()
        app.state.connections = connections

        def end_sessions_here(session_ids: list[str]) -> None:
            for session_id in session_ids:
                service.revoke_session(session_id)
            connections.sessions_ended(session_ids)

        def change_membership_here(org_id: str, user_id: str, role: Role | None) -> None:
            if role is None:
                service.revoke_member(org_id, user_id)
            connections.membership_changed(org_id, user_id, role)

        broadcasts: set[asyncio.Task[None]] = set()

        def tell_replicas(message: dict[str, Any]) -> None:
            if cluster is None:
                return

            async def send() -> None:
                try:
                    async with engine.begin() as conn:
                        await notify(conn, message | {"r": replica_id})
                except Exception:
                    logger.exception("telling the other replicas failed")

            task = asyncio.get_running_loop().create_task(send())
            broadcasts.add(task)
            task.add_done_callback(broadcasts.discard)

        def sessions_ended(session_ids: list[str]) -> None:
            end_sessions_here(session_ids)
            tell_replicas({"k": "sessions", "s": session_ids})

        def memberships_changed(org_id: str, user_id: str, role: Role | None) -> None:
            change_membership_here(org_id, user_id, role)
            tell_replicas({"k": "member", "o": org_id, "u": user_id, "role": role})

        if cluster is not None:

            def from_others(handler: Callable[[dict[str, Any]], None]) -> Callable[..., None]:
                def handle(message: dict[str, Any]) -> None:
                    if message.get("r") != replica_id:  # this replica acted already
                        handler(message)

                return handle

            cluster.on("stop", service.stop_here)
            cluster.on("shred", lambda m: forget(str(m.get("o"))))
            cluster.on("sessions", from_others(lambda m: end_sessions_here(list(m["s"]))))
            cluster.on(
                "member",
                from_others(
                    lambda m: change_membership_here(
                        m["o"], m["u"], None if m["role"] is None else Role(m["role"])
                    )
                ),
            )

        app.state.mailer = Mailer(settings)
        app.state.signin = SignIn(engine, app.state.mailer, settings, on_revoked=sessions_ended)
        app.state.memberships_changed = memberships_changed

        def org_shredded(org_id: str) -> None:
            forget(org_id)  # the unwrapped data key in this process's memory
            tell_replicas({"k": "shred", "o": org_id})

        app.state.org_shredded = org_shredded
        app.state.throttle = Throttle()
        sweeping = (
            asyncio.create_task(connections.sweep_every(engine), name="plancast-session-sweep")
            if settings.mode == "team"
            else None
        )
        logger.info("plancast server ready on %s:%d", settings.host, settings.port)
        try:
            yield
        finally:
            if sweeping is not None:
                sweeping.cancel()
                await asyncio.gather(sweeping, return_exceptions=True)
            await retention.close()
            await service.drain(settings.shutdown_grace_s)
            await workers.shutdown()
            await trail.close()
            await eventlog.close()
            if cluster is not None:
                await cluster.close()
            await engine.dispose()

    middleware = []
    if settings.host in ("127.0.0.1", "localhost", "::1"):
        # Refuse other Host names on loopback: a second line against DNS rebinding.
        middleware.append(Middleware(HostCheck, allowed_hosts=LOOPBACK_HOSTS))
    app = _App(
        routes=[
            *ops.ROUTES,
            *rest.ROUTES,
            *(rest.TEAM_ROUTES if settings.mode == "team" else ()),
            *(pages.ROUTES if settings.mode == "team" else ()),  # /web/: accounts to sign in
            *sse.ROUTES,
            WebSocketRoute("/api/v1/streams", stream_socket),
        ],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        middleware=middleware,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.not_ready_reason = None  # the last reason /readyz gave, to log only changes
    return app
