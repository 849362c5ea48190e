"""Settings: one table, one precedence (flag > env > file > default), a private TOML file."""

from __future__ import annotations

import io
import json
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.client import config
from plancast.client.cli import run
from plancast.client.config import (
    SETTINGS,
    ClientConfig,
    Settings,
    config_path,
    dump_config,
    read_config_file,
    state_dir,
    toml_value,
    write_config_file,
)
from plancast.client.ui.output import Output
from plancast.shared import PlancastError


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run(list(argv), Output(out, err, color=False))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected", "source"),
    [
        ("http://flag:1", "http://env:2", "http://file:3", "http://flag:1", "flag"),
        (None, "http://env:2", "http://file:3", "http://env:2", "env PLANCAST_SERVER"),
        (None, None, "http://file:3", "http://file:3", "config file"),
        (None, None, None, config.DEFAULT_SERVER, "default"),
        (None, "", "http://file:3", "http://file:3", "config file"),  # empty means unset
    ],
)
def test_precedence_is_flag_env_file_default(
    flag: str | None, env: str | None, file: str | None, expected: str, source: str
) -> None:
    environ = {} if env is None else {"PLANCAST_SERVER": env}
    file_values = {} if file is None else {"server": file}
    settings = Settings({"server": flag}, environ, file_values)
    assert settings["server"] == expected
    assert settings.source("server") == source


def test_every_setting_has_a_default_an_env_variable_and_help() -> None:
    for name, setting in SETTINGS.items():
        assert setting.env.startswith("PLANCAST_"), name
        assert setting.help, name
        assert Settings(environ={}, file_values={})[name] == setting.default


def test_the_readme_lists_every_setting() -> None:
    readme = (Path(__file__).parents[3] / "README.md").read_text()
    for name, setting in SETTINGS.items():
        assert f"`{name}`" in readme and f"`{setting.env}`" in readme, name


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(PlancastError, match="PLANCAST_CONFIRM_APPLY_FILES: must be a whole"):
        Settings(environ={"PLANCAST_CONFIRM_APPLY_FILES": "many"}, file_values={})
    with pytest.raises(PlancastError, match="PLANCAST_MARKDOWN: must be true or false"):
        Settings(environ={"PLANCAST_MARKDOWN": "maybe"}, file_values={})


def test_the_config_file_lives_in_xdg_config_home(tmp_path: Path) -> None:
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path / "cfg")
    assert config_path() == tmp_path / "cfg" / "plancast" / "config.toml"
    os.environ["XDG_CONFIG_HOME"] = "relative/path"  # invalid per the spec: ignored
    assert config_path() == Path.home() / ".config" / "plancast" / "config.toml"
    os.environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    assert state_dir() == tmp_path / "state" / "plancast"


def test_the_file_is_written_whole_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "config.toml"
    old_umask = os.umask(0)  # even with a permissive umask
    try:
        write_config_file({"model": "openai/gpt-5.5", "markdown": False}, path)
    finally:
        os.umask(old_umask)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert read_config_file(path) == {"model": "openai/gpt-5.5", "markdown": False}
    assert [p.name for p in path.parent.iterdir()] == ["config.toml"]  # no temp file left


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("server = [", "not valid TOML"),
        ("colour = true\n", "unknown setting 'colour'"),
        ("markdown = 'yes'\n", "markdown: must be true or false"),
        ("confirm_tokens = -1\n", "confirm_tokens: must be 0 or more"),
        ("confirm_tokens = true\n", "confirm_tokens: must be a whole number"),
        ("server = 'ftp://x'\n", "server: must be an http:// or https:// URL"),
        ("model = 'gpt'\n", "model: "),  # then shared's own words about the model name
    ],
)
def test_a_bad_file_fails_loudly_naming_it(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(PlancastError) as caught:
        read_config_file(path)
    assert str(path) in caught.value.message
    assert problem in caught.value.message


@given(st.text())
def test_any_string_survives_the_toml_writer(value: str) -> None:
    assert tomllib.loads(f"x = {toml_value(value)}\n")["x"] == value


def test_dump_keeps_the_table_order_and_a_header() -> None:
    text = dump_config({"markdown": True, "server": "http://h:1"})
    assert text.startswith("#")
    assert text.index("server") < text.index("markdown")
    assert tomllib.loads(text) == {"server": "http://h:1", "markdown": True}


def test_exported_settings_reach_their_variable_only_when_it_is_unset() -> None:
    settings = Settings(environ={}, file_values={"confirm_tokens": 500, "markdown": False})
    environ: dict[str, str] = {}
    settings.export_to(environ)
    assert environ == {"PLANCAST_CONFIRM_TOKENS": "500"}  # only the exported setting
    set_by_user = {"PLANCAST_CONFIRM_TOKENS": "7"}
    Settings(environ=set_by_user, file_values={"confirm_tokens": 500}).export_to(set_by_user)
    assert set_by_user == {"PLANCAST_CONFIRM_TOKENS": "7"}


def test_client_config_takes_the_server_from_the_file(tmp_path: Path) -> None:
    write_config_file({"server": "http://from-file:1234"})
    assert ClientConfig.load().server == "http://from-file:1234"
    assert ClientConfig.load("http://flag:1").server == "http://flag:1"
    os.environ["PLANCAST_SERVER"] = "http://env:5"
    assert ClientConfig.load().server == "http://env:5"


def test_config_command_sets_shows_and_unsets() -> None:
    assert run_cli("config", "model", "anthropic/claude-sonnet-5-5")[0] == 0
    assert run_cli("config", "confirm_apply_files", "2")[0] == 0
    code, out, _ = run_cli("config")
    assert code == 0
    assert "model" in out and "anthropic/claude-sonnet-5-5" in out and "(config file)" in out
    assert "(default)" in out  # the others
    assert run_cli("config", "model")[1] == "anthropic/claude-sonnet-5-5\n"
    assert read_config_file() == {
        "model": "anthropic/claude-sonnet-5-5",
        "confirm_apply_files": 2,
    }
    assert config_path().stat().st_mode & 0o777 == 0o600
    assert run_cli("config", "--unset", "model")[0] == 0
    assert read_config_file() == {"confirm_apply_files": 2}
    assert run_cli("config", "--path")[1].strip() == str(config_path())


def test_config_command_json_and_sources() -> None:
    os.environ["PLANCAST_MARKDOWN"] = "off"
    code, out, _ = run_cli("config", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["markdown"] == {
        "value": False,
        "source": "env PLANCAST_MARKDOWN",
        "env": "PLANCAST_MARKDOWN",
        "default": True,
        "help": SETTINGS["markdown"].help,
    }
    assert set(data) == set(SETTINGS)


def test_config_command_refuses_bad_values_and_says_when_env_wins() -> None:
    code, _, err = run_cli("config", "confirm_tokens", "lots")
    assert code == 1 and "cannot set confirm_tokens: must be a whole number" in err
    assert not config_path().exists()
    os.environ["PLANCAST_MODEL"] = "openai/gpt-5.5"
    code, _, err = run_cli("config", "model", "ollama/llama3.1")
    assert code == 0 and "PLANCAST_MODEL is set, and takes precedence" in err


def test_config_command_works_on_a_broken_file_and_says_how_to_recover() -> None:
    config_path().parent.mkdir(parents=True)
    config_path().write_text("this is not toml")
    code, out, err = run_cli("config", "--path")
    assert code == 0
    code, _, err = run_cli("config", "markdown", "false")
    assert code == 1 and "fix or delete it" in err
    code, _, err = run_cli("plans")  # any other command reports the broken file
    assert code == 1 and "not valid TOML" in err


def test_the_config_files_model_is_used_when_no_flag_or_variable_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from plancast.client.commands import models, streams
    from plancast.shared import PlanModels

    seen: list[str] = []

    def credentials(resolved: PlanModels, fallback: object) -> None:
        seen.append(str(resolved.roles["planner"].model))
        raise PlancastError("seen; no stream needed")

    # A plan that sets no model of its own: the default decides, below -m.
    monkeypatch.setattr(models, "plan_settings", lambda session: PlanModels())
    monkeypatch.setattr(streams, "_credentials", credentials)
    write_config_file({"model": "ollama/llama3.1"})
    run_cli("tell", "x")
    run_cli("chat", "-m", "openai/gpt-5.5", "x")
    os.environ["PLANCAST_MODEL"] = "anthropic/claude-sonnet-5-5"
    run_cli("continue")
    assert seen == ["ollama/llama3.1", "openai/gpt-5.5", "anthropic/claude-sonnet-5-5"]


def test_exported_config_values_reach_the_environment_of_a_command() -> None:
    write_config_file({"confirm_tokens": 1234})
    assert run_cli("config", "--path")[0] == 0
    assert "PLANCAST_CONFIRM_TOKENS" not in os.environ  # `config` never exports
    run_cli("completion", "bash")
    assert os.environ["PLANCAST_CONFIRM_TOKENS"] == "1234"
