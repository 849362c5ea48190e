"""Pytest fixtures for the provider emulator.

One server for the whole session (starting uvicorn costs ~50 ms), reset before every test so that
no scripted reply or recorded request leaks from one test into the next.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .server import Emulator


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[Emulator]:
    """The shared running emulator; tests want `emulator`, which is reset for them."""
    with Emulator.running() as emu:
        yield emu


@pytest.fixture
def emulator(emulator_server: Emulator) -> Iterator[Emulator]:
    """The running emulator with an empty reply queue and no recorded requests."""
    emulator_server.reset()
    yield emulator_server
    emulator_server.reset()
