"""Sign-ins kept per server URL, and which token the client sends (``client/config.py``, rule 6)."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import pytest

from plancast.client.api.errors import error_from_payload, parse_retry_after
from plancast.client.commands.account import reconnect
from plancast.client.config import (
    TOKEN_FROM_ENV,
    TOKEN_FROM_FILE,
    TOKEN_FROM_SIGNIN,
    ClientConfig,
    SignIn,
    data_dir,
    forget_signin,
    server_key,
    sessions_path,
    store_signin,
    stored_signin,
)
from plancast.client.session import Session
from plancast.client.ui.output import Output
from plancast.shared import ErrorCode, PlancastError

URL = "http://127.0.0.1:7526"
OTHER = "https://plancast.example.org"
ANN = SignIn("pcs_ann", "ann@example.org", "usr_ann", "ses_ann")
BOB = SignIn("pcs_bob", "bob@example.org", "usr_bob", "ses_bob")


def local_token(text: str) -> None:
    folder = data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "local-token").write_text(text + "\n")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_is_the_environment_then_the_sign_in_then_the_local_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ClientConfig.load(URL) == ClientConfig(URL, None)
    local_token("local-secret")
    assert ClientConfig.load(URL) == ClientConfig(URL, "local-secret", TOKEN_FROM_FILE)
    store_signin(URL, ANN)
    assert ClientConfig.load(URL) == ClientConfig(URL, "pcs_ann", TOKEN_FROM_SIGNIN, ANN)
    monkeypatch.setenv("PLANCAST_TOKEN", "from-env")
    assert ClientConfig.load(URL) == ClientConfig(URL, "from-env", TOKEN_FROM_ENV)
    monkeypatch.delenv("PLANCAST_TOKEN")
    assert forget_signin(URL) is True
    assert ClientConfig.load(URL).token == "local-secret"


def test_each_server_url_has_its_own_sign_in() -> None:
    store_signin(URL, ANN)
    store_signin(OTHER, BOB)
    assert ClientConfig.load(URL).signin == ANN
    assert ClientConfig.load(OTHER + "/").signin == BOB  # a trailing slash is the same server
    assert stored_signin("HTTP://127.0.0.1:7526/") == ANN  # so are scheme and host in capitals
    assert stored_signin("http://127.0.0.1:7527") is None  # another port is not
    assert ClientConfig.load("http://127.0.0.1:7527").token is None
    store_signin(URL, BOB)  # a new sign-in replaces that server's old one, and only that one
    assert (stored_signin(URL), stored_signin(OTHER)) == (BOB, BOB)
    assert forget_signin(URL) is True
    assert forget_signin(URL) is False
    assert stored_signin(URL) is None and stored_signin(OTHER) == BOB


def test_a_session_sends_the_token_kept_after_it_signed_in(tmp_path: Path) -> None:
    """The REPL goes on with one ``Session``: a sign-in or sign-out there counts at once."""
    session = Session(Output(io.StringIO(), io.StringIO(), color=False), server=URL, cwd=tmp_path)
    assert session.config.token is None
    store_signin(URL, ANN)
    assert session.config.token is None  # read once per session...
    reconnect(session)
    assert session.config.signin == ANN  # ...and again once told
    forget_signin(URL)
    reconnect(session)
    assert session.config.token is None


def test_server_key_keeps_the_path() -> None:
    assert server_key(" HTTPS://Example.ORG/Team/ ") == "https://example.org/Team"


def test_the_file_is_private_written_whole_and_apart_from_the_config() -> None:
    path = store_signin(URL, ANN)
    assert path == sessions_path()
    assert path.parent.name == "plancast" and path.name == "sessions.json"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["sessions.json"]  # no temp file left
    data = json.loads(path.read_text())
    assert data == {"servers": {URL: ANN._asdict()}}
    os.chmod(path, 0o644)  # loosened by hand: the next write makes it private again
    forget_signin(URL)
    assert mode(path) == 0o600


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"servers": []}',
        '{"servers": {"http://x": {"email": "no token"}}}',
        '{"servers": {"http://x": {"token": 7}}}',
    ],
)
def test_a_damaged_file_is_an_error_that_names_it(text: str) -> None:
    path = sessions_path()
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(PlancastError) as raised:
        ClientConfig.load(URL)
    assert str(path) in raised.value.message and "delete it" in raised.value.message
    with pytest.raises(PlancastError):
        store_signin(URL, ANN)  # never written over blindly: it might hold other sign-ins
    assert path.read_text() == text


def test_an_ended_session_says_whom_to_sign_in_as() -> None:
    payload = {
        "error": {"code": "session_expired", "message": "this sign-in has expired: sign in again"}
    }
    error = error_from_payload(payload, 401, email="ann@example.org")
    assert error.code is ErrorCode.SESSION_EXPIRED
    assert error.message == (
        "this sign-in has expired: sign in again: plancast signin ann@example.org (session_expired)"
    )
    payload["error"]["message"] = "revoked"
    assert error_from_payload(payload, 401).message == (
        "revoked; sign in again: plancast signin EMAIL (session_expired)"
    )


def test_a_rate_limit_says_how_long_to_wait() -> None:
    payload = {"error": {"code": "rate_limited", "message": "too many failed sign-ins"}}
    error = error_from_payload(payload, 429, retry_after=29.2)
    assert error.message == "too many failed sign-ins (rate_limited; try again in 30 s)"
    assert error.retry_after == 29.2
    assert error_from_payload(payload, 429).message == "too many failed sign-ins (rate_limited)"
    forbidden = {"error": {"code": "forbidden", "message": "members may not invite"}}
    assert error_from_payload(forbidden, 403).message == "members may not invite (forbidden)"
    other = {"error": {"code": "not_found", "message": "no such plan"}}
    assert error_from_payload(other, 404).message == "no such plan"  # unchanged


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("30", 30.0), ("0", 0.0), (None, None), ("", None), ("soon", None), ("-1", None),
     ("nan", None), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)  # fmt: skip
def test_retry_after_is_read_in_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
