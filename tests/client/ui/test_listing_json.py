"""``--json`` on the listing commands (plans, convo): one JSON document, for scripts.

(These command modules are client/commands/plans.py and convo.py; their tests live here with
the rest of the output conventions.)
"""

from __future__ import annotations

import argparse
import json

from plancast.client.commands import convo, plans
from tests.client.ui.conftest import FakeSession, FakeTerminal

PLANS = [
    {"id": "pl_1", "name": "plan-1", "project_id": "prj_1", "created_at": 1.0},
    {"id": "pl_2", "name": "refactor", "project_id": "prj_1", "created_at": 2.0},
]
MESSAGES = [
    {"role": "user", "mode": "tell", "status": "complete", "content": "add x"},
    {"role": "assistant", "mode": "tell", "status": "partial", "content": "Adding"},
]


def args(**kwargs: object) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, "quiet": False, **kwargs})


def test_plans_as_json_marks_the_current_one(session: FakeSession, term: FakeTerminal) -> None:
    session.api.routes[("GET", "/projects/prj_1/plans")] = {"plans": PLANS}
    assert plans.plans(session, args(json=True)) == 0  # type: ignore[arg-type]
    listed = json.loads(term.stdout)
    assert [(p["number"], p["name"], p["current"]) for p in listed] == [
        (1, "plan-1", True),
        (2, "refactor", False),
    ]
    assert listed[1]["created_at"] == 2.0  # every field the server gives is kept


def test_plans_quiet_prints_names_only(session: FakeSession, term: FakeTerminal) -> None:
    session.api.routes[("GET", "/projects/prj_1/plans")] = {"plans": PLANS}
    plans.plans(session, args(quiet=True))  # type: ignore[arg-type]
    assert term.stdout == "plan-1\nrefactor\n"


def test_plans_for_people(session: FakeSession, term: FakeTerminal) -> None:
    session.api.routes[("GET", "/projects/prj_1/plans")] = {"plans": PLANS}
    plans.plans(session, args())  # type: ignore[arg-type]
    assert term.stdout.splitlines() == ["*   1  plan-1  (pl_1)", "    2  refactor  (pl_2)"]


def test_an_empty_list_is_still_json(session: FakeSession, term: FakeTerminal) -> None:
    session.api.routes[("GET", "/projects/prj_1/plans")] = {"plans": []}
    plans.plans(session, args(json=True))  # type: ignore[arg-type]
    assert json.loads(term.stdout) == []


def test_convo_as_json(session: FakeSession, term: FakeTerminal) -> None:
    session.api.routes[("GET", "/plans/pl_1/convo")] = {"messages": MESSAGES}
    assert convo.convo(session, args(json=True)) == 0  # type: ignore[arg-type]
    assert json.loads(term.stdout) == MESSAGES
    term.out.truncate(0)
    term.out.seek(0)
    convo.convo(session, args())  # type: ignore[arg-type]
    assert "── plancast (tell) [partial]" in term.stdout


def test_json_output_has_no_colour_even_on_a_colour_terminal(tmp_path: object) -> None:
    term = FakeTerminal()
    session = FakeSession(tmp_path, term.output(color=True))  # type: ignore[arg-type]
    session.api.routes[("GET", "/plans/pl_1/convo")] = {"messages": MESSAGES}
    convo.convo(session, args(json=True))  # type: ignore[arg-type]
    assert "\x1b[" not in term.stdout
