"""Context item names: reloading replaces, removing by an exact name removes only it."""

from __future__ import annotations

from pathlib import Path

from tests.server.helpers import Server, load_settings, running


def _load(server: Server, plan_id: str, *items: tuple[str, str, str]) -> None:
    body = {"items": [{"kind": k, "name": n, "content": c} for k, n, c in items]}
    server.ok("POST", f"/api/v1/plans/{plan_id}/context", body)


def _names(server: Server, plan_id: str) -> list[tuple[str, str]]:
    items = server.ok("GET", f"/api/v1/plans/{plan_id}/context")["items"]
    return [(i["kind"], i["name"]) for i in items]


def test_reloading_a_tree_url_or_stdin_replaces_it_but_notes_add_up(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        plan_id = server.new_plan()
        for content in ("one", "two"):
            _load(
                server,
                plan_id,
                ("tree", "tree:src", content),
                ("url", "https://example.test/a", content),
                ("stdin", "stdin", content),
                ("note", "note 1", content),
            )
        assert _names(server, plan_id) == [
            ("tree", "tree:src"),
            ("url", "https://example.test/a"),
            ("stdin", "stdin"),
            ("note", "note 1"),
            ("note", "note 1"),
        ]


def test_an_exact_name_is_not_read_as_a_glob(data_dir: Path) -> None:
    with running(load_settings(data_dir)) as server:
        plan_id = server.new_plan()
        _load(
            server,
            plan_id,
            ("file", "web/[id].tsx", "a"),
            ("file", "web/i.tsx", "b"),
            ("url", "https://example.test/a", "c"),
            ("url", "https://example.test/a/b", "d"),
        )
        removed = server.ok(
            "POST", f"/api/v1/plans/{plan_id}/context/remove", {"names": ["web/[id].tsx"]}
        )["removed"]
        assert removed == ["web/[id].tsx"]
        removed = server.ok(
            "POST",
            f"/api/v1/plans/{plan_id}/context/remove",
            {"names": ["https://example.test/a"]},
        )["removed"]
        assert removed == ["https://example.test/a"]
        # A folder and a glob still work as before.
        _load(server, plan_id, ("file", "src/a.py", "1"), ("file", "src/b/c.py", "2"))
        removed = server.ok("POST", f"/api/v1/plans/{plan_id}/context/remove", {"names": ["src"]})[
            "removed"
        ]
        assert sorted(removed) == ["src/a.py", "src/b/c.py"]
