"""What the planner model is told: the reply format, the context, the conversation.

The reply format described here is the one ``plancast.shared``'s reply parser
reads; change them together.
"""

from __future__ import annotations

from collections.abc import Sequence

from plancast.server.domain.context import ContextItem
from plancast.server.domain.convo import Message
from plancast.server.llm.types import ChatMessage

FORMAT = """\
When you change files, write each change as a block, with every tag alone on its own line:

To create a file or replace a whole file:
<pc:file path="relative/path.ext">
the complete new content of the file
</pc:file>

To edit part of an existing file, quote lines that exist in it now, exactly, and give their
replacement. Quote enough lines to match exactly one place. One edit block may hold several
find/replace pairs, applied in order:
<pc:edit path="relative/path.ext">
<pc:find>
lines exactly as they are in the file now
</pc:find>
<pc:replace>
the lines to put in their place
</pc:replace>
</pc:edit>

Paths are relative to the project root and use forward slashes. Do not wrap blocks in markdown
code fences. Explain your plan briefly before the blocks. When the whole task is done, say so."""

TELL = f"""\
You are plancast, an expert software engineer working on the user's project. You plan and write
code changes; the user reviews them as a diff and applies them to their files.

{FORMAT}"""

CHAT = """\
You are plancast, an expert software engineer discussing the user's project with them. This is
chat mode: answer questions and discuss approaches, but do not propose file changes and do not
write change blocks. If the user wants changes, tell them to switch to tell mode."""

CONTINUE_PROMPT = "Continue from where you stopped. Do not repeat what you already wrote."


def system_prompt(mode: str, context: Sequence[ContextItem]) -> str:
    """The system prompt for ``mode``, followed by the loaded context."""
    base = CHAT if mode == "chat" else TELL
    if not context:
        return base + "\n\nNo project files are loaded into the context yet."
    parts = [base, "\n\nThe user loaded this context:"]
    for item in context:
        parts.append(f'\n<pc:context kind="{item.kind}" name="{item.name}">\n')
        parts.append(item.content or "")
        if item.content and not item.content.endswith("\n"):
            parts.append("\n")
        parts.append("</pc:context>")
    return "".join(parts)


def conversation(history: Sequence[Message], prompt: str | None) -> tuple[ChatMessage, ...]:
    """The chat messages for a call: the history, then the new prompt.

    Providers want turns to alternate, starting with the user; consecutive
    messages of one role (a stopped reply followed by ``continue``) are merged.
    """
    turns: list[ChatMessage] = []
    items = [(m.role, m.content) for m in history if m.content]
    if prompt:
        items.append(("user", prompt))
    for role, content in items:
        if turns and turns[-1].role == role:
            turns[-1] = ChatMessage(role, turns[-1].content + "\n\n" + content)  # type: ignore[arg-type]
        else:
            turns.append(ChatMessage(role, content))  # type: ignore[arg-type]
    if turns and turns[0].role != "user":
        turns.insert(0, ChatMessage("user", "(earlier conversation)"))
    if not turns or turns[-1].role != "user":
        turns.append(ChatMessage("user", CONTINUE_PROMPT))
    return tuple(turns)
