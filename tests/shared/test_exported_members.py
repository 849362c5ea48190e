"""``plancast.shared.__all__`` matches what the package defines (fails on drift)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types

import plancast.shared
from plancast.shared import __all__ as exported_members

# Public-looking classes and functions of the ``_`` modules that are deliberately not
# exported, each with its reason. Adding a public class or function without exporting it
# (or listing it here) fails ``test_public_definitions_are_exported``.
NOT_EXPORTED = {
    "plancast.shared._protocol.decode": "internal; decode_client and decode_server are the API",
    "plancast.shared._seal.b64encode": "a helper of sealing, used by the worker for its key",
    "plancast.shared._seal.b64decode": "a helper of sealing",
}


def _private_modules() -> list[types.ModuleType]:
    return [
        importlib.import_module(f"plancast.shared.{info.name}")
        for info in pkgutil.iter_modules(plancast.shared.__path__)
        if info.name.startswith("_")
    ]


def _isort_key(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return 0, name
    return (1 if name[0].isupper() else 2), name


def test_all_is_sorted_and_unique() -> None:
    assert exported_members == sorted(exported_members, key=_isort_key)
    assert len(set(exported_members)) == len(exported_members)


def test_every_exported_name_exists() -> None:
    for name in exported_members:
        assert getattr(plancast.shared, name, None) is not None, name


def test_all_imports_are_exported() -> None:
    public = {
        name
        for name, value in vars(plancast.shared).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(exported_members)


def test_public_definitions_are_exported() -> None:
    modules = _private_modules()
    assert {m.__name__.rsplit(".", 1)[1] for m in modules} >= {
        "_build",
        "_changes",
        "_diff",
        "_edits",
        "_errors",
        "_hunks",
        "_paths",
        "_protocol",
        "_providers",
        "_reply",
        "_seal",
        "_validate",
    }
    missing = []
    for module in modules:
        for name, value in vars(module).items():
            if name.startswith("_") or not (inspect.isclass(value) or inspect.isfunction(value)):
                continue
            if value.__module__ != module.__name__:
                continue  # imported from elsewhere
            qualified = f"{module.__name__}.{name}"
            if name not in exported_members and qualified not in NOT_EXPORTED:
                missing.append(qualified)
            if name in exported_members:
                assert getattr(plancast.shared, name) is value, qualified
    assert missing == []


def test_the_not_exported_list_is_current() -> None:
    for qualified in NOT_EXPORTED:
        module, name = qualified.rsplit(".", 1)
        assert hasattr(importlib.import_module(module), name), qualified
        assert name not in exported_members, qualified
