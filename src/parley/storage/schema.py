"""The tables, as SQLAlchemy Core objects: one definition serves SQLite and PostgreSQL.

Times are Unix seconds (floats) so both databases store and compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

schema_version = Table(
    "parley_schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", Float, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("record_audio", Boolean, nullable=False, default=False),
    Column("retention_days", Integer, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", Integer, nullable=False, index=True),
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the secret; the secret is never stored
    Column("prefix", String(24), nullable=False),  # enough of the secret to tell keys apart in a list
    Column("rpm", Integer, nullable=True),
    Column("max_sessions", Integer, nullable=True),
    Column("minutes_per_day", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("project_id", Integer, nullable=True, index=True),
    Column("key_id", String(40), nullable=True),
    Column("server", String(300), nullable=False),  # host:port of the process that served it
    Column("instance", String(40), nullable=False),  # that process's run (a restart gets a new one)
    Column("dialect", String(8), nullable=False),
    Column("model", String(200), nullable=False),
    Column("started_at", Float, nullable=False, index=True),
    Column("last_active_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("end_reason", String(40), nullable=True),
    Column("input_audio_ms", Integer, nullable=False, default=0),
    Column("output_audio_ms", Integer, nullable=False, default=0),
)

items = Table(
    "items",
    metadata,
    Column("session_id", String(40), primary_key=True),
    Column("item_id", String(80), primary_key=True),
    Column("seq", Integer, nullable=False),  # order of finalisation within the session
    Column("type", String(40), nullable=False),
    Column("role", String(20), nullable=True),
    Column("status", String(20), nullable=False),
    Column("text", Text, nullable=False),  # what was said or done, as plain text
    Column("data", Text, nullable=False),  # the item as the GA protocol renders it (no audio), JSON
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("items_by_order", items.c.session_id, items.c.seq)

usage = Table(
    "usage",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("session_id", String(40), nullable=False, index=True),
    Column("response_id", String(40), nullable=False),
    Column("project_id", Integer, nullable=True, index=True),
    Column("key_id", String(40), nullable=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("status", String(20), nullable=False),
    Column("text_input_tokens", Integer, nullable=False),
    Column("cached_text_tokens", Integer, nullable=False),
    Column("text_output_tokens", Integer, nullable=False),
    Column("audio_input_tokens", Integer, nullable=False),
    Column("audio_output_tokens", Integer, nullable=False),
    Column("cost_usd", Float, nullable=False),  # at the prices in force when it was written
)

V1_TABLES = (projects, api_keys, sessions, items, usage)
