"""Shell completion scripts, run in the real shells when they are installed."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from plancast.client.cli import build_parser, run
from plancast.client.commands.completion import bash_script, fish_script, zsh_script
from plancast.client.ui.cli_spec import read_parser
from plancast.client.ui.output import Output

SPEC = read_parser(build_parser())


def script(shell: str) -> str:
    out = io.StringIO()
    assert run(["completion", shell], Output(out, io.StringIO(), color=False)) == 0
    return out.getvalue()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with files to complete, and a stub `plancast` that lists two plans."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("")
    (tmp_path / "setup.cfg").write_text("")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "plancast"
    stub.write_text('#!/bin/sh\n[ "$1 $2" = "plans -q" ] && printf "plan-1\\nrefactor\\n"\n')
    stub.chmod(0o755)
    return tmp_path


def test_the_command_prints_each_script() -> None:
    assert script("bash") == bash_script(SPEC)
    assert script("zsh") == zsh_script(SPEC)
    assert script("fish") == fish_script(SPEC)


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("plancast lo", ["load", "log"]),
        ("plancast co", ["completion", "config", "connect", "continue", "convo"]),
        ("plancast --server http://x l", ["load", "log", "ls"]),
        ("plancast load --rec", ["--recursive"]),
        ("plancast load s", ["setup.cfg", "src"]),
        ("plancast load -n note s", ["setup.cfg", "src"]),
        ("plancast load -n s", []),  # -n takes a value: no paths for it
        ("plancast cd ", ["plan-1", "refactor"]),
        ("plancast completion ", ["bash", "fish", "zsh"]),
        ("plancast config conf", ["confirm_apply_files", "confirm_tokens"]),
        ("plancast config markdown ", []),
        ("plancast plans -", ["--archived", "--json", "--quiet", "-h", "--help", "-q"]),
    ],
)
def test_bash(project: Path, line: str, expected: list[str]) -> None:
    words = line.split(" ")
    code = (
        script("bash")
        + f"\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)})"
        + f"\nCOMP_CWORD={len(words) - 1}\n__plancast_complete\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{project / 'bin'}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", code],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert sorted(w for w in done.stdout.splitlines() if w) == sorted(expected)


@pytest.mark.skipif(shutil.which("fish") is None, reason="no fish")
def test_fish(project: Path) -> None:
    def complete(line: str) -> dict[str, str]:
        code = f"source {shlex.quote(str(project / 'p.fish'))}; complete -C {shlex.quote(line)}"
        done = subprocess.run(
            ["fish", "--no-config", "-c", code],
            cwd=project,
            env={**os.environ, "PATH": f"{project / 'bin'}:{os.environ['PATH']}"},
            capture_output=True,
            text=True,
            check=True,
        )
        return dict((line.split("\t") + [""])[:2] for line in done.stdout.splitlines())

    (project / "p.fish").write_text(script("fish"))
    assert complete("plancast lo")["load"].startswith("load files")  # with its help
    assert "--recursive" in complete("plancast load --rec")
    assert {"src/", "setup.cfg"} <= set(complete("plancast load s"))
    assert set(complete("plancast cd ")) == {"plan-1", "refactor"}
    assert set(complete("plancast completion ")) == {"bash", "fish", "zsh"}
    assert complete("plancast ls ") == {}  # ls takes no paths: no files offered


@pytest.mark.skipif(shutil.which("zsh") is None, reason="no zsh")
def test_zsh_script_parses_and_registers(project: Path) -> None:
    path = project / "_plancast"
    path.write_text(script("zsh"))
    subprocess.run(["zsh", "-n", str(path)], check=True)
    code = f"autoload -U compinit; compinit -u -D; source {shlex.quote(str(path))}; "
    code += "print -r -- $_comps[plancast]; whence -w _plancast __plancast_plans"
    done = subprocess.run(
        ["zsh", "-f", "-c", code], capture_output=True, text=True, check=True, cwd=project
    )
    assert done.stdout.splitlines() == [
        "_plancast",
        "_plancast: function",
        "__plancast_plans: function",
    ]


def test_zsh_specs_escape_help_text() -> None:
    text = zsh_script(SPEC)
    assert "'(-r --recursive)'{-r,--recursive}'[load folders recursively]'" in text
    assert "'1:plan:__plancast_plans'" in text
    assert "'*:paths:_files'" in text
    for line in text.splitlines():
        if line.strip().startswith("'") and "[" in line:
            assert line.replace("'\\''", "").count("'") % 2 == 0, line  # balanced quotes
