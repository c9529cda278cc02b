"""The same store guarantees on PostgreSQL (reliability.md S13).

Starts a throw-away PostgreSQL cluster (initdb + pg_ctl, unix socket only, trust auth).
Skips cleanly when ``pg_ctl``/``initdb`` or the ``psycopg`` driver is absent, or the
server does not start. As root, the server runs as the ``postgres`` system user.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from workbench.review.events import new_label, new_retraction
from workbench.review.store import LabelStore
from workbench.review.taxonomy import Taxonomy

ROOT = Path(__file__).resolve().parents[2]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@pytest.fixture(scope="module")
def pg_url():
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed")
    prefix: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="wbpg"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        runuser = shutil.which("runuser")
        if not runuser:
            pytest.skip("running as root without runuser")
        prefix = [runuser, "-u", "postgres", "--"]
        os.chown(base, user.pw_uid, user.pw_gid)
    data = base / "data"
    port = str(54000 + os.getpid() % 1000)
    try:
        subprocess.run([*prefix, initdb, "-D", str(data), "-A", "trust", "-U", "wb"], check=True,
                       capture_output=True, timeout=120)  # fmt: skip
        opts = f"-k {base} -p {port} -c listen_addresses='' -c fsync=on"
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"],
                       check=True, capture_output=True, timeout=120)  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {exc}")
    try:
        yield f"postgresql+psycopg://wb@/postgres?host={base}&port={port}"
    finally:
        subprocess.run(
            [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60
        )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pg_store(pg_url: str):
    import sqlalchemy as sa

    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:  # a fresh schema per test
        conn.exec_driver_sql("DROP TABLE IF EXISTS label_events, taxonomy_events CASCADE")
    engine.dispose()
    with LabelStore(pg_url) as store:
        yield store


def test_postgres_idempotent_latest_wins_history(pg_store: LabelStore) -> None:
    a1 = pg_store.save(new_label("t1", "ana", "pass", categories=["x"]))
    pg_store.save(a1)
    pg_store.save_many([a1])
    a2 = pg_store.save(new_label("t1", "ana", "fail", supersedes=a1.event_id))
    pg_store.save(new_retraction("t1", "ana", supersedes=a2.event_id))
    b1 = pg_store.save(new_label("t1", "bo", "fail"))
    assert pg_store.count() == 4
    assert dict(pg_store.current().select("reviewer", "verdict").rows()) == {"ana": "pass", "bo": "fail"}
    assert pg_store.events()["event_id"].to_list()[-1] == b1.event_id
    assert pg_store.events()["categories"].to_list()[0] == ["x"]


def test_postgres_append_only(pg_store: LabelStore) -> None:
    import sqlalchemy as sa

    pg_store.save(new_label("t1", "ana", "pass"))
    Taxonomy(pg_store, author="ana").add("c1")
    for sql in ("UPDATE label_events SET verdict = 'fail'", "DELETE FROM label_events",
                "TRUNCATE label_events", "DELETE FROM taxonomy_events"):  # fmt: skip
        with pytest.raises(sa.exc.DBAPIError, match="append-only"), pg_store._engine.begin() as conn:
            conn.exec_driver_sql(sql)
    assert pg_store.events()["verdict"].to_list() == ["pass"]
    assert pg_store.integrity_check() == "ok"


def test_postgres_taxonomy_and_backup(pg_store: LabelStore, tmp_path: Path) -> None:
    taxonomy = Taxonomy(pg_store, author="ana")
    taxonomy.add("a")
    taxonomy.add("b")
    pg_store.save(new_label("t1", "ana", "fail", categories=["a"]))
    change = taxonomy.merge(["a", "b"], into="ab")
    assert change.version == 3 and len(change.relabelled) == 1
    assert pg_store.current()["categories"].to_list() == [["ab"]]
    copy_path = pg_store.backup(tmp_path / "pg-backup.sqlite")
    with LabelStore(copy_path) as copy:
        assert copy.integrity_check() == "ok"
        assert copy.events().equals(pg_store.events())
        assert copy.taxonomy_events().equals(pg_store.taxonomy_events())


WRITER = r"""
import json, sys
from workbench.review.events import new_label
from workbench.review.store import LabelStore
url, writer, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
acked, errors = [], []
with LabelStore(url) as store:
    for i in range(n):
        event = new_label(f"t{i % 13}", f"r{writer}", "pass", event_id=f"w{writer}-{i}")
        try:
            store.save(event)
            acked.append(event.event_id)
        except Exception as exc:
            errors.append(repr(exc))
print(json.dumps({"acked": acked, "errors": errors}))
"""


def test_postgres_concurrent_writers(pg_store: LabelStore, tmp_path: Path) -> None:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), pg_store.url, str(w), "100"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )  # fmt: skip
        for w in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["errors"] for r in results] == [[], [], [], []]
    stored = pg_store.events()["event_id"].to_list()
    assert len(stored) == len(set(stored)) == 400
    assert {e for r in results for e in r["acked"]} == set(stored)
