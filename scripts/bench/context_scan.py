"""Benchmark: the context scanner against ``git ls-files -co --exclude-standard``.

Generates a ~100k-file monorepo-like tree in a temporary directory (packages with sources and
tests, node_modules, dist, __pycache__, a virtualenv, logs, realistic root and nested
.gitignore files), then times, as the median of several runs:

- git inside the repository (all non-ignored files tracked, as in a real checkout);
- git with an empty index (everything untracked: the same walk git does in a fresh repository);
- ``list_project_paths`` (ignore rules only); ``find_project_files`` as ``load -r`` runs it
  (``defer_checks``: the ignore rules and the symlink checks, no file opened) and as
  ``load --dry-run -r`` runs it (also opens every file and reads its head); ``load -r``'s file
  work: that scan, then ``read_files`` (one open per file: the binary, size and type checks and
  the content); and the same work as ``load -r`` did it before 2026-11-23 (a scan that opened
  every file, then a second open to read it); each inside the repository and with ``.git``
  moved away.

Runs are interleaved and both wall time and CPU time (this process plus its git children) are
reported, because wall time on a shared machine mostly measures the neighbours.

It also checks that the scanner's listing equals git's. Targets from the design: ≤2x git's time
in a repository, ≤5x without one.

    .venv/bin/python scripts/bench/context_scan.py [--files 100000] [--runs 7] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from plancast.client.context import gitinfo
from plancast.client.context.freshness import file_text
from plancast.client.context.nogc import paused_gc
from plancast.client.context.scan import (
    FileText,
    ScanOptions,
    find_project_files,
    list_project_paths,
    read_files,
)

ROOT_GITIGNORE = """\
# dependencies
node_modules/
.pnp
.venv/
venv/
# python
__pycache__/
*.py[cod]
*.egg-info/
.pytest_cache/
.mypy_cache/
# build output
build/
dist/
coverage/
*.tsbuildinfo
# logs
*.log
!keep/*.log
logs/
# editors and OS
.idea/
.vscode/*
!.vscode/settings.json
.DS_Store
*.swp
*~
# env
.env
.env.*
!.env.example
/tmp/
"""

PACKAGE_GITIGNORE = """\
/generated/
*.snap
!important.snap
fixtures/**/*.bin
"""

SRC_EXT = [".py", ".ts", ".tsx", ".js", ".md", ".json", ".css", ".go"]
WORDS = ["core", "util", "api", "model", "view", "store", "auth", "http", "db", "cli", "ui"]


def _write(path: Path, text: str = "x = 1\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(root: Path, target_files: int, seed: int = 7) -> int:
    """Create the tree; return the number of files written."""
    rng = random.Random(seed)
    count = 0
    _write(root / ".gitignore", ROOT_GITIGNORE)
    _write(root / "README.md", "# bench\n")
    count += 2
    # A virtualenv at the root: ignored bulk.
    for i in range(target_files // 20):
        _write(root / ".venv" / "lib" / f"pkg{i % 97}" / f"m{i}.py")
        count += 1
    pkg = 0
    while count < target_files:
        base = root / "packages" / f"{rng.choice(WORDS)}-{pkg}"
        pkg += 1
        _write(base / ".gitignore", PACKAGE_GITIGNORE)
        count += 1
        for i in range(rng.randint(300, 900)):
            parts = [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
            name = f"{rng.choice(WORDS)}_{i}{rng.choice(SRC_EXT)}"
            _write(base.joinpath("src", *parts, name))
            count += 1
        for i in range(rng.randint(50, 200)):
            _write(base / "tests" / f"test_{i}.py")
            count += 1
        if rng.random() < 0.35:  # installed dependencies
            for i in range(rng.randint(800, 2500)):
                _write(base / "node_modules" / f"dep{i % 40}" / "lib" / f"f{i}.js")
                count += 1
        for i in range(rng.randint(20, 120)):  # build output
            _write(base / "dist" / f"chunk{i}.js")
            count += 1
        for i in range(rng.randint(0, 60)):
            _write(base / "src" / "__pycache__" / f"m{i}.cpython-311.pyc")
            count += 1
        for i in range(rng.randint(0, 30)):
            _write(base / "generated" / f"g{i}.ts")
            _write(base / f"run{i}.log")
            count += 2
        for i in range(rng.randint(0, 10)):
            _write(base / "__snapshots__" / f"s{i}.snap")
            count += 1
    return count


def _env() -> dict[str, str]:
    """Our environment without GIT_DIR and friends (the GIT_CONFIG* isolation stays)."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("GIT_") or k.startswith("GIT_CONFIG")
    }


def git_listing(root: Path) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"],
        cwd=root,
        capture_output=True,
        check=True,
        env=_env(),
    ).stdout
    return sorted(os.fsdecode(p) for p in out.split(b"\0") if p)


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (git runs as a child)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(
    contenders: dict[str, Callable[[], object]], runs: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, cpu) seconds per contender, run interleaved so load spikes hit all alike."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for _ in range(runs):
        for name, fn in contenders.items():
            gitinfo.clear_caches()  # every run asks git for core.excludesFile again
            wall, cpu = time.perf_counter(), _cpu()
            fn()
            samples[name].append((time.perf_counter() - wall, _cpu() - cpu))
    return {
        name: (statistics.median(w for w, _ in xs), statistics.median(c for _, c in xs))
        for name, xs in samples.items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="generate into this directory and keep it")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="plancast-bench-home-"))
    os.environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "xdg"),
        GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
        GIT_CONFIG_NOSYSTEM="1",
    )
    (home / "gitconfig").write_text("")
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="plancast-bench-"))
    root = workdir / "repo"
    try:
        if not root.exists():
            t0 = time.perf_counter()
            n = generate(root, args.files)
            print(f"generated {n} files in {time.perf_counter() - t0:.1f}s under {root}")
            subprocess.run(["git", "init", "-q", str(root)], check=True, env=_env())
            subprocess.run(["git", "add", "-A"], cwd=root, check=True, env=_env())
        expected = git_listing(root)
        print(f"git lists {len(expected)} files")
        listings = {
            "find_project_files": find_project_files(root, ScanOptions(default_ignores=False)),
            "find_project_files (deferred checks)": find_project_files(
                root, ScanOptions(default_ignores=False, defer_checks=True)
            ),
        }
        for label, result in listings.items():
            ours = [f.path for f in result.files]
            if ours != expected:
                print(f"MISMATCH with git ({label}):", sorted(set(ours) ^ set(expected))[:10])
                return 1
        listed = list_project_paths(root, default_ignores=False)
        if listed != expected:
            print(
                "MISMATCH with git (list_project_paths):", sorted(set(listed) ^ set(expected))[:10]
            )
            return 1
        deferred_files = listings["find_project_files (deferred checks)"].files
        read = [got.path for got in read_files(deferred_files) if isinstance(got, FileText)]
        if read != expected:
            print("MISMATCH: read_files refused", sorted(set(expected) - set(read))[:10])
            return 1
        print("scanner listing == git listing (and read_files refused none of it)")

        deferred = ScanOptions(defer_checks=True)

        def load_files() -> None:
            """What ``load -r .`` does with the files before the secret guard."""
            files = find_project_files(root, deferred).files
            with paused_gc():
                for _ in read_files(files):
                    pass

        def load_files_before() -> None:
            """The same, as ``load -r .`` did it before: a sniffing scan, then a second open."""
            for found in find_project_files(root).files:
                file_text(found.abs_path)

        index = root / ".git" / "index"
        saved_index = root / ".git" / "index.saved"

        def git_empty_index() -> None:
            index.rename(saved_index)
            try:
                git_listing(root)
            finally:
                saved_index.rename(index)

        in_repo = measure(
            {
                "git ls-files -co --exclude-standard": lambda: git_listing(root),
                "git ls-files (empty index: all untracked)": git_empty_index,
                "list_project_paths (in repo)": lambda: list_project_paths(root),
                "scan as load -r (in repo)": lambda: find_project_files(root, deferred),
                "scan as load --dry-run -r (in repo)": lambda: find_project_files(root),
                "load -r: scan + read (in repo)": load_files,
                "load -r before: scan + read (in repo)": load_files_before,
            },
            args.runs,
        )
        (root / ".git").rename(workdir / "git.saved")
        try:
            no_repo = measure(
                {
                    "list_project_paths (no repo)": lambda: list_project_paths(root),
                    "scan as load -r (no repo)": lambda: find_project_files(root, deferred),
                    "scan as load --dry-run -r (no repo)": lambda: find_project_files(root),
                    "load -r: scan + read (no repo)": load_files,
                    "load -r before: scan + read (no repo)": load_files_before,
                },
                args.runs,
            )
        finally:
            (workdir / "git.saved").rename(root / ".git")

        base_wall, base_cpu = in_repo["git ls-files -co --exclude-standard"]
        python = sys.version.split()[0]
        print(f"\nmedian of {args.runs} interleaved runs; Python {python}, {os.cpu_count()} CPUs")
        print(f"  {'':<44} {'wall ms':>8} {'x git':>6} {'cpu ms':>8} {'x git':>6}")
        for label, (wall, cpu) in (in_repo | no_repo).items():
            print(
                f"  {label:<44} {wall * 1000:8.0f} {wall / base_wall:6.2f}"
                f" {cpu * 1000:8.0f} {cpu / base_cpu:6.2f}"
            )
        return 0
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
