"""Prometheus metrics of one server process, in a registry of its own.

Each app gets its own ``CollectorRegistry`` (never the library's global one), so that several
apps in one process, as in the tests, count apart. ``GET /metrics`` (``web/ops.py``) renders it.

- ``plancast_streams_active`` (gauge): the streams this process runs.
- ``plancast_stream_events_total`` (counter): events of this process's streams, running
  ones included.
- ``plancast_streams_ended_total{status}`` (counter): from each stream's ``end``.
- ``plancast_provider_first_token_seconds{model,role}`` and
  ``plancast_provider_call_seconds{model,role}`` (histograms): from each model call's usage
  row, as it is written.
- ``plancast_provider_errors_total{model,code}`` (counter): planner calls a provider failed,
  by the model called and the error code, those a fallback model then replaced included.
- ``plancast_workers``, ``plancast_workers_busy``, ``plancast_workers_idle`` (gauges): the
  worker pool's processes: all, running a stream, and the others.

plus the ``process_*`` metrics (CPU, memory, open files) of the server process itself.

Rules:

1. A label never holds an id, a prompt, a path or a key: its values are statuses, roles and
   error codes (small fixed sets) and model names. A model name is the client's text (a
   mistyped one can be a pasted key), so it is used only when it looks like
   ``provider/model``, the redaction filter would leave it alone and it has no run of 20
   letters and digits (a token's body), and only for the first ``MAX_MODELS`` names seen;
   any other is counted as ``other``.
2. Nothing here runs per event: gauges and the event count are read when Prometheus scrapes,
   usage rows are observed once per model call, and an outcome once per stream.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import Insert

from plancast.server.logs import redact
from plancast.server.store.schema import usage as usage_table
from plancast.server.streams.managed import ManagedStreamService, StreamOutcome
from plancast.server.workers.pool import WorkerPool
from plancast.shared import ROLES

MAX_MODELS = 64
"""Distinct model label values kept; more would let clients grow the scrape without bound."""

OTHER = "other"
_MODEL = re.compile(r"[a-z][a-z0-9_-]{0,31}/[A-Za-z0-9._:@/+-]{1,128}")
_TOKEN_BODY = re.compile(r"[A-Za-z0-9]{20}")  # model names are short words; tokens are not

FIRST_TOKEN_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 90, 120)
CALL_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)


class Metrics:
    """The registry of one app, and the observers that feed it."""

    def __init__(self, service: ManagedStreamService, workers: WorkerPool) -> None:
        self.registry = CollectorRegistry()
        self._models: set[str] = set()
        self._live = _LiveCollector(service, workers)
        self.streams_ended = Counter(
            "plancast_streams_ended",
            "Streams that ended, by how: finished, stopped, failed or interrupted.",
            ["status"],
            registry=self.registry,
        )
        self.first_token = Histogram(
            "plancast_provider_first_token_seconds",
            "Time from a model call's start to its first text (calls that produced some).",
            ["model", "role"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.call_duration = Histogram(
            "plancast_provider_call_seconds",
            "Duration of each model call, retries and failures included.",
            ["model", "role"],
            buckets=CALL_BUCKETS,
            registry=self.registry,
        )
        self.provider_errors = Counter(
            "plancast_provider_errors",
            "Streams that ended on a model provider's error, by the stream's model and the "
            "error code.",
            ["model", "code"],
            registry=self.registry,
        )
        self.registry.register(self._live)
        ProcessCollector(registry=self.registry)

    # -- what feeds it --------------------------------------------------------------------

    def watch_usage(self, engine: AsyncEngine) -> None:
        """Observe every usage row ``engine`` writes: one per model call, with its timings.

        The rows are the record of the calls that ``plancast usage`` reports, so the
        histograms count exactly the calls it lists, and nothing on the streaming path
        changes for them.
        """
        event.listen(engine.sync_engine, "after_execute", self._after_execute)

    def _after_execute(
        self,
        _conn: Connection,
        statement: Any,
        multiparams: list[dict[str, Any]],
        params: dict[str, Any],
        _options: Any,
        _result: Any,
    ) -> None:
        if not isinstance(statement, Insert) or statement.table is not usage_table:
            return
        for row in multiparams or [params]:
            self.model_call(
                str(row.get("model", "")),
                str(row.get("role", "")),
                row.get("first_token_ms"),
                row.get("duration_ms"),
            )

    def model_call(
        self, model: str, role: str, first_token_ms: int | None, duration_ms: int | None
    ) -> None:
        labels = (self.model_label(model), role if role in ROLES else OTHER)
        if first_token_ms is not None:
            self.first_token.labels(*labels).observe(first_token_ms / 1000)
        if duration_ms is not None:
            self.call_duration.labels(*labels).observe(duration_ms / 1000)

    def stream_ended(self, outcome: StreamOutcome) -> None:
        """A ``ManagedStreamService`` outcome listener: counts the stream's end."""
        self._live.ended_events += outcome.events
        self.streams_ended.labels(outcome.status).inc()

    def call_failed(self, model: str, code: str) -> None:
        """A ``StreamService`` call failure listener: one failed provider call."""
        self.provider_errors.labels(self.model_label(model), code).inc()

    def model_label(self, model: str) -> str:
        """``model`` as a label value, or ``other`` (Rule 1)."""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS or not _MODEL.fullmatch(model):
            return OTHER
        if redact(model) != model or _TOKEN_BODY.search(model):
            return OTHER
        self._models.add(model)
        return model


class _LiveCollector(Collector):
    """The values read at scrape time: running streams, their events, the worker pool."""

    def __init__(self, service: ManagedStreamService, workers: WorkerPool) -> None:
        self._service = service
        self._workers = workers
        self.ended_events = 0  # the events of the streams that have ended

    def describe(self) -> Iterable[Metric]:
        return list(self._families(0, 0, 0, 0))

    def collect(self) -> Iterable[Metric]:
        # The streams still watched and the ended ones' count change together, in the
        # stream's done callback, so the event count never goes down between two scrapes.
        running = self._service.watched()
        events = self.ended_events + sum(s.last_seq for s in running)
        workers = len(self._workers.pids())
        busy = len(self._workers.busy_pids())
        return list(self._families(len(running), events, workers, busy))

    @staticmethod
    def _families(active: int, events: int, workers: int, busy: int) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "plancast_streams_active", "Streams this server process is running.", active
        )
        yield CounterMetricFamily(
            "plancast_stream_events",
            "Events the streams of this server process have emitted (sequence numbers given).",
            events,
        )
        yield GaugeMetricFamily(
            "plancast_workers", "Model worker processes alive: idle, reserved or busy.", workers
        )
        yield GaugeMetricFamily(
            "plancast_workers_busy", "Model worker processes running a stream.", busy
        )
        yield GaugeMetricFamily(
            "plancast_workers_idle",
            "Model worker processes not running a stream (waiting, or reserved by a seal).",
            workers - busy,
        )
