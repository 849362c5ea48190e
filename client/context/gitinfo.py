"""What git knows about a project: its exclude files and its tracked files.

Rules:

Rule 1: A project is a repository when its root holds ``.git`` (a directory, or a file pointing
        at one, as in worktrees and submodules). Only then do ``info/exclude`` and the tracked set
        exist. A root *inside* some other repository is treated as its own top.
Rule 2: The global excludes file is ``core.excludesFile`` when git config sets it (asked of
        ``git config --path`` with a short timeout, cached per root and environment), else
        ``$XDG_CONFIG_HOME/git/ignore`` (when that variable is set and not empty), else
        ``~/.config/git/ignore``. Without a ``git`` executable, the global config files are read
        directly for ``core.excludesFile`` (no ``[include]`` support).
Rule 3: Tracked files come from ``git ls-files -z``, started in a background thread as soon as a
        scan begins so that it overlaps with the walk. When git is missing or fails, the tracked
        set is unknown and the scan says so in its warnings (ignored tracked files then stay out).
Rule 4: git runs with the repository discovered from the root, never from ``GIT_DIR`` and
        friends in our environment, and with ``core.fsmonitor`` off so that no hook runs.
"""

from __future__ import annotations

import os
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import threading

__all__ = [
    "TrackedFiles",
    "clear_caches",
    "git_dir",
    "global_excludes_file",
    "info_exclude_file",
    "start_tracked",
]

CONFIG_TIMEOUT_S = 3.0
LS_FILES_TIMEOUT_S = 30.0

_REPO_ENV_VARS = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_OBJECT_DIRECTORY",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
)
_CONFIG_ENV_VARS = (
    "HOME",
    "XDG_CONFIG_HOME",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
    "GIT_CONFIG_COUNT",
)

_git_exe: list[str | None] = []
_excludes_cache: dict[tuple[str, tuple[str | None, ...]], str | None] = {}


def clear_caches() -> None:
    """Forget the cached git executable and config answers (tests change the environment)."""
    _git_exe.clear()
    _excludes_cache.clear()


def _git() -> str | None:
    if not _git_exe:
        import shutil

        _git_exe.append(shutil.which("git"))
    return _git_exe[0]


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _REPO_ENV_VARS}
    env["GIT_OPTIONAL_LOCKS"] = "0"
    return env


def git_dir(root: Path) -> Path | None:
    """The repository directory for a project rooted at ``root``, or ``None`` (Rule 1)."""
    dot_git = root / ".git"
    try:
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():
            text = dot_git.read_text("utf-8", "replace")
            for line in text.splitlines():
                if line.startswith("gitdir:"):
                    target = Path(line[len("gitdir:") :].strip())
                    return target if target.is_absolute() else root / target
    except OSError:
        return None
    return None


def info_exclude_file(root: Path) -> Path | None:
    """``info/exclude`` of the repository at ``root`` (in the common dir for worktrees)."""
    gdir = git_dir(root)
    if gdir is None:
        return None
    common = gdir
    try:
        commondir = (gdir / "commondir").read_text("utf-8", "replace").strip()
    except OSError:
        commondir = ""
    if commondir:
        common = Path(commondir) if Path(commondir).is_absolute() else gdir / commondir
    return common / "info" / "exclude"


def global_excludes_file(root: Path) -> Path | None:
    """The global excludes file git would read for ``root`` (Rule 2); may not exist."""
    configured = _configured_excludes_file(root)
    if configured:
        path = Path(configured)
        return path if path.is_absolute() else root / path
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / "git" / "ignore"
    home = os.environ.get("HOME")
    if not home:
        return None
    return Path(home) / ".config" / "git" / "ignore"


def _configured_excludes_file(root: Path) -> str | None:
    key = (str(root), tuple(os.environ.get(name) for name in _CONFIG_ENV_VARS))
    if key in _excludes_cache:
        return _excludes_cache[key]
    value = _ask_git_config(root)
    if value is _UNKNOWN:
        value = _read_config_files(root)
    result = value if isinstance(value, str) else None
    _excludes_cache[key] = result
    return result


_UNKNOWN = object()


def _ask_git_config(root: Path) -> object:
    """``git config --path --get core.excludesFile``: a str, None (unset) or _UNKNOWN."""
    git = _git()
    if git is None:
        return _UNKNOWN
    import subprocess

    try:
        proc = subprocess.run(
            [git, "config", "--path", "--get", "core.excludesFile"],
            cwd=root,
            env=_git_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=CONFIG_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return _UNKNOWN
    if proc.returncode == 0:
        value = os.fsdecode(proc.stdout.rstrip(b"\n"))
        return value or None
    if proc.returncode == 1:
        return None
    return _UNKNOWN


def _read_config_files(root: Path) -> str | None:
    """Without git: the last ``core.excludesFile`` in the config files git would read."""
    candidates: list[Path] = []
    if not os.environ.get("GIT_CONFIG_NOSYSTEM"):
        candidates.append(Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig"))
    home = os.environ.get("HOME")
    xdg = os.environ.get("XDG_CONFIG_HOME")
    global_override = os.environ.get("GIT_CONFIG_GLOBAL")
    if global_override is not None:
        candidates.append(Path(global_override))
    else:
        if xdg:
            candidates.append(Path(xdg) / "git" / "config")
        elif home:
            candidates.append(Path(home) / ".config" / "git" / "config")
        if home:
            candidates.append(Path(home) / ".gitconfig")
    gdir = git_dir(root)
    if gdir is not None:
        candidates.append(gdir / "config")
    value: str | None = None
    for path in candidates:
        found = _config_value(path, "core", "excludesfile")
        if found is not None:
            value = found
    if value and value.startswith("~/") and home:
        value = home + value[1:]
    return value or None


def _config_value(path: Path, section: str, key: str) -> str | None:
    """A minimal git-config reader for one key: enough for ``core.excludesFile``."""
    try:
        text = path.read_text("utf-8", "replace")
    except OSError:
        return None
    current = ""
    value: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = line[1 : line.find("]")].strip().split(" ")[0].lower()
            continue
        name, sep, rest = line.partition("=")
        if current != section or not sep or name.strip().lower() != key:
            continue
        rest = rest.strip()
        if rest.startswith('"'):
            rest = rest[1 : rest.find('"', 1)] if '"' in rest[1:] else rest[1:]
        else:
            for mark in (" #", " ;"):
                cut = rest.find(mark)
                if cut >= 0:
                    rest = rest[:cut].rstrip()
        value = rest
    return value


class TrackedFiles:
    """The tracked paths of a repository, fetched in the background (Rule 3).

    ``paths`` is sorted (as git's index is), so "is anything tracked under this directory" is a
    binary search; ``set`` answers "is this file tracked". Both are bytes, root-relative.
    """

    __slots__ = ("_error", "_paths", "_set", "_thread")

    def __init__(self) -> None:
        self._paths: list[bytes] | None = None
        self._set: frozenset[bytes] = frozenset()
        self._error: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def known(self) -> bool:
        """False when the tracked set could not be read (no git, git failed)."""
        self._wait()
        return self._paths is not None

    @property
    def error(self) -> str | None:
        """Why the tracked set is unknown, for the scan's warnings."""
        self._wait()
        return self._error

    def contains(self, rel: bytes) -> bool:
        """Whether the file ``rel`` is tracked."""
        self._wait()
        return rel in self._set

    def any_under(self, dir_rel: bytes) -> bool:
        """Whether some tracked file lies below ``dir_rel`` (which ends with ``/``)."""
        self._wait()
        paths = self._paths
        if not paths:
            return False
        i = bisect_left(paths, dir_rel)
        return i < len(paths) and paths[i].startswith(dir_rel)

    def _wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _fetch(self, git: str, root: Path) -> None:
        import subprocess

        try:
            proc = subprocess.run(
                [git, "-c", "core.fsmonitor=false", "ls-files", "-z"],
                cwd=root,
                env=_git_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=LS_FILES_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            self._error = f"could not run git ls-files ({type(exc).__name__})"
            return
        if proc.returncode != 0:
            first = proc.stderr.decode("utf-8", "replace").strip().splitlines()[:1]
            self._error = "git ls-files failed" + (f": {first[0]}" if first else "")
            return
        paths = proc.stdout.split(b"\0")
        if paths and paths[-1] == b"":
            paths.pop()
        paths.sort()
        self._paths = paths
        self._set = frozenset(paths)


def start_tracked(root: Path) -> TrackedFiles | None:
    """Start reading the tracked files of the repository at ``root``.

    Returns ``None`` when ``root`` is not a repository; otherwise a :class:`TrackedFiles` that
    blocks on first use until ``git ls-files`` has answered.
    """
    if git_dir(root) is None:
        return None
    tracked = TrackedFiles()
    git = _git()
    if git is None:
        tracked._error = "git is not installed"
        return tracked
    import threading

    thread = threading.Thread(
        target=tracked._fetch, args=(git, root), name="plancast-ls-files", daemon=True
    )
    tracked._thread = thread
    thread.start()
    return tracked
