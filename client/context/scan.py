"""Turn what the user typed (files, directories, globs) into the project files that may be sent.

Rules:

Rule 1: Targets are resolved against the current directory (which may be below the root). A
        target outside the root is skipped ("outside the project"); so is one reached through a
        symlinked directory ("beyond a symbolic link", as git says).
Rule 2: A file target that the ignore rules exclude is skipped with the deciding rule as the
        reason, unless ``force``; ``force`` never reaches into ``.git`` or ``.plancast``.
Rule 3: A directory target needs ``recursive`` ("is a directory (use -r)"); its files are those
        the ignore rules let through (``walk.py``). ``force`` on an ignored directory enters it,
        and the rules still apply to everything inside.
Rule 4: A target that does not exist but contains ``*``, ``?`` or ``[`` is a glob over the
        project (git's wildmatch: ``*`` stays within a directory, ``**/`` crosses them), matched
        only against loadable files, so ignored files never match. With ``recursive`` a glob
        may also match directories and load what is inside them. A glob that matches nothing is
        reported as skipped.
Rule 5: A file is skipped when it cannot be sent: a name that is not UTF-8 (decided here), or,
        decided in one open of the file (``contents.py``), not a regular file, larger than
        ``max_file_bytes``, binary (a NUL byte in the first 8 KiB) or unreadable. Other
        non-UTF-8 content is fine: it is decoded with replacement. By default the scan makes
        that open itself and reads the head only. With ``defer_checks`` it opens nothing, and
        :func:`read_files` makes the same checks in the open that reads the content, before
        anything is sent: that is how ``load`` opens each file once.
Rule 6: A symlink is loaded only when it points at a loadable regular file inside the project;
        otherwise it is skipped with the reason (outside the project, broken, a directory, or
        its target is ignored, which keeps a link from smuggling ``.env`` out). Its content is
        then read from that target's path (``FoundFile.target``), never through the link.
Rule 7: Results are sorted by path, without duplicates.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

from plancast.client.context.contents import (
    BINARY_SNIFF_BYTES,
    Unloadable,
    format_size,
    looks_binary,
    read_checked,
    unreadable,
)
from plancast.client.context.ignore import IgnoreEngine
from plancast.client.context.nogc import paused_gc
from plancast.client.context.walk import WalkOutput, walk
from plancast.client.context.wildmatch import compile_wildmatch

__all__ = [
    "BINARY_SNIFF_BYTES",
    "MAX_FILE_BYTES",
    "PROGRESS_EVERY",
    "FileText",
    "FoundFile",
    "ProgressCallback",
    "ScanOptions",
    "ScanResult",
    "Skipped",
    "find_project_files",
    "format_size",
    "list_project_paths",
    "looks_binary",
    "read_files",
    "scan",
]

#: The default of ``ScanOptions.max_file_bytes``: a safety limit, not a token budget.
MAX_FILE_BYTES = 1 << 20
_GLOB_CHARS = frozenset("*?[")
#: Files inspected between two calls of a scan's ``progress`` callback.
PROGRESS_EVERY = 256

#: ``progress(done, total)``: files inspected so far out of those a walk found.
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How to scan.

    Attributes:
        recursive: Directory targets load the files below them (``-r``).
        default_ignores: Apply the built-in defaults (secrets, virtualenvs, caches).
        force: Load explicitly named files even when ignore rules exclude them.
        max_file_bytes: Larger files are skipped (a safety limit, not a token budget).
        sniff_binary: Open every file and skip it as binary when its first 8 KiB hold a NUL
            byte. Turned off, a file gets one ``stat`` (type and size) instead of
            open/read/close; whoever reads it later must then apply :func:`looks_binary`.
        defer_checks: Open and ``stat`` nothing: the type comes from the directory listing,
            and the size, type and binary checks are left to :func:`read_files`, which makes
            them in the one open that reads each file (Rule 5). ``size`` is then ``None``.
            For a caller that reads every file anyway (``load``, ``update``), or reads none
            (``load --tree``). Overrides ``sniff_binary``; symlinks are still checked (Rule 6).
    """

    recursive: bool = False
    default_ignores: bool = True
    force: bool = False
    max_file_bytes: int = MAX_FILE_BYTES
    sniff_binary: bool = True
    defer_checks: bool = False

    def __post_init__(self) -> None:
        if self.max_file_bytes < 0:
            raise ValueError(f"max_file_bytes must be >= 0, got {self.max_file_bytes}")


class FoundFile(NamedTuple):
    """A file that may be sent: its project-relative POSIX path and its size in bytes.

    ``size`` is ``None`` when the scan deferred its checks (``ScanOptions.defer_checks``): the
    file has not been opened yet. ``target`` is set for a symlink: the project-relative path of
    the file it leads to, as Rule 6 checked it. That path is what is opened, never the link,
    and no file is opened through a link (``O_NOFOLLOW``), so a link changed after the scan
    cannot lead out of the project.

    A named tuple rather than a frozen dataclass, because a scan builds one per file: a frozen
    dataclass took about 1 µs to build and a named tuple a third of that, tens of milliseconds
    on a 50,000-file project. ``abs_path`` is computed on access for the same reason: building
    100k ``Path`` objects up front cost more than the rest of a scan.
    """

    path: str
    size: int | None
    root: Path
    target: str | None = None

    @property
    def abs_path(self) -> Path:
        """Where to read the file."""
        return self.root / self.path


@dataclass(frozen=True, slots=True)
class Skipped:
    """A path the user asked for (or that a walk met) that will not be sent, and why."""

    path: str
    reason: str


@dataclass(slots=True)
class ScanResult:
    """Files to load and paths skipped, both sorted by path; ``warnings`` about the scan itself."""

    files: list[FoundFile] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class FileText(NamedTuple):
    """A file's content as ``load`` sends it: its bytes decoded as UTF-8, errors replaced."""

    path: str
    text: str


class _Scan:
    """State of one :func:`scan` call."""

    def __init__(
        self, root: Path, options: ScanOptions, progress: ProgressCallback | None = None
    ) -> None:
        self.root = root
        self.progress = progress
        self.root_s = os.fspath(root)
        self.root_prefix = self.root_s.rstrip(os.sep) + os.sep
        self.options = options
        self.engine = IgnoreEngine(root, default_ignores=options.default_ignores)
        self.found: dict[str, FoundFile] = {}
        self.skipped: dict[str, Skipped] = {}
        # Plain files that walks met with ``defer_checks``: nothing about them is decided but
        # their name, so they become FoundFiles only in ``result`` (one walk lists a path once;
        # several walks may repeat one).
        self.bulk: list[str] = []
        self.bulk_walks = 0

    # -- results -------------------------------------------------------------------------------

    def skip(self, path: str, reason: str) -> None:
        self.skipped.setdefault(path, Skipped(path, reason))

    def result(self) -> ScanResult:
        found = self.found
        root = self.root
        new = tuple.__new__  # FoundFile(p, None, root): the fastest way to build a named tuple
        taken: Container[str]
        if self.bulk_walks == 1 and not found:  # the usual `load -r DIR`: no duplicates
            self.bulk.sort()
            files = [new(FoundFile, (p, None, root, None)) for p in self.bulk]
            taken = set(self.bulk) if self.skipped else ()
        else:
            for p in self.bulk:
                if p not in found:
                    found[p] = new(FoundFile, (p, None, root, None))
            files = [found[p] for p in sorted(found)]
            taken = found
        skipped = [s for p, s in sorted(self.skipped.items()) if p not in taken]
        return ScanResult(files, skipped, list(self.engine.warnings))

    # -- inspecting files ----------------------------------------------------------------------

    def inspect(self, rel: bytes, is_link: bool, *, forced: bool = False) -> None:
        """Decide whether the not-ignored (or ``forced``) entry ``rel`` can be sent (Rules 5, 6)."""
        try:
            path = rel.decode("utf-8")
        except UnicodeDecodeError:
            self.skip(os.fsdecode(rel), "name is not valid UTF-8")
            return
        if path in self.found:
            return
        target = None
        if is_link:
            problem, target = self._link_target(self.root_prefix + path, check_target=not forced)
            if problem is not None:
                self.skip(path, problem)
                return
        options = self.options
        if options.defer_checks:
            self.found[path] = FoundFile(path, None, root=self.root, target=target)
            return
        # A symlink is opened by its target's path, as checked above, without following links.
        abs_path = self.root_prefix + (path if target is None else target)
        if not options.sniff_binary:
            self._stat_only(path, abs_path, target)
            return
        try:
            size, _head = read_checked(abs_path, options.max_file_bytes, whole=False)
        except Unloadable as exc:
            self.skip(path, str(exc))
            return
        self.found[path] = FoundFile(path, size, root=self.root, target=target)

    def _stat_only(self, path: str, abs_path: str, target: str | None) -> None:
        """Type and size checks without opening the file (``sniff_binary=False``)."""
        try:
            st = os.lstat(abs_path)
        except OSError as exc:
            self.skip(path, unreadable(exc))
            return
        if not stat.S_ISREG(st.st_mode):
            self.skip(path, "not a regular file")
        elif st.st_size > self.options.max_file_bytes:
            limit = self.options.max_file_bytes
            self.skip(path, f"larger than {format_size(limit)} ({format_size(st.st_size)})")
        else:
            self.found[path] = FoundFile(path, st.st_size, root=self.root, target=target)

    def _link_target(self, abs_path: str, *, check_target: bool = True) -> tuple[str | None, str]:
        """Why the symlink at ``abs_path`` may not be loaded (``None``: it may; Rule 6), and
        the project-relative path of the file it leads to, every link resolved."""
        target = os.path.realpath(abs_path)
        rel = os.path.relpath(target, self.root_s)
        rel_posix = rel.replace(os.sep, "/")
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            return "symlink to outside the project", rel_posix
        if not os.path.lexists(target) or not os.path.exists(target):
            return "broken symlink", rel_posix
        if os.path.isdir(target):
            return "symlink to a directory (not followed)", rel_posix
        if not check_target:
            return None, rel_posix
        verdict = self.engine.verdict(os.fsencode(rel_posix), False)
        if not verdict.included:
            return f"symlink to an ignored file ({rel_posix}: {verdict.reason})", rel_posix
        return None, rel_posix

    def inspect_walk(self, output: WalkOutput, keep: Iterable[bytes] | None = None) -> None:
        """Inspect what a walk found (only the entries in ``keep`` when given)."""
        entries = output.files
        if keep is not None:
            wanted = set(keep)
            entries = [item for item in entries if item[0] in wanted]
        total = len(entries)
        if self.options.defer_checks:
            entries = self._add_plain_files(entries)
        done = total - len(entries)
        progress = self.progress
        for rel, entry in entries:
            try:
                is_link = entry.is_symlink()
            except OSError:
                is_link = False
            self.inspect(rel, is_link)
            done += 1
            if progress is not None and done % PROGRESS_EVERY == 0:
                progress(done, total)
        if progress is not None and total:
            progress(done, total)
        for dir_rel, error in output.errors:
            self.skip(os.fsdecode(dir_rel), f"cannot read directory: {error}")

    def _add_plain_files(
        self, entries: list[tuple[bytes, os.DirEntry[bytes]]]
    ) -> list[tuple[bytes, os.DirEntry[bytes]]]:
        """With ``defer_checks``: take the walk's files that are not symlinks, with a UTF-8
        name, as they are (nothing else about them is decided before they are read: Rule 5).

        This is what :meth:`inspect` would do for each of them, in one tight loop: a large walk
        is mostly such files. Returns the entries left for :meth:`inspect` (symlinks, and
        names that are not UTF-8, which it skips with the reason).
        """
        bulk = self.bulk
        before = len(bulk)
        rest = []
        for item in entries:
            try:
                if item[1].is_symlink():
                    rest.append(item)
                    continue
            except OSError:
                pass
            try:
                bulk.append(item[0].decode("utf-8"))
            except UnicodeDecodeError:
                rest.append(item)
        if len(bulk) > before:
            self.bulk_walks += 1
        return rest

    # -- targets -------------------------------------------------------------------------------

    def target(self, text: str, cwd: Path) -> None:
        """Resolve and load one command-line target (Rules 1-4)."""
        full = os.path.normpath(os.path.join(cwd, text))
        rel = self._relative(full)
        if rel is None:
            # Maybe written through a symlink that leads into the project (an alias of the
            # root): resolve the parent directory, never the target itself.
            parent, name = os.path.split(full)
            full = os.path.join(os.path.realpath(parent), name)
            rel = self._relative(full)
        if rel is None:
            self.skip(text, "outside the project")
            return
        rel = "" if rel == os.curdir else rel.replace(os.sep, "/")
        shown = rel or "."
        link_parent = self._symlinked_parent(rel)
        if link_parent is not None:
            self.skip(shown, f"beyond a symbolic link ({link_parent})")
            return
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            if _GLOB_CHARS.intersection(text):
                self.glob(rel, text)
            else:
                self.skip(shown, "does not exist")
            return
        except OSError as exc:
            self.skip(shown, unreadable(exc))
            return
        rel_b = os.fsencode(rel)
        if stat.S_ISDIR(st.st_mode):
            self.directory(rel_b, shown)
            return
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            self.skip(shown, "not a regular file")
            return
        verdict = self.engine.verdict(rel_b, False)
        forced = self.options.force and verdict.source != "<builtin>"
        if not verdict.included and not forced:
            self.skip(shown, verdict.reason)
            return
        self.inspect(rel_b, stat.S_ISLNK(st.st_mode), forced=forced)

    def _relative(self, full: str) -> str | None:
        """``full`` relative to the root (OS separators), or ``None`` when outside it."""
        rel = os.path.relpath(full, self.root_s)
        if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
            return None
        return rel

    def _symlinked_parent(self, rel: str) -> str | None:
        """The first parent directory of ``rel`` that is a symlink, if any."""
        parts = rel.split("/")[:-1] if rel else []
        cur = self.root_s
        shown: list[str] = []
        for part in parts:
            cur = os.path.join(cur, part)
            shown.append(part)
            if os.path.islink(cur):
                return "/".join(shown)
        return None

    def directory(self, rel_b: bytes, shown: str) -> None:
        """A directory target (Rule 3)."""
        if not self.options.recursive:
            self.skip(shown, "is a directory (use -r)")
            return
        _rule, _matched, children, via_tracked = self.engine.locate(rel_b, True)
        if children is None:
            verdict = self.engine.verdict(rel_b, True)
            if not self.options.force or verdict.source == "<builtin>":
                self.skip(shown, verdict.reason)
                return
            children, via_tracked = self.engine.enter_chain(rel_b), False
        start = rel_b + b"/" if rel_b else b""
        output = walk(self.engine, start, children, entered=True, tracked_only=via_tracked)
        self.inspect_walk(output)

    def glob(self, rel: str, text: str) -> None:
        """A glob target (Rule 4): walk from its literal directory, keep what matches."""
        parts = rel.split("/")
        base_parts: list[str] = []
        for part in parts[:-1]:
            if _GLOB_CHARS.intersection(part):
                break
            base_parts.append(part)
        rest = parts[len(base_parts) :]
        base = "/".join(base_parts)
        matcher = compile_wildmatch(os.fsencode(rel))
        base_b = os.fsencode(base)
        if matcher is None or not os.path.isdir(os.path.join(self.root_s, base)):
            self.skip(text, "no loadable file matches")
            return
        _rule, _matched, children, via_tracked = self.engine.locate(base_b, True)
        if children is None:
            self.skip(text, "no loadable file matches")
            return
        recursive = self.options.recursive
        unlimited = recursive or any("**" in part for part in rest)
        output = walk(
            self.engine,
            base_b + b"/" if base_b else b"",
            children,
            entered=True,
            tracked_only=via_tracked,
            max_depth=None if unlimited else len(rest),
        )
        keep: list[bytes] = []
        fullmatch = matcher.fullmatch
        skip_len = len(base_b) + 1 if base_b else 0
        for file_rel, _entry in output.files:
            if fullmatch(file_rel) is not None:
                keep.append(file_rel)
            elif recursive:
                # A matching directory loads everything below it.
                cut = file_rel.rfind(b"/")
                while cut >= skip_len:
                    if fullmatch(file_rel[:cut]) is not None:
                        keep.append(file_rel)
                        break
                    cut = file_rel.rfind(b"/", 0, cut)
        if not keep:
            self.skip(text, "no loadable file matches")
            return
        self.inspect_walk(WalkOutput(output.files, []), keep)


def _root_and_cwd(root: Path, cwd: Path | None) -> tuple[Path, Path]:
    real_root = Path(os.path.realpath(root))
    real_cwd = Path(os.path.realpath(cwd if cwd is not None else Path.cwd()))
    return real_root, real_cwd


def scan(
    root: Path,
    targets: Sequence[str],
    options: ScanOptions | None = None,
    *,
    cwd: Path | None = None,
    progress: ProgressCallback | None = None,
) -> ScanResult:
    """Resolve command-line targets into loadable project files.

    Args:
        root: The project root (the directory holding ``.git`` or ``.plancast``).
        targets: Paths, directories or globs as typed, relative to ``cwd``.
        options: See :class:`ScanOptions`.
        cwd: The directory targets are relative to; defaults to the process's current directory.
        progress: Called as ``progress(done, total)`` while the files a directory or glob
            target walked to are inspected (every :data:`PROGRESS_EVERY` files, and at the end
            of each walk), for a progress bar.

    Returns:
        The files to load and the skipped paths with reasons, each sorted by path.
    """
    options = options or ScanOptions()
    real_root, real_cwd = _root_and_cwd(root, cwd)
    with paused_gc():  # a scan builds objects per file and frees none of them (nogc.py)
        state = _Scan(real_root, options, progress)
        for text in targets:
            state.target(text, real_cwd)
        return state.result()


def find_project_files(root: Path, options: ScanOptions | None = None) -> ScanResult:
    """Every loadable file of the project: ``scan(root, [root], recursive=True)``."""
    options = replace(options or ScanOptions(), recursive=True)
    real_root = Path(os.path.realpath(root))
    return scan(real_root, [os.fspath(real_root)], options, cwd=real_root)


def read_files(
    files: Iterable[FoundFile], max_file_bytes: int = MAX_FILE_BYTES
) -> Iterator[FileText | Skipped]:
    """Read each file once, making the checks that need the file itself (Rule 5), in order.

    This is where the files of a scan with ``defer_checks`` are refused when they are binary,
    too large, not regular files or unreadable, before anything is sent; for the others, the
    same open reads their content (``contents.py``).

    Args:
        files: Files a scan found.
        max_file_bytes: Larger files are skipped; pass the scan's ``ScanOptions.max_file_bytes``.

    Yields:
        For each file, its :class:`FileText`, or :class:`Skipped` with the reason.

    For a large project, consume it inside :func:`~plancast.client.context.nogc.paused_gc`,
    as ``load`` does: the texts and what is built from them live until the upload.
    """
    root: Path | None = None
    prefix = ""
    for found in files:
        if found.root is not root:
            root = found.root
            prefix = os.fspath(root).rstrip(os.sep) + os.sep
        target = found.path if found.target is None else found.target
        try:
            _size, data = read_checked(prefix + target, max_file_bytes)
        except Unloadable as exc:
            yield Skipped(found.path, str(exc))
            continue
        yield FileText(found.path, data.decode("utf-8", errors="replace"))


def list_project_paths(root: Path, *, default_ignores: bool = True) -> list[str]:
    """The project paths that pass the ignore rules, without opening any file.

    This is ``git ls-files -co --exclude-standard`` plus plancast's rules: cheap enough for
    completion and listings. :func:`scan` may still skip some of these paths (binary, too large,
    symlinks that leave the project).
    """
    real_root = Path(os.path.realpath(root))
    with paused_gc():
        engine = IgnoreEngine(real_root, default_ignores=default_ignores)
        output = walk(engine, b"", engine.base, entered=False)
        return sorted(os.fsdecode(rel) for rel, _entry in output.files)
