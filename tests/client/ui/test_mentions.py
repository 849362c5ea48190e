"""@path in a prompt: only paths that exist, sentence punctuation aside, folders loaded with -r."""

from __future__ import annotations

from pathlib import Path

from plancast.client.ui.mentions import Mention, find_mentions, load_arguments


def test_existing_paths_are_mentions_and_the_rest_is_text(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text("")
    (tmp_path / "notes.md").write_text("")
    text = (
        "@src/app.py: add @property to the class; see @notes.md, "
        "not me@example.com nor @missing.py, and @src/ as a whole. Again: @notes.md"
    )
    assert find_mentions(text, tmp_path) == [
        Mention("src/app.py", False),
        Mention("notes.md", False),
        Mention("src/", True),
    ]


def test_punctuation_stays_when_the_file_has_it(tmp_path: Path) -> None:
    (tmp_path / "odd.").write_text("")
    assert find_mentions("look at @odd.", tmp_path) == [Mention("odd.", False)]


def test_folders_make_load_recursive() -> None:
    assert load_arguments([Mention("a.py", False)]) == ["a.py"]
    assert load_arguments([Mention("a.py", False), Mention("src/", True)]) == [
        "-r",
        "a.py",
        "src/",
    ]
