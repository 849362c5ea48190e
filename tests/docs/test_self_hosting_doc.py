"""docs/self-hosting.md against the code: the settings table, the variables named, the links.

The settings table is written by hand, so this check keeps it honest both ways: every setting
in ``SETTINGS`` has its row (variable, flag and default as the server has them), and every
``PLANCAST_*`` name the page mentions is something plancast reads, so a renamed or removed
setting cannot linger in the docs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plancast.client.config import SETTINGS as CLIENT_SETTINGS
from plancast.client.config import ClientConfig
from plancast.server.config import SETTINGS, Setting

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "self-hosting.md"

_ROW = re.compile(r"^\|\s*`(PLANCAST_[A-Z0-9_]+)`\s*\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _rows() -> dict[str, tuple[str, str]]:
    """The settings table: variable -> (flag, default cell), each variable once."""
    rows: dict[str, tuple[str, str]] = {}
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match:
            assert match[1] not in rows, f"{match[1]} has two rows"
            rows[match[1]] = (match[2], match[3])
    return rows


def _shown(setting: Setting) -> str | None:
    """How the table writes a default; None for a default that is prose (a path, none)."""
    default = setting.default
    if default is None or default == "":
        return None
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_every_setting_has_its_row(setting: Setting) -> None:
    rows = _rows()
    assert setting.env in rows, f"{setting.env} is missing from the settings table"
    flag, default = rows[setting.env]
    assert flag == setting.flag
    shown = _shown(setting)
    if shown is not None:
        assert f"`{shown}`" in default, f"{setting.env}: default {shown}, the doc says {default}"


def test_every_variable_named_is_read_by_plancast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Server settings, client settings, and the client's token variable, nothing else."""
    server = {s.env for s in SETTINGS}
    client = {s.env for s in CLIENT_SETTINGS.values()}
    monkeypatch.setenv("PLANCAST_TOKEN", "from-the-environment")
    assert ClientConfig.load(server="http://127.0.0.1:7526").token == "from-the-environment"
    named = set(re.findall(r"\bPLANCAST_[A-Z0-9_]+", DOC.read_text()))
    assert named - server - client <= {"PLANCAST_TOKEN"}, sorted(named - server - client)
    assert set(_rows()) <= server, "a client variable in the server settings table"


def test_relative_links_resolve() -> None:
    for target in _LINK.findall(DOC.read_text()):
        if "://" in target:
            continue
        assert (DOC.parent / target).exists(), target


def test_readme_links_here() -> None:
    assert "(docs/self-hosting.md)" in (ROOT / "README.md").read_text()
