"""The distribution's shape: every package folder is packaged, and the client stays light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"plancast.shared": "shared", "plancast.server": "server", "plancast.client": "client"}


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([package, *relative.parts]))
    assert found == listed


def test_client_never_imports_sdks_or_server_dependencies() -> None:
    code = (
        "import sys, plancast.client.cli, plancast.client.session, "
        "plancast.client.commands.streams, plancast.client.api.stream, "
        "plancast.client.context.scan, plancast.client.apply.changeset\n"
        "heavy = {'openai', 'anthropic', 'starlette', 'sqlalchemy', 'uvicorn', 'aiosqlite',"
        " 'alembic', 'plancast.server'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_help_imports_no_network_library() -> None:
    code = (
        "import sys\nfrom plancast.client.cli import build_parser\nbuild_parser().format_help()\n"
        "print(sorted({'httpx', 'websockets', 'prompt_toolkit', 'rich'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_console_scripts_are_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {
        "plancast": "plancast.client.cli:main",
        "plancast-server": "plancast.server.cli:main",
    }
