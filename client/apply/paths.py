"""The on-disk half of the path guard (DESIGN invariant 7).

``plancast.shared.check_relative_path`` refuses paths that escape lexically;
this module refuses those that escape through the file system: a symlink, at
any level, that leads outside the project root.
"""

from __future__ import annotations

import os
from pathlib import Path

from plancast.shared import UnsafePathError, check_relative_path


def resolve_inside(root: Path, path: str) -> Path:
    """The absolute location of a project-relative ``path``, if it stays inside ``root``.

    Raises:
        UnsafePathError: the path is unsafe lexically, or a symlink on the way
            (or the file itself) points outside the project.
    """
    relative = check_relative_path(path)
    real_root = Path(os.path.realpath(root))
    target = real_root / relative
    real = Path(os.path.realpath(target))  # follows every existing symlink on the way
    if real != real_root and real_root not in real.parents:
        raise UnsafePathError(f"{relative} leads outside the project through a symlink")
    if target.is_symlink():
        raise UnsafePathError(f"{relative} is a symlink; plancast does not write through links")
    return target
