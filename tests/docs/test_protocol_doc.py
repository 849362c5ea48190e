"""docs/protocol.md against the code: messages, fields, error codes, close codes, REST routes.

The page is written so that this check stays simple: each message is a ``### `type` `` heading
under "Client messages" or "Server messages", followed by a table whose rows start with a field
name in backticks; the error codes, close codes and REST routes are one table each. The check
runs both ways: everything in the code is documented, and nothing documented is missing from it.
"""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from plancast.server.errors import HTTP_STATUS
from plancast.server.web import websocket
from plancast.server.web.rest import ROUTES, TEAM_ROUTES
from plancast.shared import (
    CLIENT_MESSAGES,
    MAX_MESSAGE_BYTES,
    SERVER_MESSAGES,
    SUBPROTOCOL,
    ErrorCode,
    Message,
    ProviderCredentials,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$")
_CODE_HEADING = re.compile(r"^`([^`]+)`$")
_FIRST_CELL = re.compile(r"^\|\s*`([^`]+)`\s*\|")
_ROUTE_ROW = re.compile(r"^\|\s*(GET|POST|PUT|PATCH|DELETE|HEAD)\s*\|\s*`([^`]+)`\s*\|")


def _sections(text: str) -> list[tuple[int, str, list[str]]]:
    """(level, title, lines up to the next heading of any level), in order; fences skipped."""
    sections: list[tuple[int, str, list[str]]] = [(0, "", [])]
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            sections.append((len(match[1]), match[2], []))
        else:
            sections[-1][2].append(line)
    return sections


def _subtree(text: str, title: str) -> list[tuple[int, str, list[str]]]:
    """The section titled ``title`` and every section nested below it."""
    sections = _sections(text)
    for i, (level, name, _) in enumerate(sections):
        if name == title:
            end = next(
                (j for j in range(i + 1, len(sections)) if sections[j][0] <= level), len(sections)
            )
            return sections[i:end]
    raise AssertionError(f"docs/protocol.md has no section {title!r}")


def _table_rows(lines: list[str]) -> list[str]:
    """The table rows in ``lines``, stripped; lines inside code fences are examples, not rows."""
    rows, fenced = [], False
    for line in lines:
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.strip().startswith("|"):
            rows.append(line.strip())
    return rows


def _first_cells(lines: list[str]) -> list[str]:
    """The backticked first cell of every table row in ``lines``."""
    return [m[1] for row in _table_rows(lines) if (m := _FIRST_CELL.match(row))]


def _message_tables(text: str, title: str) -> dict[str, list[str]]:
    """``{message type: documented field names}`` for the ``### `type` `` sections under title."""
    found: dict[str, list[str]] = {}
    for level, name, lines in _subtree(text, title)[1:]:
        match = _CODE_HEADING.match(name)
        if level == 3 and match:
            assert match[1] not in found, f"message {match[1]!r} is documented twice"
            found[match[1]] = _first_cells(lines)
    return found


def _wire_fields(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("title", "registry"),
    [("Client messages", CLIENT_MESSAGES), ("Server messages", SERVER_MESSAGES)],
)
def test_every_message_is_documented_with_exactly_its_fields(
    doc: str, title: str, registry: dict[str, type[Message]]
) -> None:
    documented = _message_tables(doc, title)
    assert sorted(documented) == sorted(registry), f"message types under {title!r}"
    for kind, cls in registry.items():
        expected = ["type", *_wire_fields(cls)]
        assert sorted(documented[kind]) == sorted(expected), f"fields of {kind!r}"
        assert len(documented[kind]) == len(set(documented[kind])), f"a {kind!r} field repeats"


def test_every_message_has_a_json_example(doc: str) -> None:
    for title, registry in (
        ("Client messages", CLIENT_MESSAGES),
        ("Server messages", SERVER_MESSAGES),
    ):
        for kind in registry:
            section = next(
                lines for level, name, lines in _subtree(doc, title) if name == f"`{kind}`"
            )
            assert f'"type": "{kind}"' in "\n".join(section), f"no JSON example for {kind!r}"


def test_provider_credentials_fields(doc: str) -> None:
    (_, _, lines), *_ = _subtree(doc, "Provider credentials")
    assert sorted(_first_cells(lines)) == sorted(_wire_fields(ProviderCredentials))


def test_error_table_matches_error_codes_and_http_statuses(doc: str) -> None:
    (_, _, lines), *_ = _subtree(doc, "Error codes")
    rows = {}
    for row in _table_rows(lines):
        cells = [c.strip() for c in row.strip("|").split("|")]
        if match := re.fullmatch(r"`([^`]+)`", cells[0]):
            assert match[1] not in rows, f"error code {match[1]!r} is documented twice"
            rows[match[1]] = cells[1]
    assert sorted(rows) == sorted(code.value for code in ErrorCode)
    for code in ErrorCode:
        assert rows[code.value] == str(HTTP_STATUS[code]), f"HTTP status of {code.value!r}"


def test_rest_routes_match_the_code(doc: str) -> None:
    documented = {
        (m[1], m[2])
        for _, _, lines in _subtree(doc, "REST routes")
        for row in _table_rows(lines)
        if (m := _ROUTE_ROW.match(row))
    }
    in_code = {
        (method, route.path)
        for route in [*ROUTES, *TEAM_ROUTES]
        for method in route.methods or ()
        if method != "HEAD"  # every GET answers HEAD too; the page says so once
    }
    assert sorted(documented) == sorted(in_code)


def test_close_codes_match_the_socket(doc: str) -> None:
    (_, _, lines), *_ = _subtree(doc, "Close codes")
    documented = set(_first_cells(lines))
    ours = {
        str(value)
        for name, value in vars(websocket).items()
        if name.startswith("CLOSE_") and isinstance(value, int)
    }
    assert ours, "plancast.server.web.websocket defines no CLOSE_* codes"
    assert ours <= documented
    assert all(code.isdigit() and len(code) == 4 for code in documented)


def test_version_and_limits_are_current(doc: str) -> None:
    assert f"`{SUBPROTOCOL}`" in doc
    assert str(MAX_MESSAGE_BYTES) in doc
    assert "`/api/v1/streams`" in doc


def test_parser_sees_what_a_reader_sees() -> None:
    """The helpers read headings and tables, and ignore look-alikes inside code fences."""
    sample = "\n".join(
        [
            "## Client messages",
            "### `ping`",
            "| Field | Type |",
            "| --- | --- |",
            "| `type` | string |",
            "| `nonce` | string |",
            "```",
            "### `not_a_heading`",
            "| `not_a_field` | x |",
            "```",
            "## Server messages",
        ]
    )
    assert _message_tables(sample, "Client messages") == {"ping": ["type", "nonce"]}
    assert _message_tables(sample, "Server messages") == {}
