"""What ``plancast`` imports at start: nothing heavy for --help; no httpx CLI, ever.

Timed targets live in scripts/bench/cli_startup.py; these only pin what is imported.
"""

from __future__ import annotations

import subprocess
import sys


def imported_after(code: str) -> set[str]:
    loaded = "sorted(k for k, v in sys.modules.items() if v is not None)"
    script = f"import sys\n{code}\nprint('\\n'.join({loaded}))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_modules_of_this_package_import_nothing_heavy() -> None:
    loaded = imported_after(
        "import plancast.client.commands.plans, plancast.client.commands.convo, "
        "plancast.client.commands.settings, plancast.client.commands.completion, "
        "plancast.client.ui.output, plancast.client.config"
    )
    heavy = {"plancast.shared", "dataclasses", "json", "httpx", "prompt_toolkit", "rich"}
    assert heavy & loaded == set()


def test_the_repl_and_renderer_leave_rich_markdown_for_later() -> None:
    loaded = imported_after("import plancast.client.ui.repl, plancast.client.ui.render")
    assert "rich" not in loaded and "markdown_it" not in loaded


def test_the_plancast_entry_point_never_imports_httpx_own_cli() -> None:
    loaded = imported_after(
        "from plancast.client import cli\n"
        "sys.argv = ['plancast', 'config', '--path']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "import httpx"
    )
    assert "httpx" in loaded
    assert {"httpx._main", "click", "pygments", "rich"} & loaded == set()
