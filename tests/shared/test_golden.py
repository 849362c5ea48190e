"""Golden tests: realistic replies, parsed and built, compared with their expected outcome.

Each folder of ``tests/shared/golden/`` is one case:

- ``reply.txt``: a model's reply, byte for byte (some have CRLF line ends);
- ``files/``: the files it applies to, each named ``<path>.in`` (the suffix keeps tools
  from reading them as part of this project); a path not there is unknown to the build,
  as a path outside the plan's context is on the server;
- ``case.json`` (optional): ``{"absent": [...]}``, paths known not to exist;
- ``expected.json``: the parser's events and the builds' outcomes.

The parser must give the same events however the reply is split into chunks.

To regenerate the expected files after a deliberate change, run this module with
``PLANCAST_REGEN_GOLDEN=1`` in the environment, then review the diff of ``expected.json``
before committing it. Without the variable, the test only compares.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from plancast.shared import (
    BlockOpened,
    BuildOutcome,
    OpParsed,
    ReplyEvent,
    ReplyParser,
    build_files,
    op_to_dict,
)

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
REGENERATE = os.environ.get("PLANCAST_REGEN_GOLDEN") == "1"
RANDOM_SPLITS = 25


def parse(chunks: list[str]) -> list[ReplyEvent]:
    parser = ReplyParser()
    events: list[ReplyEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.finish()


def random_chunks(text: str, rng: random.Random) -> list[str]:
    cuts = sorted(rng.sample(range(len(text) + 1), k=min(len(text) + 1, rng.randint(1, 40))))
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def event_json(event: ReplyEvent) -> dict[str, Any]:
    if isinstance(event, BlockOpened):
        return {"event": "opened", "line": event.line, "kind": event.kind, "path": event.path}
    if isinstance(event, OpParsed):
        return {"event": "op", "line": event.line, **op_to_dict(event.op)}
    return {"event": "problem", "line": event.line, "path": event.path, "message": event.message}


def build_json(outcome: BuildOutcome) -> dict[str, Any]:
    return {
        "key": outcome.key,
        "status": outcome.status,
        "strategy": outcome.strategy,
        "source": outcome.source,
        "path": outcome.path,
        "paths": list(outcome.paths),
        "ops": list(outcome.ops),
        "steps": list(outcome.steps),
        "exists": outcome.exists,
        "problems": [
            {"kind": p.kind, "line": p.line, "message": p.message} for p in outcome.problems
        ],
        "result": outcome.result,
    }


def load_case(name: str) -> tuple[str, dict[str, str | None]]:
    folder = GOLDEN / name
    reply = (folder / "reply.txt").read_bytes().decode()
    originals: dict[str, str | None] = {}
    files = folder / "files"
    if files.is_dir():
        for item in sorted(files.rglob("*.in")):
            originals[item.relative_to(files).as_posix()[: -len(".in")]] = (
                item.read_bytes().decode()
            )
    case = folder / "case.json"
    if case.exists():
        for path in json.loads(case.read_text())["absent"]:
            originals[path] = None
    return reply, originals


def test_the_corpus_is_large_and_varied() -> None:
    assert len(CASES) >= 20
    expected = [json.loads((GOLDEN / c / "expected.json").read_text()) for c in CASES]
    ops = {e["op"] for case in expected for e in case["events"] if e["event"] == "op"}
    assert ops == {"write", "edit", "move", "delete"}
    outcomes = [b for case in expected for b in case["builds"]]
    assert {b["status"] for b in outcomes} == {"built", "failed", "unbuilt"}
    assert {b["strategy"] for b in outcomes} >= {"new", "write", "exact", "whitespace", "delete"}
    kinds = {p["kind"] for b in outcomes for p in b["problems"]}
    assert kinds == {
        "missing",
        "exists",
        "not_found",
        "ambiguous",
        "syntax",
        "duplicate",
        "elision",
    }
    assert any(e["event"] == "problem" for case in expected for e in case["events"])
    assert any(b"\r\n" in (GOLDEN / c / "reply.txt").read_bytes() for c in CASES)


@pytest.mark.parametrize("name", CASES)
def test_golden_reply(name: str) -> None:
    reply, originals = load_case(name)
    events = parse([reply])
    rng = random.Random(name)
    for _ in range(RANDOM_SPLITS):
        assert parse(random_chunks(reply, rng)) == events
    assert parse(list(reply)) == events  # one character at a time
    ops = [e.op for e in events if isinstance(e, OpParsed)]
    actual = {
        "events": [event_json(e) for e in events],
        "builds": [build_json(o) for o in build_files(originals, ops)],
    }
    expected_file = GOLDEN / name / "expected.json"
    if REGENERATE:
        expected_file.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
    assert actual == json.loads(expected_file.read_text())
