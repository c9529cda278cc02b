"""Real-process tests of the label store (reliability.md S1, S2, S3, S11).

Writers are separate Python processes (subprocess), like separate notebook kernels.
A writer prints ("acks") an event id to its ack file only after ``save`` returned,
i.e. after COMMIT. The checks read the database afterwards.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.review.events import new_label
from workbench.review.store import LabelStore

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import json, os, sys
from workbench.review.events import new_label
from workbench.review.store import LabelNotSaved, LabelStore

db, writer, n, ack_path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
note = "n" * 200
errors = []
ack = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
with LabelStore(db) as store:
    for i in range(n):
        event = new_label(f"t{i % 97}", f"r{writer}", "fail" if i % 3 else "pass",
                          categories=[f"c{i % 5}"], note=note, event_id=f"w{writer}-{i}")
        try:
            store.save(event)
        except Exception as exc:  # counted, and the test requires zero
            errors.append(repr(exc))
            continue
        os.write(ack, f"{event.event_id}\n".encode())
os.close(ack)
print(json.dumps({"errors": errors}))
"""

READ_THEN_WRITE = r"""
import json, sys, uuid
from datetime import UTC, datetime
from workbench.review.store import LabelStore

db, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
errors, versions = [], []
with LabelStore(db) as store:
    for i in range(n):
        row = {"event_id": str(uuid.uuid4()), "action": "add", "targets": [f"w{writer}-c{i}"],
               "author": f"r{writer}", "created_at": datetime.now(UTC)}
        try:
            # one transaction: SELECT max(version), SELECT current labels, then INSERTs
            version, _ = store.save_taxonomy_event(row, remap=lambda current, v: [])
            versions.append(version)
        except Exception as exc:
            errors.append(repr(exc))
print(json.dumps({"errors": errors, "versions": versions}))
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(script: Path, *args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=ROOT,
    )


def _acks(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().split("\n") if line]


def _stored_ids(db: Path) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT event_id FROM label_events ORDER BY id")]
    finally:
        con.close()


def _run_writers(tmp_path: Path, n_writers: int, n_events: int, *, kill_seed: int):
    """Start writers; SIGKILL one of them when it has acked a random number of events.

    The victim is given far more events than the others so it is always killed mid-run,
    while the survivors are still writing, however fast the disk is.
    """
    db = tmp_path / "labels.sqlite"
    LabelStore(db).close()  # create the schema once (writers would race harmlessly anyway)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    rng = random.Random(kill_seed)
    killed = rng.randrange(n_writers)
    target = rng.randint(3, n_events * 2 // 3)
    acks = [tmp_path / f"ack{w}.txt" for w in range(n_writers)]
    procs = [
        _start(script, db, w, n_events * 50 if w == killed else n_events, acks[w]) for w in range(n_writers)
    ]
    deadline = time.monotonic() + 120
    while len(_acks(acks[killed])) < target and time.monotonic() < deadline:
        time.sleep(0.0005)
    time.sleep(rng.uniform(0.0, 0.003))  # a random phase within the next commits
    procs[killed].send_signal(signal.SIGKILL)
    outputs = []
    for w, proc in enumerate(procs):
        out, err = proc.communicate(timeout=300)
        if w == killed:
            assert proc.returncode == -signal.SIGKILL, err
            outputs.append(None)
        else:
            assert proc.returncode == 0, err
            outputs.append(json.loads(out.strip().splitlines()[-1]))
    return db, acks, outputs, killed


def _check_no_loss(db: Path, acks: list[Path]) -> list[str]:
    stored = _stored_ids(db)
    assert len(stored) == len(set(stored)), "an event is stored twice"
    stored_set = set(stored)
    for ack in acks:
        acked = _acks(ack)
        missing = [e for e in acked if e not in stored_set]
        assert not missing, f"acknowledged but not stored: {missing[:5]}"
    with LabelStore(db) as store:
        assert store.integrity_check() == "ok"
    return stored


@pytest.mark.slow  # 20,000 commits, each with an fsync: as fast as the disk's fsync allows
def test_concurrent_reviewers_no_loss(tmp_path: Path) -> None:
    """S1 + S11: 4 writer processes x 5,000 events; online backups taken during the load."""
    db = tmp_path / "labels.sqlite"
    LabelStore(db).close()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    acks = [tmp_path / f"ack{w}.txt" for w in range(4)]
    procs = [_start(script, db, w, 5000, acks[w]) for w in range(4)]
    backups = []
    with LabelStore(db) as reader:
        while any(p.poll() is None for p in procs) and len(backups) < 3:
            if sum(len(_acks(a)) for a in acks) > 2000 * (len(backups) + 1):
                backups.append(reader.backup(tmp_path / f"backup{len(backups)}.sqlite"))
            time.sleep(0.05)
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    assert all(o["errors"] == [] for o in outputs), [o["errors"][:3] for o in outputs]
    stored = _check_no_loss(db, acks)
    assert len(stored) == 20_000
    assert sorted(stored) == sorted(f"w{w}-{i}" for w in range(4) for i in range(5000))
    assert backups, "the writers finished before a backup could be taken"
    for backup in backups:
        with LabelStore(backup) as copy:
            assert copy.integrity_check() == "ok"
        con = sqlite3.connect(backup)
        ids = [r[0] for r in con.execute("SELECT id FROM label_events ORDER BY id")]
        copied = [r[0] for r in con.execute("SELECT event_id FROM label_events ORDER BY id")]
        con.close()
        assert ids == list(range(1, len(ids) + 1)), "a backup must hold a commit prefix"
        assert copied == stored[: len(copied)]


@pytest.mark.parametrize("seed", range(10))
def test_kill9_mid_write(tmp_path: Path, seed: int) -> None:
    """S2: SIGKILL one of 4 writers at a random moment; acked events survive exactly once."""
    n_events = 60
    db, acks, outputs, killed = _run_writers(tmp_path, 4, n_events, kill_seed=seed)
    assert all(o is None or o["errors"] == [] for o in outputs)
    _check_no_loss(db, acks)
    survivors = [w for w in range(4) if w != killed]
    stored = set(_stored_ids(db))
    for w in survivors:
        assert {f"w{w}-{i}" for i in range(n_events)} <= stored
    acked = _acks(acks[killed])
    assert acked, "the killed writer should have acknowledged something before the kill"
    last = int(acked[-1].split("-")[1])
    with LabelStore(db) as store:
        before = store.count()
        store.save(new_label(f"t{last % 97}", f"r{killed}", "pass", event_id=acked[-1]))
        assert store.count() == before, "re-sending an acknowledged event must add nothing"
        in_flight = new_label("t0", f"r{killed}", "pass", event_id=f"w{killed}-{last + 1}")
        store.save(in_flight)  # committed-but-unacked or never committed: at most one row either way
        after_one = store.count()
        assert after_one - before in (0, 1)
        store.save(in_flight)
        assert store.count() == after_one
        assert store.integrity_check() == "ok"


def test_read_then_write_no_busy(tmp_path: Path) -> None:
    """S3: SELECT-then-INSERT transactions from 4 processes; no SQLITE_BUSY reaches the caller."""
    db = tmp_path / "labels.sqlite"
    LabelStore(db).close()
    script = tmp_path / "rtw.py"
    script.write_text(READ_THEN_WRITE)
    procs = [_start(script, db, w, 150) for w in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[], [], [], []]
    versions = sorted(v for r in results for v in r["versions"])
    # versions are read and assigned inside the write transaction: no duplicates, no gaps
    assert versions == list(range(1, 601))
    with LabelStore(db) as store:
        assert store.taxonomy_events()["version"].to_list() == list(range(1, 601))
        assert store.integrity_check() == "ok"
