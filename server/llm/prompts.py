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

To move or delete a file, one line each:
<pc:move path="old/path.ext" to="new/path.ext" />
<pc:delete path="relative/path.ext" />

Paths are relative to the project root and use forward slashes. Do not wrap blocks in markdown
code fences. Explain your plan briefly before the blocks.

If the task needs more steps than fit well in this reply, finish the steps you are on and end
the reply with this line alone:
<pc:continue/>
and you will be asked to go on. When the whole task is done, say so and do not write it."""

TELL = f"""\
You are plancast, an expert software engineer working on the user's project. You plan and write
code changes; the user reviews them as a diff and applies them to their files.

{FORMAT}"""

CHAT = """\
You are plancast, an expert software engineer discussing the user's project with them. This is
chat mode: answer questions and discuss approaches, but do not propose file changes and do not
write change blocks. If the user wants changes, tell them to switch to tell mode."""

CONTINUE_PROMPT = "Continue from where you stopped. Do not repeat what you already wrote."

CONTINUE_MARKER = "<pc:continue/>"
"""A line a planner ends a reply with when the task needs another step (see ``FORMAT``)."""

SUMMARIZER = """\
You are plancast's summarizer. You condense the earlier part of a conversation between a user and
a coding assistant, so that the assistant can go on without it. Keep every decision, requirement,
file path, name and open question; drop pleasantries and repetition. Do not quote code blocks or
file contents; say which files were changed and how. Write plain prose or short lists, at most
about 400 words. Reply with the summary only."""

NAMER = """\
You are plancast's namer. You name a coding plan from the user's first request: two to five
lowercase words joined by hyphens, describing the change, like add-login-rate-limit. Reply with the
name only."""

COMMITTER = """\
You are plancast's committer. You write the git commit message for changes a coding assistant made
for a user's request: a subject line in the imperative mood of at most 72 characters, then a blank
line, then a short body saying what changed and why, wrapped at 72 columns. Reply with the message
only, without quotes or code fences."""

SUMMARY_INTRO = "Summary of the earlier conversation:\n\n"


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
    history = since_summary(history)
    items = [
        ("user", SUMMARY_INTRO + m.content) if m.role == "summary" else (m.role, m.content)
        for m in history
        if m.content
    ]
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


def since_summary(history: Sequence[Message]) -> Sequence[Message]:
    """The latest summary and what follows it (or all of it, when there is no summary)."""
    for n in range(len(history) - 1, -1, -1):
        if history[n].role == "summary":
            return history[n:]
    return history


def summary_request(older: Sequence[Message]) -> tuple[ChatMessage, ...]:
    """What the summarizer is asked: the turns to condense, one labelled block each."""
    parts = []
    for m in older:
        who = {"user": "User", "assistant": "Assistant", "summary": "Earlier summary"}[m.role]
        parts.append(f"{who}:\n{m.content.strip()}")
    return (ChatMessage("user", "\n\n---\n\n".join(parts)),)


def name_request(prompt: str) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", prompt[:4000]),)


def commit_request(prompt: str, paths: Sequence[str], reply: str) -> tuple[ChatMessage, ...]:
    """The request, the files changed and the reply's prose (its file blocks left out)."""
    prose = "\n".join(line for line in _prose_lines(reply) if line.strip())[:4000]
    files = "\n".join(f"- {p}" for p in paths[:50])
    return (
        ChatMessage(
            "user",
            f"Request:\n{prompt[:4000]}\n\nFiles changed:\n{files}\n\n"
            f"The assistant's explanation:\n{prose}",
        ),
    )


def _prose_lines(reply: str) -> list[str]:
    out, depth = [], 0
    for line in reply.splitlines():
        tag = line.strip()
        if tag.startswith(("<pc:file", "<pc:edit")) and not tag.endswith("/>"):
            depth += 1
        elif tag in ("</pc:file>", "</pc:edit>"):
            depth = max(0, depth - 1)
        elif depth == 0 and not tag.startswith("<pc:"):
            out.append(line)
    return out
