"""Applying ops to file text: matching strategies, line ends, and error messages."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.shared import (
    DeleteFile,
    EditAmbiguousError,
    EditError,
    EditFile,
    EditMatch,
    EditNotFoundError,
    ErrorCode,
    MoveFile,
    OpParsed,
    ReplyParser,
    WriteFile,
    apply_ops,
    match_edit,
)

PY = """\
import os


def main():
    path = os.getcwd()
    print(path)
    return 0
"""


def edit(find: str, replace: str, path: str = "src/app.py") -> EditFile:
    return EditFile(path, find, replace)


# -- WriteFile --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "content", "result"),
    [
        (None, "a\nb\n", "a\nb\n"),
        (None, "a\r\nb", "a\r\nb"),  # a new file is written as given
        ("", "a\nb\n", "a\nb\n"),
        ("old\n", "a\nb\n", "a\nb\n"),
        ("old\r\nlines\r\n", "a\nb\n", "a\r\nb\r\n"),  # CRLF stays CRLF
        ("old\nlines", "a\nb\n", "a\nb"),  # no final newline stays so
        ("old\r\nlines", "a\nb\n", "a\r\nb"),
        ("old\n", "a\r\nb", "a\nb\n"),
        ("old\n", "", ""),
    ],
)
def test_write_replaces_the_text_in_the_file_style(
    original: str | None, content: str, result: str
) -> None:
    assert apply_ops(original, [WriteFile("f.txt", content)]) == result


# -- exact matching ---------------------------------------------------------------------------


def test_exact_edit() -> None:
    op = edit("    print(path)\n", "    print(path, flush=True)\n")
    assert apply_ops(PY, [op]) == PY.replace("print(path)", "print(path, flush=True)")
    assert match_edit(PY, op) == EditMatch("exact", 5, 6)


def test_edits_apply_in_order_each_to_the_last_result() -> None:
    ops = [
        edit("import os\n", "import os\nimport sys\n"),
        edit("import sys\n", "import sys  # for argv\n"),
        edit("    return 0\n", ""),  # an empty replace deletes the lines
    ]
    assert apply_ops(PY, ops) == (
        "import os\nimport sys  # for argv\n\n\ndef main():\n"
        "    path = os.getcwd()\n    print(path)\n"
    )


def test_write_then_edit() -> None:
    ops = [WriteFile("src/app.py", "a = 1\nb = 2\n"), edit("b = 2\n", "b = 3\n")]
    assert apply_ops(None, ops) == "a = 1\nb = 3\n"


def test_find_matches_whole_lines_only() -> None:
    with pytest.raises(EditNotFoundError):
        apply_ops("foobar\n", [edit("foo\n", "x\n")])
    with pytest.raises(EditNotFoundError):
        apply_ops("foo\n", [edit("oo\n", "x\n")])  # must start at a line's beginning
    assert apply_ops("foo\nfoobar\n", [edit("foo", "x")]) == "x\nfoobar\n"


@pytest.mark.parametrize(
    ("original", "op", "result"),
    [
        ("a\nb", edit("b\n", "B\n"), "a\nB"),  # find's final newline missing at EOF
        ("a\nb", edit("b", "B"), "a\nB"),
        ("a\nb", edit("b\n", "B\nC\n"), "a\nB\nC"),
        ("a\nb", edit("b\n", ""), "a"),
        ("a\nb\n", edit("b", "B"), "a\nB\n"),  # a missing newline on the op is read as present
        ("a\nb\n", edit("a\nb\n", ""), ""),
        ("a\nb", edit("a\n", "A\n"), "A\nb"),
    ],
)
def test_the_final_newline_is_kept_or_left_out_as_it_was(
    original: str, op: EditFile, result: str
) -> None:
    assert apply_ops(original, [op]) == result


def test_crlf_files_stay_crlf() -> None:
    original = PY.replace("\n", "\r\n")
    op = edit("    print(path)\n    return 0\n", "    log(path)\n    log('done')\n    return 1\n")
    assert apply_ops(original, [op]) == original.replace(
        "    print(path)\r\n    return 0\r\n",
        "    log(path)\r\n    log('done')\r\n    return 1\r\n",
    )
    crlf_op = edit("import os\r\n", "import sys\r\n")
    assert apply_ops(original, [crlf_op]).startswith("import sys\r\n\r\n")


def test_a_mixed_file_keeps_each_untouched_line_end() -> None:
    original = "a\r\nb\nc\r\nd\r\n"
    assert apply_ops(original, [edit("b\n", "B1\nB2\n")]) == "a\r\nB1\r\nB2\r\nc\r\nd\r\n"
    assert apply_ops("a\nb\r\nc\n", [edit("c\n", "C\nD\n")]) == "a\nb\r\nC\nD\n"


def test_exact_ambiguity_is_refused() -> None:
    original = "x = 1\ny = 2\nx = 1\n"
    with pytest.raises(EditAmbiguousError) as info:
        apply_ops(original, [edit("x = 1\n", "x = 3\n")])
    assert info.value.message == (
        "edit of src/app.py failed: the find text starting 'x = 1' matches 2 places "
        "(lines 1, 3); it needs more surrounding lines"
    )
    assert info.value.path == "src/app.py"
    assert info.value.code is ErrorCode.EDIT_FAILED
    assert apply_ops(original, [edit("x = 1\ny = 2\n", "z\n")]) == "z\nx = 1\n"


def test_overlapping_matches_are_ambiguous_and_long_lists_are_cut() -> None:
    with pytest.raises(
        EditAmbiguousError, match=r"matches 6 places \(lines 1, 2, 3, 4, 5, \.\.\.\)"
    ):
        apply_ops("a\n" * 7, [edit("a\na\n", "b\n")])


def test_exact_wins_over_whitespace_matches() -> None:
    original = "if x:\n    go()\ngo()\n"  # two whitespace-tolerant matches, one exact
    op = edit("go()\n", "stop()\n")
    assert match_edit(original, op) == EditMatch("exact", 2, 3)
    assert apply_ops(original, [op]) == "if x:\n    go()\nstop()\n"


# -- whitespace-tolerant matching -------------------------------------------------------------


def test_trailing_whitespace_is_ignored() -> None:
    original = "a = 1   \nb = 2\t\n"
    op = edit("a = 1\nb = 2\n", "a = 10\nb = 20\n")
    assert match_edit(original, op) == EditMatch("whitespace", 0, 2)
    assert apply_ops(original, [op]) == "a = 10\nb = 20\n"


def test_a_find_written_less_indented_is_reindented() -> None:
    op = edit(
        "path = os.getcwd()\nprint(path)\n", "path = os.getcwd()\nif path:\n    print(path)\n"
    )
    assert match_edit(PY, op) == EditMatch("whitespace", 4, 6, indent="    ")
    assert apply_ops(PY, [op]) == PY.replace(
        "    print(path)\n", "    if path:\n        print(path)\n"
    )


def test_a_find_written_more_indented_is_dedented() -> None:
    original = "def f():\n  x = 1\n\n  return x\n"
    op = edit("    x = 1\n\n    return x\n", "    x = 2\n\n  return x\n    # done\n")
    assert match_edit(original, op) == EditMatch("whitespace", 1, 4, dedent="  ")
    # each replace line loses what it has of the extra indentation
    assert apply_ops(original, [op]) == "def f():\n  x = 2\n\nreturn x\n  # done\n"


def test_blank_lines_match_blank_lines_with_any_whitespace() -> None:
    original = "a\n   \nb\n"
    assert apply_ops(original, [edit("a\n\nb\n", "c\n")]) == "c\n"
    with pytest.raises(EditNotFoundError):
        apply_ops("a\nx\nb\n", [edit("a\n\nb\n", "c\n")])
    with pytest.raises(EditNotFoundError):
        apply_ops("a\n\nb\n", [edit("a\nx\nb\n", "c\n")])


@pytest.mark.parametrize(
    ("original", "find"),
    [
        ("  a\n    b\n", "a\nb\n"),  # inconsistent indentation difference
        ("  a\nb\n", "a\n  b\n"),  # opposite directions
        ("\ta\n", "    a\n"),  # tab against spaces
        ("a b\n", "a  b\n"),  # inner whitespace counts
    ],
)
def test_whitespace_tolerance_has_limits(original: str, find: str) -> None:
    with pytest.raises(EditNotFoundError):
        apply_ops(original, [edit(find, "x\n")])


def test_whitespace_ambiguity_is_refused() -> None:
    original = "  x = 1\n    x = 1\n"
    with pytest.raises(EditAmbiguousError, match="matches 2 places when whitespace is ignored"):
        apply_ops(original, [edit("x = 1\n", "y\n")])


def test_match_line_is_one_based() -> None:
    assert match_edit("a\nb\n", edit("b\n", "c\n")).line == 2


def test_edit_match_validates() -> None:
    with pytest.raises(ValueError, match="start"):
        EditMatch("exact", 2, 2)
    with pytest.raises(ValueError, match="start"):
        EditMatch("exact", -1, 2)
    with pytest.raises(ValueError, match="not both"):
        EditMatch("whitespace", 0, 1, indent=" ", dedent=" ")


# -- failures ---------------------------------------------------------------------------------


def test_editing_a_missing_file() -> None:
    with pytest.raises(EditNotFoundError) as info:
        apply_ops(None, [edit("a\n", "b\n")])
    assert info.value.message == "cannot edit src/app.py: the file does not exist"
    assert info.value.path == "src/app.py"
    assert isinstance(info.value, EditError)


def test_not_found_names_the_path_and_first_find_line_only() -> None:
    original = "SECRET_FILE_TEXT = 1\n" * 3
    long_line = "value = " + "x" * 200
    with pytest.raises(EditNotFoundError) as info:
        apply_ops(original, [edit(f"\n   \n  {long_line}\nSECRET_FILE_TEXT = 1\n", "")])
    message = info.value.message
    assert message == (
        f"edit of src/app.py failed: the find text starting {long_line[:79] + '…'!r} "
        "is not in the file"
    )
    assert "SECRET_FILE_TEXT" not in message
    with pytest.raises(EditNotFoundError, match="is not in the file"):
        apply_ops("", [edit("a\n", "b\n")])


def test_ops_for_one_path_at_least_one() -> None:
    with pytest.raises(ValueError, match="at least one op"):
        apply_ops("x", [])
    with pytest.raises(ValueError, match="a.py and b.py"):
        apply_ops("x", [WriteFile("a.py", ""), WriteFile("b.py", "")])
    with pytest.raises(ValueError, match="a.py and b.py"):  # a move is seen from its source
        apply_ops("x", [MoveFile("a.py", "b.py"), WriteFile("b.py", "")])


# -- deletes and moves ------------------------------------------------------------------------


def test_a_delete_or_a_move_leaves_no_file_at_the_path() -> None:
    assert apply_ops(PY, [DeleteFile("src/app.py")]) is None
    assert apply_ops(PY, [MoveFile("src/app.py", "lib/app.py")]) is None
    assert apply_ops("", [DeleteFile("src/app.py")]) is None  # an empty file exists


def test_a_write_after_a_delete_creates_the_file_anew() -> None:
    ops = [DeleteFile("src/app.py"), WriteFile("src/app.py", "new\n")]
    assert apply_ops(PY.replace("\n", "\r\n"), ops) == "new\n"  # no style to keep


@pytest.mark.parametrize(
    ("op", "verb"),
    [(DeleteFile("src/app.py"), "delete"), (MoveFile("src/app.py", "b.py"), "move")],
)
def test_deleting_or_moving_a_missing_file(op: DeleteFile | MoveFile, verb: str) -> None:
    with pytest.raises(EditNotFoundError) as info:
        apply_ops(None, [op])
    assert info.value.message == f"cannot {verb} src/app.py: the file does not exist"
    with pytest.raises(EditNotFoundError, match="cannot edit"):
        apply_ops(PY, [op, edit("import os\n", "")])


# -- properties -------------------------------------------------------------------------------

_LINES = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=8))


@given(
    lines=st.lists(st.text("abc ", max_size=5), min_size=1, max_size=12, unique=True),
    replace=_LINES,
    crlf=st.booleans(),
    final_newline=st.booleans(),
    data=st.data(),
)
def test_a_unique_run_is_replaced_and_the_rest_kept(
    lines: list[str],
    replace: list[str],
    crlf: bool,
    final_newline: bool,
    data: st.DataObject,
) -> None:
    # Distinct, non-blank and stripped lines: an exact match can only be unique.
    lines = [f"<{line}>" for line in lines]
    start = data.draw(st.integers(0, len(lines) - 1))
    stop = data.draw(st.integers(start + 1, len(lines)))
    end = "\r\n" if crlf else "\n"
    original = end.join(lines) + (end if final_newline else "")
    op = edit(
        "".join(f"{line}\n" for line in lines[start:stop]), "".join(f"{r}\n" for r in replace)
    )
    assert match_edit(original, op) == EditMatch("exact", start, stop)
    expected = lines[:start] + replace + lines[stop:]
    style = end if end in original else "\n"  # a file with no line end has no style
    result = apply_ops(original, [op])
    assert result == style.join(expected) + (style if final_newline and expected else "")
    assert apply_ops(original, [edit(op.find, op.find)]) == original


# -- a reply, parsed and applied --------------------------------------------------------------


def test_a_parsed_reply_applies_to_the_files() -> None:
    reply = (
        "Switching to sys.exit and adding a README.\n\n"
        '<pc:edit path="src/app.py">\n<pc:find>\n```python\n    return 0\n```\n</pc:find>\n'
        "<pc:replace>\n    sys.exit(0)\n</pc:replace>\n<pc:find>\nimport os\n</pc:find>\n"
        "<pc:replace>\nimport os\nimport sys\n</pc:replace>\n</pc:edit>\n"
        '<pc:file path="README.md">\n# app\n</pc:file>\n'
    )
    parser = ReplyParser()
    events = parser.feed(reply) + parser.finish()
    ops = [e.op for e in events if isinstance(e, OpParsed)]
    files: dict[str, str | None] = {"src/app.py": PY.replace("\n", "\r\n"), "README.md": None}
    for path in files:
        files[path] = apply_ops(files[path], [op for op in ops if op.path == path])
    assert files == {
        "src/app.py": PY.replace("import os\n", "import os\nimport sys\n")
        .replace("return 0", "sys.exit(0)")
        .replace("\n", "\r\n"),
        "README.md": "# app\n",
    }
