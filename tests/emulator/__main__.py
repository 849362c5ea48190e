"""Run the provider emulator as its own process.

    python -m tests.emulator --port 0 --reply-file replies.json

Prints the base URL (root; OpenAI clients add /v1) on stdout, then serves until killed. The reply
file holds a JSON list of objects whose keys are `Reply` fields. More replies can be queued while
it runs with `POST /_emulator/replies` (same JSON), and `GET /_emulator/requests` shows what came
in: end-to-end tests that run the server under test in another process use these.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

from .script import Reply
from .server import Emulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--reply-file", type=Path, help="JSON list of scripted replies")
    args = parser.parse_args(argv)

    replies: list[Reply] = []
    if args.reply_file:
        replies = [Reply.from_json(item) for item in json.loads(args.reply_file.read_text())]
    with Emulator.running(args.host, args.port, replies) as emulator:
        print(emulator.base_url, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
