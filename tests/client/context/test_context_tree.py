"""``render_tree``: the names-only listing of ``load --tree``."""

from __future__ import annotations

from plancast.client.context.tree import render_tree


def test_directories_first_then_files_each_sorted() -> None:
    paths = ["b.txt", "pkg/util.py", "a.py", "pkg/__init__.py", "pkg/sub/x.py", "docs/readme.md"]
    assert render_tree(paths, "src") == (
        "src/\n"
        "├── docs/\n"
        "│   └── readme.md\n"
        "├── pkg/\n"
        "│   ├── sub/\n"
        "│   │   └── x.py\n"
        "│   ├── __init__.py\n"
        "│   └── util.py\n"
        "├── a.py\n"
        "└── b.txt\n"
    )


def test_root_label_and_empty_tree() -> None:
    assert render_tree([], ".") == ".\n"
    assert render_tree(["a"], "lib/") == "lib/\n└── a\n"


def test_duplicate_and_empty_segments_are_harmless() -> None:
    assert render_tree(["a/b", "a/b", "a//c"], ".") == ".\n└── a/\n    ├── b\n    └── c\n"
