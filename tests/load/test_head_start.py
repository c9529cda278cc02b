"""A load's head start: blocks scanned while the loader imports are read exactly as the loader would read them,
never twice, and only where the file is the one that was scanned."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from workbench.load import _block_cuts, _head_start, _otlp_native, _scanner, read_traces
from workbench.load import cache as wb_cache
from workbench.load._base import LoadError

pytestmark = pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")
ROOT = Path(__file__).resolve().parents[2]


class Finished(_head_start.HeadStart):
    """A head start that has scanned all it will before the loader claims it (imports slower than the scans)."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._thread.join()


@pytest.fixture
def scans(monkeypatch):
    """Head starts on small files (the loader counts as not imported yet), blocks of 64 KiB, and the scans
    made, by thread: ``{"head": n, "loader": n}``."""
    monkeypatch.setattr(_head_start, "_LOADER", "workbench.not_imported_yet")
    monkeypatch.setattr(_head_start, "HEAD_START_FROM", 0)
    monkeypatch.setattr(_head_start, "HeadStart", Finished)
    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 64 << 10)
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 64 << 10)
    counts = {"head": 0, "loader": 0}
    real = _scanner.scan

    def counted(data, spec):
        counts["head" if threading.current_thread().name == "workbench-head-start" else "loader"] += 1
        return real(data, spec)

    monkeypatch.setattr(_scanner, "scan", counted)
    monkeypatch.setattr(_otlp_native, "raw_scan", counted)
    yield counts
    assert _head_start._current is None  # every call ends its head start


def _span(i: int) -> dict:
    return {"traceId": f"{i // 4:032x}", "spanId": f"{i + 1:016x}", "parentSpanId": f"{i:016x}" if i % 4 else "",
            "name": "chat" if i % 2 else "tool", "kind": 1, "startTimeUnixNano": str(1_767_261_600_000_000_000 + i),
            "endTimeUnixNano": str(1_767_261_600_000_000_000 + 2 * i),
            "attributes": [{"key": "input.value", "value": {"stringValue": f"question {i} " + "é" * (i % 300)}},
                           {"key": "llm.token_count.prompt", "value": {"intValue": str(i)}}],
            "status": {"code": 2 if i % 97 == 0 else 1}}


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def _spans_file(path: Path, n: int = 3000) -> Path:
    return _write(path, [orjson.dumps(_span(i)) for i in range(n)])


def _without_head_start(path: Path, monkeypatch, **kwargs):
    with monkeypatch.context() as patch:
        patch.setattr(_head_start, "HEAD_START_FROM", 1 << 62)
        return read_traces(path, format="otlp", cache=False, **kwargs)


def _same(got, want) -> None:
    assert got.spans.equals(want.spans) and got.traces.equals(want.traces)
    assert got.problems.drop("detail").equals(want.problems.drop("detail"))


def test_blocks_scanned_ahead_are_read_as_the_loader_reads_them_and_not_scanned_again(tmp_path, scans, monkeypatch):
    path = _spans_file(tmp_path / "spans.jsonl")
    n_blocks = sum(1 for _ in _blocks_of(path))
    got = read_traces(path, format="otlp", cache=False)
    assert scans == {"head": _head_start.MAX_BLOCKS, "loader": n_blocks - _head_start.MAX_BLOCKS}
    assert n_blocks > 2 * _head_start.MAX_BLOCKS  # every other block of the first ones
    _same(got, _without_head_start(path, monkeypatch))
    assert got.spans.height == 3000 and got.problems.height == 0


def test_a_bad_line_in_a_block_scanned_ahead_goes_to_problems_with_its_line(tmp_path, scans, monkeypatch):
    lines = [orjson.dumps(_span(i)) for i in range(3000)]
    lines[5] = lines[5][:40]  # in the first block, which the head start scans
    path = _write(tmp_path / "bad.jsonl", lines)
    got = read_traces(path, format="otlp", cache=False)
    assert scans["head"] == _head_start.MAX_BLOCKS
    assert [(p["line"], p["reason"]) for p in got.problems.iter_rows(named=True)] == [(6, "invalid JSON")]
    _same(got, _without_head_start(path, monkeypatch))


def test_a_file_changed_after_its_head_start_is_read_as_it_is_now(tmp_path, scans, monkeypatch):
    """Rewritten in place with text of the same length: the blocks end where they ended, only the file's
    modification time tells the head start's scans are of other bytes."""
    path = _spans_file(tmp_path / "spans.jsonl")
    real_begin = _head_start.begin

    def begin_then_rewrite(paths, *, format, cache):  # noqa: A002
        real_begin(paths, format=format, cache=cache)
        path.write_bytes(path.read_bytes().replace(b"question", b"QUESTION"))
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))

    monkeypatch.setattr(_head_start, "begin", begin_then_rewrite)
    got = read_traces(path, format="otlp", cache=False)
    assert scans["head"] == _head_start.MAX_BLOCKS
    assert got.spans["input"].str.starts_with("QUESTION").all()
    _same(got, _without_head_start(path, monkeypatch))


def test_a_wrong_guess_of_the_shape_only_costs_the_scans(tmp_path, scans, monkeypatch):
    """The first line looks like a span but is not JSON; the loader finds requests after it."""
    requests = [orjson.dumps({"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": [_span(i)]}]}]})
                for i in range(3000)]
    path = _write(tmp_path / "requests.jsonl", [b'{"traceId": "a", "spanId": "b", ', *requests])
    got = read_traces(path, format="otlp", cache=False)
    # scanned as spans, then let go: the loader scans every block as requests (the first twice: whole, then
    # after its bad first line); the head start's answers would have sent lines to the line-by-line reader
    assert scans == {"head": _head_start.MAX_BLOCKS, "loader": sum(1 for _ in _blocks_of(path)) + 1}
    assert got.spans.height == 3000 and got.problems["line"].to_list() == [1]
    _same(got, _without_head_start(path, monkeypatch))


def test_no_head_start_where_the_cache_answers_the_call(tmp_path, scans):
    path = _spans_file(tmp_path / "spans.jsonl")
    for format in ("auto", "otlp"):  # noqa: A001
        read_traces(path, format=format, cache=tmp_path / "cache")
        wb_cache.wait_for()
        before = dict(scans)
        again = read_traces(path, format=format, cache=tmp_path / "cache")
        assert scans == before and again.files["cached"].to_list() == [True]  # the head start only looked


@pytest.mark.parametrize("case", ["small file", "not OTLP", "another format", "several files", "loader imported"])
def test_no_head_start_where_it_cannot_pay(tmp_path, scans, monkeypatch, case):
    path = _spans_file(tmp_path / "spans.jsonl")
    arguments = {"paths": path, "format": "auto", "cache": False}
    if case == "small file":
        monkeypatch.setattr(_head_start, "HEAD_START_FROM", path.stat().st_size + 1)
    elif case == "not OTLP":
        arguments["paths"] = _write(tmp_path / "chat.jsonl", [b'{"messages": []}'] * 10)
    elif case == "another format":
        arguments["format"] = "langfuse"
    elif case == "several files":
        arguments["paths"] = [path, path]
    else:
        monkeypatch.setattr(_head_start, "_LOADER", "workbench.load._otlp_fast")
    _head_start.begin(**arguments)
    assert _head_start._current is None and scans["head"] == 0


def test_a_load_that_stops_at_a_problem_lets_its_head_start_go(tmp_path, scans):
    lines = [orjson.dumps(_span(i)) for i in range(3000)]
    lines[-1] = b"not json"
    path = _write(tmp_path / "strict.jsonl", lines)
    with pytest.raises(LoadError, match="strict.jsonl:3000"):
        read_traces(path, format="otlp", cache=False, strict=True)
    assert not any(t.name == "workbench-head-start" for t in threading.enumerate())


def test_read_traces_imports_nothing_heavy_before_its_head_start():
    code = ("import sys; from workbench.load import read_traces; "
            "print(sorted(m for m in ('polars', 'numpy', 'pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_a_fresh_process_loads_with_a_head_start(tmp_path):
    """Without any patching: a fresh interpreter, a file over the threshold, the same table as a warm process."""
    path = tmp_path / "big.jsonl"
    line = orjson.dumps(_span(7))
    with open(path, "wb") as out:  # a little over the threshold, in few writes
        chunk = b"\n".join([line] * 4096) + b"\n"
        for _ in range(_head_start.HEAD_START_FROM // len(chunk) + 1):
            out.write(chunk)
    code = "\n".join([
        "import sys",
        "from workbench.load import _head_start, read_traces",
        "claimed, claim = [], _head_start.claim",
        "def counted(source):",
        "    found = claim(source)",
        "    claimed.append(len(found[1]) if found else 0)",
        "    return found",
        "_head_start.claim = counted",
        "r = read_traces(sys.argv[1], format='otlp', cache=False)",
        "print(r.spans.height, r.problems.height, r.spans['input'].n_unique(), claimed)"])
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    height, problems, inputs, claimed = out.stdout.split(maxsplit=3)
    assert (int(height), problems, inputs) == (path.read_bytes().count(b"\n"), "0", "1")
    assert claimed.strip() in {f"[{k}]" for k in range(1, _head_start.MAX_BLOCKS + 1)}  # blocks it scanned


def _blocks_of(path: Path):
    data = path.read_bytes()
    step, start = _block_cuts.block_bytes(len(data)), 0
    while start < len(data):
        end = _block_cuts.block_end(data, start, len(data), step)
        yield start, end
        start = end
