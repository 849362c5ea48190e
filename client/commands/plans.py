"""Plan commands: new, plans, cd, current.

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


def _plans(session: Session) -> list[dict[str, Any]]:
    return list(session.api.get(f"/projects/{session.binding.project_id}/plans")["plans"])


def plans(session: Session, args: argparse.Namespace) -> int:
    found = _plans(session)
    current_id = session.binding.plan_id
    if args.json:
        session.output.json(
            [
                {"number": n, "current": plan["id"] == current_id, **plan}
                for n, plan in enumerate(found, 1)
            ]
        )
        return 0
    if args.quiet:
        for plan in found:
            session.output.line(plan["name"])
        return 0
    if not found:
        session.output.line("no plans yet; `plancast new` starts one")
    for n, plan in enumerate(found, 1):
        mark = "*" if plan["id"] == current_id else " "
        session.output.line(f"{mark} {n:>3}  {plan['name']}  ({plan['id']})")
    return 0


def cd(session: Session, args: argparse.Namespace) -> int:
    from plancast.shared import ErrorCode, PlancastError

    found = _plans(session)
    wanted = args.plan
    match = [p for p in found if wanted in (p["id"], p["name"])]
    if not match and wanted.isdigit() and 1 <= int(wanted) <= len(found):
        match = [found[int(wanted) - 1]]
    if not match:
        raise PlancastError(
            f"no plan {wanted!r} in this project; `plancast plans` lists them",
            code=ErrorCode.NOT_FOUND,
        )
    binding = session.binding
    binding.plan_id = match[0]["id"]
    binding.save()
    session.output.line(f"current plan: {match[0]['name']} ({match[0]['id']})")
    return 0


def current(session: Session, args: argparse.Namespace) -> int:
    plan = session.api.get(f"/plans/{session.plan_id}")
    session.output.line(f"{plan['name']} ({plan['id']})", "bold")
    session.output.line(
        f"version {plan['version']} · {plan['context_items']} context item(s) · "
        f"{plan['messages']} message(s) · {plan['pending_changes']} pending change(s)"
    )
    return 0
