"""Crash safety (reliability S14): SIGKILL during an export leaves old-complete or new-complete, never partial."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

from tests.export.conftest import make_labels, make_traces
from workbench.export import export_eval_set, versions
from workbench.export.atomic import TEMP_PREFIX
from workbench.export.dataset import build_eval_dataset
from workbench.export.manifest import read_manifest, sha256_file
from workbench.export.writers import write_format

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ["jsonl", "parquet", "csv", "huggingface"]

CHILD = textwrap.dedent(
    f"""
    import os, signal, sys
    from pathlib import Path
    mode, point, nth, target, n_traces = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5])
    from tests.export.conftest import make_labels, make_traces
    from workbench.export import export_eval_set
    from workbench.export.dataset import build_eval_dataset
    from workbench.export.writers import write_format

    if point != "none":
        real = getattr(os, point)
        calls = [0]

        def hooked(*args, **kwargs):
            calls[0] += 1
            if calls[0] == nth:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(os, point, hooked)
    traces = make_traces(n_traces)
    labels = make_labels(traces)
    print("start", flush=True)
    if mode == "file":
        items = build_eval_dataset(traces, labels, name="ds", split=None).items
        write_format(items, target, format="jsonl")
    else:
        export_eval_set(traces, labels, name="ds", out_dir=target, formats={FORMATS!r})
    print("done", flush=True)
    """
)


def _run_child(tmp_path: Path, mode: str, point: str, nth: int, target: Path, n_traces: int = 60,
               kill_after: float | None = None) -> int:  # fmt: skip
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), mode, point, str(nth), str(target), str(n_traces)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if kill_after is not None:
        assert proc.stdout.readline().strip() == "start"
        time.sleep(kill_after)
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    return proc.returncode


def _assert_versions_complete(out: Path) -> list[int]:
    base = out / "ds"
    published = [e for e in base.iterdir() if e.name.startswith("v")] if base.exists() else []
    for version_dir in published:
        manifest = read_manifest(version_dir)  # a published version always has its manifest
        for entry in manifest["files"]:
            assert sha256_file(version_dir / entry["path"]) == entry["sha256"], entry
    return versions(out, "ds")


@pytest.mark.parametrize(("point", "nth"), [("fsync", 1), ("fsync", 4), ("replace", 2), ("rename", 1)])
def test_kill_during_versioned_export(tmp_path, point, nth):
    out = tmp_path / "out"
    traces = make_traces(60)
    first = export_eval_set(traces, make_labels(traces), name="ds", out_dir=out, formats=FORMATS)
    before = {p: p.read_bytes() for p in first.path.rglob("*") if p.is_file()}
    code = _run_child(tmp_path, "export", point, nth, out)
    assert code == -signal.SIGKILL
    assert _assert_versions_complete(out) == [1]  # the killed export published nothing
    assert {p: p.read_bytes() for p in first.path.rglob("*") if p.is_file()} == before
    # the next export cleans the killed writer's staging folder and publishes v2
    again = export_eval_set(traces, make_labels(traces), name="ds", out_dir=out, formats=FORMATS)
    assert again.version == 2
    assert not [e for e in (out / "ds").iterdir() if e.name.startswith(TEMP_PREFIX)]
    assert _assert_versions_complete(out) == [1, 2]


@pytest.mark.parametrize(("point", "nth"), [("fsync", 1), ("replace", 1)])
def test_kill_during_single_file_write(tmp_path, point, nth):
    target_dir = tmp_path / "single"
    target_dir.mkdir()
    old = b'{"old": "complete"}\n'
    (target_dir / "items.jsonl").write_bytes(old)
    code = _run_child(tmp_path, "file", point, nth, target_dir)
    assert code == -signal.SIGKILL
    assert (target_dir / "items.jsonl").read_bytes() == old
    # without a kill the same write replaces the file with the complete new content
    assert _run_child(tmp_path, "file", "none", 0, target_dir) == 0
    traces = make_traces(60)
    expected_dir = tmp_path / "expected"
    items = build_eval_dataset(traces, make_labels(traces), name="ds", split=None).items
    write_format(items, expected_dir, format="jsonl")
    assert (target_dir / "items.jsonl").read_bytes() == (expected_dir / "items.jsonl").read_bytes()


def test_kill_at_random_moments(tmp_path):
    out = tmp_path / "out"
    rng = random.Random(2024)
    outcomes = []
    for delay in (rng.uniform(0.0, 0.4), rng.uniform(0.4, 0.9), None):  # early, mid-export, no kill
        code = _run_child(tmp_path, "export", "none", 0, out, n_traces=1500, kill_after=delay)
        published = _assert_versions_complete(out)
        outcomes.append((code, published))
        for version in published:
            manifest = read_manifest(out / "ds" / f"v{version}")
            lines = (out / "ds" / f"v{version}" / "items.jsonl").read_bytes().splitlines()
            assert len(lines) == manifest["n_items"]
            assert all(orjson.loads(line)["item_id"] for line in lines)
    print("random kills (exit code, published versions):", outcomes)
    assert all(code in (0, -signal.SIGKILL) for code, _ in outcomes)
