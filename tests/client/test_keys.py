"""``plancast keys``: provider keys in the OS keyring, never in argv, output or files.

No test here touches the real OS keyring: each installs an in-memory backend (or keyring's
``fail`` backend, as on a machine without one) with ``keyring.set_keyring``, and the previous
backend comes back after the test.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keyring
import keyring.core
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail
from keyring.errors import KeyringLocked, PasswordDeleteError

from plancast.client.cli import build_parser, run
from plancast.client.commands.completion import bash_script
from plancast.client.credentials import (
    KEYRING_SERVICE,
    choose_model,
    credentials_for,
    keyring_backend,
    stored_key,
)
from plancast.client.ui.cli_spec import read_parser
from plancast.client.ui.output import Output
from plancast.shared import ErrorCode, ModelSpec, PlancastError

# Distinctive enough that no 5-character piece of it shows up in normal output.
KEY = "sk-ant-Zq9xW7vK2mP4rT8yL3nBfJ6h"
OTHER_KEY = "sk-Hq3VtX8cNw5RbK1jYp7Ud4sG"


class MemoryKeyring(KeyringBackend):
    """An OS keyring stand-in: keeps passwords in a dict, in this process only."""

    priority = 1  # what keyring calls "recommended", like a real OS keyring

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.passwords.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


class LockedKeyring(MemoryKeyring):
    """A keyring that refuses every read, as a locked one whose unlock was cancelled does."""

    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("cancelled")


class PlainFileKeyring(MemoryKeyring):
    """Stands for keyrings.alt's plain-file backends: below keyring's "recommended" priority."""

    priority = 0.5


# Keyring registers every backend class for its own detection; these are for set_keyring only.
for _cls in (MemoryKeyring, LockedKeyring, PlainFileKeyring):
    KeyringBackend._classes.discard(_cls)  # type: ignore[attr-defined]


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[[KeyringBackend], Any]:
    """Make ``backend`` the process's keyring for this test; the old one is put back after."""

    def install(backend: KeyringBackend) -> Any:
        monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # restored at teardown
        keyring.set_keyring(backend)
        return backend

    return install


@pytest.fixture
def memory(install: Callable[[KeyringBackend], Any]) -> MemoryKeyring:
    backend: MemoryKeyring = install(MemoryKeyring())
    return backend


@pytest.fixture
def no_keyring(install: Callable[[KeyringBackend], Any]) -> None:
    install(fail.Keyring())


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HOME and the XDG folders in a temporary folder, and the current folder inside it."""
    root = tmp_path / "home"
    for name, sub in {
        "HOME": "",
        "XDG_CONFIG_HOME": ".config",
        "XDG_DATA_HOME": ".local/share",
        "XDG_STATE_HOME": ".local/state",
    }.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(name, str(root / sub))
    project = root / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    yield root


def run_cli(*argv: str, stdin: io.StringIO | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdin
    sys.stdin = stdin or io.StringIO("")
    try:
        code = run(list(argv), Output(out, err, color=False))
    finally:
        sys.stdin = saved
    return code, out.getvalue(), err.getvalue()


def assert_no_part_of(key: str, text: str) -> None:
    secret = key.split("-")[-1]  # the "sk-ant-" prefix is no secret
    pieces = {secret[i : i + 5] for i in range(len(secret) - 4)}
    shown = [piece for piece in pieces if piece in text]
    assert not shown, f"part of a key was printed: {shown}"


# -- set, list, rm ----------------------------------------------------------------------------


def test_set_reads_the_key_from_stdin_and_stores_it(memory: MemoryKeyring) -> None:
    code, out, err = run_cli("keys", "set", "anthropic", stdin=io.StringIO(KEY + "\n"))
    assert code == 0, err
    assert memory.passwords == {(KEYRING_SERVICE, "anthropic"): KEY}
    assert "stored the anthropic key" in out
    assert_no_part_of(KEY, out + err)


def test_set_asks_with_a_hidden_prompt_on_a_terminal(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return KEY

    monkeypatch.setattr("getpass.getpass", getpass)
    code, _, err = run_cli("keys", "set", "openai", stdin=Terminal())
    assert code == 0, err
    assert memory.passwords[(KEYRING_SERVICE, "openai")] == KEY
    assert len(prompts) == 1 and "openai" in prompts[0]


def test_a_key_is_never_taken_from_the_command_line(memory: MemoryKeyring) -> None:
    code, out, err = run_cli("keys", "set", "openai", OTHER_KEY, stdin=io.StringIO(KEY))
    assert code == 2  # argparse: unrecognized arguments
    assert memory.passwords == {}


@pytest.mark.parametrize("text", ["", "\n", "two words\n", f"{KEY}\n{OTHER_KEY}\n"])
def test_set_refuses_an_empty_or_multi_word_key(memory: MemoryKeyring, text: str) -> None:
    code, out, err = run_cli("keys", "set", "openai", stdin=io.StringIO(text))
    assert code == 1 and "nothing stored" in err
    assert memory.passwords == {}
    assert_no_part_of(KEY, out + err)
    assert_no_part_of(OTHER_KEY, out + err)


def test_set_and_rm_need_a_provider(memory: MemoryKeyring) -> None:
    for action in ("set", "rm"):
        code, _, err = run_cli("keys", action, stdin=io.StringIO(KEY))
        assert code == 1 and f"plancast keys {action} PROVIDER" in err
    assert run_cli("keys", "set", "nosuch", stdin=io.StringIO(KEY))[0] == 2
    assert memory.passwords == {}


def test_list_shows_which_key_wins_and_never_the_key(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory.set_password(KEYRING_SERVICE, "anthropic", KEY)
    memory.set_password(KEYRING_SERVICE, "openai", OTHER_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment-Pw4Lm")
    code, out, err = run_cli("keys", "list")
    assert code == 0, err
    rows = {line.split()[0]: line.split() for line in out.splitlines()[1:5]}
    assert rows["anthropic"] == ["anthropic", "stored", "ANTHROPIC_API_KEY", "unset", "keyring"]
    assert rows["openai"] == ["openai", "stored", "OPENAI_API_KEY", "set", "environment"]
    assert rows["azure"] == ["azure", "-", "AZURE_OPENAI_API_KEY", "unset", "-"]
    assert rows["ollama"][1] == "-" and rows["ollama"][-1] == "(optional)"
    code, as_json, err2 = run_cli("keys", "--json")  # `list` is the default
    assert code == 0
    providers = {row["provider"]: row for row in json.loads(as_json)["providers"]}
    assert providers["anthropic"]["uses"] == "keyring"
    assert providers["openai"]["uses"] == "env" and providers["openai"]["stored"] is True
    everything = out + err + as_json + err2
    for key in (KEY, OTHER_KEY, "sk-from-the-environment-Pw4Lm"):
        assert_no_part_of(key, everything)


def test_rm_removes_the_stored_key(memory: MemoryKeyring) -> None:
    memory.set_password(KEYRING_SERVICE, "anthropic", KEY)
    memory.set_password(KEYRING_SERVICE, "openai", OTHER_KEY)
    code, out, err = run_cli("keys", "rm", "anthropic")
    assert code == 0, err
    assert "removed the anthropic key" in out
    assert memory.passwords == {(KEYRING_SERVICE, "openai"): OTHER_KEY}
    code, out, _ = run_cli("keys", "rm", "anthropic")  # nothing left: said, not an error
    assert code == 0 and "no anthropic key is stored" in out


def test_set_and_rm_say_when_the_environment_variable_wins(
    memory: MemoryKeyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-env")
    _, _, err = run_cli("keys", "set", "anthropic", stdin=io.StringIO(KEY))
    assert "ANTHROPIC_API_KEY is set, and takes precedence" in err
    _, _, err = run_cli("keys", "rm", "anthropic")
    assert "ANTHROPIC_API_KEY is still set" in err


def test_no_file_holds_the_key_after_set_list_and_rm(memory: MemoryKeyring, home: Path) -> None:
    assert run_cli("keys", "set", "anthropic", stdin=io.StringIO(KEY + "\n"))[0] == 0
    assert run_cli("keys", "list")[0] == 0
    assert run_cli("keys", "--json")[0] == 0
    assert stored_key("anthropic") == KEY
    assert run_cli("keys", "rm", "anthropic")[0] == 0
    files = [p for p in home.rglob("*") if p.is_file()]
    holding = [p for p in files if KEY.encode() in p.read_bytes()]
    assert holding == []


# -- lookups: the environment first, then the keyring -----------------------------------------


def test_the_environment_wins_over_the_keyring(memory: MemoryKeyring) -> None:
    memory.set_password(KEYRING_SERVICE, "anthropic", KEY)
    model = ModelSpec.parse("anthropic/claude-x")
    assert credentials_for(model, {"ANTHROPIC_API_KEY": "sk-env"}).api_key == "sk-env"
    assert credentials_for(model, {}).api_key == KEY


def test_a_stored_key_configures_a_provider_after_the_environment(memory: MemoryKeyring) -> None:
    memory.set_password(KEYRING_SERVICE, "openai", KEY)
    assert choose_model(None, {}).provider == "openai"
    assert choose_model(None, {"ANTHROPIC_API_KEY": "a"}).provider == "anthropic"
    memory.set_password(KEYRING_SERVICE, "anthropic", KEY)
    assert choose_model(None, {}).provider == "anthropic"  # the usual order among stored keys
    assert choose_model(None, {"OPENAI_BASE_URL": "http://h/v1"}).provider == "openai"


# -- without a usable keyring -----------------------------------------------------------------


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_set_fails_and_points_to_the_environment() -> None:
    code, out, err = run_cli("keys", "set", "openai", stdin=io.StringIO(KEY))
    assert code != 0
    assert "no OS keyring is available" in err and "export OPENAI_API_KEY=" in err
    assert_no_part_of(KEY, out + err)
    code, _, err = run_cli("keys", "rm", "openai")
    assert code != 0 and "no OS keyring is available" in err


@pytest.mark.usefixtures("no_keyring")
def test_without_a_keyring_lookups_find_no_key() -> None:
    assert keyring_backend() is None and stored_key("openai") is None
    with pytest.raises(PlancastError) as info:
        credentials_for(ModelSpec.parse("anthropic/claude-x"), {})
    assert info.value.code == ErrorCode.MISSING_CREDENTIALS
    assert "export ANTHROPIC_API_KEY=" in info.value.message
    assert "plancast keys set anthropic" in info.value.message
    with pytest.raises(PlancastError):
        choose_model(None, {})
    code, out, _ = run_cli("keys", "list")
    assert code == 0 and "no OS keyring is available" in out


def test_a_locked_or_plain_file_keyring_counts_as_no_key(
    install: Callable[[KeyringBackend], Any],
) -> None:
    install(LockedKeyring())
    assert stored_key("openai") is None
    assert credentials_for(ModelSpec.parse("ollama/llama3.1"), {}).api_key is None
    plain: PlainFileKeyring = install(PlainFileKeyring())
    assert keyring_backend() is None
    code, _, err = run_cli("keys", "set", "openai", stdin=io.StringIO(KEY))
    assert code != 0 and "no OS keyring is available" in err
    assert plain.passwords == {}


# -- start-up and completion ------------------------------------------------------------------


def test_keyring_is_imported_only_when_a_key_is_looked_up() -> None:
    code = (
        "import sys\n"
        "from plancast.client.cli import build_parser\n"
        "import plancast.client.commands.keys, plancast.client.commands.streams\n"
        "from plancast.client.credentials import choose_model, credentials_for\n"
        "from plancast.shared import ModelSpec\n"
        "build_parser().format_help()\n"
        "choose_model(None, {'ANTHROPIC_API_KEY': 'k'})\n"
        "credentials_for(ModelSpec.parse('anthropic/x'), {'ANTHROPIC_API_KEY': 'k'})\n"
        "print('keyring' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "False"


def test_keys_completes_in_the_session_and_the_shells() -> None:
    command = read_parser(build_parser()).commands["keys"]
    action, provider = command.positionals
    assert (action.kind, action.choices) == ("choice", ("list", "set", "rm"))
    assert provider.kind == "choice" and "anthropic" in provider.choices
    assert "keys)" in bash_script(read_parser(build_parser()))
