"""Benchmark: what the per-stream worker process costs (issue 4's table).

Runs the server's ``WorkerPool`` in this process against the provider emulator (tests/emulator)
on loopback, and measures, next to the targets from the issue:

1. **Added time to first token.** (a) the model call made in this process, as the server made
   it before workers (``llm.calls.stream_chat``, a fresh SDK client per call), against (b) the
   call made the way the server makes it now: seal the key to an idle worker's public key,
   claim the worker, hand it the sealed key, ``stream_chat`` through the pipe. Time to the first
   text delta, interleaved runs; the table reports the medians and the difference of medians.
   A fresh worker for every (b) run, as for every stream; the pool keeps ``--idle`` ready.
2. **Worker start.** From asking the fork server for a worker to the worker's ``ready`` (its
   key pair made): p50 and p99 of ``--starts`` starts, one at a time.
3. **Private memory per active worker.** USS (Private_Clean + Private_Dirty from
   ``/proc/PID/smaps_rollup``) and PSS of a worker in the middle of a stream; the fork server's
   RSS for scale (the workers share its pages copy-on-write).
4. **Worker CPU per delta.** ``--cpu-streams`` workers at once (50 by default) each stream a
   reply at ``--cpu-rate`` chunks a second (5), as the per-event latency measure of
   ``streams.py`` does; the CPU time the workers spend (``/proc/PID/schedstat``, the time on a
   CPU) between every stream's 5th and the first stream's 45th delta, per delta: what one model
   chunk costs in its worker when the worker sleeps between chunks, the case of real streams.
   The deltas are counted in characters, since a worker may join chunks into one line.

    .venv/bin/python scripts/bench/workers.py [--runs 40] [--starts 100] [--cpu-streams 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the emulator lives in tests/

from plancast.server.domain.principal import Principal, Role  # noqa: E402
from plancast.server.llm import calls  # noqa: E402
from plancast.server.llm.credentials import Credentials  # noqa: E402
from plancast.server.llm.types import ChatMessage, ChatRequest, TextDelta  # noqa: E402
from plancast.server.workers.pool import Worker, WorkerPool  # noqa: E402
from plancast.shared import ModelSpec, ProviderCredentials, seal_credentials  # noqa: E402
from tests.emulator.script import Reply  # noqa: E402
from tests.emulator.server import Emulator  # noqa: E402

PRINCIPAL = Principal("usr_bench", "org_bench", Role.OWNER)
REPLY = Reply(text="First token, then a few more words to make it a stream.", chunk_chars=6)
SLOW_REPLY = Reply(text="slow " * 200, chunk_chars=5, trickle=0.01)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def request() -> ChatRequest:
    return ChatRequest(
        ModelSpec.parse("openai/gpt-4.1"),
        "You are a benchmark.",
        (ChatMessage("user", "Benchmark this."),),
    )


async def in_process_ttft(emulator: Emulator, creds: ProviderCredentials) -> float:
    emulator.push(REPLY)
    started = time.perf_counter()
    first = 0.0
    async for out in calls.stream_chat(request(), Credentials([creds]), timeout=30):
        if not first and isinstance(out, TextDelta):
            first = time.perf_counter() - started
    return first


async def opened_worker(pool: WorkerPool, creds: ProviderCredentials) -> Worker:
    """What the server does for a start: a seal, the key sealed to it, claim, open."""
    seal = await pool.reserve(PRINCIPAL)
    sealed = seal_credentials(
        [creds], public_key=seal.public_key, seal_id=seal.seal_id, expires_at=seal.expires_at
    )
    worker, seal = pool.claim(seal.seal_id, PRINCIPAL)
    await worker.open(
        sealed,
        seal_id=seal.seal_id,
        expires_at=seal.expires_at,
        require=["openai"],
        timeout=30,
        retry=calls.DEFAULT_RETRY,
    )
    return worker


async def worker_ttft(emulator: Emulator, pool: WorkerPool, creds: ProviderCredentials) -> float:
    emulator.push(REPLY)
    started = time.perf_counter()
    worker = await opened_worker(pool, creds)
    first = 0.0
    async for out in worker.stream_chat(request()):
        if not first and isinstance(out, TextDelta):
            first = time.perf_counter() - started
    await worker.close()
    return first


def cpu_ns(pid: int) -> int:
    """Time on a CPU, all threads of a worker (it has one that matters)."""
    return sum(
        int((task / "schedstat").read_text().split()[0])
        for task in Path(f"/proc/{pid}/task").iterdir()
    )


async def cpu_per_delta(
    emulator: Emulator, pool: WorkerPool, creds: ProviderCredentials, streams: int, rate: float
) -> tuple[float, int]:
    """(worker CPU seconds per delta, deltas in the window) at ``streams`` concurrent streams."""
    chunks = 50
    workers = [await opened_worker(pool, creds) for _ in range(streams)]
    reply = Reply(chunks=tuple(f"w{n:04d} " for n in range(chunks)), trickle=1 / rate)
    emulator.push(*[reply] * streams)
    seen = [0] * streams  # chunks (6 characters each) received per stream
    marks: dict[str, tuple[list[int], int]] = {}

    def mark(name: str) -> None:
        marks[name] = ([cpu_ns(w.pid) for w in workers], sum(seen))

    async def one(n: int, worker: Worker) -> None:
        async for out in worker.stream_chat(request()):
            if isinstance(out, TextDelta):
                seen[n] += len(out.text) // 6
                if "start" not in marks and min(seen) >= 5:
                    mark("start")
                if "start" in marks and "end" not in marks and seen[n] >= chunks - 5:
                    mark("end")
        await worker.close()

    await asyncio.gather(*(one(n, w) for n, w in enumerate(workers)))
    (before, first), (after, last) = marks["start"], marks["end"]
    deltas = last - first
    return sum(b - a for a, b in zip(before, after, strict=True)) / 1e9 / deltas, deltas


def memory_kib(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, _, rest = line.partition(":")
        values[name.strip()] = int(rest.split()[0])
    return values


async def main(args: argparse.Namespace) -> None:
    with Emulator.running() as emulator:
        creds = ProviderCredentials(
            "openai", api_key="sk-bench-" + os.urandom(8).hex(), base_url=emulator.base_url_openai
        )
        pool = WorkerPool(idle=args.idle, max_workers=args.idle + 8 + args.cpu_streams)
        pool.start()
        started = time.perf_counter()
        while len(pool._idle) < args.idle:  # the fork server imports the SDKs once
            await asyncio.sleep(0.05)
        ready_s = time.perf_counter() - started
        print(f"fork server and {args.idle} idle workers ready in {ready_s:.2f} s")

        # warm-up: the SDK's first call in each process pays one-time costs
        for _ in range(3):
            await in_process_ttft(emulator, creds)
            await worker_ttft(emulator, pool, creds)

        direct, sealed = [], []
        for _ in range(args.runs):
            direct.append(await in_process_ttft(emulator, creds))
            while len(pool._idle) < args.idle:  # as in a server between streams
                await asyncio.sleep(0.01)
            sealed.append(await worker_ttft(emulator, pool, creds))
        d50, s50 = statistics.median(direct), statistics.median(sealed)
        print("\n1. time to first token (ms)")
        d90, s90 = pct(direct, 90) * 1000, pct(sealed, 90) * 1000
        print(f"   model call in the server process  p50 {d50 * 1000:7.1f}  p90 {d90:7.1f}")
        print(f"   sealed key + worker               p50 {s50 * 1000:7.1f}  p90 {s90:7.1f}")
        added = (s50 - d50) * 1000
        print(f"   added by sealing and the worker   p50 {added:7.1f}   (target <= 20 ms)")

        starts = []
        for _ in range(args.starts):
            t0 = time.perf_counter()
            worker = await pool._spawn_counted()
            starts.append(time.perf_counter() - t0)
            worker.kill()
            await worker.wait_exited()
        print("\n2. worker start (fork server to ready)")
        p50, p99 = statistics.median(starts) * 1000, pct(starts, 99) * 1000
        print(f"   p50 {p50:.1f} ms   p99 {p99:.1f} ms")

        emulator.push(SLOW_REPLY)
        worker = await opened_worker(pool, creds)
        deltas = 0
        sample: dict[str, int] = {}
        async for _out in worker.stream_chat(request()):
            deltas += 1
            if deltas == 50:
                sample = memory_kib(worker.pid)
        await worker.close()
        uss = sample["Private_Clean"] + sample["Private_Dirty"]
        forkserver = pool._forkserver
        assert forkserver is not None
        fs = memory_kib(forkserver.process.pid)
        print("\n3. memory of a worker mid-stream")
        pss, rss = sample["Pss"] / 1024, sample["Rss"] / 1024
        print(f"   USS {uss / 1024:.1f} MiB   PSS {pss:.1f} MiB   RSS {rss:.1f} MiB")
        print(f"   (the fork server: RSS {fs['Rss'] / 1024:.1f} MiB, shared copy-on-write)")

        if args.cpu_streams:
            print(f"\n4. worker CPU per delta, {args.cpu_streams} streams at {args.cpu_rate:g}/s")
            for _ in range(args.cpu_runs):
                per, deltas = await cpu_per_delta(
                    emulator, pool, creds, args.cpu_streams, args.cpu_rate
                )
                print(f"   {per * 1e6:.0f} µs per delta ({deltas} deltas)")
        await pool.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--starts", type=int, default=100)
    parser.add_argument("--idle", type=int, default=2)
    parser.add_argument("--cpu-streams", type=int, default=50, help="0: skip measure 4")
    parser.add_argument("--cpu-rate", type=float, default=5.0, help="chunks a second")
    parser.add_argument("--cpu-runs", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
