"""The web pages in a real browser: Debian's chromium, driven by Playwright, against a real
``plancast-server`` in team mode with a loopback SMTP server and the provider emulator.

One flow, as an owner would go through it: sign in (with the emailed code), invite a member,
change their role, revoke a session, watch a plan's stream grow live, delete the org, switch
to another, sign out. Every wait is an explicit condition with a timeout
(``BROWSER_WAIT_MS``); nothing sleeps.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Page, expect
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from plancast.shared import (
    SUBPROTOCOL,
    Error,
    ProviderCredentials,
    Started,
    StartStream,
    decode_server,
    encode,
    seal_credentials,
)
from tests.e2e.conftest import LiveServer
from tests.emulator.script import Reply
from tests.emulator.server import Emulator
from tests.server.helpers import new_key
from tests.server.team import PASSWORD, Mailbox
from tests.web.conftest import BROWSER_WAIT_MS

pytestmark = pytest.mark.e2e

ANN, BOB, CY = "ann@example.org", "bob@example.org", "cy@example.org"
WAIT_S = BROWSER_WAIT_MS / 1000
TEXT = "".join(f"Line {n:02d} of a reply that the page shows as it arrives.\n" for n in range(30))
CHUNK_CHARS = 10  # 162 chunks, 50 ms apart: about 8 s of stream to watch


class Api:
    """The REST calls the CLI would make, for what the test does outside the browser."""

    def __init__(self, server: LiveServer) -> None:
        self.url = server.url
        self.http = httpx.Client(base_url=server.url, timeout=WAIT_S)

    def ok(
        self, method: str, path: str, token: str | None = None, body: object = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, path, json=body, headers=headers)
        assert response.status_code in (200, 201, 202), (path, response.text)
        return dict(response.json())

    def status(self, path: str, token: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return self.http.get(path, headers=headers).status_code

    def sign_in(self, email: str) -> dict[str, Any]:
        return self.ok("POST", "/api/v1/auth/signin", body={"email": email, "password": PASSWORD})

    def start_stream(self, token: str, plan_id: str, emulator: Emulator) -> str:
        """Start a chat stream as the client does (keys sealed to a worker); leave it running."""
        seal = self.ok("POST", "/api/v1/seals", token)
        credentials = ProviderCredentials(
            "openai", api_key=new_key(), base_url=emulator.base_url_openai
        )
        start = StartStream(
            seal_id=seal["seal_id"],
            sealed=seal_credentials(
                (credentials,),
                public_key=seal["public_key"],
                seal_id=seal["seal_id"],
                expires_at=seal["expires_at"],
            ),
            request_id=uuid.uuid4().hex,
            plan_id=plan_id,
            mode="chat",
            prompt="Explain it slowly.",
            model="openai/gpt-4.1",
        )
        with connect(
            self.url.replace("http://", "ws://") + "/api/v1/streams",
            subprotocols=[Subprotocol(SUBPROTOCOL)],
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,
            open_timeout=WAIT_S,
        ) as ws:
            ws.send(encode(start))
            message = decode_server(ws.recv(timeout=WAIT_S))
        # The stream belongs to the server: it runs on after this socket closes.
        assert not isinstance(message, Error), message
        assert isinstance(message, Started), message
        return message.stream_id


def sign_in_with_code(page: Page, url: str, mailbox: Mailbox) -> None:
    page.goto(url + "/web/members")
    expect(page).to_have_url(re.compile(r"/web/signin\?next="))
    page.get_by_label("Email address").fill(ANN)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Verify your address")).to_be_visible()
    page.get_by_label("Code").fill(mailbox.code_for(ANN))
    page.get_by_role("button", name="Verify and sign in").click()
    expect(page.get_by_role("heading", name=re.compile("Members of"))).to_be_visible()


@pytest.fixture
def api(live_team: LiveServer) -> Iterator[Api]:
    client = Api(live_team)
    with client.http:
        yield client


def test_an_owner_runs_the_org_and_watches_a_stream_from_the_browser(
    live_team: LiveServer, api: Api, mailbox: Mailbox, emulator: Emulator, browser: BrowserContext
) -> None:
    url = live_team.url
    api.ok("POST", "/api/v1/auth/signup", body={"email": ANN, "password": PASSWORD})
    page = browser.new_page()

    # Sign in: the address is not verified yet, so the emailed code finishes it.
    sign_in_with_code(page, url, mailbox)
    session = next(c for c in browser.cookies() if c["name"] == "plancast_session")
    assert (session["httpOnly"], session["sameSite"], session["secure"]) == (True, "Strict", False)
    assert session["path"] == "/"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads either cookie
    expect(page.locator("#who")).to_contain_text(f"{ANN} · ann's org (owner)")

    # Invite a member; they sign up with the emailed invite (as the CLI would).
    page.get_by_label("Email address").fill(BOB)
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send the invite").click()
    expect(page.get_by_role("status")).to_have_text("Invite sent.")
    expect(page.locator(f'#invites tr[data-email="{BOB}"]')).to_contain_text("member")
    invite = mailbox.code_for(BOB)
    body = {"email": BOB, "password": PASSWORD, "invite": invite}
    api.ok("POST", "/api/v1/auth/signup", body=body)
    bob = api.ok("POST", "/api/v1/auth/verify", body={"email": BOB, "code": mailbox.code_for(BOB)})

    # Change their role on the page, and see it there and in their own account.
    page.reload()
    expect(page.locator(f'#invites tr[data-email="{BOB}"]')).to_have_count(0)
    row = page.locator(f'#members tr[data-email="{BOB}"]')
    expect(row.locator("select")).to_have_value("member")
    row.locator("select").select_option("admin")
    row.get_by_role("button", name="Change").click()
    expect(page.get_by_role("status")).to_have_text("Role changed.")
    expect(page.locator(f'#members tr[data-email="{BOB}"] select')).to_have_value("admin")
    assert [o["role"] for o in api.ok("GET", "/api/v1/account", bob["token"])["orgs"]] == ["admin"]

    # Revoke a CLI session from the sessions page: its token stops working.
    cli = api.sign_in(ANN)
    page.get_by_role("link", name="Sessions").click()
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    page.locator(f'#sessions tr[data-session="{cli["session_id"]}"]').get_by_role(
        "button", name="Revoke"
    ).click()
    expect(page.get_by_role("status")).to_have_text("Session revoked.")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("(this one)")
    assert api.status("/api/v1/account", cli["token"]) == 401

    # Watch a running stream on the plan's live page: the text grows, then it finishes.
    streamer = api.sign_in(ANN)["token"]
    project = api.ok("POST", "/api/v1/projects", streamer, {"name": "web"})["id"]
    plan = api.ok("POST", f"/api/v1/projects/{project}/plans", streamer, {"name": "live"})["id"]
    emulator.push(Reply(text=TEXT, chunk_chars=CHUNK_CHARS, trickle=0.05))
    stream_id = api.start_stream(streamer, plan, emulator)
    page.get_by_role("link", name="Home").click()
    page.get_by_role("link", name="live", exact=True).click()
    expect(page).to_have_url(f"{url}/web/plans/{plan}/live")
    expect(page.locator(".meta")).to_contain_text(stream_id)
    reply, status = page.locator("#reply"), page.locator("#status")
    expect(reply).to_contain_text("Line 00")
    seen = len(reply.text_content() or "")
    assert seen < len(TEXT), "the stream had ended before the page could watch it"
    page.wait_for_function(
        "seen => document.getElementById('reply').textContent.length > seen", arg=seen
    )
    expect(status).to_have_attribute("data-state", "finished", timeout=3 * BROWSER_WAIT_MS)
    expect(status).to_have_text("finished")
    assert reply.text_content() == TEXT

    # Delete the org on the data page by typing its name. Ann is also a member of Cy's org,
    # so she switches there afterwards, where the deleted org's plan is not found.
    api.ok("POST", "/api/v1/auth/signup", body={"email": CY, "password": PASSWORD})
    cy = api.ok("POST", "/api/v1/auth/verify", body={"email": CY, "code": mailbox.code_for(CY)})
    api.ok("POST", "/api/v1/org/invites", cy["token"], {"email": ANN, "role": "member"})
    api.ok("POST", "/api/v1/invites/accept", streamer, {"code": mailbox.code_for(ANN)})
    assert api.status(f"/api/v1/plans/{plan}", bob["token"]) == 200
    page.get_by_role("link", name="Your data").click()
    page.get_by_label("Type the org's name").fill("ann's org")
    page.get_by_role("button", name="Delete this org").click()
    expect(page.get_by_role("status")).to_have_text("The org was deleted, with all its data.")
    expect(page.locator("#who")).to_have_text(ANN)  # the session acts in no org now
    assert api.status(f"/api/v1/plans/{plan}", bob["token"]) == 403
    page.get_by_role("link", name="Switch to another of your orgs").click()
    page.get_by_role("button", name="Switch to it").click()
    expect(page.locator("#who")).to_contain_text("cy's org (member)")
    gone = page.goto(f"{url}/web/plans/{plan}/live")
    assert gone is not None and gone.status == 404
    page.get_by_role("link", name="Back to the home page").click()
    expect(page.get_by_role("heading", name="cy's org")).to_be_visible()

    # Sign out: the cookie is gone, and the pages ask to sign in again.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert not [c for c in browser.cookies() if c["name"] == "plancast_session"]
    page.goto(url + "/web/sessions")
    expect(page).to_have_url(re.compile(r"/web/signin\?next="))
