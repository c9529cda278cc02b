"""The label store: append-only label and taxonomy events in SQLite (local) or PostgreSQL.

Guarantees (reliability.md sections 1 and 6):

- every save is one small transaction (SQLite: ``BEGIN IMMEDIATE``, WAL,
  ``synchronous=FULL``, ``busy_timeout`` >= 30 s, ``foreign_keys=ON``); :meth:`LabelStore.save`
  returns only after COMMIT;
- saves are idempotent on the client ``event_id`` (``INSERT ... ON CONFLICT DO NOTHING``),
  so a save whose outcome is unknown is retried with the same event;
- the database itself refuses UPDATE and DELETE (SQLite triggers, PostgreSQL triggers);
- DuckDB, flat files and SQLite on network filesystems are refused with an explanation;
- a failed save raises :class:`LabelNotSaved` and, with ``outbox=``, parks the event in
  a local file that drains on the next successful save.

Several notebook kernels (processes) may save to the same store at once.

Examples
--------
>>> import tempfile, pathlib
>>> from workbench.review.events import new_label
>>> path = pathlib.Path(tempfile.mkdtemp()) / "labels.sqlite"
>>> with LabelStore(path) as store:
...     saved = store.save(new_label("t1", "ana", "pass"))
...     store.current()["verdict"].to_list()
['pass']
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from workbench._fsync import fsync_directory, fsync_file
from workbench.review import _migrations
from workbench.review._backend import (
    PROC_MOUNTS,
    USE_INSTEAD,
    UnsafeStoreError,
    looks_like_duckdb,
    resolve_target,
)
from workbench.review._migrations import StoreVersionError
from workbench.review._outbox import Outbox
from workbench.review._sql import APPEND_ONLY_TABLES, make_engine, postgres_triggers, sqlite_triggers, tables
from workbench.review.events import LabelEvent, current_labels
from workbench.schema import LABELS, conform

__all__ = ["LabelNotSaved", "LabelStore", "StoreVersionError", "UnsafeStoreError"]

MIN_BUSY_TIMEOUT_MS = 30_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LABEL_COLUMNS = (
    "event_id", "trace_id", "span_id", "reviewer", "action", "verdict", "categories", "note",
    "corrected_output", "escalate", "taxonomy_version", "trace_content_hash", "created_at_us",
    "lead_time_ms", "supersedes",
)  # fmt: skip
_TAXONOMY_COLUMNS = (
    "event_id", "version", "action", "sources", "targets", "definition", "examples",
    "assignments", "author", "created_at_us",
)  # fmt: skip
_live_engines: weakref.WeakSet[Any] = weakref.WeakSet()


class LabelNotSaved(RuntimeError):
    """A save did not reach COMMIT. Keep ``event`` and retry with the same event (same id).

    ``pending`` is how many events wait in the local outbox (0 without an outbox).
    """

    def __init__(self, event: LabelEvent, cause: BaseException, *, pending: int) -> None:
        self.event = event
        self.pending = pending
        where = f"; {pending} event(s) wait in the local outbox" if pending else ""
        super().__init__(f"NOT SAVED: label {event.event_id} for trace {event.trace_id!r}: {cause}{where}")


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _dispose_in_child() -> None:  # pragma: no cover - runs in forked children
    for engine in list(_live_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_in_child)


class LabelStore:
    """Append-only store of label and taxonomy events (SQLite file or PostgreSQL URL).

    Parameters
    ----------
    path_or_url
        A local SQLite file path (created if missing), a ``sqlite:///`` URL, or a
        ``postgresql+psycopg://`` URL. DuckDB, JSONL/JSON/Parquet/CSV paths and SQLite on
        a network filesystem are refused with :class:`UnsafeStoreError`.
    allow_network_fs
        Open SQLite on a network/FUSE mount anyway (only if that mount is local to one host).
    outbox
        Optional path of a local per-kernel outbox file: failed saves are parked there and
        drain on the next successful save (or :meth:`retry_pending`).
    busy_timeout_ms
        How long a SQLite write waits for another writer's lock. Keep the default; tests lower it.
    mount_table
        The mounts file used to detect network filesystems (``/proc/mounts``; tests inject one).
    """

    def __init__(
        self,
        path_or_url: str | os.PathLike[str],
        *,
        allow_network_fs: bool = False,
        outbox: str | os.PathLike[str] | None = None,
        busy_timeout_ms: int = MIN_BUSY_TIMEOUT_MS,
        mount_table: str | os.PathLike[str] = PROC_MOUNTS,
    ) -> None:
        target = resolve_target(path_or_url, allow_network_fs=allow_network_fs, mount_table=mount_table)
        self.url = target.url
        self.dialect = target.dialect
        self.path: Path | None = target.path
        self._outbox = Outbox(outbox) if outbox is not None else None
        self._engine = make_engine(target.url, target.dialect, busy_timeout_ms)
        _live_engines.add(self._engine)
        try:
            self._create_schema()
        except Exception as exc:
            self._engine.dispose()
            if self.path is not None and "not a database" in str(exc):
                kind = "a DuckDB database" if looks_like_duckdb(self.path) else "not a SQLite database"
                raise UnsafeStoreError(
                    f"{self.path} is {kind}; refusing it as a label store. {USE_INSTEAD}"
                ) from exc
            raise

    # -- plumbing ---------------------------------------------------------------------------
    def __repr__(self) -> str:
        where = self.path if self.path is not None else self._engine.url.render_as_string(hide_password=True)
        return f"LabelStore({str(where)!r}, dialect={self.dialect!r})"

    def __enter__(self) -> LabelStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release every connection (the file and its WAL stay as they are)."""
        self._engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Any]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Any]:
        with self._engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            conn = conn.execution_options(workbench_read=True)
            with conn.begin():
                yield conn

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        return insert(table).on_conflict_do_nothing(index_elements=["event_id"])

    def _create_schema(self) -> None:
        import sqlalchemy as sa

        schema = tables()
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(73110501)")
            existed = sa.inspect(conn).has_table("label_events")
            schema["metadata"].create_all(conn, checkfirst=True)
            triggers = postgres_triggers() if self.dialect == "postgresql" else sqlite_triggers()
            for statement in triggers:
                conn.execute(sa.text(statement))
            version = _migrations.read_version(conn)
            if version is None and not existed:
                _migrations.stamp(conn, version := _migrations.SCHEMA_VERSION)
        self.schema_version = version or 0
        _migrations.check_supported(self.schema_version, str(self))
        self.migrated_from: int | None = None
        self.migration_backup: Path | None = None
        if self.schema_version < _migrations.SCHEMA_VERSION:
            self.migration_backup = _migrations.migrate(self, self.schema_version)
            self.migrated_from, self.schema_version = self.schema_version, _migrations.SCHEMA_VERSION

    @property
    def url_hash(self) -> str:
        """A short name for this database (backups of a PostgreSQL store are named by it)."""
        import hashlib

        return hashlib.sha256(self._engine.url.render_as_string(hide_password=True).encode()).hexdigest()[:16]

    # -- labels -----------------------------------------------------------------------------
    @staticmethod
    def _label_row(event: LabelEvent) -> dict[str, Any]:
        if not isinstance(event, LabelEvent):
            raise TypeError(f"save() takes a LabelEvent (see new_label), not {type(event).__name__}")
        row = event.to_row()
        row["categories"] = orjson.dumps(list(event.categories)).decode()
        row["created_at_us"] = _micros(event.created_at)
        return {c: row[c] for c in _LABEL_COLUMNS}

    def _insert_labels(self, conn: Any, events: list[LabelEvent]) -> None:
        rows = [self._label_row(e) for e in events]
        for start in range(0, len(rows), 500):
            conn.execute(self._insert(tables()["labels"]), rows[start : start + 500])

    def save(self, event: LabelEvent) -> LabelEvent:
        """Save one event in its own transaction; return it only after COMMIT.

        Saving an event whose ``event_id`` is already stored adds nothing (idempotent).

        Raises
        ------
        LabelNotSaved
            The save did not commit. The event is parked in the outbox if there is one;
            keep it and retry ``save(error.event)``.
        """
        self._label_row(event)  # type check before touching the database
        self._drain_outbox()
        self._save_batch([event])
        return event

    def save_many(self, events: Iterable[LabelEvent]) -> list[LabelEvent]:
        """Save several events in one transaction (imports, bulk relabels); idempotent."""
        batch = list(events)
        for event in batch:
            self._label_row(event)
        self._drain_outbox()
        self._save_batch(batch)
        return batch

    def _save_batch(self, batch: list[LabelEvent]) -> None:
        if not batch:
            return
        try:
            with self._write() as conn:
                self._insert_labels(conn, batch)
        except Exception as exc:
            pending = self._park(batch)
            raise LabelNotSaved(batch[-1], exc, pending=pending) from exc
        except BaseException:  # KeyboardInterrupt mid-save: rolled back or committed; park it
            self._park(batch)
            raise

    def _park(self, batch: list[LabelEvent]) -> int:
        if self._outbox is None:
            return 0
        for event in batch:
            self._outbox.add(event)
        return len(self._outbox.pending())

    def _drain_outbox(self) -> int:
        if self._outbox is None:
            return 0
        waiting = self._outbox.pending()
        if not waiting:
            return 0
        try:
            with self._write() as conn:
                self._insert_labels(conn, waiting)
        except Exception:
            return 0  # still waiting; the caller's own save reports the failure
        self._outbox.remove(e.event_id for e in waiting)
        return len(waiting)

    @property
    def pending(self) -> list[LabelEvent]:
        """Events waiting in the local outbox (empty without an outbox)."""
        return [] if self._outbox is None else self._outbox.pending()

    def retry_pending(self) -> int:
        """Try to save every outbox event now; return how many were saved."""
        return self._drain_outbox()

    def events(self, *, trace_id: str | None = None, reviewer: str | None = None) -> pl.DataFrame:
        """The full event history (:data:`LABELS` schema) in commit order, optionally filtered."""
        table = tables()["labels"]
        query = table.select().with_only_columns(*[table.c[c] for c in _LABEL_COLUMNS]).order_by(table.c.id)
        if trace_id is not None:
            query = query.where(table.c.trace_id == trace_id)
        if reviewer is not None:
            query = query.where(table.c.reviewer == reviewer)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return _labels_from_rows(rows)

    def current(self, *, reviewer: str | None = None) -> pl.DataFrame:
        """The current label per (trace_id, reviewer); see :func:`~workbench.review.events.current_labels`."""
        return current_labels(self.events(reviewer=reviewer))

    def count(self) -> int:
        """Number of stored label events."""
        import sqlalchemy as sa

        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(tables()["labels"])).scalar_one())

    # -- taxonomy events --------------------------------------------------------------------
    def taxonomy_events(self) -> pl.DataFrame:
        """Every taxonomy event in version order (``TAXONOMY_EVENTS`` schema of the taxonomy module)."""
        from workbench.review.taxonomy import taxonomy_frame_from_rows

        table = tables()["taxonomy"]
        query = table.select().with_only_columns(*[table.c[c] for c in _TAXONOMY_COLUMNS])
        with self._read() as conn:
            rows = conn.execute(query.order_by(table.c.version)).all()
        return taxonomy_frame_from_rows(rows)

    def save_taxonomy_event(
        self,
        row: dict[str, Any],
        *,
        remap: Callable[[pl.DataFrame, int], list[LabelEvent]] | None = None,
    ) -> tuple[int, list[LabelEvent]]:
        """Append a taxonomy event and its label remaps in ONE transaction; return (version, remaps).

        The version is the previous maximum plus one, assigned under the write lock. ``remap``
        gets the current labels (read inside the same transaction) and the new version and
        returns new label events. Re-sending the same ``event_id`` changes nothing and returns
        the stored version.
        """
        import sqlalchemy as sa

        table = tables()["taxonomy"]
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.exec_driver_sql("LOCK TABLE taxonomy_events, label_events IN SHARE ROW EXCLUSIVE MODE")
            existing = conn.execute(sa.select(table.c.version).where(table.c.event_id == row["event_id"]))
            stored = existing.scalar_one_or_none()
            if stored is not None:
                return int(stored), []
            latest = conn.execute(sa.select(sa.func.max(table.c.version))).scalar_one_or_none()
            version = int(latest or 0) + 1
            db_row = {
                "event_id": row["event_id"],
                "version": version,
                "action": row["action"],
                "sources": orjson.dumps(list(row.get("sources", ()))).decode(),
                "targets": orjson.dumps(list(row.get("targets", ()))).decode(),
                "definition": row.get("definition"),
                "examples": orjson.dumps(list(row.get("examples", ()))).decode(),
                "assignments": orjson.dumps(dict(row.get("assignments") or {})).decode(),
                "author": row.get("author"),
                "created_at_us": _micros(row["created_at"]),
            }
            conn.execute(self._insert(table), [db_row])
            remapped: list[LabelEvent] = []
            if remap is not None:
                labels = tables()["labels"]
                query = labels.select().with_only_columns(*[labels.c[c] for c in _LABEL_COLUMNS])
                history = _labels_from_rows(conn.execute(query.order_by(labels.c.id)).all())
                remapped = remap(current_labels(history), version)
                if remapped:
                    self._insert_labels(conn, remapped)
        return version, remapped

    # -- safety -----------------------------------------------------------------------------
    def integrity_check(self) -> str:
        """``"ok"`` if the database is sound and the append-only guards are in place, else the problems."""
        import sqlalchemy as sa

        if self.dialect == "postgresql":
            sql = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%append_only'"
            expected = {f"{t}_append_only" for t in APPEND_ONLY_TABLES}
            with self._read() as conn:
                found = {r[0] for r in conn.execute(sa.text(sql))}
            missing = sorted(expected - found)
            return "ok" if not missing else f"append-only triggers missing: {missing}"
        with self._read() as conn:
            result = "\n".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check"))
            found = {
                r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='trigger'")
            }
        expected = {f"{t}_no_{op}" for t in APPEND_ONLY_TABLES for op in ("update", "delete")}
        missing = sorted(expected - found)
        if missing:
            result = (result + "\n" if result != "ok" else "") + f"append-only triggers missing: {missing}"
        return result

    def backup(self, path: str | os.PathLike[str]) -> Path:
        """Write a consistent copy of the store to a new SQLite file and return its path.

        SQLite uses the online backup API (safe while others write; never a file copy);
        PostgreSQL copies every event from one REPEATABLE READ snapshot into a SQLite file.
        The copy is written beside ``path`` and moved into place atomically.
        """
        import sqlite3

        target = Path(path).expanduser().resolve()
        if self.path is not None and target == self.path:
            raise ValueError(f"cannot back up {self.path} onto itself")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".partial")
        for stale in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            stale.unlink(missing_ok=True)
        if self.dialect == "sqlite":
            raw = self._engine.raw_connection()
            try:
                dest = sqlite3.connect(tmp)
                try:
                    raw.driver_connection.backup(dest)
                    dest.execute("PRAGMA journal_mode = DELETE")
                finally:
                    dest.close()
            finally:
                raw.close()
        else:
            _copy_into_sqlite(self, tmp)
        fsync_file(tmp)  # a fresh file no connection holds: safe to fsync
        os.replace(tmp, target)
        fsync_directory(target.parent)
        return target


def _labels_from_rows(rows: list[Any]) -> pl.DataFrame:
    raw_schema = {c: pl.String for c in _LABEL_COLUMNS} | {
        "escalate": pl.Boolean,
        "taxonomy_version": pl.Int64,
        "created_at_us": pl.Int64,
        "lead_time_ms": pl.Int64,
    }
    frame = pl.DataFrame([tuple(r) for r in rows], schema=raw_schema, orient="row")
    frame = frame.with_columns(
        pl.col("categories").str.json_decode(pl.List(pl.String)),
        pl.col("created_at_us").cast(pl.Datetime("us")).dt.replace_time_zone("UTC").alias("created_at"),
    ).drop("created_at_us")
    return conform(frame, LABELS)


def _copy_into_sqlite(store: LabelStore, path: Path) -> None:
    """Copy every event of ``store`` (read from one snapshot) into a new SQLite store at ``path``."""
    schema = tables()
    with store._read() as conn:
        labels = [
            dict(r._mapping) for r in conn.execute(schema["labels"].select().order_by(schema["labels"].c.id))
        ]
        taxonomy = [
            dict(r._mapping)
            for r in conn.execute(schema["taxonomy"].select().order_by(schema["taxonomy"].c.id))
        ]
    copy = LabelStore(path)
    try:
        with copy._write() as conn:
            for table, rows in ((schema["labels"], labels), (schema["taxonomy"], taxonomy)):
                for start in range(0, len(rows), 500):
                    conn.execute(table.insert(), rows[start : start + 500])
    finally:
        copy.close()
    import sqlite3

    single = sqlite3.connect(path)  # fold the WAL into the file before it is moved
    try:
        single.execute("PRAGMA journal_mode = DELETE")
    finally:
        single.close()
