"""Streams outlive their watchers: tell --bg, ps, connect, stop, and reconnecting after a drop."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.e2e.conftest import BIN, Cli, LiveServer
from tests.e2e.proxy import cuttable_proxy
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

SLOW = "word " * 80  # 400 characters


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_bg_ps_connect(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    emulator.push(Reply(text=SLOW, chunk_chars=10, trickle=0.03))
    stream_id = ok(cli("tell", "--bg", "go slowly")).strip()
    assert stream_id.startswith("st_")
    listing = ok(cli("ps"))
    assert stream_id in listing and "running" in listing
    watched = ok(cli("connect", stream_id))
    assert watched.count("word") == 80  # the whole reply, from the first event, once
    assert "finished" in ok(cli("ps"))
    again = ok(cli("connect"))  # the current plan's latest stream, replayed from the start
    assert again.count("word") == 80


def test_stop_keeps_the_partial_reply(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    emulator.push(Reply(text=SLOW * 3, chunk_chars=5, trickle=0.05))
    stream_id = ok(cli("tell", "--bg", "go slowly")).strip()
    time.sleep(0.6)
    assert f"stream {stream_id} stopped" in ok(cli("stop"))
    convo = ok(cli("convo"))
    assert "[partial]" in convo and 0 < convo.count("word") < 240
    assert cli("stop").returncode == 1  # nothing runs any more


def test_ctrl_c_without_a_terminal_stops(cli: Cli, emulator: Emulator) -> None:
    ok(cli("new"))
    emulator.push(Reply(text=SLOW * 3, chunk_chars=5, trickle=0.05))
    child = subprocess.Popen(
        [str(BIN / "plancast"), "tell", "go"],
        cwd=cli.project,
        env={**os.environ, **cli.env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C reaches a command as a shell starts it. A test run started in the background
        # (`cmd &` without job control) ignores SIGINT, and its children would inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # Interrupt once the stream runs (a loaded machine can take over a second to start it):
    # its header is the first line on stderr.
    assert child.stderr is not None
    header = child.stderr.readline()
    assert header.startswith("stream st_"), header
    time.sleep(0.5)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 1, (out, err)
    assert "stopped" in err
    assert "stopped" in ok(cli("ps"))


def test_a_dropped_connection_resumes_without_gap_or_duplicate(
    cli: Cli, emulator: Emulator, live_server: LiveServer
) -> None:
    ok(cli("new"))
    words = [f"w{n:03d}" for n in range(120)]
    emulator.push(Reply(text=" ".join(words), chunk_chars=8, trickle=0.02))
    port = int(live_server.url.rsplit(":", 1)[1])
    with cuttable_proxy(port) as proxy:
        env = {"PLANCAST_SERVER": f"http://127.0.0.1:{proxy.port}"}
        child = subprocess.Popen(
            [str(BIN / "plancast"), "tell", "count"],
            cwd=cli.project,
            env={**os.environ, **cli.env, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2):
            time.sleep(0.8)
            proxy.cut()
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    assert "reconnecting" in err
    assert proxy.connections >= 3
    shown = [w for w in out.split() if w.startswith("w")]
    assert shown == words  # every word once, in order
