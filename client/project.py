"""The binding between a directory and a plancast project.

``plancast new`` writes ``.plancast/project.json`` at the project root (with a
``.gitignore`` of ``*`` beside it, so the folder never lands in the user's
repository). Commands run anywhere below the root find it by walking up.

It also remembers the current branch of each plan (``branches``, plan id → name; a plan not in
it is on ``main``), so that every plan-scoped request goes to the branch the user checked out.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plancast.shared import ErrorCode, PlancastError

DIR = ".plancast"
FILE = "project.json"


@dataclass(slots=True)
class ProjectBinding:
    root: Path
    project_id: str
    plan_id: str | None = None
    branches: dict[str, str] = field(default_factory=dict)

    def branch_for(self, plan_id: str) -> str:
        """The branch the user checked out on ``plan_id`` (``main`` until they check one out)."""
        return self.branches.get(plan_id, "main")

    def set_branch(self, plan_id: str, branch: str) -> None:
        if branch == "main":
            self.branches.pop(plan_id, None)
        else:
            self.branches[plan_id] = branch

    def save(self) -> None:
        folder = self.root / DIR
        folder.mkdir(exist_ok=True)
        ignore = folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text("*\n")
        data = asdict(self)
        data.pop("root")
        tmp = folder / (FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, folder / FILE)


def find_root(start: Path | None = None) -> Path | None:
    """The nearest directory at or above ``start`` that holds ``.plancast/project.json``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DIR / FILE).is_file():
            return folder
    return None


def load_binding(start: Path | None = None) -> ProjectBinding:
    """The project the current directory belongs to.

    Raises:
        PlancastError: ``not_found`` when no project is bound here.
    """
    root = find_root(start)
    if root is None:
        raise PlancastError(
            "no plancast project here or above; run `plancast new` in your project's root",
            code=ErrorCode.NOT_FOUND,
        )
    try:
        data = json.loads((root / DIR / FILE).read_text())
        branches = data.get("branches") or {}
        if not isinstance(branches, dict):
            raise ValueError("branches")
        return ProjectBinding(
            root,
            str(data["project_id"]),
            data.get("plan_id"),
            {str(k): str(v) for k, v in branches.items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError, OSError):
        raise PlancastError(
            f"{root / DIR / FILE} is damaged; delete it and run `plancast new`",
            code=ErrorCode.INVALID_REQUEST,
        ) from None


_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def check_branch_name(name: str) -> str:
    """``name`` if the server would take it as a branch name (the server checks it too).

    Raises:
        PlancastError: ``invalid_request``, saying what a name may be.
    """
    if not _BRANCH.fullmatch(name):
        raise PlancastError(
            f"bad branch name {name[:80]!r}: use 1-64 letters, digits, '-' or '_', "
            "starting with a letter or a digit",
            code=ErrorCode.INVALID_REQUEST,
        )
    return name


def require_plan(binding: ProjectBinding) -> str:
    if binding.plan_id is None:
        raise PlancastError(
            "no current plan; run `plancast new` or `plancast cd PLAN`", code=ErrorCode.NOT_FOUND
        )
    return binding.plan_id
