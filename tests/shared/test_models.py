"""Model roles and packs: resolution, routing by input size, storage and custom packs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plancast.shared import (
    BUILTIN_PACKS,
    ROLES,
    ContextTooLarge,
    ErrorCode,
    ModelPack,
    ModelSpec,
    PlancastError,
    PlanModels,
    RoleModel,
    default_pack,
    parse_packs,
)


def spec(text: str) -> ModelSpec:
    return ModelSpec.parse(text)


def role(text: str, tokens: int = 100_000) -> RoleModel:
    return RoleModel(spec(text), tokens)


def models_of(settings: PlanModels) -> dict[str, str]:
    """Each role's model name, and the large-context one (or None)."""
    out: dict[str, Any] = {r: str(settings.roles[r].model) for r in ROLES}
    out["large_context"] = str(settings.large_context.model) if settings.large_context else None
    return out


def invalid(call: Any, *args: Any) -> str:
    """The message of the ``invalid_request`` error ``call(*args)`` raises."""
    with pytest.raises(PlancastError) as caught:
        call(*args)
    assert caught.value.code == ErrorCode.INVALID_REQUEST
    return caught.value.message


# -- built-in packs and the default pack ------------------------------------------------------


def test_every_builtin_pack_names_every_role_on_one_provider() -> None:
    assert set(BUILTIN_PACKS) == {"openai", "anthropic", "azure", "ollama"}
    for name, pack in BUILTIN_PACKS.items():
        assert pack.name == name and pack.description
        assert set(pack.roles) == set(ROLES)
        providers = {m.model.provider for m in pack.roles.values()}
        if pack.large_context is not None:
            providers.add(pack.large_context.model.provider)
        assert providers == {name}


@pytest.mark.parametrize("provider", ["openai", "anthropic", "azure", "ollama"])
def test_the_default_pack_of_a_providers_default_model_is_its_builtin_pack(
    provider: str,
) -> None:
    builtin = BUILTIN_PACKS[provider]
    assert default_pack(builtin.roles["planner"].model) is builtin


def test_the_default_pack_keeps_another_planner_of_the_provider() -> None:
    pack = default_pack(spec("openai/gpt-4o"))
    assert pack.name == "openai"
    assert pack.roles["planner"] == role("openai/gpt-4o", 350_000)
    assert str(pack.roles["namer"].model) == "openai/gpt-5-mini"
    assert str(pack.roles["builder"].model) == "openai/gpt-5.5"
    assert pack.large_context == BUILTIN_PACKS["openai"].large_context


def test_the_default_pack_of_another_ollama_model_puts_every_role_on_it() -> None:
    pack = default_pack(spec("ollama/qwen2.5-coder"))
    assert pack.name == "ollama" and pack.large_context is None
    assert {r: str(m.model) for r, m in pack.roles.items()} == dict.fromkeys(
        ROLES, "ollama/qwen2.5-coder"
    )
    assert {m.max_input_tokens for m in pack.roles.values()} == {120_000}


def test_a_pack_role_left_out_takes_the_planner() -> None:
    pack = ModelPack("p", "", {"planner": role("anthropic/claude-x")})
    assert pack.role("namer") is pack.roles["planner"]


# -- resolution -------------------------------------------------------------------------------


def test_empty_settings_resolve_to_the_planners_provider_pack() -> None:
    resolved = PlanModels().resolved(spec("anthropic/claude-sonnet-5-5"))
    assert resolved.pack == "anthropic"
    assert resolved.roles == BUILTIN_PACKS["anthropic"].roles
    assert resolved.large_context is None
    # With no planner named at all: the OpenAI pack.
    assert PlanModels().resolved().roles == BUILTIN_PACKS["openai"].roles


def test_overrides_win_over_the_pack_and_the_rest_stays() -> None:
    settings = PlanModels(pack="anthropic", roles={"namer": role("openai/gpt-5-mini", 9_000)})
    resolved = settings.resolved()
    assert resolved.pack == "anthropic"
    assert resolved.roles["namer"] == role("openai/gpt-5-mini", 9_000)
    assert resolved.roles["planner"] == BUILTIN_PACKS["anthropic"].roles["planner"]
    assert resolved.roles["committer"] == BUILTIN_PACKS["anthropic"].roles["committer"]


def test_an_explicit_planner_wins_over_the_plans_and_keeps_its_limit() -> None:
    settings = PlanModels(pack="openai", roles={"planner": role("openai/gpt-4o", 5_000)})
    resolved = settings.resolved(spec("anthropic/claude-x"))
    assert resolved.roles["planner"] == role("anthropic/claude-x", 5_000)
    assert str(resolved.roles["namer"].model) == "openai/gpt-5-mini"  # the pack's, unchanged
    assert settings.resolved().roles["planner"] == role("openai/gpt-4o", 5_000)


def test_a_plan_planner_alone_brings_its_providers_pack() -> None:
    resolved = PlanModels(roles={"planner": role("anthropic/claude-opus", 7_000)}).resolved()
    assert resolved.pack == "anthropic"
    assert resolved.roles["planner"] == role("anthropic/claude-opus", 7_000)
    assert str(resolved.roles["namer"].model) == "anthropic/claude-haiku-4-5"


def test_resolved_keeps_the_budgets() -> None:
    resolved = PlanModels(auto_continue=0, summary_tokens=5_000).resolved()
    assert (resolved.auto_continue, resolved.summary_tokens) == (0, 5_000)


def test_model_of_an_unknown_role_is_refused() -> None:
    assert "unknown role 'painter'" in invalid(PlanModels().model, "painter")


# -- for_input --------------------------------------------------------------------------------


def sized() -> PlanModels:
    return PlanModels(
        pack="openai",
        roles={"planner": role("openai/small", 1_000)},
        large_context=role("openai/huge", 50_000),
    ).resolved()


def test_input_that_fits_goes_to_the_roles_model() -> None:
    assert sized().for_input("planner", 1_000) == role("openai/small", 1_000)


def test_input_too_big_for_the_role_goes_to_the_large_context_model() -> None:
    assert sized().for_input("planner", 1_001) == role("openai/huge", 50_000)
    assert sized().for_input("planner", 50_000) == role("openai/huge", 50_000)


def test_input_too_big_for_every_model_is_refused_with_the_numbers() -> None:
    with pytest.raises(ContextTooLarge) as caught:
        sized().for_input("planner", 60_000)
    assert caught.value.code == ErrorCode.CONTEXT_TOO_LARGE
    message = caught.value.message
    assert "planner" in message and "60,000" in message and "50,000" in message
    assert "plancast rm" in message and "large_context" in message


def test_without_a_large_context_model_the_roles_limit_is_the_one_named() -> None:
    settings = PlanModels(pack="anthropic", roles={"namer": role("anthropic/h", 2_000)}).resolved()
    assert settings.large_context is None
    with pytest.raises(ContextTooLarge) as caught:
        settings.for_input("namer", 2_001)
    assert "2,001" in caught.value.message and "(2,000)" in caught.value.message


def test_a_large_context_model_smaller_than_the_input_is_not_used() -> None:
    settings = PlanModels(
        pack="openai",
        roles={"builder": role("openai/b", 10_000)},
        large_context=role("openai/l", 5_000),
    )
    with pytest.raises(ContextTooLarge) as caught:
        settings.for_input("builder", 10_001)
    assert "(10,000)" in caught.value.message


# -- providers --------------------------------------------------------------------------------


def test_providers_of_a_builtin_pack_include_its_large_context_model() -> None:
    assert PlanModels(pack="openai").providers() == {"openai": [*ROLES, "large_context"]}
    assert PlanModels(pack="anthropic").providers() == {"anthropic": list(ROLES)}


def test_providers_name_the_roles_on_each_provider() -> None:
    settings = PlanModels(
        pack="openai",
        roles={"namer": role("anthropic/h"), "committer": role("anthropic/h")},
        large_context=role("azure/big"),
    )
    assert settings.providers() == {
        "openai": ["planner", "builder", "summarizer"],
        "anthropic": ["namer", "committer"],
        "azure": ["large_context"],
    }


def test_providers_of_every_role_overridden_still_count_the_packs_large_context() -> None:
    settings = PlanModels(pack="openai", roles=dict.fromkeys(ROLES, role("anthropic/a")))
    assert settings.resolved().large_context == BUILTIN_PACKS["openai"].large_context
    assert settings.providers() == {"anthropic": list(ROLES), "openai": ["large_context"]}


# -- storage ----------------------------------------------------------------------------------


def test_empty_settings_store_as_an_empty_object() -> None:
    assert PlanModels().to_dict() == {}
    assert PlanModels.from_dict({}) == PlanModels()


def test_to_dict_writes_what_is_set() -> None:
    settings = PlanModels(
        pack="openai",
        roles={"namer": role("anthropic/h", 2_000)},
        large_context=role("openai/big", 900_000),
        auto_continue=0,
        summary_tokens=1_000,
    )
    assert settings.to_dict() == {
        "pack": "openai",
        "roles": {"namer": {"model": "anthropic/h", "max_input_tokens": 2_000}},
        "large_context": {"model": "openai/big", "max_input_tokens": 900_000},
        "auto_continue": 0,
        "summary_tokens": 1_000,
    }
    assert PlanModels.from_dict(settings.to_dict()) == settings


def test_a_role_may_be_sent_as_a_bare_model_name() -> None:
    settings = PlanModels.from_dict({"roles": {"builder": "anthropic/claude-x"}})
    assert settings.roles == {"builder": role("anthropic/claude-x")}


model_names = st.builds(
    lambda provider, name: f"{provider}/{name}",
    st.sampled_from(["openai", "anthropic", "azure", "ollama"]),
    st.text("abcdefghijklmnopqrstuvwxyz0123456789.-:/", min_size=1, max_size=20).filter(
        lambda n: n.strip() == n
    ),
)
role_models = st.builds(
    RoleModel, st.builds(ModelSpec.parse, model_names), st.integers(1, 2_000_000)
)
plan_models = st.builds(
    PlanModels,
    pack=st.none() | st.sampled_from(sorted(BUILTIN_PACKS)),
    roles=st.dictionaries(st.sampled_from(ROLES), role_models),
    large_context=st.none() | role_models,
    auto_continue=st.integers(0, 20),
    summary_tokens=st.integers(1_000, 10_000_000),
)


@given(plan_models)
def test_settings_survive_a_round_trip_through_their_stored_form(settings: PlanModels) -> None:
    assert PlanModels.from_dict(settings.to_dict()) == settings


@given(plan_models, st.none() | st.builds(ModelSpec.parse, model_names))
def test_resolving_twice_changes_nothing(settings: PlanModels, planner: ModelSpec | None) -> None:
    once = settings.resolved(planner)
    assert set(once.roles) == set(ROLES)
    assert once.resolved() == once
    assert PlanModels.from_dict(once.to_dict()).resolved() == once
    assert once.providers() == settings.resolved(planner).providers()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"roles": {"painter": "openai/x"}}, "unknown role 'painter'"),
        ({"auto_continue": 21}, "auto_continue must be between 0 and 20"),
        ({"auto_continue": -1}, "auto_continue must be between 0 and 20"),
        ({"auto_continue": True}, "'auto_continue' must be a whole number"),
        ({"auto_continue": "3"}, "'auto_continue' must be a whole number"),
        ({"auto_continue": 2.5}, "'auto_continue' must be a whole number"),
        ({"summary_tokens": 999}, "summary_tokens must be at least 1000"),
        ({"summary_tokens": None}, "'summary_tokens' must be a whole number"),
        ({"pack": 5}, "'pack' must be a name"),
        ({"pack": ""}, "'pack' must be a name"),
        ({"pack": "x" * 65}, "'pack' must be a name"),
        ({"pack": "nonesuch"}, "unknown pack 'nonesuch'"),
        ({"roles": ["openai/x"]}, "'roles' must map role names to models"),
        ({"roles": {"planner": 5}}, "role 'planner' must be a model name or a table"),
        ({"roles": {"planner": {"max_input_tokens": 5}}}, "'model' must be a string"),
        (
            {"roles": {"planner": {"model": "openai/x", "max_input_tokens": "9"}}},
            "'max_input_tokens' must be a whole number",
        ),
        (
            {"roles": {"planner": {"model": "openai/x", "max_input_tokens": True}}},
            "'max_input_tokens' must be a whole number",
        ),
        (
            {"roles": {"planner": {"model": "openai/x", "max_input_tokens": 0}}},
            "max_input_tokens for openai/x must be at least 1",
        ),
        ({"roles": {"planner": "gpt-4o"}}, "provider/model"),
        ({"roles": {"planner": "nosuch/model"}}, "unknown provider"),
        ({"large_context": 7}, "large_context must be a model name or a table"),
        ({"large_context": {}}, "'model' must be a string"),
        ({"large_context": False}, "large_context must be a model name or a table"),
        ({"model": "openai/x"}, "unknown model setting 'model'"),
        ({"pack": "openai", "extra": 1}, "unknown model setting 'extra'"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(data: dict[str, Any], words: str) -> None:
    assert words in invalid(PlanModels.from_dict, data)


def test_settings_must_be_an_object() -> None:
    assert "must be an object" in invalid(PlanModels.from_dict, ["pack"])


def test_a_custom_pack_name_is_accepted_with_its_planner() -> None:
    settings = PlanModels.from_dict({"pack": "mine", "roles": {"planner": "openai/gpt-4o"}})
    assert settings.pack == "mine"


# -- custom packs -----------------------------------------------------------------------------

PACKS_TOML = """
[packs.split]
description = "plans on Anthropic, names on OpenAI"
planner = "anthropic/claude-sonnet-5-5"
namer = { model = "openai/gpt-5-mini", max_input_tokens = 8000 }
large_context = { model = "openai/gpt-4.1", max_input_tokens = 900000 }

[packs.tiny]
planner = { model = "ollama/llama3.1", max_input_tokens = 4000 }
"""


def test_custom_packs_are_read_with_roles_as_strings_or_tables() -> None:
    packs = parse_packs(PACKS_TOML)
    assert list(packs) == ["split", "tiny"]
    split = packs["split"]
    assert split.description == "plans on Anthropic, names on OpenAI"
    assert split.roles == {
        "planner": role("anthropic/claude-sonnet-5-5"),
        "namer": role("openai/gpt-5-mini", 8_000),
    }
    assert split.large_context == role("openai/gpt-4.1", 900_000)
    assert packs["tiny"].roles == {"planner": role("ollama/llama3.1", 4_000)}
    assert packs["tiny"].description == "" and packs["tiny"].large_context is None


def test_no_packs_table_means_no_packs() -> None:
    assert parse_packs("") == {}
    assert parse_packs("# nothing here\n") == {}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[packs.p]\nnamer = "openai/x"\n', "pack 'p' needs a planner"),
        ("[packs.p\nplanner = 1\n", "not valid TOML"),
        ('[packs.p]\nplanner = "openai/x"\nplaner = "openai/y"\n', "unknown key 'planer'"),
        ('packs = "openai"\n', "[packs.NAME] tables expected"),
        ('[packs]\np = "openai/x"\n', "pack 'p' must be a table"),
        ("[packs.p]\nplanner = 5\n", "pack 'p' planner must be a model name or a table"),
        ('[packs.p]\nplanner = { model = "x" }\n', "provider/model"),
        ('[packs.p]\nplanner = "openai/x"\ndescription = 3\n', "description must be a string"),
        (f'[packs.{"p" * 65}]\nplanner = "openai/x"\n', "1 to 64 characters"),
        ('[packs.openai]\nplanner = "openai/x"\n', "pack 'openai' is a built-in pack"),
        ('[packs.p]\nplanner = "openai/x"\nlarge_context = 1\n', "large_context must be"),
    ],
)
def test_bad_custom_packs_are_refused_naming_where(text: str, words: str) -> None:
    assert words in invalid(parse_packs, text)


def test_a_builtin_pack_travels_by_name() -> None:
    for name, pack in BUILTIN_PACKS.items():
        settings = PlanModels.from_pack(pack)
        assert settings == PlanModels(pack=name)
        assert settings.to_dict() == {"pack": name}
        assert settings.resolved().roles == pack.roles


def test_a_custom_pack_travels_whole() -> None:
    split = parse_packs(PACKS_TOML)["split"]
    settings = PlanModels.from_pack(split)
    assert settings.pack == "split"
    assert settings.roles["namer"] == role("openai/gpt-5-mini", 8_000)
    assert settings.large_context == role("openai/gpt-4.1", 900_000)
    # Every role is pinned: what the server receives needs no copy of the file.
    stored = PlanModels.from_dict(settings.to_dict())
    assert set(stored.roles) == set(ROLES) and stored == settings
    assert models_of(stored.resolved()) == {
        "planner": "anthropic/claude-sonnet-5-5",
        "builder": "anthropic/claude-sonnet-5-5",
        "summarizer": "anthropic/claude-sonnet-5-5",
        "namer": "openai/gpt-5-mini",
        "committer": "anthropic/claude-sonnet-5-5",
        "large_context": "openai/gpt-4.1",
    }
    assert stored.resolved().pack == "split"
    assert stored.providers() == {
        "anthropic": ["planner", "builder", "summarizer", "committer"],
        "openai": ["namer", "large_context"],
    }


def test_a_custom_pack_without_a_large_context_model_gets_none() -> None:
    mine = parse_packs('[packs.mine]\nplanner = "openai/gpt-4o"\n')["mine"]
    resolved = PlanModels.from_pack(mine).resolved()
    assert resolved.large_context is None  # not the built-in OpenAI pack's
    assert models_of(resolved) == dict.fromkeys(ROLES, "openai/gpt-4o") | {"large_context": None}
    with pytest.raises(ContextTooLarge):
        resolved.for_input("planner", 100_001)
