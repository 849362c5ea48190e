"""Settings: one table, flag > environment > default, loud errors, and ``--help`` from the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from plancast.server import cli
from plancast.server.config import DEFAULT_PORT, SETTINGS, Settings, default_data_dir

KEY_A = "A" * 43 + "="  # master keys as base64 text (32 bytes)
KEY_B = "B" * 43 + "="

# For each setting: a value as the environment gives it, a different one as a flag gives it,
# and what each becomes on ``Settings``. A setting missing here fails the drift test below.
SAMPLES: dict[str, tuple[str, Any, Any, Any]] = {
    # name: (env text, flag value, loaded from env, loaded from flag)
    "host": ("0.0.0.0", "127.0.0.2", "0.0.0.0", "127.0.0.2"),
    "port": ("9001", 9002, 9001, 9002),
    "data_dir": ("/tmp/plancast-env", "/tmp/plancast-flag", None, None),  # checked separately
    "database_url": (
        "sqlite+aiosqlite:////tmp/env.db",
        "sqlite+aiosqlite:////tmp/flag.db",
        "sqlite+aiosqlite:////tmp/env.db",
        "sqlite+aiosqlite:////tmp/flag.db",
    ),
    "log_level": ("warning", "debug", "warning", "debug"),
    "allowed_origins": (
        "https://a.example, https://b.example",
        "https://c.example",
        ("https://a.example", "https://b.example"),
        ("https://c.example",),
    ),
    "forwarded_allow_ips": ("10.0.0.1", "*", "10.0.0.1", "*"),
    "event_flush_ms": ("75", 80, 75, 80),
    "event_flush_size": ("300", 400, 300, 400),
    "provider_timeout_s": ("2.5", 3.5, 2.5, 3.5),
    "provider_attempts": ("4", 5, 4, 5),
    "first_token_timeout_s": ("12.5", 7.0, 12.5, 7.0),
    "idle_timeout_s": ("30", 9.5, 30.0, 9.5),
    "stream_deadline_s": ("600", 60.0, 600.0, 60.0),
    "max_streams_per_user": ("3", 2, 3, 2),
    "idle_workers": ("0", 4, 0, 4),
    "max_workers": ("16", 32, 16, 32),
    "event_retention_days": ("7", 0.5, 7.0, 0.5),
    "max_request_bytes": ("1000", 2000, 1000, 2000),
    "log_format": ("json", "text", "json", "text"),
    "shutdown_grace_s": ("5", 0.5, 5.0, 0.5),
    "metrics_public": ("true", False, True, False),
    "tls_certfile": ("/srv/env.pem", "/srv/flag.pem", Path("/srv/env.pem"), Path("/srv/flag.pem")),
    "tls_keyfile": ("/srv/env.key", "/srv/flag.key", Path("/srv/env.key"), Path("/srv/flag.key")),
    "stream_lease_s": ("5", 2.5, 5.0, 2.5),
    "master_key": (KEY_A, KEY_B, KEY_A, KEY_B),
    "master_key_file": ("/srv/m1.key", "/srv/m2.key", Path("/srv/m1.key"), Path("/srv/m2.key")),
    "kms_plugin": ("kms_a:key", "kms_b:key", "kms_a:key", "kms_b:key"),
    "mode": ("team", "local", "team", "local"),
    "signup": ("open", "invite", "open", "invite"),
    "smtp_host": ("mail.a.test", "mail.b.test", "mail.a.test", "mail.b.test"),
    "smtp_port": ("2525", 465, 2525, 465),
    "smtp_security": ("none", "tls", "none", "tls"),
    "smtp_username": ("ann", "bob", "ann", "bob"),
    "smtp_password_file": ("", "", None, None),  # a file to read: checked separately
    "smtp_from": ("a@x.test", "b@x.test", "a@x.test", "b@x.test"),
    "session_idle_days": ("1", 2.5, 1.0, 2.5),
    "session_max_days": ("30", 60.0, 30.0, 60.0),
    "invite_days": ("3", 0.5, 3.0, 0.5),
    "plan_retention_days": ("30", 0.5, 30.0, 0.5),
}
# Team mode needs an SMTP host; every sample below loads with one.
BASE_ENVIRON = {"PLANCAST_SMTP_HOST": "mail.base.test"}


def test_samples_cover_every_setting() -> None:
    assert set(SAMPLES) == {s.name for s in SETTINGS}


def test_defaults() -> None:
    settings = Settings.load({}, environ={})
    assert settings.host == "127.0.0.1"
    assert settings.port == DEFAULT_PORT
    assert settings.data_dir == default_data_dir().resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{settings.data_dir / 'plancast.db'}"
    assert settings.log_level == "info"
    assert settings.allowed_origins == ()
    for setting in SETTINGS:
        if setting.default is not None and setting.name != "allowed_origins":
            assert getattr(settings, setting.name) == setting.default, setting.name


def test_default_data_dir_follows_xdg(clean_environ: Path) -> None:
    assert default_data_dir() == clean_environ / ".local" / "share" / "plancast"


@pytest.mark.parametrize(
    "name", [n for n in SAMPLES if n not in ("data_dir", "smtp_password_file")]
)
def test_env_beats_default_and_flag_beats_env(name: str) -> None:
    setting = next(s for s in SETTINGS if s.name == name)
    env_text, flag_value, from_env, from_flag = SAMPLES[name]
    environ = BASE_ENVIRON | {setting.env: env_text}
    assert getattr(Settings.load({}, environ=environ), name) == from_env
    assert getattr(Settings.load({name: flag_value}, environ=environ), name) == from_flag
    # A flag left unset (None, as argparse gives it) does not hide the environment.
    assert getattr(Settings.load({name: None}, environ=environ), name) == from_env


def test_data_dir_precedence_and_derived_database_url(tmp_path: Path) -> None:
    env_dir, flag_dir = tmp_path / "env", tmp_path / "flag"
    environ = {"PLANCAST_DATA_DIR": str(env_dir)}
    assert Settings.load({}, environ=environ).data_dir == env_dir.resolve()
    settings = Settings.load({"data_dir": str(flag_dir)}, environ=environ)
    assert settings.data_dir == flag_dir.resolve()
    assert settings.database_url.endswith(str(flag_dir.resolve() / "plancast.db"))


def test_data_dir_expands_the_home_folder(clean_environ: Path) -> None:
    settings = Settings.load({"data_dir": "~/plancast-data"}, environ={})
    assert settings.data_dir == (clean_environ / "plancast-data").resolve()


def test_settings_read_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PLANCAST_PORT", "9444")
    assert Settings.load().port == 9444


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("port", "http"),
        ("port", "80.5"),
        ("event_flush_ms", "soon"),
        ("event_flush_size", "many"),
        ("provider_timeout_s", "slow"),
        ("max_request_bytes", "1MB"),
    ],
)
def test_a_bad_environment_value_names_the_setting_and_its_source(name: str, raw: str) -> None:
    setting = next(s for s in SETTINGS if s.name == name)
    with pytest.raises(ValueError) as caught:
        Settings.load({}, environ={setting.env: raw})
    assert name in str(caught.value)
    assert setting.env in str(caught.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("yes", True), ("On", True), ("0", False), ("false", False), ("no", False)],
)
def test_a_boolean_setting_reads_the_usual_words(raw: str, expected: bool) -> None:
    # bool("false") would be True: the words are read, not the string's truth.
    assert Settings.load({}, environ={"PLANCAST_METRICS_PUBLIC": raw}).metrics_public is expected
    assert Settings.load({"metrics_public": raw}, environ={}).metrics_public is expected


def test_a_boolean_setting_refuses_other_words() -> None:
    with pytest.raises(ValueError, match="metrics_public.*PLANCAST_METRICS_PUBLIC"):
        Settings.load({}, environ={"PLANCAST_METRICS_PUBLIC": "maybe"})


def test_a_bad_log_format_names_the_setting() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings.load({}, environ={"PLANCAST_LOG_FORMAT": "xml"})


def test_the_cli_reads_a_boolean_flag_as_a_word() -> None:
    args = cli.build_parser().parse_args(["--metrics-public", "false"])
    assert (
        Settings.load({"metrics_public": args.metrics_public}, environ={}).metrics_public is False
    )


def test_a_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(ValueError, match="--port"):
        Settings.load({"port": "eighty"}, environ={})


def test_a_bad_log_level_names_the_setting() -> None:
    with pytest.raises(ValueError, match="log_level"):
        Settings.load({}, environ={"PLANCAST_LOG_LEVEL": "loud"})


@pytest.mark.parametrize("listed", ["10.0.0.1, proxy.internal", "10.0.0.0/33", ""])
def test_a_proxy_that_is_not_an_address_or_network_is_refused(listed: str) -> None:
    with pytest.raises(ValueError, match="forwarded_allow_ips: .* is not an address"):
        Settings.load({"forwarded_allow_ips": listed}, environ={})


def test_proxies_may_be_addresses_and_networks() -> None:
    listed = "127.0.0.1, 10.0.0.0/8,fd00::/8 , ::1"
    assert Settings.load({"forwarded_allow_ips": listed}, environ={}).forwarded_allow_ips == listed


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("event_flush_size", "0"),
        ("event_flush_ms", "-1"),
        ("port", "70000"),
        ("provider_timeout_s", "0"),
        ("max_request_bytes", "-5"),
        ("max_request_bytes", "0"),
        ("provider_attempts", "0"),
        ("event_flush_size", "-3"),
        ("shutdown_grace_s", "-1"),
    ],
)
def test_an_out_of_range_value_names_the_setting(name: str, raw: str) -> None:
    setting = next(s for s in SETTINGS if s.name == name)
    with pytest.raises(ValueError, match=name) as caught:
        Settings.load({}, environ={setting.env: raw})
    assert setting.env in str(caught.value)
    with pytest.raises(ValueError, match=setting.flag):
        Settings.load({name: setting.type(raw)}, environ={})


@pytest.mark.parametrize(
    ("name", "value"),
    [("port", 0), ("port", 65535), ("event_flush_size", 1), ("provider_attempts", 1)],
)
def test_a_value_at_a_bound_is_accepted(name: str, value: Any) -> None:
    assert getattr(Settings.load({name: value}, environ={}), name) == value


def test_settings_are_frozen() -> None:
    settings = Settings.load({}, environ={})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


# -- plancast-server --help -----------------------------------------------------------------


def _help_text() -> str:
    return " ".join(cli.build_parser().format_help().split())


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_help_lists_every_setting_with_its_flag_env_and_text(setting: Any) -> None:
    text = _help_text()
    assert setting.flag in text
    assert f"[env {setting.env}]" in text
    assert " ".join(setting.help.split()) in text
    if setting.default is not None:
        assert f"Default: {setting.default}." in text


def test_help_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--help"])
    assert caught.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert printed == _help_text()
    for setting in SETTINGS:
        assert setting.flag in printed


def test_parser_flags_map_onto_settings() -> None:
    args = cli.build_parser().parse_args(
        ["--port", "9100", "--data-dir", "/tmp/x", "--provider-timeout-s", "1.5"]
    )
    given = {k: v for k, v in vars(args).items() if v is not None}
    assert given == {"port": 9100, "data_dir": "/tmp/x", "provider_timeout_s": 1.5}
    settings = Settings.load(given, environ={"PLANCAST_PORT": "9000"})
    assert settings.port == 9100


def test_cli_rejects_a_bad_flag_type(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        cli.main(["--port", "eighty"])
    assert caught.value.code == 2
    assert "--port" in capsys.readouterr().err


def test_cli_reports_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANCAST_EVENT_FLUSH_MS", "soon")
    with pytest.raises(SystemExit) as caught:
        cli.main([])
    message = str(caught.value.code)
    assert message.startswith("plancast-server:")
    assert "event_flush_ms" in message and "PLANCAST_EVENT_FLUSH_MS" in message


def test_the_smtp_password_comes_from_its_file_and_stays_out_of_repr(tmp_path: Path) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret-smtp-word\n")
    settings = Settings.load({}, environ={"PLANCAST_SMTP_PASSWORD_FILE": str(secret)})
    assert settings.smtp_password == "s3cret-smtp-word"
    assert "s3cret" not in repr(settings)
    missing = tmp_path / "nothing-here"
    with pytest.raises(ValueError) as caught:
        Settings.load({"smtp_password_file": str(missing)}, environ={})
    assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"mode": "team"}, "team mode sends sign-in codes by email: set smtp_host"),
        ({"mode": "cloud"}, "mode must be local or team, not 'cloud'"),
        ({"signup": "anyone"}, "signup must be invite or open, not 'anyone'"),
        ({"smtp_security": "ssl"}, "smtp_security must be starttls or tls or none, not 'ssl'"),
    ],
)
def test_account_settings_are_checked(values: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Settings.load(values, environ={})
    assert str(caught.value) == message
