"""S12: the store's schema version; an older store is backed up, then migrated with every event intact."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from workbench.review import _migrations
from workbench.review.events import new_label
from workbench.review.store import LabelStore, StoreVersionError


def _event_hashes(path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT event_id, trace_id, reviewer, action, verdict, categories, note, "
                            "corrected_output, escalate, created_at_us FROM label_events ORDER BY id").fetchall()
    return [hashlib.sha256(repr(row).encode()).hexdigest() for row in rows]


def _legacy_store(path, n: int) -> None:
    """A store as the first release wrote it: the same tables, no schema version."""
    with LabelStore(path) as store:
        for i in range(n):
            store.save(new_label(f"t{i}", "ana", "fail" if i % 3 else "pass", note=f"note {i}",
                                 categories=("refund",) if i % 2 else ()))
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE workbench_meta")


def test_new_store_is_stamped_with_the_current_version(tmp_path):
    with LabelStore(tmp_path / "labels.sqlite") as store:
        assert store.schema_version == _migrations.SCHEMA_VERSION and store.migrated_from is None
    assert not list(tmp_path.glob("*before-schema*"))


def test_migration_preserves_labels(tmp_path):
    path = tmp_path / "labels.sqlite"
    _legacy_store(path, 500)
    before = _event_hashes(path)
    with LabelStore(path) as store:
        assert (store.migrated_from, store.schema_version) == (0, _migrations.SCHEMA_VERSION)
        backup = store.migration_backup
        assert backup == tmp_path / "labels.before-schema-1.sqlite" and backup.exists()
        assert store.events().height == 500
    assert _event_hashes(path) == before  # counts and per-event hashes identical
    assert _event_hashes(backup) == before  # and the backup holds the store as it was
    with sqlite3.connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT value FROM workbench_meta").fetchall() == []  # unstamped: version 0
    with LabelStore(path) as again:  # migrated once: the next open does nothing
        assert again.migrated_from is None and again.schema_version == _migrations.SCHEMA_VERSION


def test_a_step_runs_before_the_stamp_and_a_failing_step_changes_nothing(tmp_path, monkeypatch):
    path = tmp_path / "labels.sqlite"
    _legacy_store(path, 20)
    before = _event_hashes(path)

    def broken(conn):
        conn.exec_driver_sql("CREATE TABLE half_done (x INTEGER)")
        raise RuntimeError("step failed")

    monkeypatch.setitem(_migrations.MIGRATIONS, 0, broken)
    with pytest.raises(RuntimeError, match="step failed"):
        LabelStore(path)
    with sqlite3.connect(path) as conn:  # the step's transaction rolled back; still version 0
        assert not conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall()
        assert not conn.execute("SELECT value FROM workbench_meta").fetchall()
    assert _event_hashes(path) == before


def test_a_store_from_a_newer_workbench_is_refused_untouched(tmp_path):
    path = tmp_path / "labels.sqlite"
    with LabelStore(path) as store:
        store.save(new_label("t1", "ana", "pass"))
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE workbench_meta SET value = '99' WHERE key = 'schema_version'")
    before = _event_hashes(path)
    with pytest.raises(StoreVersionError, match="schema version 99.*upgrade workbench"):
        LabelStore(path)
    assert _event_hashes(path) == before and not list(tmp_path.glob("*before-schema*"))
