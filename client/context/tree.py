"""A tree listing of file names, the content of a ``load --tree`` context item.

A tree tells the model how a project is laid out without sending any file's content. It holds
names only, of the files that the ignore rules let through (so an ignored ``.env`` does not even
show its name), drawn like ``tree(1)``:

    src/
    ├── app.py
    └── pkg/
        ├── __init__.py
        └── util.py
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["render_tree"]

_Node = dict[str, "_Node"]


def render_tree(paths: Iterable[str], label: str = ".") -> str:
    """Draw ``paths`` (POSIX, relative to the tree's top) as a tree under ``label``.

    Directories come before files at each level, each group sorted by name, and end in ``/``.
    Directories appear only through the files inside them. The text ends with a newline.
    """
    root: _Node = {}
    for path in paths:
        node = root
        for part in path.split("/"):
            if part:
                node = node.setdefault(part, {})
    lines = [label if label.endswith("/") or label == "." else label + "/"]
    _draw(root, "", lines)
    return "\n".join(lines) + "\n"


def _draw(node: _Node, prefix: str, lines: list[str]) -> None:
    dirs = sorted(name for name, child in node.items() if child)
    files = sorted(name for name, child in node.items() if not child)
    entries = [(name, True) for name in dirs] + [(name, False) for name in files]
    for i, (name, is_dir) in enumerate(entries):
        last = i == len(entries) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{name}{'/' if is_dir else ''}")
        if is_dir:
            _draw(node[name], prefix + ("    " if last else "│   "), lines)
