"""The label store in one process: idempotence, append-only, latest wins, refusals, outbox, backup."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from workbench.review._backend import filesystem_of, resolve_target
from workbench.review.events import LabelEvent, new_label, new_retraction
from workbench.review.store import LabelNotSaved, LabelStore, UnsafeStoreError
from workbench.schema import LABELS, validate


@pytest.fixture
def store(tmp_path: Path):
    with LabelStore(tmp_path / "labels.sqlite") as opened:
        yield opened


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None, timeout=1)


def test_pragmas_are_set(store: LabelStore) -> None:
    with store._engine.connect() as conn:
        pragmas = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
        }
    assert pragmas == {"journal_mode": "wal", "synchronous": 2, "busy_timeout": 30000, "foreign_keys": 1}


def test_round_trip_keeps_every_field(store: LabelStore) -> None:
    event = new_label(
        "t1", "ana", "fail", categories=["refund_no_policy", "tone"], note="<b>no policy</b> \u202e",
        corrected_output="We can't refund that.", escalate=True, span_id="s9", taxonomy_version=3,
        trace_content_hash="abc", lead_time_ms=4200,
    )  # fmt: skip
    assert store.save(event) is event
    frame = store.events()
    validate(frame, LABELS, table="labels")
    assert LabelEvent.from_row(frame.row(0, named=True)) == event


def test_idempotent_retry(store: LabelStore, tmp_path: Path) -> None:
    """S4: the same event twice, and a retry after an ambiguous failure, give exactly one row."""
    event = new_label("t1", "ana", "pass")
    store.save(event)
    store.save(event)
    store.save_many([event, event])
    assert store.count() == 1
    # ambiguous failure: the commit happened but the caller never heard back
    other = LabelStore(tmp_path / "labels.sqlite")
    late = new_label("t2", "ana", "fail")
    other.save(late)
    other.close()
    store.save(late)  # the retry with the same id
    assert store.count() == 2
    assert sorted(store.events()["event_id"]) == sorted([event.event_id, late.event_id])


def test_append_only_enforced_by_the_database(store: LabelStore, tmp_path: Path) -> None:
    """S5: UPDATE and DELETE are refused by triggers, through SQLAlchemy and through raw sqlite3."""
    store.save(new_label("t1", "ana", "pass"))
    row = {"event_id": "tax-1", "action": "add", "targets": ["c"], "created_at": datetime.now(UTC)}
    store.save_taxonomy_event(row)
    for sql in ("UPDATE label_events SET verdict = 'fail'", "DELETE FROM label_events"):
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), store._engine.begin() as conn:
            conn.exec_driver_sql(sql)
    con = _raw(tmp_path / "labels.sqlite")
    statements = ("UPDATE label_events SET note = 'x'", "DELETE FROM label_events",
                  "DELETE FROM taxonomy_events", "UPDATE taxonomy_events SET version = 9")  # fmt: skip
    for sql in statements:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute(sql)
    con.close()
    assert store.events()["verdict"].to_list() == ["pass"]
    assert store.taxonomy_events()["version"].to_list() == [1]
    assert store.integrity_check() == "ok"


def test_latest_wins_and_history(store: LabelStore) -> None:
    """S6: label -> relabel -> retract -> relabel, for two reviewers."""
    a1 = store.save(new_label("t1", "ana", "pass"))
    b1 = store.save(new_label("t1", "bo", "fail"))
    a2 = store.save(new_label("t1", "ana", "fail", supersedes=a1.event_id))
    assert dict(store.current().select("reviewer", "verdict").rows()) == {"ana": "fail", "bo": "fail"}
    r = store.save(new_retraction("t1", "ana", supersedes=a2.event_id))
    assert dict(store.current().select("reviewer", "verdict").rows()) == {"ana": "pass", "bo": "fail"}
    a3 = store.save(new_label("t1", "ana", "fail", categories=["x"], supersedes=a1.event_id))
    current = store.current(reviewer="ana")
    assert current["event_id"].to_list() == [a3.event_id]
    assert store.events(trace_id="t1")["event_id"].to_list() == [e.event_id for e in (a1, b1, a2, r, a3)]
    assert store.events(reviewer="bo")["event_id"].to_list() == [b1.event_id]


def test_outbox_parks_failed_saves_and_drains(tmp_path: Path) -> None:
    """S7: the database is locked past the timeout; NOT SAVED, event kept, then drained once."""
    db = tmp_path / "labels.sqlite"
    outbox = tmp_path / "kernel-1.outbox.jsonl"
    store = LabelStore(db, outbox=outbox, busy_timeout_ms=200)
    store.save(new_label("t0", "ana", "pass"))
    blocker = _raw(db)
    blocker.execute("BEGIN IMMEDIATE")
    first, second = new_label("t1", "ana", "fail"), new_label("t2", "ana", "pass")
    with pytest.raises(LabelNotSaved, match="NOT SAVED") as info:
        store.save(first)
    assert info.value.event is first and info.value.pending == 1
    with pytest.raises(LabelNotSaved) as info:
        store.save(second)
    assert info.value.pending == 2
    assert [e.event_id for e in store.pending] == [first.event_id, second.event_id]
    blocker.execute("ROLLBACK")
    blocker.close()
    # a reopened store (e.g. after a kernel restart) finds the outbox and drains it
    store.close()
    store = LabelStore(db, outbox=outbox)
    assert len(store.pending) == 2
    third = store.save(new_label("t3", "ana", "pass"))
    assert store.pending == []
    ids = store.events()["event_id"].to_list()
    assert sorted(ids[1:]) == sorted([first.event_id, second.event_id, third.event_id])
    assert len(ids) == len(set(ids)) == 4
    store.save(first)  # the caller's own retry is still harmless
    assert store.count() == 4
    store.close()


def test_outbox_survives_a_torn_tail(tmp_path: Path) -> None:
    outbox = tmp_path / "box.jsonl"
    store = LabelStore(tmp_path / "labels.sqlite", outbox=outbox)
    store._outbox.add(new_label("t1", "ana", "pass"))
    with outbox.open("ab") as handle:
        handle.write(b'\n{"event_id": "torn", "trace_')  # a writer killed mid-record
    late = new_label("t2", "ana", "fail")
    store._outbox.add(late)  # starts with a newline: not glued to the torn tail
    assert [e.trace_id for e in store.pending] == ["t1", "t2"]
    assert store.retry_pending() == 2
    assert store.count() == 2 and store.pending == []
    store.close()


def test_without_outbox_failure_still_raises(tmp_path: Path) -> None:
    db = tmp_path / "labels.sqlite"
    store = LabelStore(db, busy_timeout_ms=100)
    blocker = _raw(db)
    blocker.execute("BEGIN IMMEDIATE")
    with pytest.raises(LabelNotSaved) as info:
        store.save(new_label("t1", "ana", "pass"))
    assert info.value.pending == 0
    blocker.execute("ROLLBACK")
    store.save(info.value.event)
    assert store.count() == 1
    store.close()
    blocker.close()


def test_save_refuses_non_events(store: LabelStore) -> None:
    with pytest.raises(TypeError, match="LabelEvent"):
        store.save({"trace_id": "t1"})  # type: ignore[arg-type]


def test_threads_share_a_store(store: LabelStore) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                store.save(new_label(f"t{i}", f"r{worker}", "pass"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and store.count() == 200


@pytest.mark.parametrize(
    "location",
    ["labels.duckdb", "duckdb:///labels.db", "labels.jsonl", "labels.json", "labels.parquet", "labels.csv",
     "labels.jsonl.gz", "labels.ndjson", ":memory:", "sqlite://", "mysql://u@h/db"],
)  # fmt: skip
def test_store_rejects_unsafe_backends(tmp_path: Path, location: str) -> None:
    """S15: DuckDB, flat files and in-memory stores are refused with an explanation."""
    target = location if "://" in location or location.startswith(":") else str(tmp_path / location)
    with pytest.raises(UnsafeStoreError) as info:
        LabelStore(target)
    message = str(info.value)
    assert "PostgreSQL" in message and "SQLite" in message
    if "duck" in location:
        assert "DuckDB" in message and "concurrent writers" in message
    if location.split(".")[-1] in ("jsonl", "json", "parquet", "csv", "gz", "ndjson"):
        assert "exports and snapshots" in message


def test_existing_duckdb_file_is_recognised(tmp_path: Path) -> None:
    fake = tmp_path / "labels.db"
    fake.write_bytes(b"\0" * 8 + b"DUCK" + b"\0" * 4096)
    with pytest.raises(UnsafeStoreError, match="DuckDB"):
        LabelStore(fake)


MOUNTS = """\
/dev/vda / ext4 rw,relatime 0 0
server:/export /mnt/team nfs4 rw,relatime,vers=4.2 0 0
//nas/share /mnt/smb cifs rw 0 0
sshfs#me@host: /mnt/fuse fuse.sshfs rw 0 0
/dev/vdb /mnt/team/local ext4 rw 0 0
/dev/vdc /mnt/with\\040space ext4 rw 0 0
"""


@pytest.mark.parametrize(
    ("path", "fstype"),
    [
        ("/mnt/team/labels.sqlite", "nfs4"),
        ("/mnt/smb/x/labels.sqlite", "cifs"),
        ("/mnt/fuse/l.sqlite", "fuse.sshfs"),
    ],
)
def test_refuse_network_fs(tmp_path: Path, path: str, fstype: str) -> None:
    """S10: SQLite on nfs/cifs/fuse is refused (mocked mount table) unless overridden."""
    table = tmp_path / "mounts"
    table.write_text(MOUNTS)
    assert filesystem_of(path, mount_table=table) == fstype
    with pytest.raises(UnsafeStoreError) as info:
        LabelStore(path, mount_table=table)
    assert fstype in str(info.value) and "PostgreSQL" in str(info.value)
    # the explicit override lets it through the check (we only resolve, not open, the remote path)
    assert resolve_target(path, allow_network_fs=True, mount_table=table).dialect == "sqlite"


def test_local_mounts_are_accepted(tmp_path: Path) -> None:
    table = tmp_path / "mounts"
    table.write_text(MOUNTS)
    assert filesystem_of("/mnt/team/local/labels.sqlite", mount_table=table) == "ext4"
    assert filesystem_of("/mnt/with space/l.sqlite", mount_table=table) == "ext4"
    assert filesystem_of("/mnt/teamster/l.sqlite", mount_table=table) == "ext4"  # not inside /mnt/team
    real = filesystem_of(tmp_path / "labels.sqlite")
    with LabelStore(tmp_path / "labels.sqlite") as opened:  # this machine's real /proc/mounts
        assert opened.integrity_check() == "ok", real


def test_backup_is_a_consistent_copy(store: LabelStore, tmp_path: Path) -> None:
    for i in range(30):
        store.save(new_label(f"t{i}", "ana", "pass"))
    copy_path = store.backup(tmp_path / "backups" / "labels-backup.sqlite")
    assert not Path(f"{copy_path}-wal").exists()
    with LabelStore(copy_path) as copy:
        assert copy.integrity_check() == "ok"
        assert copy.events().equals(store.events())
        with pytest.raises(sa.exc.IntegrityError, match="append-only"), copy._engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM label_events")
    with pytest.raises(ValueError, match="onto itself"):
        store.backup(store.path)


def test_integrity_check_reports_missing_guards(store: LabelStore, tmp_path: Path) -> None:
    con = _raw(tmp_path / "labels.sqlite")
    con.execute("DROP TRIGGER label_events_no_delete")
    con.close()
    assert "label_events_no_delete" in store.integrity_check()
    store.close()
    with LabelStore(tmp_path / "labels.sqlite") as reopened:  # reopening puts the guard back
        assert reopened.integrity_check() == "ok"
