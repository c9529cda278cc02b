"""read_traces: paths, globs, directories, .gz, detection report, cache, unknown formats."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from workbench.load import LoadError, LoadResult, read_traces
from workbench.load import cache as wb_cache
from workbench.load.detect import READERS, detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
REQUESTS = FIXTURES / "openinference_requests.jsonl"


@pytest.fixture
def export_dir(tmp_path):
    root = tmp_path / "exports"
    (root / "nested").mkdir(parents=True)
    shutil.copy(REQUESTS, root / "a.jsonl")
    (root / "nested" / "b.json.gz").write_bytes(gzip.compress((FIXTURES / "genai_single_doc.json").read_bytes()))
    (root / "notes.txt").write_text("not a trace file")
    return root


def test_single_path_builds_all_tables():
    result = read_traces(REQUESTS, cache=False)
    assert isinstance(result, LoadResult)
    assert result.rows() == {"spans": 5, "traces": 2, "sessions": 2, "feedback": 3, "problems": 0}
    assert result.formats() == {str(REQUESTS): "otlp"}
    assert result.files["detected"].to_list() == [True]


def test_directory_recursive_with_gzip(export_dir):
    result = read_traces(export_dir, cache=False)
    assert sorted(Path(p).name for p in result.formats()) == ["a.jsonl", "b.json.gz"]
    assert set(result.formats().values()) == {"otlp"}
    assert result.spans.height == 9 and result.traces.height == 3


def test_globs_lists_and_no_repeats(export_dir):
    result = read_traces([str(export_dir / "**" / "*.gz"), export_dir / "a.jsonl", str(export_dir / "*.jsonl")],
                         cache=False)
    assert [Path(p).name for p in result.files["path"]] == ["b.json.gz", "a.jsonl"]


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        read_traces(tmp_path / "nowhere.jsonl", cache=False)


def test_unknown_format_is_a_problem_or_strict_error(tmp_path):
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"hello": "world"}\n')
    result = read_traces([odd, REQUESTS], cache=False)
    assert result.spans.height == 5
    assert result.problems.select("source_file", "reason").rows() == [(str(odd), "unknown format")]
    with pytest.raises(LoadError, match="odd.jsonl"):
        read_traces(odd, cache=False, strict=True)
    with pytest.raises(ValueError, match="unknown format 'nope'"):
        read_traces(REQUESTS, format="nope", cache=False)


def test_detect_skips_missing_readers_and_names_the_file(tmp_path):
    assert list(READERS)[0] == "otlp"
    assert detect_format(REQUESTS, REQUESTS.read_bytes()[:4096]) == "otlp"
    with pytest.raises(ValueError, match="x.jsonl: not a recognised trace export"):
        detect_format(tmp_path / "x.jsonl", b"{}")


def test_cache_round_trip_and_invalidation(tmp_path):
    path = tmp_path / "t.jsonl"
    shutil.copy(REQUESTS, path)
    cache_dir = tmp_path / "cache"
    first = read_traces(path, cache=cache_dir)
    second = read_traces(path, cache=cache_dir)
    assert first.files["cached"].to_list() == [False] and second.files["cached"].to_list() == [True]
    assert second.spans.equals(first.spans) and second.feedback.equals(first.feedback)
    assert len([p for p in cache_dir.iterdir() if not p.name.startswith(".")]) == 1
    # an edited file (new content, new mtime) is parsed again
    path.write_bytes(path.read_bytes().replace(b"sess-42", b"sess-99"))
    third = read_traces(path, cache=cache_dir)
    assert third.files["cached"].to_list() == [False]
    assert "sess-99" in third.spans["session_id"].to_list()
    # a renamed file hits the cache and reports its new name
    moved = tmp_path / "moved.jsonl"
    path.rename(moved)
    fourth = read_traces(moved, cache=cache_dir)
    assert fourth.files["cached"].to_list() == [True]
    assert set(fourth.spans["source_file"]) == {str(moved)}
    wb_cache.clear(cache_dir)
    assert not cache_dir.exists()


def test_cached_problems_still_raise_when_strict(tmp_path):
    bad = Path(__file__).resolve().parents[1] / "fixtures" / "bad" / "malformed.jsonl"
    cache_dir = tmp_path / "cache"
    assert read_traces(bad, cache=cache_dir).problems.height == 1
    with pytest.raises(LoadError, match=r"malformed\.jsonl:3"):
        read_traces(bad, cache=cache_dir, strict=True)


def test_the_bundled_sample_loads():
    sample = Path(__file__).resolve().parents[2] / "data" / "support_agent.otlp.jsonl"
    if not sample.exists():
        pytest.skip("sample not generated")
    result = read_traces(sample, cache=False)
    assert result.problems.height == 0
    assert result.traces.height == 2000
    assert set(result.traces["prompt_version"].drop_nulls()) == {"v1", "v2"}
    names = set(result.feedback["name"])
    assert {"resolved", "judge_pass"} <= names
    assert result.traces["passed"].null_count() == 0


def test_cache_of_a_file_set_reuses_unchanged_files(tmp_path):
    first_file, second_file = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    shutil.copy(REQUESTS, first_file)
    shutil.copy(FIXTURES / "spans_per_line.jsonl", second_file)
    cache_dir = tmp_path / "cache"
    fresh = read_traces([first_file, second_file], cache=cache_dir)
    again = read_traces([first_file, second_file], cache=cache_dir)
    assert again.files["cached"].to_list() == [True, True]
    for name in ("spans", "traces", "sessions", "feedback", "problems"):
        assert getattr(again, name).equals(getattr(fresh, name)), name
    assert again.files.drop("seconds", "cached").equals(fresh.files.drop("seconds", "cached"))
    # one file edited: only that one is parsed again, the other comes from its own entry
    second_file.write_bytes(second_file.read_bytes() + b"\n")
    third = read_traces([first_file, second_file], cache=cache_dir)
    assert third.files["cached"].to_list() == [True, False]
    assert third.spans.equals(fresh.spans)
    wb_cache.wait_for()


@pytest.mark.parametrize("direct_io", [True, False], ids=["direct I/O", "no positioned writes (Windows)"])
def test_long_tables_are_cached_in_parts_and_read_back_whole(tmp_path, monkeypatch, direct_io):
    from workbench.load import _direct_io, _spill

    written = []
    real_create = _direct_io.DirectWriter.create.__func__
    monkeypatch.setattr(_direct_io.DirectWriter, "create",
                        classmethod(lambda cls, path, stage=None: written.append(path) or real_create(cls, path, stage)))
    monkeypatch.setattr(wb_cache, "DIRECT_IO_AVAILABLE", direct_io)
    monkeypatch.setattr(wb_cache, "PART_ROWS", 3)
    monkeypatch.setattr(wb_cache, "SPANS_PART_ROWS", 3)
    drops = []
    monkeypatch.setattr(_spill, "drop_mapped_pages", lambda: drops.append(1))
    cache_dir = tmp_path / "cache"
    fresh = read_traces(REQUESTS, cache=cache_dir)
    wb_cache.wait_for()
    (entry,) = [p for p in cache_dir.iterdir() if not p.name.startswith(".")]
    parts = sorted(p.name for p in entry.glob("spans.*.arrow"))
    assert len(parts) == -(-fresh.spans.height // 3) > 1 and not (entry / "spans.arrow").exists()
    assert len(drops) >= len(parts)  # text paged in by the writer is let go after every part
    assert len(written) == (len(list(entry.glob("*.arrow"))) if direct_io else 0)
    again = read_traces(REQUESTS, cache=cache_dir)
    assert again.files["cached"].to_list() == [True]
    for name in ("spans", "traces", "sessions", "feedback", "problems"):
        assert getattr(again, name).equals(getattr(fresh, name)), name


def test_the_cycle_collector_is_back_as_it_was_after_a_load(tmp_path):
    import gc

    path = tmp_path / "spans.jsonl"
    path.write_bytes(b'{"traceId": "t", "spanId": "s", "name": "x", "startTimeUnixNano": "1", "endTimeUnixNano": "2"}\n')
    assert gc.isenabled()
    read_traces(path, cache=False)
    assert gc.isenabled()
    gc.disable()
    try:
        read_traces(path, cache=False)
        assert not gc.isenabled()
    finally:
        gc.enable()
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(path.read_bytes() + b"{not json\n")
    with pytest.raises(LoadError):
        read_traces(bad, cache=False, strict=True)
    assert gc.isenabled()
