"""Team mode from the command line: the real `plancast` against a real team-mode server.

The server sends its codes and invites to an SMTP server on loopback (aiosmtpd) in this
process; each user is a `plancast` with a config folder of its own, so each keeps its own
sign-in. Every command's output is checked for the passwords, codes and tokens at the end.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pexpect
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.conftest import BIN, Cli, LiveServer, free_port, start_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
CODE = re.compile(r"pci_[A-Za-z0-9_-]+|\b\d{8}\b")
MAIL_TIMEOUT_S = 10.0


@dataclass
class Mailbox:
    """What the loopback SMTP server received, in order; safe to read from the test's thread."""

    port: int = 0
    messages: list[Message] = field(default_factory=list)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._arrived:
            self.messages.append(message_from_bytes(envelope.content))
            self._arrived.notify_all()
        return "250 OK"

    def count(self) -> int:
        with self._arrived:
            return len(self.messages)

    def code_after(self, seen: int, email: str) -> str:
        """The code of the first email to ``email`` after the first ``seen`` messages."""
        deadline = time.monotonic() + MAIL_TIMEOUT_S
        with self._arrived:
            while True:
                for message in self.messages[seen:]:
                    if message["To"] == email:
                        found = CODE.search(_text(message))
                        assert found, _text(message)
                        return found[0]
                left = deadline - time.monotonic()
                assert left > 0, f"no email to {email}"
                self._arrived.wait(left)

    def codes(self) -> list[str]:
        with self._arrived:
            return [c for m in self.messages for c in CODE.findall(_text(m))]


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@pytest.fixture
def team_server(tmp_path: Path, mailbox: Mailbox) -> Iterator[LiveServer]:
    env = {
        **os.environ,
        "PLANCAST_MODE": "team",
        "PLANCAST_SMTP_HOST": "127.0.0.1",
        "PLANCAST_SMTP_PORT": str(mailbox.port),
        "PLANCAST_SMTP_SECURITY": "none",
        "PLANCAST_SIGNUP": "open",  # so that a second org can be made, to switch between
    }
    server = start_server(tmp_path / "data", tmp_path / "server.log", env=env)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class User:
    """One person at one computer: `plancast` with its own config folder."""

    email: str
    cli: Cli
    config_dir: Path
    runs: list[subprocess.CompletedProcess[str]]

    @property
    def sessions_file(self) -> Path:
        return self.config_dir / "plancast" / "sessions.json"

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = self.cli(*args, input=input)
        self.runs.append(done)
        return done

    def ok(self, *args: str, input: str | None = None) -> str:
        done = self(*args, input=input)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stdout + done.stderr

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return json.loads(done.stdout)

    def fails(self, *args: str, input: str | None = None) -> str:
        done = self(*args, input=input)
        assert done.returncode == 1, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        return done.stderr

    def answering(self, mailbox: Mailbox, *args: str, secret: str) -> str:
        """Run a command that asks for a password, then for the code it has emailed.

        The code is written to stdin only once its email has arrived, as a person would.
        """
        seen = mailbox.count()
        process = subprocess.Popen(
            [str(BIN / "plancast"), *args, "--password-stdin"],
            cwd=self.cli.project,
            env={**os.environ, **self.cli.env},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert process.stdin is not None
            process.stdin.write(secret + "\n")
            process.stdin.flush()
            code = mailbox.code_after(seen, self.email)
            stdout, stderr = process.communicate(code + "\n", timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        self.runs.append(done)
        assert done.returncode == 0, f"{args}: exit {done.returncode}\n{stdout}{stderr}"
        return stdout + stderr

    def token(self) -> str:
        servers = json.loads(self.sessions_file.read_text())["servers"]
        (entry,) = servers.values()
        return str(entry["token"])


@pytest.fixture
def users(tmp_path: Path, team_server: LiveServer) -> dict[str, User]:
    runs: list[subprocess.CompletedProcess[str]] = []
    project = tmp_path / "project"
    project.mkdir()
    made = {}
    for name in ("ann", "ann2", "bob", "cat"):
        config_dir = tmp_path / f"{name}-config"
        env = {"PLANCAST_SERVER": team_server.url, "XDG_CONFIG_HOME": str(config_dir)}
        email = f"{name.rstrip('2')}@example.org"
        made[name] = User(email, Cli(project, env), config_dir, runs)
    return made


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_team_from_signup_to_signout(
    users: dict[str, User], mailbox: Mailbox, team_server: LiveServer
) -> None:
    ann, ann2, bob, cat = users["ann"], users["ann2"], users["bob"], users["cat"]
    tokens: set[str] = set()

    # The first account makes the org; its code is typed in when the email arrives.
    out = ann.answering(mailbox, "signup", ann.email, secret=PASSWORD)
    assert f"signed in to {team_server.url} as ann@example.org" in out
    assert "org ann's org (owner)" in out
    assert mode(ann.sessions_file) == 0o600
    assert mode(ann.sessions_file.parent) == 0o700
    tokens.add(ann.token())
    assert ann.token().startswith("pcs_")
    whoami = ann.ok("whoami")
    assert "ann@example.org" in whoami and "ann's org" in whoami and "owner" in whoami
    me = ann.json("whoami")
    assert (me["email"], me["token_from"], me["server"]) == (ann.email, "sign-in", team_server.url)
    assert [o["role"] for o in me["orgs"]] == ["owner"]

    # An invite; the invitee signs up with its code and verifies later, from stdin.
    seen = mailbox.count()
    assert "invited bob@example.org as member" in ann.ok("invite", bob.email)
    invite_code = mailbox.code_after(seen, bob.email)
    assert "bob@example.org" in ann.ok("invites")
    seen = mailbox.count()
    later = bob.ok(
        "signup", bob.email, "--invite", invite_code, "--password-stdin", input=PASSWORD + "\n"
    )
    assert f"plancast verify {bob.email}" in later
    assert not bob.sessions_file.exists()
    code = mailbox.code_after(seen, bob.email)
    assert "org ann's org (member)" in bob.ok("verify", bob.email, input=code + "\n")
    tokens.add(bob.token())
    assert "no pending invites" in ann.ok("invites")

    listed = ann.ok("members")
    assert re.search(r"ann@example\.org \(you\)\s+owner", listed), listed
    assert re.search(r"bob@example\.org\s+member", listed), listed

    # A member may not invite; promoted to admin, they may, at once.
    refused = bob.fails("invite", "cat@example.org")
    assert "(forbidden)" in refused
    assert "is now admin (was member)" in ann.ok("members", "role", bob.email, "admin")
    assert "invited cat@example.org as member" in bob.ok("invite", "cat@example.org")
    assert "cancelled the invite of cat@example.org" in bob.ok(
        "invites", "cancel", "cat@example.org"
    )

    # Removed, bob's next command is refused, saying why.
    assert "removed bob@example.org" in ann.ok("members", "remove", bob.email, "--yes")
    denied = bob.fails("members")
    assert "not a member of this org" in denied and "(forbidden)" in denied

    # Someone with an org of their own joins ann's by invite, and switches between the two.
    assert "org cat's org (owner)" in cat.answering(mailbox, "signup", cat.email, secret=PASSWORD)
    tokens.add(cat.token())
    seen = mailbox.count()
    ann.ok("invite", cat.email, "--role", "admin")
    joined = cat.ok("accept-invite", input=mailbox.code_after(seen, cat.email) + "\n")
    assert "joined ann's org" in joined and "as admin" in joined
    orgs = cat.ok("org")
    assert re.search(r"^\* ann's org .*admin\)$", orgs, re.M), orgs
    assert re.search(r"^  cat's org .*owner\)$", orgs, re.M), orgs
    assert "now working in cat's org" in cat.ok("org", "switch", "CAT'S ORG")
    assert re.search(r"^org +cat's org .* owner$", cat.ok("whoami"), re.M)
    assert "you are in no org 'nope'" in cat.fails("org", "switch", "nope")

    # A second session of ann's, listed, then revoked from the first.
    assert "signed in" in ann2.ok("signin", ann.email, "--password-stdin", input=PASSWORD + "\n")
    tokens.add(ann2.token())
    first = ann2.token()
    ann2.ok("signin", ann.email, "--password-stdin", input=PASSWORD + "\n")  # replaces it
    tokens.add(ann2.token())
    assert ann2.token() != first
    listed = ann.json("sessions")  # the replaced session was ended, not left behind
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    other = next(s["id"] for s in listed if not s["current"])
    table = ann.ok("sessions")
    assert other in table and "* " in table
    assert f"ended session {other}" in ann.ok("sessions", "revoke", other)
    expired = ann2.fails("whoami")
    assert "(session_expired)" in expired
    assert "sign in again: plancast signin ann@example.org" in expired

    # Signing out ends the session and forgets it here.
    assert "signed out of" in ann.ok("signout")
    assert json.loads(ann.sessions_file.read_text()) == {"servers": {}}
    assert "sign in first" in ann.fails("whoami")

    # A new password by an emailed code; it signs in, and the old one no longer does.
    out = ann.answering(mailbox, "password", "reset", ann.email, secret=NEW_PASSWORD)
    assert "signed in" in out and "every other session" in out
    tokens.add(ann.token())
    assert "wrong email address or password" in ann2.fails(
        "signin", ann.email, "--password-stdin", input=PASSWORD + "\n"
    )

    # Too many failed sign-ins: a wait, in seconds.
    for _ in range(4):
        ann2.fails("signin", ann.email, "--password-stdin", input="not the password\n")
    limited = ann2.fails("signin", ann.email, "--password-stdin", input=NEW_PASSWORD + "\n")
    assert re.search(r"\(rate_limited; try again in \d+ s\)", limited), limited

    # Nothing secret was ever printed (the emailed codes were typed, never shown), by the
    # client or the server.
    secrets = {PASSWORD, NEW_PASSWORD, *tokens, *mailbox.codes()}
    assert len(secrets) >= 8
    for run in ann.runs:
        for secret in secrets:
            assert secret not in run.stdout + run.stderr, (run.args, "printed a secret")
    log = team_server.log.read_text()
    assert not [secret for secret in secrets if secret in log]


def test_without_a_terminal_a_password_comes_from_stdin_only(tmp_path: Path) -> None:
    """Refused before anything is sent: there is no server at this URL to send it to."""
    cli = Cli(tmp_path, {"PLANCAST_SERVER": f"http://127.0.0.1:{free_port()}"})
    for args in (("signin", "ann@example.org"), ("signup", "ann@example.org")):
        done = cli(*args, input=PASSWORD + "\n")
        assert done.returncode == 1
        assert "stdin is not a terminal" in done.stderr and "--password-stdin" in done.stderr
    done = cli("signin", "ann@example.org", "--password-stdin", input="")
    assert (done.returncode, "holds no password" in done.stderr) == (1, True)
    done = cli("signup", "--password-stdin", input=PASSWORD + "\n")
    assert (done.returncode, "no email address given" in done.stderr) == (1, True)
    done = cli("signin", "ann@example.org", "--password-stdin", input=PASSWORD + "\n")
    assert (done.returncode, "cannot reach the plancast server" in done.stderr) == (1, True)
    assert PASSWORD not in done.stdout + done.stderr


def test_at_a_terminal_the_password_is_hidden_and_a_mistyped_code_asked_again(
    tmp_path: Path, team_server: LiveServer, mailbox: Mailbox
) -> None:
    env = {
        **os.environ,
        "PLANCAST_SERVER": team_server.url,
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TERM": "dumb",
    }
    seen = io.StringIO()
    child = pexpect.spawn(
        str(BIN / "plancast"),
        ["signup", "dee@example.org"],
        cwd=str(tmp_path),
        env=env,
        encoding="utf-8",
        timeout=30,
    )
    child.logfile_read = seen
    try:
        child.expect_exact("new password (input hidden): ")
        child.sendline(PASSWORD)
        child.expect_exact("new password again: ")
        child.sendline(PASSWORD)
        child.expect_exact("code from the email sent to dee@example.org: ")
        code = mailbox.code_after(0, "dee@example.org")
        child.sendline(f"{(int(code) + 1) % 10**8:08d}")
        child.expect_exact("the code is wrong")
        child.expect_exact("code from the email sent to dee@example.org: ")
        child.sendline(code[:4] + " " + code[4:])  # as read out of the email
        child.expect_exact("signed in to")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, seen.getvalue()
    assert PASSWORD not in seen.getvalue()  # the code is echoed as typed; the password never
    assert mode(tmp_path / "config" / "plancast" / "sessions.json") == 0o600
