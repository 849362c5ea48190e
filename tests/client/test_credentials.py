"""Choosing a model and reading only its provider's credentials from the environment."""

from __future__ import annotations

import pytest

from plancast.client.credentials import choose_model, credentials_for
from plancast.shared import ErrorCode, ModelSpec, PlancastError


def test_explicit_model_wins_over_environment() -> None:
    env = {"PLANCAST_MODEL": "openai/gpt-4.1", "ANTHROPIC_API_KEY": "k"}
    assert str(choose_model("anthropic/claude-x", env)) == "anthropic/claude-x"
    assert str(choose_model(None, env)) == "openai/gpt-4.1"


@pytest.mark.parametrize(
    ("env", "provider"),
    [
        ({"ANTHROPIC_API_KEY": "a", "OPENAI_API_KEY": "o"}, "anthropic"),
        ({"OPENAI_API_KEY": "o"}, "openai"),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}, "openai"),
        ({"AZURE_OPENAI_API_KEY": "z"}, "azure"),
        ({"OLLAMA_BASE_URL": "http://127.0.0.1:11434/v1"}, "ollama"),
    ],
)
def test_first_configured_provider_is_chosen(env: dict[str, str], provider: str) -> None:
    assert choose_model(None, env).provider == provider


def test_nothing_configured_names_what_to_set() -> None:
    with pytest.raises(PlancastError) as info:
        choose_model(None, {})
    assert info.value.code == ErrorCode.MISSING_CREDENTIALS
    assert "OPENAI_API_KEY" in info.value.message and "ANTHROPIC_API_KEY" in info.value.message


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(PlancastError, match="ANTHROPIC_API_KEY"):
        credentials_for(ModelSpec.parse("anthropic/claude-x"), {"OPENAI_API_KEY": "o"})


def test_only_the_needed_provider_is_read() -> None:
    env = {"OPENAI_API_KEY": "o-key", "ANTHROPIC_API_KEY": "a-key"}
    creds = credentials_for(ModelSpec.parse("anthropic/claude-x"), env)
    assert (creds.provider, creds.api_key) == ("anthropic", "a-key")
    assert "a-key" not in repr(creds)


def test_openai_compatible_server_needs_no_key() -> None:
    creds = credentials_for(ModelSpec.parse("openai/local"), {"OPENAI_BASE_URL": "http://h/v1"})
    assert creds.api_key is None and creds.base_url == "http://h/v1"


def test_ollama_needs_no_key_and_azure_needs_an_endpoint() -> None:
    assert credentials_for(ModelSpec.parse("ollama/llama3.1"), {}).api_key is None
    with pytest.raises(PlancastError, match="AZURE_OPENAI_ENDPOINT"):
        credentials_for(ModelSpec.parse("azure/gpt"), {"AZURE_OPENAI_API_KEY": "z"})
