"""``plancast usage``: the server's report shown as a table, or as JSON, for a plan or project."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.client.commands_helpers import PLAN, Harness, make_harness


def group(key: str, calls: int, tin: int, tout: int, ms: int, first: int | None) -> dict[str, Any]:
    return {
        "key": key,
        "calls": calls,
        "input_tokens": tin,
        "output_tokens": tout,
        "duration_ms": ms,
        "median_first_token_ms": first,
    }


REPORT = {
    "plan_id": PLAN,
    "by_model": [
        group("openai/gpt-4.1", 2, 12_345, 678, 95_000, 800),
        group("openai/gpt-4.1-mini", 1, 40, 9, 1_200, None),
    ],
    "by_role": [
        group("planner", 2, 12_345, 678, 95_000, 800),
        group("committer", 1, 40, 9, 1_200, None),
    ],
    "by_plan": [group("pl_a", 3, 12_385, 687, 96_200, 800) | {"name": "first"}],
    "total": group("total", 3, 12_385, 687, 96_200, 800),
}


class UsageApi:
    def __init__(self, report: dict[str, Any]) -> None:
        self.report = report
        self.paths: list[str] = []

    def get(self, path: str, **params: Any) -> Any:
        self.paths.append(path)
        return self.report

    def close(self) -> None:
        pass


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return make_harness(tmp_path / "project")


def run(h: Harness, report: dict[str, Any], *args: str) -> UsageApi:
    api = UsageApi(report)
    h.session.__dict__["api"] = api
    assert h.run("usage", *args) == 0
    return api


def test_the_plans_usage_by_model_and_role_with_a_total(h: Harness) -> None:
    api = run(h, REPORT)
    assert api.paths == [f"/plans/{PLAN}/usage"]
    lines = h.out.getvalue().splitlines()
    assert lines[0].split() == [
        "by",
        "model",
        "calls",
        "tokens",
        "in",
        "tokens",
        "out",
        "time",
        "first",
        "token",
    ]
    assert lines[1].split() == ["openai/gpt-4.1", "2", "12,345", "678", "1m35s", "0.8s"]
    assert lines[2].split() == ["openai/gpt-4.1-mini", "1", "40", "9", "1.2s", "—"]
    assert lines[4].startswith("by role")
    assert [ln.split()[0] for ln in lines[5:7]] == ["planner", "committer"]
    assert lines[-1].split() == ["total", "3", "12,385", "687", "1m36s", "0.8s"]
    assert "by plan" not in h.out.getvalue()
    widths = {len(ln) for ln in lines if ln and not ln.startswith("by ")}
    assert len(widths) == 1  # the columns line up


def test_the_projects_usage_adds_plans_by_name(h: Harness) -> None:
    api = run(h, REPORT | {"project_id": "prj_test"}, "--project")
    assert api.paths == ["/projects/prj_test/usage"]
    out = h.out.getvalue()
    assert "by plan" in out
    assert out.splitlines()[-3].split()[:2] == ["first", "3"]


def test_json_is_the_report_as_the_server_sent_it(h: Harness) -> None:
    run(h, REPORT, "--json")
    assert json.loads(h.out.getvalue()) == REPORT


def test_no_calls_yet(h: Harness) -> None:
    empty = REPORT | {"by_model": [], "by_role": [], "by_plan": []}
    run(h, empty | {"total": group("total", 0, 0, 0, 0, None)})
    assert h.out.getvalue() == "no model calls yet in this plan\n"


def test_the_review_and_usage_commands_import_nothing_heavy() -> None:
    # Every command module is imported for `plancast --help`; these load what they use later.
    code = (
        "import sys, plancast.client.commands.changes, plancast.client.commands.usage\n"
        "print('\\n'.join(k for k, v in sys.modules.items() if v is not None))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(done.stdout.split())
    heavy = {"plancast.shared", "dataclasses", "json", "httpx", "prompt_toolkit", "subprocess"}
    assert heavy & loaded == set()
