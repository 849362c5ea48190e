"""A change the server cannot build, end to end: the real server, the real CLI, files on disk.

A reply proposes a new file and an edit whose find text is not in the loaded file; the builder
model fails every rebuild. ``diff`` shows the new file and says, on stderr, which file was not
built and why (never inside the patch ``diff --git`` writes); ``apply`` says so too before it
writes, writes only the new file and leaves the other byte for byte as it was.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from plancast.server.streams.run import REBUILD_ATTEMPTS
from tests.e2e.conftest import Cli
from tests.emulator.script import Reply
from tests.emulator.server import Emulator

pytestmark = pytest.mark.e2e

GIT = shutil.which("git") or "git"

APP = b"import os\r\n\r\nx = 1\r\nprint(x)\r\n"  # CRLF: any rewrite would show
GREET = 'def greet(name):\n    return f"hello {name}"\n'

REPLY = f"""A greeting, and x raised.

<pc:file path="greet.py">
{GREET}</pc:file>

<pc:edit path="app.py">
<pc:find>
x = 100
</pc:find>
<pc:replace>
x = 200
</pc:replace>
</pc:edit>

Done.
"""
NOT_A_FILE = Reply(text="Sure, I fixed the file for you.", role="builder")  # no <pc:file>
REASON = (
    "edit of app.py failed: the find text starting 'x = 100' is not in the file; "
    f"rebuilding it failed {REBUILD_ATTEMPTS} times, last: the builder's reply held no "
    "single <pc:file> block for app.py"
)
NOTE = f"not built: app.py — {REASON}"

LATER = """One more file.

<pc:file path="later.txt">
later
</pc:file>
"""


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_a_change_that_cannot_be_built_is_reported_and_never_applied(
    cli: Cli, emulator: Emulator
) -> None:
    project = cli.project
    (project / "app.py").write_bytes(APP)
    ok(cli("new", "-n", "failed-builds"))
    ok(cli("load", "app.py"))

    emulator.push(Reply(text=REPLY, chunk_chars=13), *[NOT_A_FILE] * REBUILD_ATTEMPTS)
    told = ok(cli("tell", "add a greeting and raise x"))
    assert len(emulator.role_requests("builder")) == REBUILD_ATTEMPTS
    assert "1 pending change(s) to 1 file(s)" in told.stdout
    assert "app.py" in told.stderr  # the stream said so as it ended

    # -- diff: the new file on stdout, the file not built on stderr, with its reason
    shown = ok(cli("diff"))
    assert "+++ b/greet.py" in shown.stdout and '+    return f"hello {name}"\n' in shown.stdout
    assert "app.py" not in shown.stdout
    assert NOTE in shown.stderr.splitlines()

    patch = ok(cli("diff", "--git"))  # stdout is the patch and nothing else
    assert patch.stdout.startswith("diff --git a/greet.py b/greet.py\nnew file mode 100644\n")
    assert "app.py" not in patch.stdout and "not built" not in patch.stdout
    assert NOTE in patch.stderr.splitlines()
    if shutil.which(GIT):
        subprocess.run([GIT, "init", "-q"], cwd=project, check=True)
        done = subprocess.run(
            [GIT, "apply", "--check", "-"], cwd=project, input=patch.stdout, text=True
        )
        assert done.returncode == 0

    only_app = ok(cli("diff", "app.py"))  # the paths chosen choose the notes too
    assert "no pending changes" in only_app.stdout and NOTE in only_app.stderr.splitlines()
    assert "not built" not in ok(cli("diff", "greet.py")).stderr

    # -- apply: said before writing; only the new file is written
    applied = ok(cli("apply"))
    assert "created greet.py" in applied.stdout and "app.py" not in applied.stdout
    assert NOTE in applied.stderr.splitlines()
    assert (project / "greet.py").read_text() == GREET
    assert (project / "app.py").read_bytes() == APP

    # The latest reply's failure is still told once its other change is applied, and applying
    # again writes nothing.
    after = ok(cli("diff"))
    assert "no pending changes" in after.stdout and NOTE in after.stderr.splitlines()
    again = ok(cli("apply"))
    assert "no pending changes" in again.stdout and NOTE in again.stderr.splitlines()
    assert (project / "app.py").read_bytes() == APP

    # -- reject PATH lets the record of a failed change go; `reject` alone keeps it
    assert "nothing to reject" in ok(cli("reject")).stdout
    assert NOTE in ok(cli("diff")).stderr.splitlines()
    assert "rejected app.py" in ok(cli("reject", "app.py")).stdout
    assert "not built" not in ok(cli("diff")).stderr
    assert (project / "app.py").read_bytes() == APP

    # -- a later reply: an older reply's failure is not repeated
    emulator.push(Reply(text=LATER))
    ok(cli("tell", "one more file"))
    later = ok(cli("diff"))
    assert "+++ b/later.txt" in later.stdout
    assert "not built" not in later.stderr
    assert (project / "app.py").read_bytes() == APP
