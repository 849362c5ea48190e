"""Accounts on a team server: signup, verify, signin, signout, sessions, whoami, password,
accept-invite. (The org's members and invites are in ``commands.org``.)

    plancast signup [EMAIL] [--invite CODE]   make an account; asks for the emailed code
    plancast verify EMAIL [CODE]              verify the address with its code, and sign in
    plancast signin EMAIL                     sign in with the password
    plancast signout [--everywhere]           end this session (or all of them), forget it
    plancast sessions [revoke ID]             the account's sessions; end one
    plancast whoami                           the account, its current org and role, its orgs
    plancast password reset EMAIL             set a new password with an emailed code
    plancast accept-invite [CODE]             join an org, signed in already

Rules:

1. Passwords and tokens never reach argv or the screen. A password is asked for with a
   hidden prompt, or read from the first line of stdin with ``--password-stdin`` (for
   scripts); it is not echoed, logged, or sent anywhere but the server's account routes. A
   session token is kept by ``config.store_signin`` (0600) and never printed. An emailed
   code may be given as an argument where the user has it already (``verify``,
   ``accept-invite``, ``--invite``): it works once, for minutes; it is never printed either.
2. Without a terminal, input is read line by line from stdin, in the order it is asked for:
   the password first, then the emailed code (the email has arrived once the server answers).
   A code that is not there (stdin at its end) leaves the account waiting for ``verify``.
3. A sign-in is kept per server URL: ``signin`` for one server never replaces another's, and
   the one it replaces for the same server is signed out there. The token sent with every
   request is ``PLANCAST_TOKEN``, else this sign-in, else the local server's token file
   (``config.ClientConfig.load``).
4. The routes that need no token (sign-up, verify, sign-in, reset) get none: a client that
   is signing in sends no older session along.

Only ``argparse`` is imported at module level (``plancast --help`` imports every command
module); each command imports what it uses.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from plancast.client.commands._args import list_or

if TYPE_CHECKING:
    from collections.abc import Sequence

    from plancast.client.api.rest import RestClient
    from plancast.client.config import ClientConfig
    from plancast.client.session import Session
    from plancast.client.ui.output import Output
    from plancast.shared import PlancastError

CODE_TRIES = 3  # on a terminal, a mistyped code is asked for again, this many times in all
SESSION_ACTIONS = ("list", "revoke")
PASSWORD_ACTIONS = ("reset",)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "signup",
        help="make an account on a team server; asks for the code emailed to the address",
        description="Make an account on a team server, then verify its address with the code "
        "the server emails, and sign in. The first account of a server makes its org; after "
        "that, sign-up is by invite (--invite, with the code from the invite's email).",
    )
    p.add_argument("email", nargs="?", help="your email address (asked for when left out)")
    p.add_argument("--invite", metavar="CODE", help="the code from an invite's email")
    _password_stdin(p)
    p.set_defaults(func=signup)

    p = sub.add_parser("verify", help="verify an account's address with its emailed code")
    p.add_argument("email", help="the address the code was sent to")
    p.add_argument("code", nargs="?", help="the emailed code (asked for when left out)")
    p.set_defaults(func=verify)

    p = sub.add_parser("signin", help="sign in to a team server (the session is kept 0600)")
    p.add_argument("email", help="your account's email address")
    _password_stdin(p)
    p.set_defaults(func=signin)

    p = sub.add_parser("signout", help="end this session on the server, and forget it here")
    p.add_argument(
        "--everywhere", action="store_true", help="end every session of the account, too"
    )
    p.set_defaults(func=signout)

    p = sub.add_parser("sessions", help="the account's sessions: `sessions`, `sessions revoke ID`")
    list_or(p, SESSION_ACTIONS, "list (the default), or revoke ID")
    p.add_argument("session_id", nargs="?", metavar="ID", help="the session to end")
    p.add_argument("--json", action="store_true", help="`list` as JSON, for scripts")
    p.set_defaults(func=sessions)

    p = sub.add_parser("whoami", help="the signed-in account: email, current org, role, orgs")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.set_defaults(func=whoami)

    p = sub.add_parser(
        "password",
        help="`password reset EMAIL`: set a new password with a code sent to the address",
    )
    p.add_argument("action", choices=PASSWORD_ACTIONS, metavar="ACTION", help="reset")
    p.add_argument("email", help="the account's email address")
    _password_stdin(p, what="the new password")
    p.set_defaults(func=password)

    p = sub.add_parser("accept-invite", help="join an org with an invite's code, signed in")
    p.add_argument("code", nargs="?", help="the code from the invite's email (asked for)")
    p.set_defaults(func=accept_invite)


def _password_stdin(p: argparse.ArgumentParser, what: str = "the password") -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read {what} from the first line of stdin (then the emailed code, if asked for)",
    )


# -- input ------------------------------------------------------------------------------------


def _fail(message: str) -> PlancastError:
    from plancast.shared import ErrorCode, PlancastError

    return PlancastError(message, code=ErrorCode.INVALID_REQUEST)


def _on_terminal() -> bool:
    import sys

    from plancast.client.ui.output import isatty

    return isatty(sys.stdin)


def _stdin_line() -> str | None:
    """The next line of stdin without its line ending; ``None`` at the end."""
    import sys

    line = sys.stdin.readline()
    return line.rstrip("\r\n") if line else None


def _ask(session: Session, question: str) -> str:
    """A visible answer typed on the terminal (an address, a code), or the next stdin line."""
    if not _on_terminal():
        return (_stdin_line() or "").strip()
    err = session.output.err
    err.write(question)
    err.flush()
    return _stdin_line() or ""


def read_password(session: Session, args: argparse.Namespace, *, new: bool = False) -> str:
    """The password: from a hidden prompt (asked twice when ``new``), or stdin's next line.

    Raises:
        PlancastError: no terminal and no ``--password-stdin``, an empty password, or two
            that differ.
    """
    if args.password_stdin:
        text = _stdin_line()
        if not text:
            raise _fail("--password-stdin: the first line of stdin holds no password")
        return text
    if not _on_terminal():
        raise _fail(
            "stdin is not a terminal to ask for the password on: pass it on stdin with "
            "--password-stdin"
        )
    label = "new password" if new else "password"
    text = _hidden(f"{label} (input hidden): ")
    if not text:
        raise _fail("no password given")
    if new and _hidden(f"{label} again: ") != text:
        raise _fail("the two passwords differ; nothing was sent")
    return text


def _hidden(prompt: str) -> str:
    import getpass

    try:
        return getpass.getpass(prompt)
    except EOFError:  # Ctrl-D: no password, said as such rather than as a traceback
        return ""


def _code(session: Session, email: str) -> str | None:
    """The code emailed to ``email``, as typed; ``None`` when none comes (stdin at its end)."""
    answer = _ask(session, f"code from the email sent to {email}: ")
    code = "".join(answer.split())  # "1234 5678" as read out of an email
    return code or None


# -- clients and sign-ins ---------------------------------------------------------------------


def anonymous(session: Session) -> RestClient:
    """A client that sends no token, for the routes that take none (rule 4)."""
    from plancast.client.api.rest import RestClient

    return RestClient(session.config._replace(token=None, source=None, signin=None))


def keep_signin(session: Session, email: str, issued: dict[str, Any]) -> dict[str, Any]:
    """Keep the session the server issued for this server URL; returns the account.

    The account is read with the new token, which also proves that it works. The sign-in it
    replaces is signed out on the server (if it can be), so that no session lives on that
    nobody holds.
    """
    from plancast.client.api.rest import RestClient
    from plancast.client.config import TOKEN_FROM_ENV, TOKEN_FROM_SIGNIN, SignIn, store_signin

    url = session.config.server
    signin = SignIn(issued["token"], email.strip().lower(), issued["user_id"], issued["session_id"])
    path = store_signin(url, signin)
    replaced = session.config.signin
    if replaced is not None and replaced.token != signin.token:
        _end_quietly(session.config._replace(token=replaced.token))
    config = session.config._replace(token=signin.token, source=TOKEN_FROM_SIGNIN, signin=signin)
    with RestClient(config) as api:
        account: dict[str, Any] = api.get("/account")
    if account.get("email") and account["email"] != signin.email:
        store_signin(url, signin._replace(email=account["email"]))
    out = session.output
    out.line(f"signed in to {url} as {account.get('email') or signin.email}{_org_text(account)}")
    out.note(f"the session is kept in {path} (readable by you only)")
    if session.config.source == TOKEN_FROM_ENV:
        out.note("note: PLANCAST_TOKEN is set, and is sent instead of this sign-in", "yellow")
    reconnect(session)
    return account


def _end_quietly(config: ClientConfig) -> None:
    from plancast.client.api.rest import RestClient
    from plancast.shared import PlancastError

    try:
        with RestClient(config, timeout=5.0) as api:
            api.post("/auth/signout", {"everywhere": False})
    except PlancastError:
        pass  # ended already (expired, revoked, reset), or unreachable: it expires on its own


def reconnect(session: Session) -> None:
    """Send the token kept now from the next request on (the REPL goes on with ``session``).

    ``Session`` makes its config and client once, on first use; dropping them makes it read
    the kept sign-in again.
    """
    api = session.__dict__.pop("api", None)
    session.__dict__.pop("config", None)
    if api is not None:
        api.close()


def _org_text(account: dict[str, Any]) -> str:
    current = _current_org(account)
    if current is None:
        return " (no org)"
    return f" · org {current['name']} ({current['role']})"


def _current_org(account: dict[str, Any]) -> dict[str, Any] | None:
    return next((o for o in account.get("orgs", []) if o["id"] == account.get("org_id")), None)


def _verify_by_code(session: Session, api: RestClient, email: str, code: str | None) -> int:
    """Redeem the emailed code and keep the session; asks again for a mistyped one."""
    from plancast.client.api.errors import ApiError
    from plancast.shared import ErrorCode

    for attempt in range(1, CODE_TRIES + 1):
        code = code or _code(session, email)
        if code is None:
            session.output.note(
                f"no code given: the address is not verified yet; when the email arrives, "
                f"`plancast verify {email}` asks for its code"
            )
            return 0
        try:
            issued = api.post("/auth/verify", {"email": email, "code": code, "kind": "cli"})
        except ApiError as exc:
            retry = exc.code is ErrorCode.INVALID_REQUEST and _on_terminal()
            if not retry or attempt == CODE_TRIES:
                raise
            session.output.error(exc.message)
            code = None
            continue
        keep_signin(session, email, issued)
        return 0
    return 1  # not reached: the last try returns or raises


# -- signup, verify, signin -------------------------------------------------------------------


def signup(session: Session, args: argparse.Namespace) -> int:
    email = args.email or (_ask(session, "email address: ").strip() if _on_terminal() else "")
    if not email:
        raise _fail("no email address given: `plancast signup EMAIL`")
    secret = read_password(session, args, new=True)
    body = {"email": email, "password": secret}
    if args.invite:
        body["invite"] = args.invite.strip()
    with anonymous(session) as api:
        api.post("/auth/signup", body)
        session.output.note(
            f"a code to verify {email} was sent to it (if it has an account already, the "
            f"email says so: then `plancast signin {email}`)"
        )
        return _verify_by_code(session, api, email, None)


def verify(session: Session, args: argparse.Namespace) -> int:
    code = "".join(args.code.split()) if args.code else _code(session, args.email)
    if not code:
        raise _fail(f"no code given: {args.email} is not verified")
    with anonymous(session) as api:
        return _verify_by_code(session, api, args.email, code)


def signin(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.api.errors import ApiError
    from plancast.shared import ErrorCode

    secret = read_password(session, args)
    with anonymous(session) as api:
        try:
            issued = api.post(
                "/auth/signin", {"email": args.email, "password": secret, "kind": "cli"}
            )
        except ApiError as exc:
            if exc.code is not ErrorCode.EMAIL_NOT_VERIFIED:
                raise
            session.output.note(exc.message)  # a fresh code was sent: take it now
            return _verify_by_code(session, api, args.email, None)
    keep_signin(session, args.email, issued)
    return 0


def password(session: Session, args: argparse.Namespace) -> int:
    """``password reset``: the new password first, then the code (rule 2)."""
    secret = read_password(session, args, new=True)
    with anonymous(session) as api:
        api.post("/auth/reset-request", {"email": args.email})
        session.output.note(f"if {args.email} has an account here, a code was sent to it")
        code = _code(session, args.email)
        if code is None:
            raise _fail("no code given: the password is unchanged")
        issued = api.post(
            "/auth/reset",
            {"email": args.email, "code": code, "password": secret, "kind": "cli"},
        )
    keep_signin(session, args.email, issued)
    session.output.note("the password is changed; every other session of the account ended")
    return 0


# -- the session ------------------------------------------------------------------------------


def signout(session: Session, args: argparse.Namespace) -> int:
    from plancast.client.api.errors import ApiError
    from plancast.client.config import TOKEN_FROM_SIGNIN, forget_signin
    from plancast.shared import ErrorCode

    config, out = session.config, session.output
    if config.token is None:
        out.line(f"not signed in to {config.server}")
        return 0
    kept = config.source == TOKEN_FROM_SIGNIN
    try:
        ended = session.api.post("/auth/signout", {"everywhere": args.everywhere})["ended"]
    except ApiError as exc:
        dead = (ErrorCode.SESSION_EXPIRED, ErrorCode.UNAUTHORIZED, ErrorCode.INVALID_REQUEST)
        if not kept or exc.code not in dead:
            raise
        forget_signin(config.server)  # the server has no use for it: nothing to keep
        reconnect(session)
        out.line(f"the session had ended already; forgot the sign-in to {config.server}")
        return 0
    if kept:
        forget_signin(config.server)
        reconnect(session)
    out.line(f"signed out of {config.server} ({ended} session(s) ended)")
    if config.source is not None and not kept:
        out.note(f"note: the token came from the {config.source}, which is still there", "yellow")
    return 0


def sessions(session: Session, args: argparse.Namespace) -> int:
    if args.action == "revoke":
        return _revoke(session, args.session_id)
    if args.session_id is not None:
        raise _fail("`plancast sessions` takes no id; `plancast sessions revoke ID` ends one")
    import time

    found = session.api.get("/auth/sessions")["sessions"]
    out = session.output
    if args.json:
        out.json(found)
        return 0
    now = time.time()
    rows = [
        (
            ("* " if s["current"] else "  ") + s["id"],
            s["kind"],
            ago(now - s["created_at"]),
            ago(now - s["last_seen_at"]),
            "in " + span(s["expires_at"] - now),
        )
        for s in found
    ]
    table(out, ("  id", "kind", "signed in", "last used", "expires"), rows)
    out.note("* this session; `plancast sessions revoke ID` ends another")
    return 0


def _revoke(session: Session, session_id: str | None) -> int:
    from plancast.client.config import TOKEN_FROM_SIGNIN, forget_signin

    if not session_id:
        raise _fail("name the session: `plancast sessions revoke ID` (`plancast sessions`)")
    mine = session.api.get("/auth/sessions")["sessions"]
    current = any(s["id"] == session_id and s["current"] for s in mine)
    session.api.delete(f"/auth/sessions/{session_id}")
    session.output.line(f"ended session {session_id}")
    if current and session.config.source == TOKEN_FROM_SIGNIN:
        forget_signin(session.config.server)
        reconnect(session)
        session.output.note("that was this session: signed out here too")
    return 0


def whoami(session: Session, args: argparse.Namespace) -> int:
    account = session.api.get("/account")
    config, out = session.config, session.output
    if args.json:
        out.json(account | {"server": config.server, "token_from": config.source})
        return 0
    out.line(f"{account.get('email')} ({account['user_id']})", "bold")
    current = _current_org(account)
    if current is not None:
        out.line(f"org      {current['name']} ({current['id']}) · {current['role']}")
    elif account.get("org_id"):
        out.line(f"org      none: no longer a member of {account['org_id']}", "yellow")
    else:
        out.line("org      none")
    others = [o for o in account.get("orgs", []) if o is not current]
    if others:
        text = ", ".join(f"{o['name']} ({o['id']}, {o['role']})" for o in others)
        out.line(f"also in  {text}")
    out.line(f"server   {config.server} · session {account['session_id']}")
    if current is None and others:
        out.note("`plancast org switch ORG` picks the org to work in")
    return 0


def accept_invite(session: Session, args: argparse.Namespace) -> int:
    code = args.code or _ask(session, "code from the invite's email: ")
    code = "".join(code.split())
    if not code:
        raise _fail("no invite code given")
    joined = session.api.post("/invites/accept", {"code": code})
    session.output.line(
        f"joined {joined['name']} ({joined['org_id']}) as {joined['role']}; it is now your "
        "current org"
    )
    return 0


# -- rendering --------------------------------------------------------------------------------


def table(out: Output, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Aligned columns, the header in bold, as the other listings print them."""
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    for i, row in enumerate((header, *rows)):
        text = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        out.line(text, *(("bold",) if i == 0 else ()))


def span(seconds: float) -> str:
    """A duration in its largest sensible unit, rounded: an invite sent for 7 days is "7d"."""
    seconds = max(seconds, 0)
    if seconds < 90:
        return f"{round(seconds)}s"
    if seconds < 5400:
        return f"{round(seconds / 60)}m"
    if seconds < 129600:
        return f"{round(seconds / 3600)}h"
    return f"{round(seconds / 86400)}d"


def ago(seconds: float) -> str:
    return span(seconds) + " ago"
