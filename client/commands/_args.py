"""Arguments several commands share the shape of."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def list_or(parser: Any, actions: Sequence[str], help: str) -> None:
    """The optional first word of a command that lists by default (`org`, `org switch ORG`)."""
    parser.add_argument(
        "action", nargs="?", default="list", choices=actions, metavar="ACTION", help=help
    )
