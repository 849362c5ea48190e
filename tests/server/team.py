"""Team mode in tests: a loopback SMTP server that catches the codes, and account helpers.

The fixtures ``mailbox`` and ``team`` are defined here as ``mailbox_fixture`` and
``team_fixture``: a test module imports those names (pytest registers a fixture found in the
test's module), and its tests take ``mailbox`` and ``team`` without shadowing an import.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests import pg
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import (
    FILE_REPLY,
    Server,
    load_settings,
    openai_creds,
    query,
    running,
    start_message,
)

PASSWORD = "correct horse battery"


@dataclass
class Mailbox:
    """What the loopback SMTP server received."""

    messages: list[Any] = field(default_factory=list)
    port: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def code_for(self, email: str) -> str:
        for message in reversed(self.messages):
            if message["To"] == email.lower():
                text = message.get_payload(decode=True).decode()  # quoted-printable, maybe
                found = re.search(r"(pci_[A-Za-z0-9_-]+|\b\d{8}\b)", text)
                assert found, text
                return found[1]
        raise AssertionError(f"no email to {email}")


@pytest.fixture(name="mailbox")
def mailbox_fixture() -> Iterator[Mailbox]:
    box = Mailbox()
    with socket.socket() as probe:  # the controller checks its own port once started
        probe.bind(("127.0.0.1", 0))
        box.port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


def team_settings(data_dir: Path, mailbox: Mailbox, **more: Any) -> Any:
    return load_settings(
        data_dir,
        mode="team",
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_security="none",
        **more,
    )


@pytest.fixture(name="team")
def team_fixture(data_dir: Path, mailbox: Mailbox) -> Iterator[Server]:
    with running(team_settings(data_dir, mailbox)) as server:
        yield server


def call(
    server: Server, method: str, path: str, token: str | None, body: Any = None
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return server.client.request(method, path, json=body, headers=headers)


def sign_up(server: Server, mailbox: Mailbox, email: str, invite: str | None = None) -> str:
    """A verified account; returns its session token."""
    body = {"email": email, "password": PASSWORD} | ({"invite": invite} if invite else {})
    response = call(server, "POST", "/api/v1/auth/signup", None, body)
    assert response.status_code == 202, response.text
    code = mailbox.code_for(email)
    response = call(server, "POST", "/api/v1/auth/verify", None, {"email": email, "code": code})
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def invite(server: Server, mailbox: Mailbox, token: str, email: str, role: str = "member") -> str:
    response = call(server, "POST", "/api/v1/org/invites", token, {"email": email, "role": role})
    assert response.status_code == 201, response.text
    assert "code" not in response.json()  # only the invitee's mailbox gets it
    return mailbox.code_for(email)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def me(server: Server, token: str) -> dict[str, Any]:
    response = call(server, "GET", "/api/v1/account", token)
    assert response.status_code == 200, response.text
    return dict(response.json())


def fill(server: Server, token: str, emulator: Emulator, marker: str) -> tuple[str, str]:
    """A project and a plan, in the token's current org, with a context note and one finished
    stream (so messages, changes, usage and stream events too); returns their ids.

    ``marker`` is in the names, the note and the prompt, to find them (or not) later.
    """
    server.auth = bearer(token)
    project = server.new_project(f"project {marker}")
    plan = server.new_plan(project, f"plan {marker}")
    note = {"kind": "note", "name": f"note {marker}", "content": f"note text {marker}"}
    server.ok("POST", f"/api/v1/plans/{plan}/context", {"items": [note]})
    emulator.push(Reply(text=FILE_REPLY, chunk_chars=40))
    events = server.run_stream(
        start_message(plan, openai_creds(emulator), prompt=f"prompt {marker}")
    )
    assert getattr(events[-1], "status", None) == "finished", events[-1]
    return project, plan


def flush_audit(server: Server) -> None:
    """Write the audit entries that streams and workers queued (they go in batches)."""
    portal = server.client.portal
    assert portal is not None
    portal.call(server.app.state.audit.flush)


def org_tables(data_dir: Path) -> list[str]:
    """Every table of the database with an ``org_id`` column."""
    if pg.POSTGRESQL:
        found = query(
            data_dir,
            "SELECT table_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND column_name = 'org_id'",
        )
        return sorted(str(name) for (name,) in found)
    tables = query(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return sorted(
        str(name)
        for (name,) in tables
        if query(data_dir, "SELECT 1 FROM pragma_table_info(?) WHERE name = 'org_id'", name)
    )


def org_rows(data_dir: Path, org_id: str) -> dict[str, int]:
    """How many rows of each table carry ``org_id``; tables with none are left out."""
    counts = {
        table: query(data_dir, f'SELECT count(*) FROM "{table}" WHERE org_id = ?', org_id)[0][0]
        for table in org_tables(data_dir)
    }
    return {table: n for table, n in counts.items() if n}
