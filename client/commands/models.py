"""Model commands: ``models`` shows which model plays each role, ``set-model`` changes it.

    plancast models                        the current plan's roles, resolved
    plancast models packs                  built-in packs and the ones in model-packs.toml
    plancast set-model MODEL               the planner
    plancast set-model ROLE MODEL          one role (or large_context)
    plancast set-model --pack NAME         every role from a pack
    plancast set-model --auto-continue N   how often a tell may continue itself
    plancast set-model --reset             back to the defaults
    plancast set-model --default ...       for plans that set nothing (the client's config)

A plan's settings are part of its versioned state on the server, so ``set-model`` makes a
version, and ``rewind`` takes it back. Defaults live in the client's config file (``pack``,
``model``): a plan that sets nothing gets them when its first stream starts. Custom packs are
defined in ``model-packs.toml`` beside the config file (see ``plancast.shared.parse_packs``); a
custom pack is sent whole, so the server needs no copy of the file.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plancast.client.session import Session
    from plancast.shared import ModelPack, ModelSpec, PlanModels

ROLE_CHOICES = ("planner", "builder", "summarizer", "namer", "committer", "large_context")


def register(sub: Any) -> None:
    p = sub.add_parser("models", help="show which model plays each role (`models packs`: packs)")
    p.add_argument("what", nargs="?", choices=("packs",), help="list the model packs")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(func=models)
    p = sub.add_parser(
        "set-model",
        help="set the plan's model for a role, or its pack (`--default`: for new plans)",
    )
    p.add_argument("words", nargs="*", metavar="[ROLE] MODEL", help="a role, then provider/model")
    p.add_argument("--pack", help="take every role from this pack")
    p.add_argument("--auto-continue", type=int, help="times a tell may continue itself (0-20)")
    p.add_argument("--summary-tokens", type=int, help="summarize the conversation past this")
    p.add_argument("--reset", action="store_true", help="drop the plan's own model settings")
    p.add_argument(
        "--default",
        action="store_true",
        help="set the client's default (pack or planner) instead of the plan's",
    )
    p.set_defaults(func=set_model)


# -- packs ------------------------------------------------------------------------------------


def packs_path() -> Path:
    from plancast.client.config import config_dir

    return config_dir() / "model-packs.toml"


def custom_packs() -> dict[str, ModelPack]:
    """The packs in ``model-packs.toml`` (none when the file does not exist)."""
    from plancast.shared import parse_packs

    path = packs_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        from plancast.shared import ErrorCode, PlancastError

        raise PlancastError(
            f"cannot read {path}: {exc.strerror}", code=ErrorCode.INVALID_REQUEST
        ) from None
    return parse_packs(text)


def find_pack(name: str) -> ModelPack:
    from plancast.shared import BUILTIN_PACKS, ErrorCode, PlancastError

    found = custom_packs().get(name) or BUILTIN_PACKS.get(name)
    if found is None:
        known = ", ".join(sorted({*BUILTIN_PACKS, *custom_packs()}))
        raise PlancastError(
            f"no model pack named {name!r}; known packs: {known} (`plancast models packs`)",
            code=ErrorCode.INVALID_REQUEST,
        )
    return found


# -- the plan's settings ----------------------------------------------------------------------


def plan_settings(session: Session) -> PlanModels:
    from plancast.shared import PlanModels

    return PlanModels.from_dict(session.api.get(f"/plans/{session.plan_id}/models")["settings"])


def _put(session: Session, settings: PlanModels, description: str) -> None:
    session.api.request(
        "PUT",
        f"/plans/{session.plan_id}/models",
        json={"settings": settings.to_dict(), "description": description},
    )


def _own(settings: PlanModels) -> bool:
    """Whether the plan names its planner (by a pack or by itself)."""
    return settings.pack is not None or "planner" in settings.roles


def with_default_pack(settings: PlanModels, pack_name: str) -> PlanModels:
    """The plan's settings on the default pack: what the plan set itself is kept."""
    from dataclasses import replace

    from plancast.shared import PlanModels

    base = PlanModels.from_pack(find_pack(pack_name))
    return replace(
        base,
        roles={**base.roles, **settings.roles},
        large_context=settings.large_context or base.large_context,
        auto_continue=settings.auto_continue,
        summary_tokens=settings.summary_tokens,
    )


def resolve_for_stream(
    session: Session, explicit: ModelSpec | None, default_model: str | None
) -> PlanModels:
    """The models a stream of the current plan will use, every role filled in.

    Precedence for the planner: ``-m``, then the plan's own settings, then the defaults (the
    ``pack`` setting, applied to the plan as a version of its own so that every later stream
    and every reader sees the same thing; then ``PLANCAST_MODEL`` or the ``model`` setting;
    then the first provider configured).
    """
    from plancast.client.credentials import choose_model

    settings = plan_settings(session)
    own = _own(settings)
    if not own:
        pack_name = session.settings["pack"]
        if pack_name:
            settings = with_default_pack(settings, pack_name)
            _put(session, settings, f"model pack {pack_name} (the default)")
            own = True
    if explicit is not None:
        return settings.resolved(explicit)
    if own:
        return settings.resolved()
    return settings.resolved(choose_model(default_model))


# -- commands ---------------------------------------------------------------------------------


def _role_rows(resolved: PlanModels) -> list[tuple[str, str, int]]:
    from plancast.shared import ROLES

    rows = [(r, str(resolved.roles[r].model), resolved.roles[r].max_input_tokens) for r in ROLES]
    if resolved.large_context is not None:
        large = resolved.large_context
        rows.append(("large_context", str(large.model), large.max_input_tokens))
    return rows


def models(session: Session, args: argparse.Namespace) -> int:
    import json

    out = session.output
    if args.what == "packs":
        return _list_packs(session, args)
    settings = plan_settings(session)
    own = _own(settings)
    default_pack = None if own else session.settings["pack"]
    if own:
        resolved = settings.resolved()
    elif default_pack:  # what the plan's next stream will take (``resolve_for_stream``)
        resolved = with_default_pack(settings, default_pack).resolved()
    else:
        from plancast.client.credentials import choose_model

        resolved = settings.resolved(choose_model(session.settings["model"]))
    if args.json:
        out.line(
            json.dumps(
                {
                    "settings": settings.to_dict(),
                    "pack": resolved.pack,
                    "roles": {
                        r: {"model": m, "max_input_tokens": t} for r, m, t in _role_rows(resolved)
                    },
                    "auto_continue": resolved.auto_continue,
                    "summary_tokens": resolved.summary_tokens,
                }
            )
        )
        return 0
    if own:
        origin = "set for this plan"
    elif default_pack:
        origin = "the default pack: the plan's next stream takes it"
    else:
        origin = "the defaults: the plan sets none"
    out.line(f"pack {resolved.pack} ({origin})")
    for role, model, tokens in _role_rows(resolved):
        out.line(f"  {role:<14} {model:<36} up to {tokens:,} input tokens")
    out.line(
        f"auto-continue up to {resolved.auto_continue} times · "
        f"summarize past {resolved.summary_tokens:,} tokens"
    )
    return 0


def _list_packs(session: Session, args: argparse.Namespace) -> int:
    import json

    from plancast.shared import BUILTIN_PACKS, PlanModels

    out = session.output
    custom = custom_packs()
    listed = [(p, "built-in") for p in BUILTIN_PACKS.values()] + [
        (p, "custom") for p in custom.values()
    ]
    if args.json:
        out.line(
            json.dumps(
                [
                    {
                        "name": p.name,
                        "kind": kind,
                        "description": p.description,
                        "roles": {
                            r: m for r, m, _ in _role_rows(PlanModels.from_pack(p).resolved())
                        },
                    }
                    for p, kind in listed
                ]
            )
        )
        return 0
    for pack, kind in listed:
        resolved = PlanModels.from_pack(pack).resolved()
        out.line(f"{pack.name} ({kind}){' · ' + pack.description if pack.description else ''}")
        for role, model, _ in _role_rows(resolved):
            out.line(f"  {role:<14} {model}")
    if not custom:
        out.note(f"custom packs: define [packs.NAME] tables in {packs_path()}")
    return 0


def set_model(session: Session, args: argparse.Namespace) -> int:
    from dataclasses import replace

    from plancast.shared import ErrorCode, ModelSpec, PlancastError, PlanModels, RoleModel

    def usage(message: str) -> PlancastError:
        return PlancastError(message, code=ErrorCode.INVALID_REQUEST)

    words = list(args.words)
    if len(words) > 2:
        raise usage("give a role and a model: `plancast set-model builder openai/gpt-5.5`")
    role = words[0] if len(words) == 2 else ("planner" if words else None)
    model = ModelSpec.parse(words[-1]) if words else None
    if role is not None and role not in ROLE_CHOICES:
        raise usage(f"unknown role {role!r}; roles are {', '.join(ROLE_CHOICES)}")
    if args.default:
        return _set_default(session, args, role, model)
    if (
        not (words or args.pack or args.reset)
        and args.auto_continue is None
        and (args.summary_tokens is None)
    ):
        raise usage(
            "say what to set: a model, --pack, --auto-continue, --summary-tokens or --reset"
        )
    settings = PlanModels() if args.reset else plan_settings(session)
    said: list[str] = []
    if args.pack:
        pack = find_pack(args.pack)
        keep = {"auto_continue": settings.auto_continue, "summary_tokens": settings.summary_tokens}
        settings = replace(PlanModels.from_pack(pack), **keep)
        said.append(f"pack {pack.name}")
    if role is not None and model is not None:
        current = settings.resolved()
        if role == "large_context":
            old = current.large_context
            limit = old.max_input_tokens if old and old.model == model else 1_000_000
            settings = replace(settings, large_context=RoleModel(model, limit))
        else:
            limit = current.roles[role].max_input_tokens
            roles = dict(settings.roles)
            roles[role] = RoleModel(model, limit)
            settings = replace(settings, roles=roles)
        said.append(f"{role} {model}")
    if args.auto_continue is not None:
        settings = replace(settings, auto_continue=args.auto_continue)
        said.append(f"auto-continue {args.auto_continue}")
    if args.summary_tokens is not None:
        settings = replace(settings, summary_tokens=args.summary_tokens)
        said.append(f"summary tokens {args.summary_tokens}")
    settings = PlanModels.from_dict(settings.to_dict())  # the checks the server makes too
    description = "models reset" if args.reset and not said else "set " + ", ".join(said)
    _put(session, settings, description)
    session.output.note(f"{description} for plan {session.plan_id}")
    return 0


def _set_default(
    session: Session, args: argparse.Namespace, role: str | None, model: ModelSpec | None
) -> int:
    from plancast.client.commands.settings import store_setting
    from plancast.shared import ErrorCode, PlancastError

    if role not in (None, "planner") or args.auto_continue is not None or args.summary_tokens:
        raise PlancastError(
            "defaults hold a pack and a planner only; set other roles in a custom pack "
            f"({packs_path()})",
            code=ErrorCode.INVALID_REQUEST,
        )
    if args.pack:
        find_pack(args.pack)
        store_setting(session, "pack", args.pack)
    if model is not None:
        store_setting(session, "model", str(model))
    if args.reset:
        store_setting(session, "pack", None)
        store_setting(session, "model", None)
    return 0
