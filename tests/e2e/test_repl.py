"""The interactive session in a pseudo-terminal, driven as a user would type."""

from __future__ import annotations

import os

import pexpect
import pytest

from tests.e2e.conftest import BIN, Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

REPLY = 'Adding it.\n<pc:file path="greet.py">\nprint("hi")\n</pc:file>\nDone.\n'


def test_first_plan_streams_and_applies_from_the_session(cli: Cli, emulator: Emulator) -> None:
    emulator.push(Reply(text=REPLY, chunk_chars=4))
    child = pexpect.spawn(
        str(BIN / "plancast"),
        cwd=str(cli.project),
        env={**os.environ, **cli.env, "TERM": "dumb"},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    try:
        child.expect("created plan")  # a new directory gets its project and plan at once
        child.expect("tell> ")
        child.sendline("add a greeting")
        child.expect("Adding it.")
        child.expect("writing greet.py")
        child.expect("1 pending change")
        child.expect("tell> ")
        child.sendline("\\diff")
        child.expect(r'\+print\("hi"\)')
        child.expect("tell> ")
        child.sendline("\\apply")
        child.expect("created greet.py")
        child.expect("tell> ")
        child.sendline('\\load "unbalanced')
        child.expect("cannot read that command")
        child.expect("tell> ")
        child.sendline("\\quit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    assert (cli.project / "greet.py").read_text() == 'print("hi")\n'
