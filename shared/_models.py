"""Model roles and model packs: which model does which job for a plan.

A plan's work is split into roles. The **planner** writes the reply the user reads; the
**builder** rebuilds a file whose proposed edit did not land; the **summarizer** condenses a
long conversation; the **namer** names a new plan; the **committer** writes a commit message for
applied changes. A **pack** names a model for every role, plus an optional large-context model
for input too big for a role's own model.

Rules:

1. A role's model is a ``RoleModel``: a ``provider/model`` name and the most input tokens it is
   sent (``max_input_tokens``, from the model's context window less room for its reply).
2. Built-in packs (``BUILTIN_PACKS``) use one provider each, so one key serves every role.
   Custom packs come from TOML (``parse_packs``): a table per pack under ``[packs.NAME]`` whose
   keys are role names, each a ``"provider/model"`` string or a table
   ``{ model = "provider/model", max_input_tokens = N }``; ``large_context`` the same;
   ``description`` a string. A role left out takes the planner's model. A model given as a
   string takes ``DEFAULT_MAX_INPUT_TOKENS`` (``DEFAULT_LARGE_CONTEXT_TOKENS`` for
   ``large_context``).
3. A plan's settings are a ``PlanModels``: its pack's roles with the plan's own overrides, its
   auto-continue bound and its summary budget. It is what the plan's version state stores (as
   JSON, ``to_dict``/``from_dict``), so changing it is a new version like any other change.
4. ``for_input(role, tokens)`` picks the model for a call: the role's model when the input fits,
   else the large-context model when it fits there, else ``ContextTooLarge``. It never picks a
   model silently for input no configured model can take.
5. ``providers()`` lists every provider a plan's streams may call, so a client seals exactly the
   keys a stream can need, and a missing one is named, with its role, before the stream starts.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._errors import ErrorCode, PlancastError
from ._providers import DEFAULT_MODELS, ModelSpec

ROLES = ("planner", "builder", "summarizer", "namer", "committer")
"""Every role a model plays, in the order they are shown."""

DEFAULT_MAX_INPUT_TOKENS = 100_000
"""What a role's model is sent at most when its pack does not say."""

DEFAULT_LARGE_CONTEXT_TOKENS = 1_000_000
"""What a large-context model is sent at most when its pack does not say."""

DEFAULT_AUTO_CONTINUE = 4
"""How many times a tell may continue itself, at most, before it stops and waits for the user."""

DEFAULT_SUMMARY_TOKENS = 24_000
"""Conversation tokens past which the older turns are summarized."""

MAX_AUTO_CONTINUE = 20
MAX_PACK_NAME = 64


class ContextTooLarge(PlancastError):
    """The input is larger than every model the plan may use for the role."""

    code = ErrorCode.CONTEXT_TOO_LARGE


@dataclass(frozen=True, slots=True)
class RoleModel:
    model: ModelSpec
    max_input_tokens: int = DEFAULT_MAX_INPUT_TOKENS

    def __post_init__(self) -> None:
        if self.max_input_tokens < 1:
            raise PlancastError(
                f"max_input_tokens for {self.model} must be at least 1",
                code=ErrorCode.INVALID_REQUEST,
            )

    def to_dict(self) -> dict[str, Any]:
        return {"model": str(self.model), "max_input_tokens": self.max_input_tokens}

    @classmethod
    def from_value(
        cls, value: object, where: str, default_limit: int = DEFAULT_MAX_INPUT_TOKENS
    ) -> RoleModel:
        """A role's model from ``"provider/model"`` or ``{model, max_input_tokens}``."""
        if isinstance(value, str):
            return cls(ModelSpec.parse(value), default_limit)
        if isinstance(value, Mapping):
            model = value.get("model")
            limit = value.get("max_input_tokens", default_limit)
            if not isinstance(model, str):
                raise _invalid(f"{where}: 'model' must be a string like openai/gpt-5.5")
            if not isinstance(limit, int) or isinstance(limit, bool):
                raise _invalid(f"{where}: 'max_input_tokens' must be a whole number")
            return cls(ModelSpec.parse(model), limit)
        raise _invalid(f"{where} must be a model name or a table with 'model'")


@dataclass(frozen=True, slots=True)
class ModelPack:
    name: str
    description: str
    roles: Mapping[str, RoleModel]
    large_context: RoleModel | None = None

    def role(self, role: str) -> RoleModel:
        return self.roles.get(role) or self.roles["planner"]


def _pack(
    name: str,
    description: str,
    main: tuple[str, int],
    light: tuple[str, int],
    large: tuple[str, int] | None,
) -> ModelPack:
    big = RoleModel(ModelSpec.parse(main[0]), main[1])
    small = RoleModel(ModelSpec.parse(light[0]), light[1])
    roles = {
        "planner": big,
        "builder": big,
        "summarizer": small,
        "namer": small,
        "committer": small,
    }
    return ModelPack(
        name,
        description,
        roles,
        RoleModel(ModelSpec.parse(large[0]), large[1]) if large else None,
    )


BUILTIN_PACKS: dict[str, ModelPack] = {
    p.name: p
    for p in (
        _pack(
            "openai",
            "OpenAI: gpt-5.5 plans and builds, gpt-5-mini names, summarizes and writes commit "
            "messages; gpt-4.1 takes input too big for the others",
            ("openai/gpt-5.5", 350_000),
            ("openai/gpt-5-mini", 350_000),
            ("openai/gpt-4.1", 950_000),
        ),
        _pack(
            "anthropic",
            "Anthropic: claude-sonnet-5-5 plans and builds, claude-haiku-4-5 names, summarizes "
            "and writes commit messages",
            ("anthropic/claude-sonnet-5-5", 180_000),
            ("anthropic/claude-haiku-4-5", 180_000),
            None,
        ),
        _pack(
            "azure",
            "Azure OpenAI: deployments named gpt-5.5 and gpt-5-mini; one named gpt-4.1 takes "
            "input too big for the others",
            ("azure/gpt-5.5", 350_000),
            ("azure/gpt-5-mini", 350_000),
            ("azure/gpt-4.1", 950_000),
        ),
        _pack(
            "ollama",
            "Ollama (or any OpenAI-compatible server): llama3.1 for every role",
            ("ollama/llama3.1", 120_000),
            ("ollama/llama3.1", 120_000),
            None,
        ),
    )
}

PACK_FOR_PROVIDER = {"openai": "openai", "anthropic": "anthropic", "azure": "azure"}
"""The built-in pack a provider's default model belongs to (``ollama`` has its own below)."""


def default_pack(planner: ModelSpec) -> ModelPack:
    """The pack a plan uses when it names none: its planner's provider's, with that planner.

    Every role then stays on the planner's provider, so the key the user already has is the
    only one a stream needs.
    """
    pack = BUILTIN_PACKS[PACK_FOR_PROVIDER.get(planner.provider, "ollama")]
    if pack.roles["planner"].model == planner:
        return pack
    if planner.provider not in PACK_FOR_PROVIDER:  # ollama: every role on the chosen model
        main = RoleModel(planner, pack.roles["planner"].max_input_tokens)
        return replace(pack, name=pack.name, roles=dict.fromkeys(ROLES, main))
    roles = dict(pack.roles)
    roles["planner"] = RoleModel(planner, pack.roles["planner"].max_input_tokens)
    return replace(pack, roles=roles)


@dataclass(frozen=True, slots=True)
class PlanModels:
    """A plan's model settings (Rule 3). An empty one defers to ``default_pack``."""

    pack: str | None = None
    roles: Mapping[str, RoleModel] = field(default_factory=dict)
    large_context: RoleModel | None = None
    auto_continue: int = DEFAULT_AUTO_CONTINUE
    summary_tokens: int = DEFAULT_SUMMARY_TOKENS

    def __post_init__(self) -> None:
        unknown = set(self.roles) - set(ROLES)
        if unknown:
            raise _invalid(f"unknown role {sorted(unknown)[0]!r}; roles are {', '.join(ROLES)}")
        if not 0 <= self.auto_continue <= MAX_AUTO_CONTINUE:
            raise _invalid(f"auto_continue must be between 0 and {MAX_AUTO_CONTINUE}")
        if self.summary_tokens < 1000:
            raise _invalid("summary_tokens must be at least 1000")

    # -- resolution -------------------------------------------------------------------------

    def resolved(self, planner: ModelSpec | None = None) -> PlanModels:
        """Every role filled in: the plan's overrides over its pack, ``planner`` over all.

        ``planner`` is a model named for one stream (``tell -m``); it is used only when the plan
        sets neither a pack nor a planner, or when given explicitly for this stream.
        """
        base: ModelPack
        if self.pack in BUILTIN_PACKS:
            base = BUILTIN_PACKS[self.pack]
        elif self.pack is not None and "planner" in self.roles:
            # A custom pack travels whole (``from_pack``): a role it leaves out takes its
            # planner's model (Rule 2), and it has a large-context model only if it names one.
            base = ModelPack(self.pack, "", {"planner": self.roles["planner"]})
        elif "planner" in self.roles:  # the plan's own planner, with its provider's pack
            base = default_pack(self.roles["planner"].model)
        else:
            base = default_pack(planner or ModelSpec.parse(DEFAULT_MODELS["openai"]))
        roles = {role: self.roles.get(role) or base.role(role) for role in ROLES}
        if planner is not None and planner != roles["planner"].model:
            roles["planner"] = RoleModel(planner, roles["planner"].max_input_tokens)
        large = self.large_context or base.large_context
        return replace(self, pack=base.name, roles=roles, large_context=large)

    def model(self, role: str) -> RoleModel:
        if role not in ROLES:
            raise _invalid(f"unknown role {role!r}")
        return self.roles.get(role) or self.resolved().roles[role]

    def for_input(self, role: str, tokens: int) -> RoleModel:
        """The model a call of ``role`` with ``tokens`` of input goes to (Rule 4)."""
        chosen = self.model(role)
        if tokens <= chosen.max_input_tokens:
            return chosen
        large = self.large_context
        if large is not None and tokens <= large.max_input_tokens:
            return large
        most = max(chosen.max_input_tokens, large.max_input_tokens if large else 0)
        raise ContextTooLarge(
            f"the input for the {role} is about {tokens:,} tokens, more than any model this "
            f"plan may use takes ({most:,}); remove some context (`plancast rm`) or set a "
            "large-context model (`plancast set-model large_context PROVIDER/MODEL`)"
        )

    def providers(self) -> dict[str, list[str]]:
        """Each provider these settings may call → the roles that call it (Rule 5)."""
        full = self.resolved()  # every role, and the large-context model the pack adds
        out: dict[str, list[str]] = {}
        for role in ROLES:
            out.setdefault(full.roles[role].model.provider, []).append(role)
        if full.large_context is not None:
            out.setdefault(full.large_context.model.provider, []).append("large_context")
        return out

    # -- storage ----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.pack is not None:
            out["pack"] = self.pack
        if self.roles:
            out["roles"] = {r: m.to_dict() for r, m in self.roles.items()}
        if self.large_context is not None:
            out["large_context"] = self.large_context.to_dict()
        if self.auto_continue != DEFAULT_AUTO_CONTINUE:
            out["auto_continue"] = self.auto_continue
        if self.summary_tokens != DEFAULT_SUMMARY_TOKENS:
            out["summary_tokens"] = self.summary_tokens
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PlanModels:
        """Settings from their stored or sent form.

        Raises:
            PlancastError: ``invalid_request``, naming the field that is wrong.
        """
        if not isinstance(data, Mapping):
            raise _invalid("model settings must be an object")
        unknown = set(data) - {"pack", "roles", "large_context", "auto_continue", "summary_tokens"}
        if unknown:
            raise _invalid(f"unknown model setting {sorted(unknown)[0]!r}")
        pack = data.get("pack")
        if pack is not None and (not isinstance(pack, str) or not 0 < len(pack) <= MAX_PACK_NAME):
            raise _invalid(f"'pack' must be a name of 1 to {MAX_PACK_NAME} characters")
        raw_roles = data.get("roles", {})
        if not isinstance(raw_roles, Mapping):
            raise _invalid("'roles' must map role names to models")
        roles = {
            str(role): RoleModel.from_value(value, f"role {role!r}")
            for role, value in raw_roles.items()
        }
        if pack is not None and pack not in BUILTIN_PACKS and "planner" not in roles:
            raise _invalid(
                f"unknown pack {pack!r}: the built-in packs are {', '.join(BUILTIN_PACKS)}; "
                "a custom pack is sent with its roles, a planner at least"
            )
        large = data.get("large_context")
        auto, budget = (
            data.get("auto_continue", DEFAULT_AUTO_CONTINUE),
            data.get("summary_tokens", DEFAULT_SUMMARY_TOKENS),
        )
        for name, value in (("auto_continue", auto), ("summary_tokens", budget)):
            if not isinstance(value, int) or isinstance(value, bool):
                raise _invalid(f"{name!r} must be a whole number")
        return cls(
            pack=pack,
            roles=roles,
            large_context=(
                RoleModel.from_value(large, "large_context", DEFAULT_LARGE_CONTEXT_TOKENS)
                if large is not None
                else None
            ),
            auto_continue=auto,
            summary_tokens=budget,
        )

    @classmethod
    def from_pack(cls, pack: ModelPack) -> PlanModels:
        """Settings that pin every role of ``pack`` (a custom pack travels whole to the server)."""
        is_builtin = BUILTIN_PACKS.get(pack.name) == pack
        if is_builtin:
            return cls(pack=pack.name)
        roles = {role: pack.role(role) for role in ROLES}  # a role left out: the planner's
        return cls(pack=pack.name, roles=roles, large_context=pack.large_context)


def parse_packs(text: str) -> dict[str, ModelPack]:
    """Custom packs from TOML (Rule 2).

    Raises:
        PlancastError: ``invalid_request`` for bad TOML or a bad pack, naming where.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _invalid(f"model packs: not valid TOML ({exc})") from None
    tables = data.get("packs", {})
    if not isinstance(tables, dict):
        raise _invalid("model packs: [packs.NAME] tables expected")
    packs: dict[str, ModelPack] = {}
    for name, table in tables.items():
        where = f"pack {name!r}"
        if not isinstance(table, dict):
            raise _invalid(f"{where} must be a table")
        if not 0 < len(name) <= MAX_PACK_NAME:
            raise _invalid(f"{where}: a pack name has 1 to {MAX_PACK_NAME} characters")
        if name in BUILTIN_PACKS:
            raise _invalid(f"{where} is a built-in pack; give yours another name")
        unknown = set(table) - {*ROLES, "large_context", "description"}
        if unknown:
            raise _invalid(f"{where}: unknown key {sorted(unknown)[0]!r}")
        if "planner" not in table:
            raise _invalid(f"{where} needs a planner")
        roles = {
            role: RoleModel.from_value(table[role], f"{where} {role}")
            for role in ROLES
            if role in table
        }
        large = table.get("large_context")
        description = table.get("description", "")
        if not isinstance(description, str):
            raise _invalid(f"{where}: description must be a string")
        packs[name] = ModelPack(
            name,
            description,
            roles,
            RoleModel.from_value(large, f"{where} large_context", DEFAULT_LARGE_CONTEXT_TOKENS)
            if large is not None
            else None,
        )
    return packs


def _invalid(message: str) -> PlancastError:
    return PlancastError(message, code=ErrorCode.INVALID_REQUEST)
