"""The key promise, checked on the real processes: after a stream, no copy of its key is left.

A real server runs a real stream for the real client, with a key made for this test. Then
every byte of readable memory of the server and of each process it spawned (the fork server,
the idle workers) is searched for the key in ASCII, UTF-16 and UTF-32, and so are the
database files, the server's log, its data folder and its temp folder. The emulator must have
received the key, or the test would prove nothing; and the scanner must find a key that is
there (``test_the_scanner_finds_a_key_that_is_there``), or the same.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import pg
from tests.e2e.conftest import BIN, LiveServer, start_server
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

WAIT_S = 30.0
_MAPS_LINE = re.compile(r"([0-9a-f]+)-([0-9a-f]+) (\S{4})")
_UNREADABLE = ("[vvar]", "[vsyscall]", "[vvar_vclock]")


def forms(key: str) -> dict[str, bytes]:
    return {
        "ascii": key.encode("ascii"),
        "utf-16": key.encode("utf-16-le"),
        "utf-32": key.encode("utf-32-le"),
    }


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # exited meanwhile
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children(current))
    return tree


def scan_memory(pid: int, needles: dict[str, bytes]) -> tuple[dict[str, int], int]:
    """How many times each needle is in ``pid``'s readable memory, and how many bytes were read.

    Fails (does not skip) when a region the kernel lists as readable cannot be read: a scan
    with holes would prove nothing.
    """
    counts = dict.fromkeys(needles, 0)
    total = 0
    longest = max(len(n) for n in needles.values())
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            match = _MAPS_LINE.match(line)
            assert match, line
            start, end, perms = int(match[1], 16), int(match[2], 16), match[3]
            if perms[0] != "r" or line.rstrip().endswith(_UNREADABLE):
                continue
            tail = b""
            offset = start
            while offset < end:
                size = min(end - offset, 1 << 24)
                mem.seek(offset)
                try:
                    chunk = mem.read(size)
                except OSError as exc:
                    if "(deleted)" in line or perms[1] == "-" and "/" in line:
                        break  # a file mapping past the file's end: nothing resident to read
                    raise AssertionError(f"pid {pid}: cannot read {line.strip()}: {exc}") from exc
                window = tail + chunk
                for name, needle in needles.items():
                    counts[name] += window.count(needle)
                tail = chunk[-(longest - 1) :]
                total += len(chunk)
                offset += size
    return counts, total


def files_containing(root: Path, needles: dict[str, bytes]) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # a database's temporary file, gone meanwhile
                continue
            hits += [f"{path} ({name})" for name, n in needles.items() if n in data]
    return hits


@pytest.fixture
def server_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    tmp = tmp_path / "server-tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(TMPDIR=str(tmp), PLANCAST_LOG_LEVEL="debug")  # debug: the most it would log
    yield env, tmp


def test_the_scanner_finds_a_key_that_is_there() -> None:
    key = "sk-scan-" + os.urandom(20).hex()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; k = sys.stdin.readline(); sys.stdin.read()"],
        stdin=subprocess.PIPE,
    )
    try:
        assert holder.stdin is not None
        holder.stdin.write((key + "\n").encode())
        holder.stdin.flush()
        time.sleep(0.5)
        counts, read = scan_memory(holder.pid, forms(key))
        assert counts["ascii"] >= 1 and read > 1 << 20
        # and a key that is nowhere is not found
        assert scan_memory(holder.pid, forms("sk-scan-" + os.urandom(20).hex()))[0] == {
            "ascii": 0,
            "utf-16": 0,
            "utf-32": 0,
        }
    finally:
        holder.kill()
        holder.communicate()


def test_no_copy_of_the_key_is_left_after_a_stream(
    tmp_path: Path, emulator: Emulator, server_env: tuple[dict[str, str], Path]
) -> None:
    env, server_tmp = server_env
    data_dir, log = tmp_path / "data", tmp_path / "server.log"
    server: LiveServer = start_server(data_dir, log, env=env)
    key = "sk-proj-" + os.urandom(24).hex()
    try:
        project = tmp_path / "project"
        project.mkdir()
        (project / "notes.txt").write_text("hello\n")
        client_env = {
            **{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
            "PLANCAST_SERVER": server.url,
            "PLANCAST_DATA_DIR": str(data_dir),
            "PLANCAST_MODEL": "openai/gpt-4.1",
            "OPENAI_API_KEY": key,
            "OPENAI_BASE_URL": emulator.base_url_openai,
        }

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(BIN / "plancast"), *args],
                cwd=project,
                env=client_env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        emulator.push(Reply(text="Here is the plan.\n" * 20, chunk_chars=7))
        for args in (("new", "-n", "keys"), ("load", "notes.txt"), ("tell", "plan it")):
            done = cli(*args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        assert key not in done.stdout + done.stderr

        # Not vacuous: the key did travel, sealed, to the worker and on to the provider.
        assert emulator.last_request.api_key == key

        # The worker that ran the stream has exited: only workers that never saw a key remain.
        token = (data_dir / "local-token").read_text().strip()
        streams = httpx.get(
            server.url + "/api/v1/projects/" + _project_id(project) + "/streams",
            headers={"Authorization": f"Bearer {token}"},
        ).json()["streams"]
        assert [s["status"] for s in streams] == ["finished"]

        needles = forms(key)
        pids = process_tree(server.process.pid)
        assert len(pids) >= 3, pids  # the server, the fork server, at least one idle worker
        read_total = 0
        for pid in pids:
            counts, read = scan_memory(pid, needles)
            read_total += read
            assert counts == {"ascii": 0, "utf-16": 0, "utf-32": 0}, (pid, _cmdline(pid))
        assert read_total > 50 << 20  # really scanned the processes' memory

        assert files_containing(data_dir, needles) == []  # plancast.db, -wal, -shm, the token
        if pg.POSTGRESQL:  # the database's files are the cluster's: data, WAL and log
            cluster = pg.cluster()
            cluster.checkpoint()  # every page the server changed, out of shared memory
            assert files_containing(cluster.root, needles) == []
        assert files_containing(server_tmp, needles) == []
        assert key not in log.read_text(errors="replace")
        assert "DEBUG" in log.read_text(errors="replace") or log.stat().st_size > 0
    finally:
        server.stop()
    assert key not in log.read_text(errors="replace")  # nor in what it wrote on the way out


def _project_id(project: Path) -> str:
    return str(json.loads((project / ".plancast" / "project.json").read_text())["project_id"])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"
