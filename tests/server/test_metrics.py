"""``/metrics``: what a stream moves, what its labels may hold, and who may read it.

Each app has a registry of its own, so every test here starts from zero even though the
tests share one process: that is checked too.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from plancast.shared import ROLES, Delta, ErrorCode
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    OPENAI_MODEL,
    Server,
    check_sequence,
    collect,
    load_settings,
    new_key,
    openai_creds,
    running,
    start_message,
    start_stream,
    wait_until,
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

LABEL_VALUES: dict[str, Callable[[str], bool]] = {
    "status": {"finished", "stopped", "failed", "interrupted"}.__contains__,
    "role": set(ROLES).__contains__,
    "code": {code.value for code in ErrorCode}.__contains__,
    # The stream's model, or the model pack's for the other roles: provider/name.
    "model": lambda v: v == "other" or re.fullmatch(r"openai/gpt-[0-9.]+(-mini)?", v) is not None,
    "le": lambda v: v == "+Inf" or float(v) > 0,  # a histogram's buckets
}
"""Every label the plancast metrics may carry, and the values a test's stream may give it."""


def scrape(server: Server) -> Samples:
    response = server.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def ended(server: Server, status: str, count: int = 1) -> Samples:
    """Scrape until ``count`` streams have ended with ``status`` (counted once the task is over)."""
    samples: Samples = {}

    def done() -> bool:
        nonlocal samples
        samples = scrape(server)
        return value(samples, "plancast_streams_ended_total", status=status) >= count

    wait_until(done)
    return samples


def test_metrics_need_the_access_token(server: Server) -> None:
    response = server.client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    wrong = server.client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert server.get("/metrics").status_code == 200


def test_metrics_public_opens_them_to_a_scraper(data_dir: Path) -> None:
    with running(load_settings(data_dir, metrics_public=True)) as srv:
        response = srv.client.get("/metrics")
    assert response.status_code == 200
    assert "plancast_streams_active" in response.text


def test_openmetrics_is_served_when_the_scraper_asks(server: Server) -> None:
    response = server.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.rstrip().endswith("# EOF")


def test_a_stream_moves_the_counters_and_histograms(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    before = scrape(server)
    assert value(before, "plancast_stream_events_total") == 0  # a registry of this app's own
    assert value(before, "plancast_provider_call_seconds_count", model=OPENAI_MODEL) == 0

    key = new_key()
    prompt = "Add a main function " + secrets.token_hex(8)
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=12))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator, key), prompt=prompt))
    end = check_sequence(events)
    assert end.status == "finished"

    samples = ended(server, "finished")
    assert value(samples, "plancast_stream_events_total") == end.seq
    assert value(samples, "plancast_streams_active") == 0
    assert value(samples, "plancast_streams_ended_total", status="failed") == 0
    planner = {"model": OPENAI_MODEL, "role": "planner"}
    assert value(samples, "plancast_provider_call_seconds_count", **planner) == 1
    assert value(samples, "plancast_provider_first_token_seconds_count", **planner) == 1
    assert value(samples, "plancast_provider_call_seconds_sum", **planner) > 0
    assert value(samples, "plancast_provider_call_seconds_bucket", le="+Inf", **planner) == 1
    # The namer (the plan's name was a draft) and the committer (it proposed changes) too.
    roles = {
        dict(labels)["role"]
        for name, labels in samples
        if name == "plancast_provider_call_seconds_count"
    }
    assert roles == {"planner", "namer", "committer"}
    assert value(samples, "plancast_workers") == len(server.worker_pids())
    assert value(samples, "plancast_workers_busy") == 0
    assert value(samples, "plancast_workers_idle") == value(samples, "plancast_workers")

    # Labels: names and values from fixed sets, so no id, prompt, path or key in them.
    text = server.get("/metrics").text
    for secret in (plan_id, end.stream_id, key, prompt, "src/app.py"):
        assert secret not in text
    for name, labels in samples:
        if name.startswith("plancast_"):
            assert {label for label, _ in labels} <= set(LABEL_VALUES), name
            for label, got in labels:
                assert LABEL_VALUES[label](got), (name, label, got)


def test_a_running_stream_is_active_and_its_worker_busy(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(text="a slow reply\n" * 40, chunk_chars=4, trickle=0.01))
    with server.connect() as ws:
        started = start_stream(ws, start_message(plan_id, openai_creds(emulator), mode="chat"))
        seen = collect(ws, started.stream_id, until=lambda e: isinstance(e, Delta))
        during = scrape(server)
        assert value(during, "plancast_streams_active") == 1
        assert value(during, "plancast_workers_busy") == 1
        assert value(during, "plancast_stream_events_total") >= seen[-1].seq
        rest = collect(ws, started.stream_id)
    samples = ended(server, "finished")
    assert value(samples, "plancast_streams_active") == 0
    assert value(samples, "plancast_stream_events_total") == rest[-1].seq
    assert value(samples, "plancast_stream_events_total") >= value(
        during, "plancast_stream_events_total"
    )


def test_a_provider_error_is_counted_by_model_and_code(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(status=401, error_message="Incorrect API key provided"))
    events = server.run_stream(start_message(plan_id, openai_creds(emulator), mode="chat"))
    end = check_sequence(events)
    assert (end.status, end.error_code) == ("failed", "provider_auth")

    samples = ended(server, "failed")
    errors = {"model": OPENAI_MODEL, "code": "provider_auth"}
    assert value(samples, "plancast_provider_errors_total", **errors) == 1
    assert value(samples, "plancast_streams_ended_total", status="finished") == 0
    # The failed call was a call all the same: it was timed, and had no first token.
    planner = {"model": OPENAI_MODEL, "role": "planner"}
    assert value(samples, "plancast_provider_call_seconds_count", **planner) == 1
    assert value(samples, "plancast_provider_first_token_seconds_count", **planner) == 0


def test_a_call_that_a_fallback_model_replaced_is_counted_as_an_error(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    emulator.push(Reply(status=500, error_message="boom"))  # every attempt of the first model
    emulator.push(Reply(status=500, error_message="boom"))
    emulator.push(Reply(status=500, error_message="boom"))
    emulator.push(Reply(text="rescued"))
    start = start_message(
        plan_id, openai_creds(emulator), mode="chat", fallback_model="openai/gpt-4.1-mini"
    )
    end = check_sequence(server.run_stream(start))
    assert end.status == "finished"
    samples = ended(server, "finished")
    failed = {"model": OPENAI_MODEL, "code": "provider_unavailable"}
    assert value(samples, "plancast_provider_errors_total", **failed) == 1
    rescued = {"model": "openai/gpt-4.1-mini", "code": "provider_unavailable"}
    assert value(samples, "plancast_provider_errors_total", **rescued) == 0


def test_a_model_name_shaped_like_a_key_is_counted_as_other(
    server: Server, plan_id: str, emulator: Emulator
) -> None:
    key = "sk-proj-" + secrets.token_hex(20)  # pasted where the model name goes
    emulator.push(Reply(text="hello"))
    start = start_message(plan_id, openai_creds(emulator), mode="chat", model=f"openai/{key}")
    assert check_sequence(server.run_stream(start)).status == "finished"
    samples = ended(server, "finished")
    assert value(samples, "plancast_provider_call_seconds_count", model="other", role="planner")
    assert key not in server.get("/metrics").text


def test_model_labels_are_capped(server: Server) -> None:
    metrics = server.app.state.metrics
    for real in ("anthropic/claude-3-5-sonnet-20241022", "ollama/llama3.1:8b", "azure/gpt-4o"):
        assert metrics.model_label(real) == real
    names = [f"openai/model-{n}" for n in range(100)]
    labels = [metrics.model_label(name) for name in names]
    assert labels[:61] == names[:61]  # 64 in all, with the three above
    assert set(labels[61:]) == {"other"}
    assert metrics.model_label(names[3]) == names[3]  # a name already seen stays itself
    token = "ghp_" + "Ab1" * 12  # a token the redaction filter does not know by its prefix
    for odd in ("no-slash", "openai/", "openai/has space", "OpenAI/caps", "", f"azure/{token}"):
        assert metrics.model_label(odd) == "other"
