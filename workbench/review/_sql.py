"""SQL plumbing of the label store: table definitions, append-only triggers, engines.

Kept apart from :mod:`workbench.review.store` so the store module reads as its contract.
SQLAlchemy is imported inside the functions (``import workbench`` stays fast).
"""

from __future__ import annotations

from typing import Any

from workbench.review._backend import USE_INSTEAD, UnsafeStoreError

APPEND_ONLY_TABLES = ("label_events", "taxonomy_events")

TABLES_CACHE: dict[str, Any] = {}


def tables() -> dict[str, Any]:
    """The two append-only tables and the meta table (built once, on first use, so sqlalchemy loads lazily)."""
    if TABLES_CACHE:
        return TABLES_CACHE
    import sqlalchemy as sa

    metadata = sa.MetaData()
    big = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

    def key() -> sa.Column:
        return sa.Column("id", big, sa.Identity(), primary_key=True, autoincrement=True)

    labels = sa.Table(
        "label_events",
        metadata,
        key(),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("trace_id", sa.Text, nullable=False),
        sa.Column("span_id", sa.Text),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("verdict", sa.Text),
        sa.Column("categories", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("corrected_output", sa.Text),
        sa.Column("escalate", sa.Boolean, nullable=False),
        sa.Column("taxonomy_version", sa.BigInteger),
        sa.Column("trace_content_hash", sa.Text),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("lead_time_ms", sa.BigInteger),
        sa.Column("supersedes", sa.Text),
        sa.Column("recorded_at", sa.DateTime, server_default=sa.func.current_timestamp()),
        sa.CheckConstraint("action IN ('label', 'retract')", name="label_action"),
        sa.CheckConstraint("action = 'retract' OR verdict IS NOT NULL", name="label_has_verdict"),
        sa.Index("ix_label_events_trace_reviewer", "trace_id", "reviewer"),
        sa.Index("ix_label_events_reviewer", "reviewer"),
        sqlite_autoincrement=True,
    )
    taxonomy = sa.Table(
        "taxonomy_events",
        metadata,
        key(),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("version", sa.BigInteger, nullable=False, unique=True),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.Column("targets", sa.Text, nullable=False),
        sa.Column("definition", sa.Text),
        sa.Column("examples", sa.Text, nullable=False),
        sa.Column("assignments", sa.Text, nullable=False),
        sa.Column("author", sa.Text),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("recorded_at", sa.DateTime, server_default=sa.func.current_timestamp()),
        sqlite_autoincrement=True,
    )
    meta = sa.Table(  # the store's schema version (workbench.review._migrations)
        "workbench_meta",
        metadata,
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    TABLES_CACHE.update(metadata=metadata, labels=labels, taxonomy=taxonomy, meta=meta)
    return TABLES_CACHE


def sqlite_triggers() -> list[str]:
    out = []
    for table in APPEND_ONLY_TABLES:
        for op in ("UPDATE", "DELETE"):
            out.append(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'workbench: {table} is append-only; {op} is refused "
                f"(save a new event instead)'); END"
            )
    return out


def postgres_triggers() -> list[str]:
    out = [
        "CREATE OR REPLACE FUNCTION workbench_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'workbench: % is append-only; % is refused (save a new event instead)', "
        "TG_TABLE_NAME, TG_OP; END $$"
    ]
    for table in APPEND_ONLY_TABLES:
        out.append(
            f"CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION workbench_append_only()"
        )
        out.append(
            f"CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION workbench_append_only()"
        )
    return out


def make_engine(url: str, dialect: str, busy_timeout_ms: int) -> Any:
    import sqlalchemy as sa

    if dialect == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True)
    engine = sa.create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})

    @sa.event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise UnsafeStoreError(f"SQLite refused WAL mode (got {mode!r}). {USE_INSTEAD}")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # Writes take the write lock up front, so SQLite's busy handler can wait for it
        # (a deferred read-then-write upgrade fails at once with SQLITE_BUSY instead).
        read_only = connection.get_execution_options().get("workbench_read", False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine
