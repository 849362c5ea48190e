"""Reply scripts and the emulator as its own process (`python -m tests.emulator`).

Kept apart from test_emulator.py because these tests are synchronous, and that module runs every
test on one shared event loop.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from .script import Reply

MESSAGES = [{"role": "user", "content": "Say hello."}]


def test_reply_rejects_faults_that_could_never_fire() -> None:
    """A fault placed beyond the last chunk would let a test pass without the fault happening."""
    with pytest.raises(ValueError, match="cut_after=9"):
        Reply(text="short", chunk_chars=1, cut_after=9)
    with pytest.raises(ValueError, match="unknown reply fields"):
        Reply.from_json({"txt": "typo"})
    reply = Reply.from_json({"chunks": ["a", "bc"], "stall_after": 2})
    assert reply.text == "abc" and reply.chunks == ("a", "bc")
    assert reply.pieces() == ["a", "bc"]


def test_standalone_process(tmp_path: Path) -> None:
    """`python -m tests.emulator` serves the reply file and takes more replies over HTTP."""
    reply_file = tmp_path / "replies.json"
    reply_file.write_text(json.dumps([{"text": "from the file", "chunk_chars": 3}]))
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "tests.emulator", "--port", "0", "--reply-file", reply_file]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base_url = process.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:")
            with openai.OpenAI(base_url=f"{base_url}/v1", api_key="k1", max_retries=0) as client:
                stream = client.chat.completions.create(
                    model="gpt-test", messages=MESSAGES, stream=True
                )
                text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
            assert text == "from the file"

            with httpx2.Client(base_url=base_url) as control:
                assert control.post("/_emulator/replies", json=[{"txt": "x"}]).status_code == 400
                control.post("/_emulator/replies", json=[{"text": "pushed"}]).raise_for_status()
                with anthropic.Anthropic(base_url=base_url, api_key="k2", max_retries=0) as ant:
                    message = ant.messages.create(
                        model="claude-test", max_tokens=5, messages=MESSAGES
                    )
                assert message.content[0].type == "text"
                assert message.content[0].text == "pushed"
                recorded = control.get("/_emulator/requests").json()
            assert [r["path"] for r in recorded] == ["/v1/chat/completions", "/v1/messages"]
            assert recorded[0]["headers"]["authorization"] == "Bearer k1"
            assert recorded[1]["body"]["max_tokens"] == 5
        finally:
            process.terminate()
            process.wait(timeout=5)
