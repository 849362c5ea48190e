"""Checking a built file: it still parses, and nothing was silently doubled or left out.

A model's ops can land and still be wrong. These checks catch the mistakes models make most,
with rules narrow enough that good changes pass.

Rules:

1. Syntax, for the languages a parser is at hand for, chosen by the file name: Python
   (``.py``, ``.pyi``; parsed to an AST by the running interpreter, nothing runs), JSON
   (``.json``) and TOML (``.toml``) with the standard library, and YAML (``.yaml``,
   ``.yml``) where PyYAML is installed (the server has it). YAML is parsed, not loaded: a
   tag of its own (``!Ref``) is fine, and a new file holding ``{{`` is taken for a template
   (Helm, Ansible, Jinja), not YAML, so it is not checked (an existing template did not
   parse before, so it is not blamed either). JSON files that allow comments are not checked:
   ``tsconfig*.json``, ``jsconfig*.json``, ``.eslintrc.json``, ``devcontainer.json`` and
   any ``.json`` under a ``.vscode/`` or ``.devcontainer/`` folder. A result that does not
   parse is a problem only when the text before did parse, or there was none (a new file):
   a file that was already broken is not the model's fault. (Python syntax newer than the
   running interpreter's reads as broken; the server and the client run Python 3.11+.)
2. Duplication, for each edit as it lands. The edit's replace lines took the place of the
   matched run. A problem is a block of k lines (1 <= k <= the number of replace lines,
   at most ``MAX_DUPLICATE_LINES``) that holds at least two non-blank lines and appears
   twice in a row across an edge of the replace lines: the first k replace lines equal
   the k lines just above them, or the last k equal the k lines just below them. Lines are
   compared without trailing whitespace. A doubled block that the text before the edit
   already held somewhere is not a problem. This is the mark of a replace that repeats
   context lines its find left out.
3. Elision markers: a line that says code was left out instead of holding it. After its
   comment opener (``#``, ``//``, ``/*``, ``*``, ``<!--``, ``--``, ``;``, ``%``, ``{/*``)
   and closer (``*/``, ``-->``, ``*/}``) are set aside, a line is

   a. a strong marker when it has a signal (a comment opener, an ellipsis ``...`` or
      ``…``, or brackets around the whole text) and its words, lowercased, are one of the
      phrases of ``_STRONG_ANY``: ``rest of the code``, ``rest of the tests unchanged``,
      ``existing code here``, ``other methods remain the same``, ``keep existing
      imports as is``, ``code goes here``, ``unchanged``, ``imports omitted`` ...; or,
      with an ellipsis or brackets only, one of ``_STRONG_MARKED``, which would be common
      comments on their own: ``rest of the settings``, ``existing tests``, ``keep
      existing code``, ``same as before``, ``200 more lines``;
   b. a weak marker when it holds nothing but an ellipsis, in brackets or a comment or
      bare (``...``, ``# ...``, ``/* ... */``, ``[…]``); a bare ``...`` is not one in a
      Python file, where it is a statement.

   A line is introduced when the result holds more lines with its stripped text than the
   text before did. An introduced strong marker is always a problem. An introduced weak
   marker is a problem only in a whole-file text (a write over an existing file, or a
   rebuilt file) that keeps fewer than half of the non-blank lines of the text before:
   a rewrite that drops most of a file and marks the gap.
4. A problem's message names the path, the line of the result and what is wrong. It quotes
   nothing of the file but, for an edit, the first non-blank line of its find (as
   ``_edits`` does).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import posixpath
import re
import tomllib
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ProblemKind = Literal[
    "missing", "exists", "not_found", "ambiguous", "syntax", "duplicate", "elision"
]
PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    "missing",
    "exists",
    "not_found",
    "ambiguous",
    "syntax",
    "duplicate",
    "elision",
)
STRUCTURAL_KINDS: tuple[ProblemKind, ...] = ("missing", "exists")
"""Problems with what exists where, which no rebuild of the text can fix."""

MAX_DUPLICATE_LINES = 500
"""The longest doubled block rule 2 looks for (a bound on its cost)."""


@dataclass(frozen=True, slots=True)
class BuildProblem:
    """Why a file cannot be built as proposed.

    ``line`` is the 1-based line of the text concerned, when there is one: of the result
    for syntax, duplication and elision, of the file for an edit that does not match.
    """

    kind: ProblemKind
    message: str
    line: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in PROBLEM_KINDS:
            raise ValueError(f"kind must be one of {', '.join(PROBLEM_KINDS)}")
        if not self.message:
            raise ValueError("message must not be empty")
        if self.line is not None and self.line < 1:
            raise ValueError("line must be >= 1")

    @property
    def structural(self) -> bool:
        """A problem with what exists where (rule: a rebuild cannot fix it)."""
        return self.kind in STRUCTURAL_KINDS


def validate_file(
    path: str, before: str | None, after: str, *, whole_file: bool = False
) -> tuple[BuildProblem, ...]:
    """The problems of a built file's text: its syntax and its elision markers.

    Args:
        path: the file's path; its name chooses the syntax check (rule 1).
        before: the file's text before the ops, or None when it is new.
        after: the built text.
        whole_file: the text was written whole over an existing file, or rebuilt; weak
            markers count then (rule 3).

    Returns:
        The problems found, syntax first; none when the text is fine.
    """
    problems = []
    if (syntax := _syntax_problem(path, before, after)) is not None:
        problems.append(syntax)
    if (elision := _elision_problem(path, before, after, whole_file)) is not None:
        problems.append(elision)
    return tuple(problems)


# -- rule 1: syntax ---------------------------------------------------------------------------

Language = Literal["Python", "JSON", "TOML", "YAML"]
_JSONC_NAMES = re.compile(r"(?:tsconfig|jsconfig)[^/]*\.json|\.eslintrc\.json|devcontainer\.json")
_JSONC_FOLDERS = frozenset({".vscode", ".devcontainer"})


def _language(path: str) -> Language | None:
    name = posixpath.basename(path).lower()
    if name.endswith((".py", ".pyi")):
        return "Python"
    if name.endswith(".toml"):
        return "TOML"
    if name.endswith((".yaml", ".yml")):
        return "YAML" if _have_yaml() else None
    if name.endswith(".json"):
        folders = path.lower().split("/")[:-1]
        if _JSONC_NAMES.fullmatch(name) or _JSONC_FOLDERS.intersection(folders):
            return None
        return "JSON"
    return None


@functools.cache
def _have_yaml() -> bool:
    return importlib.util.find_spec("yaml") is not None


def _yaml_error(text: str) -> int | None:
    """As ``_parse_error``, for YAML: every document parsed to events, nothing constructed."""
    import yaml  # only once a YAML file is checked: the client never pays for the import

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for _ in yaml.parse(text, Loader=loader):
            pass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return mark.line + 1 if mark is not None else 0
    except (yaml.YAMLError, ValueError, RecursionError, MemoryError):
        return 0
    return None


def _parse_error(language: Language, text: str) -> int | None:
    """The 1-based line where ``text`` stops parsing (0 when unknown), or None if it parses."""
    if language == "YAML":
        return _yaml_error(text)
    try:
        if language == "Python":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # SyntaxWarning: not ours to report
                compile(text, "<plancast>", "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
        elif language == "JSON":
            json.loads(text)
        else:
            tomllib.loads(text)
    except json.JSONDecodeError as exc:
        return exc.lineno
    except SyntaxError as exc:
        return exc.lineno or 0
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"\(at line (\d+)", str(exc))
        return int(found[1]) if found else 0
    except (ValueError, RecursionError, MemoryError):  # NUL bytes, absurd nesting
        return 0
    return None


def _syntax_problem(path: str, before: str | None, after: str) -> BuildProblem | None:
    language = _language(path)
    if language is None or (language == "YAML" and before is None and "{{" in after):
        return None  # a new YAML file with ``{{`` is a template; an old one had to parse before
    line = _parse_error(language, after)
    if line is None or (before is not None and _parse_error(language, before) is not None):
        return None
    where = f" at line {line}" if line else ""
    return BuildProblem(
        "syntax",
        f"{path} would not parse as {language}{where}; it did before the change"
        if before is not None
        else f"{path} would not parse as {language}{where}",
        line or None,
    )


# -- rule 2: duplication ----------------------------------------------------------------------


def _duplication_problem(
    path: str,
    first_find_line: str,
    before: Sequence[str],
    after: Sequence[str],
    start: int,
    count: int,
) -> BuildProblem | None:
    """Rule 2 for one edit whose ``count`` replace lines start at ``after[start]``.

    ``before`` and ``after`` are the lines of the text before and after the edit.
    """
    lines = [line.rstrip() for line in after]
    old = [line.rstrip() for line in before]
    stop = start + count
    limit = min(count, MAX_DUPLICATE_LINES)
    for k in range(1, min(limit, start) + 1):  # the first k replace lines, and above
        if _doubled(lines, start - k, k, old):
            return _duplicate(path, first_find_line, start + 1, k, "above")
    for k in range(1, min(limit, len(lines) - stop) + 1):  # the last k, and below
        if _doubled(lines, stop - k, k, old):
            return _duplicate(path, first_find_line, stop - k + 1, k, "below")
    return None


def _doubled(lines: list[str], at: int, k: int, old: list[str]) -> bool:
    """Whether ``lines[at:at+k]`` is repeated right after itself, and ``old`` lacks that."""
    if any(lines[at + i] != lines[at + k + i] for i in range(k)):
        return False
    if sum(1 for line in lines[at : at + k] if line) < 2:
        return False
    return not _contains(old, lines[at : at + 2 * k])


def _contains(haystack: list[str], needle: list[str]) -> bool:
    size = len(needle)
    return any(
        haystack[i] == needle[0] and haystack[i : i + size] == needle
        for i in range(len(haystack) - size + 1)
    )


def _duplicate(path: str, first: str, line: int, k: int, where: str) -> BuildProblem:
    lines = "line" if k == 1 else f"{k} lines"
    return BuildProblem(
        "duplicate",
        f"edit of {path} (find starting {first!r}) would leave {lines} twice in a row at line "
        f"{line}: its replace repeats the {lines} just {where} the find; put them in the find "
        "too, or leave them out of the replace",
        line,
    )


# -- rule 3: elision markers ------------------------------------------------------------------

_OPENER = re.compile(r"(?:#+|//+|/\*+|\*+|<!--|--+|;+|%+|\{/\*+)")
_CLOSER = re.compile(r"(?:\*+/\}?|-->)$")
_ELLIPSIS = re.compile(r"\.{3,}|…")
_BRACKETS = {"(": ")", "[": "]", "{": "}", "<": ">"}

_NOUN = (
    r"(?:code|file|files|class|classes|function|functions|method|methods|module|modules|"
    r"implementation|body|component|components|test|tests|import|imports|logic|line|lines|"
    r"content|contents|config|configuration|settings|fields|properties|props|styles|rules|"
    r"cases|routes|handlers|definitions|markup|html|template|section|sections|block|blocks|"
    r"items|entries|keys|values|options|dependencies|helpers|exports|stuff)"
)
_QUALIFIER = r"(?:existing|previous|other|original|remaining|unchanged|old|your)"
_STATE = (
    r"(?:unchanged|omitted|elided|not shown|as before|as is|the same|same as before|intact|"
    r"here|goes here|go here|(?:remains?|stays?|is|are) (?:unchanged|the same|as (?:before|is)|"
    r"intact|omitted))"
)
_CODE_NOUN = r"(?:code|file|implementation|function|class|method|module|body|component)"
_THING = rf"(?:[a-z-]+ )?{_NOUN}"
_REST = r"(?:the )?(?:rest|remainder) of (?:the |this |your )?"
_KEEP = r"(?:keep|keeping|leave|leaving) (?:the |all )?"
_STRONG_ANY = re.compile(  # with any signal, a comment opener included
    "|".join(
        [
            rf"{_REST}(?:[a-z-]+ )?{_CODE_NOUN}",
            rf"{_REST}{_THING} {_STATE}",
            rf"(?:(?:all|the|any) )?{_QUALIFIER} {_THING} {_STATE}",
            rf"{_KEEP}{_QUALIFIER} {_THING} {_STATE}",
            rf"(?:your |the |more )?{_THING} (?:goes|go) here",
            rf"(?:{_NOUN} )?(?:unchanged|omitted|elided|snipped|snip|truncated)",
        ]
    )
)
_STRONG_MARKED = re.compile(  # only with an ellipsis or brackets
    "|".join(
        [
            rf"{_REST}{_THING}",
            rf"(?:(?:all|the|any) )?{_QUALIFIER} {_THING}",
            rf"{_KEEP}{_QUALIFIER} {_THING}",
            rf"(?:{_NOUN} )?(?:same as before|same as above|as before|as above|no changes)",
            r"\d+ (?:more |other )?(?:lines?|items?|entries)(?: (?:omitted|unchanged|not shown))?",
        ]
    )
)
_PYTHON_ELLIPSIS = "..."

MarkerKind = Literal["strong", "weak"]


def _marker(line: str, python: bool) -> MarkerKind | None:
    """Whether a line is an elision marker (rule 3), and which kind."""
    text = line.strip()
    if not text or (python and text == _PYTHON_ELLIPSIS):
        return None
    opener = _OPENER.match(text)
    commented = opener is not None
    if opener is not None:
        text = text[opener.end() :]
    text = _CLOSER.sub("", text).strip()
    ellipsis = bool(_ELLIPSIS.search(text))
    text = _ELLIPSIS.sub(" ", text).strip()
    bracketed = len(text) >= 2 and _BRACKETS.get(text[0]) == text[-1]
    if bracketed:
        text = text[1:-1]
    words = " ".join(re.sub(r"[.:,;!]+$", "", text.strip()).lower().split())
    if not words:
        return "weak" if ellipsis else None
    if (commented or ellipsis or bracketed) and _STRONG_ANY.fullmatch(words):
        return "strong"
    if (ellipsis or bracketed) and _STRONG_MARKED.fullmatch(words):
        return "strong"
    return None


def _elision_problem(
    path: str, before: str | None, after: str, whole_file: bool
) -> BuildProblem | None:
    python = _language(path) == "Python"
    old_lines = before.splitlines() if before else []
    new_lines = after.splitlines()
    weak_counts = whole_file and before is not None and _keeps_less_than_half(old_lines, new_lines)
    had = Counter(line.strip() for line in old_lines)
    seen: Counter[str] = Counter()
    for number, line in enumerate(new_lines, start=1):
        kind = _marker(line, python)
        if kind is None or (kind == "weak" and not weak_counts):
            continue
        text = line.strip()
        seen[text] += 1
        if seen[text] > had[text]:
            if kind == "strong":
                what = "a placeholder where code was left out"
            else:
                what = "an ellipsis in a rewrite that drops most of the file"
            return BuildProblem(
                "elision",
                f"{path} line {number} is {what}, which the file did not have; the "
                "whole text must be written out",
                number,
            )
    return None


def _keeps_less_than_half(old_lines: list[str], new_lines: list[str]) -> bool:
    old = Counter(line.strip() for line in old_lines if line.strip())
    if not old:
        return False
    new = Counter(line.strip() for line in new_lines if line.strip())
    kept = sum((old & new).values())
    return kept * 2 < sum(old.values())
