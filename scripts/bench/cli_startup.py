"""Benchmark: how fast ``plancast`` starts, next to a bare ``python -c pass``.

Each measure is a fresh process (a cold start of the interpreter; the OS file cache is warm,
as it is for a user who runs plancast twice). Runs are interleaved, so that a noisy neighbour
slows every command alike. Reported: the median wall time with its spread, and the median CPU
time (user + system) of the child, which a busy machine disturbs much less than wall time.

Bytecode is cached, as in a normal install (pip compiles it; a checkout caches it on first
import): the children get a private ``PYTHONPYCACHEPREFIX`` (so the checkout stays clean) and
no ``PYTHONDONTWRITEBYTECODE``. ``--no-bytecode`` measures the other case, where every start
compiles plancast from source. Measured:

- ``python -c pass`` with the same interpreter (the floor: interpreter and site start-up);
- ``plancast --help`` (parsing only: no network library may be imported);
- ``plancast ls`` against a real local server (a project with one plan and two loaded files):
  settings, the HTTP client, one REST call, the output.

Targets from the issue: ``--help`` <= 150 ms and ``ls`` <= 300 ms (absolute medians).
``--imports`` adds the slowest imports of each command (``python -X importtime``).

    .venv/bin/python scripts/bench/cli_startup.py [--runs 15] [--imports] [--no-bytecode] [--json]

Needs the server extra (``pip install -e .[server]``) for the ``ls`` measure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BIN = Path(sys.executable).parent
TARGETS_MS = {"plancast --help": 150.0, "plancast ls": 300.0}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def local_server(home: Path) -> Iterator[dict[str, str]]:
    """A plancast server on a free port, and the environment a client needs to reach it."""
    import httpx

    port = _free_port()
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PLANCAST_DATA_DIR": str(home / "data"),
        "PLANCAST_PORT": str(port),
        "PLANCAST_SERVER": f"http://127.0.0.1:{port}",
    }
    env.pop("NO_COLOR", None)
    with (home / "server.log").open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "plancast-server")], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=0.5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log_path = home / "server.log"
                    raise SystemExit(f"the server did not start; see {log_path}") from None
                time.sleep(0.05)
        yield env
    finally:
        server.terminate()
        server.wait(10)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _time(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) milliseconds of one run of ``argv``."""
    cpu = _cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed * 1000, (_cpu() - cpu) * 1000


def slowest_imports(argv: list[str], env: dict[str, str], cwd: Path, top: int = 12) -> list[str]:
    """The ``top`` imports with the largest cumulative time under ``-X importtime``."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, cwd=cwd, capture_output=True
    )
    rows = []
    for line in run.stderr.decode(errors="replace").splitlines():
        found = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if found and len(found.group(3)) <= 3:  # top-level and first-level imports
            rows.append((int(found.group(2)), found.group(4).strip()))
    rows.sort(reverse=True)
    return [f"{us / 1000:7.1f} ms  {name}" for us, name in rows[:top]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--imports", action="store_true", help="also list the slowest imports")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--no-bytecode", action="store_true", help="compile from source at every start"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        project = home / "project"
        project.mkdir()
        (project / "a.py").write_text("print('a')\n")
        (project / "b.md").write_text("# b\n")
        with local_server(home) as env:
            if args.no_bytecode:  # plancast compiled at each start; the stdlib's caches still read
                env["PYTHONDONTWRITEBYTECODE"] = "1"
            else:
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = str(home / "pycache")
            for setup in (["new"], ["load", "a.py", "b.md"]):
                subprocess.run(
                    [str(BIN / "plancast"), *setup],
                    env=env,
                    cwd=project,
                    check=True,
                    capture_output=True,
                )
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "plancast --help": [str(BIN / "plancast"), "--help"],
                "plancast ls": [str(BIN / "plancast"), "ls"],
            }
            for argv in commands.values():  # warm the OS cache and the bytecode
                _time(argv, env, project)
            samples: dict[str, list[float]] = {name: [] for name in commands}
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, argv in commands.items():
                    wall_ms, cpu_ms = _time(argv, env, project)
                    samples[name].append(wall_ms)
                    cpu[name].append(cpu_ms)
            imports = {}
            if args.imports:
                cli = ["-c", "from plancast.client.cli import main; main()"]
                imports = {
                    "plancast --help": slowest_imports([*cli, "--help"], env, project),
                    "plancast ls": slowest_imports([*cli, "ls"], env, project),
                }

    results = {
        name: {
            "median_ms": round(statistics.median(values), 1),
            "min_ms": round(min(values), 1),
            "max_ms": round(max(values), 1),
            "cpu_median_ms": round(statistics.median(cpu[name]), 1),
            "target_ms": TARGETS_MS.get(name),
        }
        for name, values in samples.items()
    }
    if args.json:
        report = {
            "runs": args.runs,
            "bytecode": not args.no_bytecode,
            "results": results,
            "imports": imports,
        }
        print(json.dumps(report, indent=2))
        return
    base = results["python -c pass"]["median_ms"]
    print(
        f"{'command':<18} {'median':>8} {'min':>8} {'max':>8} {'over python':>12} "
        f"{'cpu':>8}  target (median wall)"
    )
    for name, row in results.items():
        target = row["target_ms"]
        verdict = (
            ""
            if target is None
            else (f"<= {target:.0f} ms {'ok' if row['median_ms'] <= target else 'MISSED'}")
        )
        print(
            f"{name:<18} {row['median_ms']:>6.1f}ms {row['min_ms']:>6.1f}ms "
            f"{row['max_ms']:>6.1f}ms {row['median_ms'] - base:>10.1f}ms "
            f"{row['cpu_median_ms']:>6.1f}ms  {verdict}"
        )
    for name, rows in imports.items():
        print(f"\nslowest imports, {name}:")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
