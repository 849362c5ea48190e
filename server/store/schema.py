"""The database schema, in SQLAlchemy Core, for SQLite and PostgreSQL alike.

Rules:

1. Every row that belongs to an org carries ``org_id``, and every query on it
   filters by it. ``stream_events`` are reached only through their stream (whose
   org is checked first); ``users`` belong to orgs through ``memberships``.
2. Plan content rows (context items, messages, changes) are immutable once
   written. A plan version records which of them make up the plan's state, so
   a version is a cheap snapshot and rewinding never destroys anything.
3. At most one stream per plan branch is running. The partial unique index
   ``uq_streams_running_branch`` enforces it atomically, across replicas.
4. Migrations (``store/migrations``) are the only way this schema reaches a
   database; this module is their ``target_metadata``.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from plancast.server.store.crypto import Encrypted

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = String(40)


def _created() -> Column[float]:
    return Column("created_at", Float, nullable=False)  # epoch seconds, like every time here


orgs = Table(
    "orgs",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(200), nullable=False),
    _created(),
)

users = Table(  # the email address is the only personal data kept (team mode)
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("email", String(320), nullable=True, unique=True),
    _created(),
    Column("password_hash", Text, nullable=True),  # argon2id, with its parameters
    Column("email_verified_at", Float, nullable=True),
    Column("failed_signins", Integer, nullable=False, server_default=text("0")),
    Column("signin_blocked_until", Float, nullable=True),
)
sessions = Table(  # sign-in sessions: the token is given once, only its SHA-256 is kept
    "sessions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("org_id", ID, ForeignKey("orgs.id", ondelete="SET NULL"), nullable=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # cli | web
    _created(),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),  # the absolute expiry
    Index("ix_sessions_user", "user_id"),
)
auth_codes = Table(  # single-use codes sent by email: verify an address, reset a password
    "auth_codes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(20), nullable=False),  # verify | reset
    Column("code_hash", String(64), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    _created(),
    Index("ix_auth_codes_user_purpose", "user_id", "purpose"),
)
invites = Table(  # single-use, expiring invitations to an org
    "invites",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("role", String(20), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("invited_by", ID, nullable=True),
    Column("expires_at", Float, nullable=False),
    Column("accepted_at", Float, nullable=True),
    Column("accepted_by", ID, nullable=True),
    _created(),
    Index("ix_invites_org", "org_id"),
)

memberships = Table(
    "memberships",
    metadata,
    Column("org_id", ID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", ID, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(20), nullable=False),
    _created(),
    PrimaryKeyConstraint("org_id", "user_id"),
)

projects = Table(
    "projects",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    _created(),
)

plans = Table(
    "plans",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", ID, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("model", String(200), nullable=True),
    _created(),
    Column("updated_at", Float, nullable=True),
    Column("archived_at", Float, nullable=True),
    Column("name_source", String(20), nullable=True),  # user | draft (the namer may rename) | namer
    UniqueConstraint("project_id", "name", name="uq_plans_project_name"),
    Index("ix_plans_org_project", "org_id", "project_id"),
)

versions = Table(
    "versions",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("parent_id", ID, nullable=True),
    Column("number", Integer, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("description", Encrypted("versions.description"), nullable=False),  # may quote a prompt
    Column("state", Text, nullable=False),  # JSON: ids of the rows that make up the plan
    _created(),
    UniqueConstraint("plan_id", "number", name="uq_versions_plan_number"),
)

branches = Table(
    "branches",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("head_id", ID, nullable=False),
    _created(),
    UniqueConstraint("plan_id", "name", name="uq_branches_plan_name"),
)

head_moves = Table(  # every rewind (and its undo) of a branch head, so a rewind can be undone
    "head_moves",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("branch", String(64), nullable=False),
    Column("kind", String(20), nullable=False),  # rewind | undo
    Column("from_id", ID, nullable=False),
    Column("to_id", ID, nullable=False),
    _created(),
    Index("ix_head_moves_plan_branch", "plan_id", "branch"),
)

context_items = Table(
    "context_items",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),  # file | note | stdin
    Column("name", Text, nullable=False),  # project-relative path, or a note's title
    Column("content", Encrypted("context_items.content"), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("tokens", Integer, nullable=False),
    _created(),
    Index("ix_context_items_plan", "plan_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(20), nullable=False),  # user | assistant
    Column("mode", String(20), nullable=False),  # tell | chat | continue
    Column("content", Encrypted("messages.content"), nullable=False),
    Column("status", String(20), nullable=False),  # complete | partial
    Column("stream_id", ID, nullable=True),
    _created(),
    Index("ix_messages_plan", "plan_id"),
)

changes = Table(
    "changes",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("stream_id", ID, nullable=True),
    Column("position", Integer, nullable=False),  # order within the reply
    Column("path", Text, nullable=False),
    Column("op", Encrypted("changes.op"), nullable=False),  # JSON of a plancast.shared FileOp
    Column("result", Encrypted("changes.result"), nullable=True),  # the built file, if built
    Column("base_sha256", String(64), nullable=True),  # of the context text it was built on
    Column("build", Text, nullable=True),  # JSON: status, strategy, attempts, reason
    _created(),
    Index("ix_changes_plan", "plan_id"),
)

streams = Table(
    "streams",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, ForeignKey("plans.id", ondelete="CASCADE"), nullable=False),
    Column("branch", String(64), nullable=False),
    Column("mode", String(20), nullable=False),
    Column("model", String(200), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column(
        "status", String(20), nullable=False
    ),  # running | finished | stopped | failed | interrupted
    Column("error_code", String(40), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("last_seq", Integer, nullable=False, server_default=text("0")),
    Column("started_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("lease_owner", String(64), nullable=True),
    Column("user_id", ID, nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("commit_message", Encrypted("streams.commit_message"), nullable=True),  # committer's
    UniqueConstraint("org_id", "request_id", name="uq_streams_org_request"),
    Index(
        "uq_streams_running_branch",
        "plan_id",
        "branch",
        unique=True,
        sqlite_where=text("status = 'running'"),
        postgresql_where=text("status = 'running'"),
    ),
    Index("ix_streams_plan", "plan_id"),
    Index("ix_streams_user_status", "user_id", "status"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("org_id", ID, nullable=False),
    Column("key", String(64), nullable=False),
    Column("method", String(10), nullable=False),
    Column("path", Text, nullable=False),
    Column("status", Integer, nullable=True),  # NULL while the first request runs
    # The stored response: it can quote plan content (a rewind's version descriptions).
    Column("body", Encrypted("idempotency_keys.body"), nullable=True),
    _created(),
    PrimaryKeyConstraint("org_id", "key"),
)

stream_events = Table(
    "stream_events",
    metadata,
    Column("stream_id", ID, ForeignKey("streams.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("type", String(20), nullable=False),
    Column("data", Encrypted("stream_events.data"), nullable=False),  # the event's fields, JSON
    PrimaryKeyConstraint("stream_id", "seq"),
)

usage = Table(
    "usage",
    metadata,
    Column("id", ID, primary_key=True),
    Column("org_id", ID, nullable=False),
    Column("plan_id", ID, nullable=False),
    Column("stream_id", ID, nullable=True),
    Column("model", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("first_token_ms", Integer, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    _created(),
    Index("ix_usage_org", "org_id"),
)

data_keys = Table(  # one per org, wrapped by the master key; never in a backup (crypto.py)
    "data_keys",
    metadata,
    Column("key_id", String(40), primary_key=True),
    Column("org_id", ID, nullable=False, unique=True),  # no foreign key: shredding deletes it
    Column("wrapped", LargeBinary, nullable=False),
    Column("master_key_id", String(40), nullable=False),
    _created(),
)

audit_log = Table(  # append-only: ids, roles and counts, never content or a secret
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the listing's cursor
    Column("org_id", ID, nullable=True),  # no foreign keys: entries outlive orgs and users
    Column("user_id", ID, nullable=True),
    Column("action", String(40), nullable=False),
    Column("target", String(320), nullable=True),
    Column("detail", Text, nullable=False),  # JSON object
    _created(),
    Index("ix_audit_log_org", "org_id", "id"),
    Index("ix_audit_log_user", "user_id", "id"),
)
