"""Choosing a model and reading only its provider's credentials: the environment, then the keyring.

The keyring here is keyring's ``fail`` backend (as on a machine without one), so that no test
reads the real OS keyring; ``test_keys.py`` drives an in-memory one.
"""

from __future__ import annotations

import keyring
import keyring.core
import pytest
from keyring.backends import fail

from plancast.client.credentials import choose_model, credentials_for
from plancast.shared import ErrorCode, ModelSpec, PlancastError


@pytest.fixture(autouse=True)
def no_os_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keyring.core, "_keyring_backend", None)  # restored after the test
    keyring.set_keyring(fail.Keyring())


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


def test_missing_key_names_the_variable_and_the_keys_command() -> None:
    with pytest.raises(PlancastError) as info:
        credentials_for(ModelSpec.parse("anthropic/claude-x"), {"OPENAI_API_KEY": "o"})
    assert info.value.code == ErrorCode.MISSING_CREDENTIALS
    assert "export ANTHROPIC_API_KEY=" in info.value.message
    assert "plancast keys set anthropic" in info.value.message


def test_a_stored_key_is_used_only_when_the_variable_is_unset() -> None:
    asked: list[str] = []

    def stored(provider: str) -> str | None:
        asked.append(provider)
        return f"stored-{provider}"

    model = ModelSpec.parse("anthropic/claude-x")
    assert credentials_for(model, {"ANTHROPIC_API_KEY": "env"}, stored=stored).api_key == "env"
    assert asked == []
    assert credentials_for(model, {}, stored=stored).api_key == "stored-anthropic"
    assert asked == ["anthropic"]


def test_stored_keys_count_after_every_environment_variable() -> None:
    stored = {"openai": "o"}.get
    assert choose_model(None, {}, stored=stored).provider == "openai"
    assert choose_model(None, {"AZURE_OPENAI_API_KEY": "z"}, stored=stored).provider == "azure"
    assert choose_model(None, {}, stored={"azure": "z", "openai": "o"}.get).provider == "openai"
    with pytest.raises(PlancastError, match="plancast keys set"):
        choose_model(None, {}, stored={"ollama": "x"}.get)  # an optional key picks nothing


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
