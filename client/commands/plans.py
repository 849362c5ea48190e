"""Plan commands: new, plans, cd, current, and the plan's lifecycle: rename, archive,
unarchive, delete-plan.

An archived plan is left out of ``plans`` (unless ``--archived``) and keeps no number there, so
that ``cd N`` and ``plans`` agree; ``cd`` still finds it by name or id. Deleting a plan asks
first at a terminal (``--yes`` for scripts) and also drops its records in the apply journal.

Only ``argparse`` is imported at module level: every command module is imported for
``plancast --help``, which must start fast. Each command imports what it uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session


def register(sub: Any) -> None:
    p = sub.add_parser("new", help="start a new plan (binds this directory to a project first)")
    p.add_argument("-n", "--name", help="plan name (default: plan-N)")
    p.set_defaults(func=new)
    p = sub.add_parser("plans", help="list this project's plans")
    p.add_argument("--archived", action="store_true", help="list the archived plans too")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print the plans as JSON, for scripts")
    shape.add_argument(
        "-q", "--quiet", action="store_true", help="print only the names, one a line"
    )
    p.set_defaults(func=plans)
    p = sub.add_parser("cd", help="switch the current plan")
    p.add_argument("plan", help="plan name, id, or number from `plancast plans`")
    p.set_defaults(func=cd)
    p = sub.add_parser("current", help="show the current plan")
    p.set_defaults(func=current)
    p = sub.add_parser("rename", help="rename the current plan")
    p.add_argument("name", help="the new name (unique in the project)")
    p.set_defaults(func=rename)
    p = sub.add_parser("archive", help="hide a plan from `plancast plans` (it stays readable)")
    p.add_argument("plan", nargs="?", help="plan name, id or number (default: the current one)")
    p.set_defaults(func=archive, archived=True)
    p = sub.add_parser("unarchive", help="list an archived plan in `plancast plans` again")
    p.add_argument("plan", help="plan name or id (`plancast plans --archived`)")
    p.set_defaults(func=archive, archived=False)
    p = sub.add_parser("delete-plan", help="delete a plan and all its history, for good")
    p.add_argument("plan", nargs="?", help="plan name, id or number (default: the current one)")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask (for scripts)")
    p.set_defaults(func=delete_plan)


def new(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.api.errors import ApiError
    from plancast.client.project import ProjectBinding, find_root
    from plancast.shared import ErrorCode

    root = find_root(session.cwd)
    binding = session.binding if root is not None else None
    if binding is not None:
        try:
            session.api.get(f"/projects/{binding.project_id}")
        except ApiError as exc:
            if exc.code != ErrorCode.NOT_FOUND:
                raise
            session.output.note("this server does not know the project; binding it anew")
            binding = None
    if binding is None:
        root = root or session.cwd
        project = session.api.post("/projects", {"name": root.name or "project"})
        binding = ProjectBinding(root, project["id"])
        session.output.note(f"bound {root} to project {project['name']} ({project['id']})")
    plan = session.api.post(f"/projects/{binding.project_id}/plans", {"name": args.name})
    binding.plan_id = plan["id"]
    binding.save()
    session.output.line(f"created plan {plan['name']} ({plan['id']}); it is now current")
    return 0


def _plans(session: Session, *, archived: bool = False) -> list[dict[str, Any]]:
    path = f"/projects/{session.binding.project_id}/plans"
    found = session.api.get(path, archived="1") if archived else session.api.get(path)
    return list(found["plans"])


def _numbered(found: list[dict[str, Any]]) -> list[tuple[int | None, dict[str, Any]]]:
    """Numbers for the plans ``plans`` lists by default; none for archived ones."""
    numbered: list[tuple[int | None, dict[str, Any]]] = []
    n = 0
    for plan in found:
        if plan.get("archived_at") is None:
            n += 1
            numbered.append((n, plan))
        else:
            numbered.append((None, plan))
    return numbered


def plans(session: Session, args: argparse.Namespace) -> int:
    found = _numbered(_plans(session, archived=getattr(args, "archived", False)))
    current_id = session.binding.plan_id
    if args.json:
        session.output.json(
            [{"number": n, "current": plan["id"] == current_id, **plan} for n, plan in found]
        )
        return 0
    if args.quiet:
        for _, plan in found:
            session.output.line(plan["name"])
        return 0
    if not found:
        session.output.line("no plans yet; `plancast new` starts one")
    for n, plan in found:
        mark = "*" if plan["id"] == current_id else " "
        number = f"{n:>3}" if n is not None else "  -"
        archived = "  (archived)" if n is None else ""
        session.output.line(f"{mark} {number}  {plan['name']}  ({plan['id']}){archived}")
    return 0


def _find(session: Session, wanted: str) -> dict[str, Any]:
    """A plan of the project by id or name (archived ones too), or by its `plans` number."""
    from plancast.shared import ErrorCode, PlancastError

    found = _numbered(_plans(session, archived=True))
    match = [p for _, p in found if wanted in (p["id"], p["name"])]
    if not match and wanted.isdigit():
        match = [p for n, p in found if n == int(wanted)]
    if not match:
        raise PlancastError(
            f"no plan {wanted!r} in this project; `plancast plans --archived` lists them",
            code=ErrorCode.NOT_FOUND,
        )
    return match[0]


def cd(session: Session, args: argparse.Namespace) -> int:
    chosen = _find(session, args.plan)
    binding = session.binding
    binding.plan_id = chosen["id"]
    binding.save()
    session.output.line(f"current plan: {chosen['name']} ({chosen['id']})")
    return 0


def current(session: Session, args: argparse.Namespace) -> int:
    plan = session.api.get(f"/plans/{session.plan_id}")
    archived = " · archived" if plan.get("archived_at") is not None else ""
    branch = session.binding.branch_for(plan["id"])
    session.output.line(f"{plan['name']} ({plan['id']}) · branch {branch}{archived}", "bold")
    session.output.line(
        f"version {plan['version']} · {plan['context_items']} context item(s) · "
        f"{plan['messages']} message(s) · {plan['pending_changes']} pending change(s)"
    )
    return 0


def rename(session: Session, args: argparse.Namespace) -> int:
    plan = session.api.post(f"/plans/{session.plan_id}/rename", {"name": args.name})
    session.output.line(f"renamed the current plan to {plan['name']}")
    return 0


def _chosen(session: Session, wanted: str | None) -> dict[str, Any]:
    if wanted is None:
        return dict(session.api.get(f"/plans/{session.plan_id}"))
    return _find(session, wanted)


def archive(session: Session, args: argparse.Namespace) -> int:
    plan = _chosen(session, args.plan)
    verb = "archive" if args.archived else "unarchive"
    done = session.api.post(f"/plans/{plan['id']}/{verb}", {})
    if args.archived:
        session.output.line(
            f"archived {done['name']}; `plancast plans --archived` still lists it, "
            f"`plancast unarchive {done['name']}` brings it back"
        )
    else:
        session.output.line(f"unarchived {done['name']}")
    return 0


def delete_plan(session: Session, args: argparse.Namespace) -> int:
    import sys

    from plancast.client.ui.output import isatty
    from plancast.shared import ErrorCode, PlancastError

    plan = _chosen(session, args.plan)
    what = f"plan {plan['name']} ({plan['id']})"
    if not args.yes:
        if not isatty(sys.stdin):
            raise PlancastError(
                f"deleting {what} cannot be undone, and stdin is not a terminal to ask; "
                "pass --yes to delete it",
                code=ErrorCode.INVALID_REQUEST,
            )
        from plancast.client.commands._upload import confirm

        if not confirm(session, f"delete {what} and all its history, for good?"):
            session.output.note("nothing was deleted")
            return 1
    session.api.delete(f"/plans/{plan['id']}")
    binding = session.binding
    binding.branches.pop(plan["id"], None)
    if binding.plan_id == plan["id"]:
        binding.plan_id = None
    binding.save()
    from plancast.client.apply.journal import forget_plan

    try:
        forget_plan(binding.project_id, plan["id"])
    except (OSError, ValueError):
        pass  # the records age out of the bounded journal anyway
    session.output.line(f"deleted {what} and all its history")
    if binding.plan_id is None:
        session.output.note("no current plan now; `plancast cd PLAN` or `plancast new`")
    return 0
