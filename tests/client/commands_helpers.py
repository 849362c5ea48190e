"""In-process command tests: a real session and project folder, with a fake REST API.

``FakeApi`` keeps context items the way ``server/domain/context.py`` does (a file item is
replaced by name; other kinds are appended; removal uses the server's own matcher), so that the
commands can be driven without a server process. ``tests/e2e/test_context_flow.py`` runs the
same flows against the real server.
"""

from __future__ import annotations

import argparse
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plancast.client.cli import build_parser
from plancast.client.project import ProjectBinding
from plancast.client.session import Session
from plancast.client.ui.output import Output
from plancast.server.domain.context import _matches as server_matches
from plancast.shared import estimate_tokens

PLAN = "pln_test"


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal (for questions and progress bars)."""

    def isatty(self) -> bool:
        return True


@dataclass
class FakeApi:
    model: str | None = None
    items: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)
    _next: int = 0

    def get(self, path: str, **params: Any) -> Any:
        self.calls.append(("GET", path))
        if path == f"/plans/{PLAN}":
            return {"id": PLAN, "name": "plan-1", "model": self.model}
        if path == f"/plans/{PLAN}/context":
            return {"items": [{k: v for k, v in i.items() if k != "content"} for i in self.items]}
        raise AssertionError(f"unexpected GET {path}")

    def post(self, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        self.calls.append(("POST", path))
        body = body or {}
        if path == f"/plans/{PLAN}/context":
            return self._load(body["items"])
        if path == f"/plans/{PLAN}/context/remove":
            patterns = None if body.get("all") else body["names"]
            names = {i["name"] for i in self.items}
            doomed = [
                i
                for i in self.items
                if patterns is None or any(server_matches(i["name"], p, names) for p in patterns)
            ]
            self.items = [i for i in self.items if i not in doomed]
            return {"removed": [i["name"] for i in doomed]}
        raise AssertionError(f"unexpected POST {path}")

    def _load(self, new: list[dict[str, str]]) -> dict[str, list[str]]:
        added, updated, unchanged = [], [], []
        for item in new:
            digest = hashlib.sha256(item["content"].encode("utf-8", "surrogatepass")).hexdigest()
            old = next(
                (i for i in self.items if item["kind"] != "note" and i["name"] == item["name"]
                 and i["kind"] == item["kind"]),
                None,
            )  # fmt: skip
            if old is not None and old["sha256"] == digest:
                unchanged.append(item["name"])
                continue
            self._next += 1
            row = {
                "id": f"ctx_{self._next}",
                "kind": item["kind"],
                "name": item["name"],
                "sha256": digest,
                "tokens": estimate_tokens(item["content"]),
                "created_at": 0.0,
                "content": item["content"],
            }
            if old is not None:
                self.items[self.items.index(old)] = row
                updated.append(item["name"])
            else:
                self.items.append(row)
                added.append(item["name"])
        return {"added": added, "updated": updated, "unchanged": unchanged, "version": None}

    def content(self, name: str) -> str:
        found = [i["content"] for i in self.items if i["name"] == name]
        assert len(found) == 1, (name, [i["name"] for i in self.items])
        return str(found[0])

    def names(self) -> list[str]:
        return sorted(i["name"] for i in self.items)

    def uploads(self) -> int:
        return sum(
            1 for method, path in self.calls if (method, path) == ("POST", f"/plans/{PLAN}/context")
        )

    def close(self) -> None:
        pass


@dataclass
class Harness:
    root: Path
    api: FakeApi
    out: io.StringIO
    err: io.StringIO
    session: Session

    def run(self, *argv: str) -> int:
        args: argparse.Namespace = build_parser().parse_args(list(argv))
        return int(args.func(self.session, args))

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def make_harness(root: Path, model: str | None = "openai/gpt-4.1") -> Harness:
    root.mkdir(parents=True, exist_ok=True)
    ProjectBinding(root, "prj_test", PLAN).save()
    out, err = io.StringIO(), io.StringIO()
    session = Session(Output(out, err, color=False), cwd=root)
    api = FakeApi(model=model)
    session.__dict__["api"] = api
    return Harness(root, api, out, err, session)
