"""Which paths of a project are ignored, decided exactly as git decides, plus plancast's own rules.

Rule 1 (sources): a path is checked against, from lowest to highest precedence, the built-in
        defaults (``defaults.py``), the global excludes file, ``.git/info/exclude``, then for each
        directory from the root down to the path's parent its ``.gitignore`` followed by its
        ``.plancastignore``. The last pattern that matches decides, as in git; a ``!`` pattern that
        decides re-includes the path.
Rule 2 (parents): a directory that is ignored is not entered, so nothing below it can be
        re-included, whatever later negations say ("it is not possible to re-include a file if a
        parent directory of that file is excluded"). Ignore files inside it are not read.
Rule 3 (tracked): in a repository, git's own ignore rules (global, info/exclude, .gitignore) do not
        apply to tracked files, as in git; a git-ignored directory with tracked files inside is
        entered for those files only. ``.plancastignore`` and the defaults do apply to tracked
        files: they say what to send, not what git keeps.
Rule 4 (always out): any entry named ``.git`` (git itself never lists one) or ``.plancast``
        (plancast's own per-project folder) is never loadable; no flag changes that.
Rule 5 (virtualenvs): with the defaults on, a directory that holds ``pyvenv.cfg`` is ignored as
        the lowest-precedence default, unless some rule matched it.

:func:`explain` answers "why is this path in or out" with the deciding rule, like
``git check-ignore -v``. The walker in ``walk.py`` uses :class:`IgnoreEngine` directly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from plancast.client.context import gitinfo
from plancast.client.context.defaults import (
    PYVENV_MARKER,
    default_reason,
    default_rules,
    pyvenv_rule,
)
from plancast.client.context.patterns import Rule, SourceKind, parse_ignore_bytes

__all__ = [
    "ALWAYS_IGNORED_NAMES",
    "GITIGNORE",
    "MISS",
    "PLANCASTIGNORE",
    "TRACKED",
    "IgnoreEngine",
    "RuleSet",
    "Verdict",
    "explain",
    "split_path_rules",
]

GITIGNORE = b".gitignore"
PLANCASTIGNORE = b".plancastignore"
#: Entries with these names are never loadable, at any depth (Rule 4).
ALWAYS_IGNORED_NAMES = frozenset({b".git", b".plancast"})


def _builtin_rule(name: str) -> Rule:
    return Rule(
        source="<builtin>",
        kind=SourceKind.DEFAULT,
        line=0,
        text=name + "/",
        negated=False,
        dir_only=False,
        basename=True,
        base=b"",
        priority=1 << 62,
    )


_BUILTIN = {name: _builtin_rule(os.fsdecode(name)) for name in ALWAYS_IGNORED_NAMES}

#: Stands for "included because tracked" in verdicts (Rule 3).
TRACKED = Rule(
    source="<tracked>",
    kind=SourceKind.GITIGNORE,
    line=0,
    text="",
    negated=True,
    dir_only=False,
    basename=True,
    base=b"",
    priority=-1,
)
_PYVENV = pyvenv_rule()


MISS: object = object()


class _Tables:
    """The name rules (no ``/``) in force at one level, indexed for a few lookups, memoized.

    Matching a name costs a handful of dict lookups instead of a scan over every pattern:
    literal names, ``*.ext`` by extension, other ``*literal`` by suffix length, and one combined
    regex for the rest (alternatives in decreasing priority, so the first that matches is the
    last in the files). Each index keeps the highest-priority rule per key, and a child level
    copies its parent's indexes before adding its own, higher-priority rules. Answers are
    memoized per name: names repeat a lot in a tree (``__init__.py``, ``index.ts``).
    """

    __slots__ = ("ext", "generic", "lit", "memo", "rx", "rx_rules", "suffix", "suffix_lens")

    def __init__(self, parent: _Tables | None, rules: list[Rule]) -> None:
        self.memo: dict[bytes, Rule | None] = {}
        self.lit: dict[bytes, Rule] = dict(parent.lit) if parent else {}
        self.ext: dict[bytes, Rule] = dict(parent.ext) if parent else {}  # "*.py" -> b".py"
        self.suffix: dict[bytes, Rule] = dict(parent.suffix) if parent else {}  # other "*lit"
        new_generic: list[Rule] = []
        for r in rules:  # ascending priority: later assignments win
            if r.literal is not None:
                self.lit[r.literal] = r
            elif r.suffix is not None:
                if r.suffix[:1] == b"." and r.suffix.count(b".") == 1:
                    self.ext[r.suffix] = r
                else:
                    self.suffix[r.suffix] = r
            elif r.regex_source is not None:
                new_generic.append(r)
        self.suffix_lens = tuple(sorted({len(s) for s in self.suffix}))
        inherited = parent.generic if parent else []
        if new_generic or parent is None:
            # A rule shadowed by a higher-priority rule with the same pattern can never win.
            seen: set[bytes | None] = set()
            self.generic: list[Rule] = []
            for r in new_generic[::-1] + inherited:
                if r.regex_source not in seen:
                    seen.add(r.regex_source)
                    self.generic.append(r)
            self.rx_rules: list[Rule | None] = [None, *self.generic]
            self.rx: re.Pattern[bytes] | None = None
            if self.generic:
                sources = [b"(" + (r.regex_source or b"") + b")" for r in self.generic]
                self.rx = re.compile(b"|".join(sources), re.DOTALL)
        else:
            self.generic, self.rx_rules, self.rx = parent.generic, parent.rx_rules, parent.rx

    @staticmethod
    def chain(parent: _Tables | None, rules: list[Rule]) -> _Tables | None:
        """A level for ``rules`` on top of ``parent`` (or ``parent`` when there are none)."""
        matchable = [r for r in rules if r.literal or r.suffix or r.regex_source is not None]
        return _Tables(parent, matchable) if matchable else parent

    def best(self, name: bytes) -> Rule | None:
        """The highest-priority name rule matching ``name``."""
        found = self.memo.get(name, MISS)
        if found is not MISS:
            return found  # type: ignore[return-value]
        best = self.lit.get(name)
        bp = -1 if best is None else best.priority
        if self.ext:
            k = name.rfind(b".")
            if k >= 0:
                r = self.ext.get(name[k:])
                if r is not None and r.priority > bp:
                    best, bp = r, r.priority
        for n in self.suffix_lens:
            r = self.suffix.get(name[-n:])
            if r is not None and r.priority > bp:
                best, bp = r, r.priority
        if self.rx is not None:
            m = self.rx.fullmatch(name)
            if m is not None:
                r = self.rx_rules[m.lastindex or 0]
                if r is not None and r.priority > bp:
                    best = r
        self.memo[name] = best
        return best


def split_path_rules(
    candidates: tuple[Rule, ...], dir_rel: bytes
) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
    """Which path patterns can still match inside ``dir_rel``.

    Returns ``(alive, here)``: the patterns that may match somewhere below ``dir_rel`` (to pass
    down to its subdirectories) and those that may match an entry directly inside it. A
    pattern's literal prefix must agree with the directory: ``docs/_build`` can match nothing
    inside ``src/``, and nothing directly inside the root. Order (priority) is kept.
    """
    alive: list[Rule] = []
    here: list[Rule] = []
    for r in candidates:
        dn = dir_rel[len(r.base) :]
        lp = r.prefix
        if len(lp) <= len(dn):
            if r.regex is not None and dn.startswith(lp):
                alive.append(r)
                here.append(r)
        elif lp.startswith(dn):
            alive.append(r)
            if b"/" not in lp[len(dn) :]:
                here.append(r)
    return tuple(alive), tuple(here)


class RuleSet:
    """Every rule in force below one directory: a stack of ignore files, compiled for matching.

    A directory without ignore files shares its parent's RuleSet, so a walk builds one RuleSet per
    directory that has ignore files, not one per directory.
    """

    __slots__ = ("all_desc", "dirs", "files", "new_path_rules", "path_rules")

    def __init__(self) -> None:
        self.files: _Tables | None = None  # rules that may match files (no dir-only rules)
        self.dirs: _Tables | None = None  # rules that may match directories
        self.path_rules: tuple[Rule, ...] = ()  # patterns with a "/", highest priority first
        self.new_path_rules: tuple[Rule, ...] = ()  # those added by the last extension
        self.all_desc: tuple[Rule, ...] = ()  # everything, highest priority first

    def extended(self, new_rules: list[Rule]) -> RuleSet:
        """A RuleSet with ``new_rules`` (in ascending priority) on top of this one."""
        if not new_rules:
            return self
        rs = RuleSet()
        names = [r for r in new_rules if r.basename]
        rs.files = _Tables.chain(self.files, [r for r in names if not r.dir_only])
        rs.dirs = _Tables.chain(self.dirs, names)
        new_paths = [
            r
            for r in new_rules
            if not r.basename and (r.literal is not None or r.regex is not None)
        ]
        rs.new_path_rules = tuple(new_paths[::-1])
        rs.path_rules = rs.new_path_rules + self.path_rules
        rs.all_desc = tuple(new_rules[::-1]) + self.all_desc
        return rs

    def path_rules_for(self, dir_rel: bytes) -> tuple[Rule, ...]:
        """The path patterns that could match an entry directly inside ``dir_rel``."""
        return split_path_rules(self.path_rules, dir_rel)[1] if self.path_rules else ()

    def decide(
        self, rel: bytes, name: bytes, is_dir: bool, path_rules: tuple[Rule, ...]
    ) -> Rule | None:
        """The last-matching (highest-priority) rule for one entry, or ``None``.

        ``path_rules`` must be ``self.path_rules_for(parent of rel)``.
        """
        tables = self.dirs if is_dir else self.files
        best = None if tables is None else tables.best(name)
        if path_rules:
            bp = -1 if best is None else best.priority
            for r in path_rules:
                if r.priority < bp:
                    break
                if r.matches(rel, name, is_dir):
                    return r
        return best

    def decide_tracked(self, rel: bytes, name: bytes, is_dir: bool) -> Rule | None:
        """Like :meth:`decide`, without git's exclusions: the answer for tracked paths."""
        for r in self.all_desc:
            if r.kind.is_git and not r.negated:
                continue
            if r.matches(rel, name, is_dir):
                return r
        return None


def _read_ignore_file(path: bytes | Path, *, follow: bool) -> bytes | None:
    """The bytes of an ignore file, or None when it is missing or unreadable.

    In-tree ignore files are not followed when they are symlinks (git refuses them too).
    """
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        chunks: list[bytes] = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one path is loadable, and the rule that decided it (``git check-ignore -v``).

    ``source`` is a project-relative ignore file (``src/.gitignore``), or ``<default>``,
    ``<global>``, ``<info/exclude>``, ``<tracked>``, ``<builtin>``; ``None`` when no rule
    matched. ``matched`` is the path the rule matched: the path itself, or an ignored parent
    directory (ending in ``/``), since nothing inside an ignored directory can be re-included.
    """

    path: str
    included: bool
    source: str | None
    line: int
    pattern: str
    matched: str

    @property
    def reason(self) -> str:
        """One line for humans, e.g. ``ignored by .gitignore:3 'build/'``."""
        if self.source is None:
            return "included: no ignore rule matches"
        if self.source == "<tracked>":
            return "included: tracked by git (git's ignore rules do not apply to tracked files)"
        if self.source == "<builtin>":
            return f"never loadable ({self.pattern})"
        where = f"{self.source}:{self.line}" if self.line else self.source
        text = f"{where} {self.pattern!r}"
        if self.source == "<default>":
            text += f" ({default_reason(self.line)})"
        if self.included:
            return f"included: re-included by {text}"
        if self.matched != self.path:
            return f"ignored by {text} (matches the directory {self.matched})"
        return f"ignored by {text}"


def _verdict(path: str, rule: Rule | None, matched: str) -> Verdict:
    if rule is None:
        return Verdict(path, True, None, 0, "", path)
    return Verdict(path, rule.negated, rule.source, rule.line, rule.text, matched)


class IgnoreEngine:
    """Ignore decisions for one project root during one scan.

    It reads the global and ``info/exclude`` files once, starts ``git ls-files`` in the
    background, and compiles each ``.gitignore`` / ``.plancastignore`` the first time a
    directory is entered. Create a new engine per scan: ignore files change between scans.
    """

    def __init__(self, root: Path, *, default_ignores: bool = True) -> None:
        self.root = root
        self.root_b = os.fsencode(root)
        self.default_ignores = default_ignores
        self.tracked = gitinfo.start_tracked(root)
        self.warnings: list[str] = []
        base: list[Rule] = default_rules() if default_ignores else []
        global_file = gitinfo.global_excludes_file(root)
        if global_file is not None:
            data = _read_ignore_file(global_file, follow=True)
            if data:
                base += parse_ignore_bytes(data, source="<global>", kind=SourceKind.GLOBAL)
        info = gitinfo.info_exclude_file(root)
        if info is not None:
            data = _read_ignore_file(info, follow=True)
            if data:
                base += parse_ignore_bytes(data, source="<info/exclude>", kind=SourceKind.INFO)
        self.base = RuleSet().extended(base)
        self._entered: dict[bytes, RuleSet] = {}
        self._tracked_checked = False

    # -- loading -------------------------------------------------------------------------------

    def _rules_from(self, dir_rel: bytes, has_gitignore: bool, has_plancast: bool) -> list[Rule]:
        rules: list[Rule] = []
        dir_abs = os.path.join(self.root_b, dir_rel) if dir_rel else self.root_b
        shown = os.fsdecode(dir_rel)
        for present, fname, kind in (
            (has_gitignore, GITIGNORE, SourceKind.GITIGNORE),
            (has_plancast, PLANCASTIGNORE, SourceKind.PLANCASTIGNORE),
        ):
            if not present:
                continue
            data = _read_ignore_file(os.path.join(dir_abs, fname), follow=False)
            if data:
                rules += parse_ignore_bytes(
                    data, source=shown + os.fsdecode(fname), kind=kind, base=dir_rel
                )
        return rules

    def enter_listed(
        self, dir_rel: bytes, rs: RuleSet, entries: list[os.DirEntry[bytes]]
    ) -> RuleSet:
        """The RuleSet for the children of ``dir_rel``, given its listing (no extra syscalls)."""
        has_gi = has_pi = False
        for e in entries:
            name = e.name
            if name == GITIGNORE:
                has_gi = e.is_file(follow_symlinks=False)
            elif name == PLANCASTIGNORE:
                has_pi = e.is_file(follow_symlinks=False)
        if not (has_gi or has_pi):
            return rs
        return rs.extended(self._rules_from(dir_rel, has_gi, has_pi))

    def enter_path(self, dir_rel: bytes, rs: RuleSet) -> RuleSet:
        """The RuleSet for the children of ``dir_rel`` without listing it (explicit paths)."""
        cached = self._entered.get(dir_rel)
        if cached is not None:
            return cached
        entered = rs.extended(self._rules_from(dir_rel, True, True))
        self._entered[dir_rel] = entered
        return entered

    def enter_chain(self, dir_rel: bytes) -> RuleSet:
        """The RuleSet for the children of ``dir_rel``, ignoring exclusions on the way (force)."""
        rs = self.enter_path(b"", self.base)
        cur = b""
        for part in dir_rel.split(b"/") if dir_rel else []:
            cur += part + b"/"
            rs = self.enter_path(cur, rs)
        return rs

    # -- decisions -----------------------------------------------------------------------------

    def tracked_known(self) -> bool:
        """Whether tracked files are known; records a warning the first time they are not."""
        tracked = self.tracked
        if tracked is None:
            return False
        if not tracked.known:
            if not self._tracked_checked:
                self.warnings.append(
                    f"{tracked.error}: tracked files that match ignore rules are left out"
                )
            self._tracked_checked = True
            return False
        return True

    def resolve_tracked(
        self, rs: RuleSet, rel: bytes, name: bytes, is_dir: bool, rule: Rule
    ) -> Rule | None:
        """Apply Rule 3 to an entry that git's own rule ``rule`` excludes.

        Returns ``rule`` when the entry is not tracked (or has nothing tracked below it), else
        ``TRACKED`` or the plancast rule that still excludes it.
        """
        tracked = self.tracked
        if tracked is None or not self.tracked_known():
            return rule
        if is_dir:
            if not tracked.any_under(rel + b"/"):
                return rule
        elif not tracked.contains(rel):
            return rule
        other = rs.decide_tracked(rel, name, is_dir)
        if other is None or other.negated:
            return TRACKED
        return other

    def is_tracked(self, rel: bytes) -> bool:
        """Whether the file ``rel`` is tracked (False when unknown)."""
        return self.tracked_known() and self.tracked is not None and self.tracked.contains(rel)

    def has_venv_marker(self, dir_rel: bytes) -> bool:
        """Whether ``dir_rel`` holds ``pyvenv.cfg`` (Rule 5), for explicit paths."""
        return os.path.isfile(os.path.join(self.root_b, dir_rel, PYVENV_MARKER))

    def locate(self, rel: bytes, is_dir: bool) -> tuple[Rule | None, bytes, RuleSet | None, bool]:
        """Decide one explicit path, checking every parent directory on the way (Rule 2).

        Returns ``(rule, matched, children_rules, via_tracked)``: the deciding rule (``None`` for
        "no rule"), the path it matched (``rel`` or a parent ending in ``/``), for an included
        directory the RuleSet for its children (else ``None``), and whether the path is only
        reachable because a git-ignored parent directory has tracked files inside (then only
        tracked files below it are loadable).
        """
        parts = rel.split(b"/") if rel else []
        for part in parts:
            if part in ALWAYS_IGNORED_NAMES:
                return _BUILTIN[part], rel, None, False
        rs = self.enter_path(b"", self.base)
        cur = b""
        inherited: Rule | None = None  # a git exclusion bypassed because tracked files are below
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            entry_rel = cur + part
            entry_is_dir = is_dir or not last
            rule = rs.decide(entry_rel, part, entry_is_dir, rs.path_rules_for(cur))
            if rule is not None and not rule.negated and rule.kind.is_git:
                git_rule = rule
                rule = self.resolve_tracked(rs, entry_rel, part, entry_is_dir, git_rule)
                if rule is TRACKED and entry_is_dir and inherited is None:
                    inherited = git_rule
            if rule is None and entry_is_dir and self.default_ignores:
                if self.has_venv_marker(entry_rel):
                    rule = _PYVENV
            if rule is not None and not rule.negated:
                return rule, (entry_rel if last else entry_rel + b"/"), None, False
            if last and not entry_is_dir:
                if inherited is not None and not self.is_tracked(entry_rel):
                    return inherited, self._parent_of_inherited(rel, inherited), None, False
                return rule, rel, None, inherited is not None
            rs = self.enter_path(entry_rel + b"/", rs)
            cur = entry_rel + b"/"
            if last:
                return rule, rel, rs, inherited is not None
        return None, rel, rs, False  # rel == b"": the root itself

    def _parent_of_inherited(self, rel: bytes, rule: Rule) -> bytes:
        """The parent directory of ``rel`` that ``rule`` excludes (for the verdict's text)."""
        parts = rel.split(b"/")
        for i in range(1, len(parts)):
            parent = b"/".join(parts[:i])
            name = parts[i - 1]
            if rule.matches(parent, name, True):
                return parent + b"/"
        return rel

    def verdict(self, rel: bytes, is_dir: bool) -> Verdict:
        """The :class:`Verdict` for one root-relative path."""
        rule, matched, _children, via_tracked = self.locate(rel, is_dir)
        path = os.fsdecode(rel)
        if rule is None and via_tracked:
            rule = TRACKED
        return _verdict(path, rule, os.fsdecode(matched))


def explain(
    root: Path,
    path: str | Path,
    *,
    default_ignores: bool = True,
    cwd: Path | None = None,
) -> Verdict:
    """Say whether ``path`` is loadable and which rule decided, like ``git check-ignore -v``.

    Args:
        root: The project root.
        path: Absolute, or relative to ``cwd`` when given, else to ``root``. The path need not
            exist; a missing path counts as a file unless written with a trailing ``/``.
        default_ignores: Whether plancast's built-in defaults apply.
        cwd: Directory that a relative ``path`` is relative to.

    Returns:
        The verdict. A path outside the project raises ``ValueError``.
    """
    root = Path(os.path.realpath(root))
    text = os.fspath(path)
    trailing_slash = text.endswith(("/", os.sep))
    base = Path(os.path.realpath(cwd)) if cwd is not None else root
    full = os.path.normpath(os.path.join(base, text))
    rel = os.path.relpath(full, root)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        raise ValueError(f"{text!r} is outside the project {root}")
    rel = "" if rel == os.curdir else rel.replace(os.sep, "/")
    is_dir = trailing_slash or (os.path.isdir(full) and not os.path.islink(full))
    engine = IgnoreEngine(root, default_ignores=default_ignores)
    return engine.verdict(os.fsencode(rel), is_dir)
