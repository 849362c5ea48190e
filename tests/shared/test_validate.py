"""Validating built files: each rule catches its mistake and lets good changes through."""

from __future__ import annotations

import pytest

from plancast.shared import BuildProblem, validate_file
from plancast.shared._validate import (
    MAX_DUPLICATE_LINES,
    _duplication_problem,
    _elision_problem,
    _language,
    _marker,
    _syntax_problem,
)

# -- rule 1: syntax ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "language"),
    [
        ("a.py", "Python"),
        ("pkg/stubs.pyi", "Python"),
        ("SETUP.PY", "Python"),
        ("pyproject.toml", "TOML"),
        ("data/x.json", "JSON"),
        ("package.json", "JSON"),
        ("tsconfig.json", "JSONC"),
        ("web/tsconfig.build.json", "JSONC"),
        ("jsconfig.json", "JSONC"),
        (".eslintrc.json", "JSONC"),
        (".devcontainer/devcontainer.json", "JSONC"),
        ("tools/devcontainer.json", "JSONC"),
        (".vscode/settings.json", "JSONC"),
        ("a/.VSCode/launch.json", "JSONC"),
        ("deploy/app.yaml", "YAML"),
        (".github/workflows/CI.YML", "YAML"),
        ("x.jsonc", None),
        ("a.js", None),
        ("README.md", None),
        ("py", None),
    ],
)
def test_the_file_name_chooses_the_parser(path: str, language: str | None) -> None:
    assert _language(path) == (None if language == "JSONC" else language)


@pytest.mark.parametrize(
    ("path", "before", "after", "line"),
    [
        ("a.py", "x = 1\n", "x = (1\n", 1),
        ("a.py", "x = 1\n", "def f():\nreturn 1\n", 2),
        ("a.json", '{"a": 1}\n', '{"a": 1,}\n', 1),
        ("a.json", '{"a": 1}\n', '{\n  "a": 1\n  "b": 2\n}\n', 3),
        ("a.toml", "a = 1\n", "a = 1\nb = ]\nc = 1\n", 2),
        ("a.toml", "a = 1\n", "a = 1\n[b\nc = 2\n", 2),
        ("a.yaml", "a: 1\n", "a: 1\n  b: 2\n", 2),
        ("a.yaml", "a: [1, 2]\n", "a: [1, 2\nb: 3\n", 2),
        ("a.yml", "- x\n", "- x\n- y: z: w\n", 2),
        ("ci.yml", "a: ${{ x }}\n", "a: ${{ x }}\n  b: 2\n", 2),  # parsed before: checked
    ],
)
def test_a_result_that_no_longer_parses_is_caught(
    path: str, before: str, after: str, line: int
) -> None:
    problem = _syntax_problem(path, before, after)
    assert problem is not None
    assert (problem.kind, problem.line) == ("syntax", line)
    language = {"py": "Python", "json": "JSON", "toml": "TOML", "yaml": "YAML", "yml": "YAML"}[
        path.rsplit(".", 1)[1]
    ]
    assert problem.message == (
        f"{path} would not parse as {language} at line {line}; it did before the change"
    )


@pytest.mark.parametrize(
    ("path", "before", "after"),
    [
        ("a.py", "x = 1\n", "x = 2\n"),
        ("a.py", None, "async def f():\n    await g()\n"),
        ("a.py", "def f(:\n", "def f(:\n    pass\n"),  # it was broken already
        ("a.py", "x = 1\n", 'x = "\\d"\n'),  # a warning is not an error
        ("a.json", '{"a": 1}\n', '{"a": 1, "b": [2]}\n'),
        ("a.json", "{broken\n", "{still broken\n"),
        ("tsconfig.json", None, "{\n  // comments are fine here\n}\n"),
        ("a.toml", None, "[tool]\nx = 1\n"),
        ("a.toml", "a =\n", "a =\nb =\n"),
        ("a.js", "ok();\n", "broken(;\n"),  # no parser for it
        ("a.yaml", None, "---\na: 1\n---\nb: [2]\n"),  # several documents
        ("stack.yaml", None, "Bucket:\n  Name: !Ref Name\n"),  # a tag of its own: parsed only
        ("templates/svc.yaml", None, "{{- if .Values.on }}\nkind: Service\n{{- end }}\n"),
        (".github/workflows/ci.yml", None, "run: echo ${{ secrets.X }\n"),  # a template
    ],
)
def test_a_result_that_parses_or_was_broken_is_not_blamed(
    path: str, before: str | None, after: str
) -> None:
    assert _syntax_problem(path, before, after) is None


def test_a_new_file_must_parse() -> None:
    problem = _syntax_problem("new.py", None, "def f(\n")
    assert problem is not None
    assert problem.message == "new.py would not parse as Python at line 1"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("a.py", "x = 1\x00\n"),  # the parser refuses NUL bytes without a line
        ("a.json", "[" * 100_000),  # too deep for the parser
        ("a.toml", "a = "),  # the end of the document, not a line
    ],
)
def test_a_parse_error_without_a_line_says_so(path: str, text: str) -> None:
    problem = _syntax_problem(path, None, text)
    assert problem is not None
    assert problem.line is None
    assert " at line" not in problem.message


# -- rule 2: duplication ----------------------------------------------------------------------


def lines(text: str) -> list[str]:
    return text.splitlines()


ABOVE = ["def f():", "    a = 1", "    b = 2", "    return a + b", ""]


def test_a_replace_that_repeats_the_lines_above_is_caught() -> None:
    # find: "    return a + b"; replace: the two lines above it, then the new return.
    after = ["def f():", "    a = 1", "    b = 2", "    a = 1", "    b = 2", "    return a", ""]
    problem = _duplication_problem("f.py", "return a + b", ABOVE, after, 3, 3)
    assert problem == BuildProblem(
        "duplicate",
        "edit of f.py (find starting 'return a + b') would leave 2 lines twice in a row at "
        "line 4: its replace repeats the 2 lines just above the find; put them in the find "
        "too, or leave them out of the replace",
        4,
    )


def test_a_replace_that_repeats_the_lines_below_is_caught() -> None:
    before = ["x = 0", "if x:", "    go()", "    stop()"]
    # find: "x = 0"; replace: "x = 1" plus the two lines below it, which stay too.
    after = ["x = 1", "if x:", "    go()", "if x:", "    go()", "    stop()"]
    problem = _duplication_problem("g.py", "x = 0", before, after, 0, 3)
    assert problem is not None
    assert (problem.line, problem.kind) == (2, "duplicate")
    assert "repeats the 2 lines just below the find" in problem.message


def test_trailing_whitespace_does_not_hide_a_duplicate() -> None:
    after = ["a()", "b()  ", "a()\t", "b()", "c()"]
    assert _duplication_problem("h.py", "c()", ["a()", "b()", "c()"], after, 2, 3) is not None


@pytest.mark.parametrize(
    ("before", "after", "start", "count"),
    [
        # one repeated line is often right (a second call, a closing brace)
        (["a()", "b()"], ["a()", "a()", "b()"], 1, 1),
        # a doubled block of one non-blank line and a blank one
        (["a()", "", "b()"], ["a()", "", "a()", "", "b()"], 2, 2),
        # similar, not equal: a new test next to the one it was modelled on
        (
            ["def test_a():", "    run(1)"],
            ["def test_a():", "    run(1)", "def test_b():", "    run(2)"],
            2,
            2,
        ),
        # the doubled block was in the file before the edit
        (["x()", "y()", "x()", "y()", "z()"], ["x()", "y()", "x()", "y()", "w()"], 4, 1),
        (["a()", "b()", "a()", "b()", "old"], ["a()", "b()", "a()", "b()", "new"], 2, 3),
        # the repeat is longer than the replace: not this edit's doing
        (["a()", "b()", "c()", "a()", "b()"], ["a()", "b()", "X", "a()", "b()"], 2, 1),
    ],
)
def test_repeats_that_are_not_this_mistake_pass(
    before: list[str], after: list[str], start: int, count: int
) -> None:
    assert _duplication_problem("p.py", "x", before, after, start, count) is None


def test_the_longest_doubled_block_looked_for_is_bounded() -> None:
    def doubled(size: int) -> BuildProblem | None:
        block = [f"line_{n}()" for n in range(size)]
        before = [*block, "end()"]
        return _duplication_problem("p.py", "end()", before, [*block, *block], size, size)

    found = doubled(MAX_DUPLICATE_LINES)
    assert found is not None and f"{MAX_DUPLICATE_LINES} lines twice" in found.message
    assert doubled(MAX_DUPLICATE_LINES + 1) is None


# -- rule 3: elision markers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        # strong: the phrases, with any signal
        ("# ... rest of the file unchanged ...", "strong"),
        ("    # rest of the code", "strong"),
        ("// rest of the implementation", "strong"),
        ("// ... rest of the tests stay the same", "strong"),
        ("// existing code here", "strong"),
        ("  /* other methods remain unchanged */", "strong"),
        ("# all existing imports are unchanged", "strong"),
        ("# keep existing settings as is", "strong"),
        ("<!-- your content here -->", "strong"),
        ("{/* existing markup goes here */}", "strong"),
        ("-- remaining entries unchanged", "strong"),
        ("; other settings unchanged", "strong"),
        ("% rest of the section unchanged", "strong"),
        ("# code goes here", "strong"),
        ("# ... (unchanged)", "strong"),
        ("# Unchanged.", "strong"),
        ("// imports omitted", "strong"),
        ("# snip", "strong"),
        ("… remainder of the function …", "strong"),
        # strong only with an ellipsis or brackets
        ("# ... rest of the settings", "strong"),
        ("[rest of the settings]", "strong"),
        ("// ... existing tests ...", "strong"),
        ("# ... keep existing code", "strong"),
        ("# ... same as before ...", "strong"),
        ("(code as before)", "strong"),
        ("// ... 200 more lines ...", "strong"),
        ("# ...12 lines omitted", "strong"),
        # weak: an ellipsis alone
        ("# ...", "weak"),
        ("  // ...", "weak"),
        ("/* ... */", "weak"),
        ("<!-- ... -->", "weak"),
        ("[...]", "weak"),
        ("(…)", "weak"),
        ("…", "weak"),
        ("....", "weak"),
        # not markers: real code and real comments
        ("# rest of the settings", None),
        ("# Existing tests", None),
        ("# Other methods", None),
        ("# keep existing code", None),
        ("# same as before", None),
        ("# rest of the args are passed through", None),
        ("The existing tests are unchanged.", None),
        ("rest of the file unchanged", None),  # no signal at all
        ("- Rest of the file is ignored", None),
        ('    "# ... rest of the file unchanged ...",', None),  # a string, not a line of elision
        ("*args,", None),
        ("**kwargs", None),
        ("...rest,", None),
        ("return {...defaults, ...options};", None),
        (">>> ...", None),
        ("x = 1  # unchanged", None),
        ("# type: ignore", None),
        ("---", None),
        ("", None),
        ("   ", None),
    ],
)
def test_elision_markers(line: str, kind: str | None) -> None:
    assert _marker(line, python=False) == kind


def test_a_bare_ellipsis_is_a_statement_in_python() -> None:
    assert _marker("    ...", python=True) is None
    assert _marker("    ...", python=False) == "weak"
    assert _marker("    # ...", python=True) == "weak"
    assert _marker("# rest of the code", python=True) == "strong"


SOURCE = "".join(f"def f{n}():\n    return {n}\n\n\n" for n in range(10))


def test_an_introduced_strong_marker_is_caught_anywhere() -> None:
    after = SOURCE.replace("    return 3\n", "    return 3\n    # ... rest unchanged ...\n")
    assert _elision_problem("m.py", SOURCE, after, False) is None  # "rest unchanged": no noun
    after = SOURCE.replace("    return 3\n", "    # ... rest of the function unchanged ...\n")
    problem = _elision_problem("m.py", SOURCE, after, False)
    assert problem == BuildProblem(
        "elision",
        "m.py line 14 is a placeholder where code was left out, which the file did not "
        "have; the whole text must be written out",
        14,
    )
    assert _elision_problem("new.py", None, "# existing code here\n", False) is not None


def test_a_marker_the_file_had_is_not_introduced() -> None:
    before = "a = 1\n# ... rest of the code ...\n"
    assert _elision_problem("m.py", before, before + "b = 2\n", False) is None
    twice = before + "# ... rest of the code ...\n"
    problem = _elision_problem("m.py", before, twice, False)
    assert problem is not None and problem.line == 3


def test_a_weak_marker_counts_only_in_a_rewrite_that_drops_most_of_the_file() -> None:
    short = "def f0():\n    return 0\n# ...\n"
    problem = _elision_problem("m.py", SOURCE, short, True)
    assert problem is not None
    assert problem.message == (
        "m.py line 3 is an ellipsis in a rewrite that drops most of the file, which the file "
        "did not have; the whole text must be written out"
    )
    assert _elision_problem("m.py", SOURCE, short, False) is None  # an edit: weak is allowed
    kept = SOURCE.replace("    return 9\n", "    # ...\n")  # keeps most of the file
    assert _elision_problem("m.py", SOURCE, kept, True) is None
    assert _elision_problem("m.py", None, short, True) is None  # a new file drops nothing
    assert _elision_problem("m.py", "\n\n", short, True) is None  # nor does an empty one


def test_validate_file_reports_syntax_then_elision() -> None:
    after = "def f(:\n    # ... rest of the function unchanged ...\n"
    problems = validate_file("m.py", "x = 1\n", after)
    assert [p.kind for p in problems] == ["syntax", "elision"]
    assert validate_file("m.py", "x = 1\n", "x = 2\n") == ()
    assert validate_file("m.py", SOURCE, "# ...\n", whole_file=True)[0].kind == "elision"


# -- problems ---------------------------------------------------------------------------------


def test_problems_validate_when_built() -> None:
    with pytest.raises(ValueError, match="kind"):
        BuildProblem("oops", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="message"):
        BuildProblem("syntax", "")
    with pytest.raises(ValueError, match="line"):
        BuildProblem("syntax", "x", 0)
    assert BuildProblem("exists", "x").structural
    assert BuildProblem("missing", "x").structural
    assert not BuildProblem("not_found", "x").structural
