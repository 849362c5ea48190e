"""Fixtures for the web pages' tests: a team-mode server in-process or as a real process, a
loopback SMTP server for the codes, and Debian's chromium driven by Playwright.

Playwright never downloads a browser here: it launches ``/usr/bin/chromium`` (``.ci/run``
installs it) with a fresh profile folder per test and every background service off, so the
browser talks to nothing but the test's server on loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, sync_playwright

from tests.e2e.conftest import LiveServer, start_server
from tests.server.helpers import Server, running
from tests.server.team import Mailbox, mailbox_fixture, team_settings  # noqa: F401

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # the tests may run as root, in a container
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_WAIT_MS = 15_000
"""The longest a browser test waits for a page or an element (a shared 2-core machine)."""


@pytest.fixture
def team(tmp_path: Path, mailbox: Mailbox) -> Iterator[Server]:
    """The app in-process, in team mode."""
    with running(team_settings(tmp_path / "data", mailbox)) as server:
        yield server


@pytest.fixture
def live_team(tmp_path: Path, mailbox: Mailbox) -> Iterator[LiveServer]:
    """A real ``plancast-server`` process in team mode, on loopback over plain HTTP, where
    anyone may sign up (so a flow can give a user a second org of someone else's)."""
    env = dict(
        os.environ,
        PLANCAST_MODE="team",
        PLANCAST_SIGNUP="open",
        PLANCAST_SMTP_HOST="127.0.0.1",
        PLANCAST_SMTP_PORT=str(mailbox.port),
        PLANCAST_SMTP_SECURITY="none",
        PLANCAST_EVENT_FLUSH_MS="10",
    )
    server = start_server(tmp_path / "data", tmp_path / "server.log", env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless chromium with a fresh profile: one browser, one cookie jar."""
    if not CHROMIUM.exists():
        pytest.fail("the web tests need Debian's chromium: apt-get install chromium")
    os.environ["PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD"] = "1"  # clean_environ restores the rest
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            timeout=BROWSER_WAIT_MS,
        )
        context.set_default_timeout(BROWSER_WAIT_MS)
        try:
            yield context
        finally:
            context.close()
