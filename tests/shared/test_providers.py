"""Providers and model names."""

from __future__ import annotations

import pytest

from plancast.shared import DEFAULT_MODELS, PROVIDERS, ErrorCode, ModelSpec, PlancastError


def test_every_provider_has_a_default_model_that_parses() -> None:
    assert set(DEFAULT_MODELS) == set(PROVIDERS)
    for name, model in DEFAULT_MODELS.items():
        spec = ModelSpec.parse(model)
        assert spec.provider == name
        assert str(spec) == model


def test_providers() -> None:
    assert {p.sdk for p in PROVIDERS.values()} == {"openai", "anthropic"}
    assert PROVIDERS["ollama"].default_base_url == "http://127.0.0.1:11434/v1"
    assert not PROVIDERS["ollama"].key_required
    assert PROVIDERS["azure"].api_version_env == "OPENAI_API_VERSION"


@pytest.mark.parametrize(
    ("provider", "base_url", "needed"),
    [
        ("openai", None, True),
        ("openai", "", True),
        ("openai", "http://127.0.0.1:8000/v1", False),  # an OpenAI-compatible local server
        ("anthropic", "http://127.0.0.1:9", True),
        ("azure", "https://x.example", True),
        ("ollama", None, False),
    ],
)
def test_needs_key(provider: str, base_url: str | None, needed: bool) -> None:
    assert PROVIDERS[provider].needs_key(base_url) is needed


def test_a_model_name_keeps_its_slashes() -> None:
    spec = ModelSpec.parse(" ollama/library/llama3.1:8b ")
    assert spec == ModelSpec("ollama", "library/llama3.1:8b")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("gpt-4.1", "must be written provider/model"),
        ("openai/", "must be written provider/model"),
        ("cohere/command", "unknown provider in the model name"),
    ],
)
def test_bad_model_names(text: str, message: str) -> None:
    with pytest.raises(PlancastError, match=message) as info:
        ModelSpec.parse(text)
    assert info.value.code is ErrorCode.INVALID_REQUEST
