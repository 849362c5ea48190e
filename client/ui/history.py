"""The session's input history: one file per project, private to the user.

It lives in ``$XDG_STATE_HOME/plancast/history/<project-id>`` (state, not configuration: it
can be deleted at any time). A history holds every prompt typed, so the folder is created 0700
and the file 0600 before anything is written to it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from prompt_toolkit.history import FileHistory

from plancast.client.config import PRIVATE_FILE_MODE, private_dir, state_dir

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def history_path(project_id: str) -> Path:
    """Where the history of ``project_id`` is kept.

    Raises:
        ValueError: the id could name a file outside the history folder.
    """
    if not _SAFE_ID.fullmatch(project_id):
        raise ValueError("a project id is 1-64 letters, digits, '-' or '_'")
    return state_dir() / "history" / project_id


class PrivateFileHistory(FileHistory):
    """prompt-toolkit's file history, with the file created 0600 (and tightened if looser)."""

    def __init__(self, filename: str | os.PathLike[str]) -> None:
        path = Path(filename)
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, PRIVATE_FILE_MODE)
        try:
            if hasattr(os, "fchmod") and os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, PRIVATE_FILE_MODE)
        finally:
            os.close(fd)
        super().__init__(path)


def project_history(project_id: str) -> PrivateFileHistory:
    return PrivateFileHistory(history_path(project_id))
