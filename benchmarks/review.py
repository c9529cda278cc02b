"""Label save latency through LabelStore (SQLite WAL, synchronous=FULL, BEGIN IMMEDIATE).

Measures the time of ``store.save(event)`` (returns after COMMIT + fsync) for one
reviewer alone, and while 3 other writer processes save as fast as they can (a much
heavier load than 3 humans labelling). Goal: p95 < 5 ms. Prints a markdown table.

    .venv/bin/python benchmarks/review.py [--saves 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.review.events import new_label  # noqa: E402
from workbench.review.store import LabelStore  # noqa: E402

BUSY_WRITER = r"""
import sys, time
from pathlib import Path
from workbench.review.events import new_label
from workbench.review.store import LabelStore
db, writer, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3])
n = 0
with LabelStore(db) as store:
    while not stop.exists():
        store.save(new_label(f"bg{n % 500}", f"busy{writer}", "pass", note="x" * 200))
        n += 1
print(n)
"""


def _measure(store: LabelStore, saves: int) -> list[float]:
    times = []
    for i in range(saves):
        event = new_label(f"t{i}", "me", "fail" if i % 3 else "pass", categories=["c1"], note="n" * 200)
        start = time.perf_counter()
        store.save(event)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _raw_fsync(path: Path, count: int) -> list[float]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 4096)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
    finally:
        os.close(fd)
    return times


def _row(name: str, times: list[float], others: int | None) -> str:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    p99 = ordered[int(0.99 * (len(ordered) - 1))]
    verdict = "yes" if p95 < 5 else "no"
    busy = "–" if others is None else f"{others:,}"
    return f"| {name} | {len(times):,} | {p50:.2f} | {p95:.2f} | {p99:.2f} | {max(ordered):.1f} | {busy} | {verdict} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wb-bench-review-"))
    db = work / "labels.sqlite"
    rows = [
        _row("baseline: raw 4 KB write + fsync (the disk)", _raw_fsync(work / "fsync.bin", args.saves), None)
    ]
    with LabelStore(work / "overhead.sqlite") as bare:
        import sqlalchemy as sa

        sa.event.listen(bare._engine, "connect", lambda conn, _rec: conn.execute("PRAGMA synchronous = OFF"))
        bare._engine.dispose()
        rows.append(_row("baseline: store overhead (synchronous=OFF)", _measure(bare, args.saves), None))
    with LabelStore(db) as store:
        _measure(store, 50)  # warm up
        rows.append(_row("store.save alone", _measure(store, args.saves), None))
        stop = work / "stop"
        script = work / "busy.py"
        script.write_text(BUSY_WRITER)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), str(db), str(w), str(stop)],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            for w in range(3)
        ]
        time.sleep(3)  # let the busy writers start saving
        times = _measure(store, args.saves)
        stop.touch()
        others = sum(int(p.communicate(timeout=60)[0].strip() or 0) for p in procs)
        rows.append(_row("store.save with 3 busy writer processes", times, others))
        assert store.integrity_check() == "ok"
    print(f"Label save latency (ms), SQLite {_sqlite_version()} WAL, synchronous=FULL, one fsync per save")
    print()
    print("| scenario | saves | p50 | p95 | p99 | max | saves by the other writers | p95 < 5 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(row)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


def _sqlite_version() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    raise SystemExit(main())
