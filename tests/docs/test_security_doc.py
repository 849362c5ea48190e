"""docs/security.md's role table is the policy layer's table."""

from __future__ import annotations

from pathlib import Path

from plancast.server.domain.principal import PERMISSIONS, Action, Role

DOC = Path(__file__).parents[2] / "docs" / "security.md"


def test_the_role_table_matches_the_policy_layer() -> None:
    text = DOC.read_text()
    start = text.index("### Roles")
    table = text[start : text.index("\n## ", start)]
    rows = {}
    for line in table.splitlines():
        if line.startswith("| `"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            action = cells[0][1 : cells[0].index("`", 1)]
            rows[action] = dict(zip(("owner", "admin", "member"), cells[1:], strict=True))
    assert sorted(rows) == sorted(a.value for a in Action)
    for action in Action:
        for role in Role:
            expected = "yes" if action in PERMISSIONS[role] else "no"
            assert rows[action.value][role.value] == expected, (action, role)
