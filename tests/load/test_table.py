"""Plain tables (CSV / Parquet / JSONL) with a column mapping -> spans, traces, feedback, problems."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import LoadError
from workbench.load.table import file_format, read_table

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "table"
RUNS = FIXTURES / "runs_per_trace.csv"
SPANS = FIXTURES / "spans_nested.jsonl"
RUN_COLUMNS = {"trace_id": "run_id", "input": "question", "output": "answer", "model": "model", "passed": "correct",
               "reward": "score", "user_feedback": "thumbs", "start_time": "started", "end_time": "finished",
               "prompt_version": "prompt", "cost_usd": "cost"}
SPAN_COLUMNS = {"trace_id": "ids.trace", "span_id": "ids.span", "parent_span_id": "ids.parent", "name": "op",
                "kind": "type", "start_time": "ts.start", "end_time": "ts.end", "input": "text.in", "output": "text.out",
                "status": "status", "tokens_in": "usage.in", "tokens_out": "usage.out", "model": "model",
                "reward": "outcome.reward"}


@pytest.fixture(scope="module")
def runs():
    return read_table(RUNS, columns=RUN_COLUMNS)


@pytest.fixture(scope="module")
def nested():
    return read_table(SPANS, columns=SPAN_COLUMNS)


def test_one_row_per_trace_becomes_a_root_span_with_outcomes(runs):
    for name in ("spans", "traces", "sessions", "feedback", "problems"):
        schema.validate(getattr(runs, name), schema.TABLES[name], table=name)
    spans = {r["trace_id"]: r for r in runs.spans.iter_rows(named=True)}
    assert set(spans) == {"r-001", "r-002", "r-004", "r-005"}
    first = spans["r-001"]
    assert first["span_id"] == "r-001" and first["kind"] == "agent" and first["parent_span_id"] is None
    assert first["start_time"] == datetime(2025, 3, 3, 9, 0, tzinfo=UTC) and first["duration_ms"] == 2500.0
    assert first["cost_usd"] == 0.00021 and first["model"] == "gpt-4o-mini" and first["prompt_version"] == "v1"
    assert first["source_format"] == "table" and first["source_line"] == 2
    # a quoted cell spanning two lines stays one row; unmapped columns go to attributes
    assert spans["r-002"]["output"] == "I couldn't find our refund policy,\nso I can't say."
    assert json.loads(spans["r-002"]["attributes"]) == {"notes": "refund policy missing"}
    assert spans["r-005"]["start_time"] == datetime(2025, 3, 3, 12, 0, tzinfo=UTC)  # epoch seconds
    traces = {r["trace_id"]: r for r in runs.traces.iter_rows(named=True)}
    assert (traces["r-001"]["passed"], traces["r-001"]["reward"], traces["r-001"]["user_feedback"]) == (True, 1.0, 1.0)
    assert (traces["r-002"]["passed"], traces["r-002"]["user_feedback"]) == (False, 0.0)
    assert traces["r-004"]["passed"] is True  # "yes"
    assert traces["r-005"]["passed"] is None and traces["r-005"]["reward"] == 0.5
    kinds = dict(zip(runs.feedback["name"], runs.feedback["annotator_kind"], strict=False))
    assert kinds == {"passed": "code", "reward": "code", "user_feedback": "human"}


def test_bad_cells_and_rows_are_problems_with_line_and_column(runs):
    assert runs.problems.select("line", "reason", "field").rows() == [
        (5, "missing required field", "run_id"),
        (6, "bad field value", "started"),
        (6, "bad field value", "cost"),
        (7, "bad field value", "correct"),
    ]
    assert "'yesterday'" in runs.problems["detail"][1] and set(runs.problems["source_file"]) == {str(RUNS)}
    # the row with bad cells still loads, with nulls where the cells were bad
    row = runs.spans.filter(pl.col("trace_id") == "r-004").row(0, named=True)
    assert row["start_time"] is None and row["cost_usd"] is None and row["output"] == "Reset link sent."


def test_span_rows_from_nested_json_build_a_tree_with_kinds_times_and_tokens(nested):
    spans = {r["span_id"]: r for r in nested.spans.iter_rows(named=True)}
    assert set(spans) == {"s-root", "s-llm", "s-kb", "s-route", "s2-root"}
    assert {k: spans[k]["kind"] for k in spans} == {"s-root": "agent", "s-llm": "llm", "s-kb": "retriever",
                                                    "s-route": "other", "s2-root": "agent"}
    assert json.loads(spans["s-route"]["attributes"]) == {"env": "prod", "kind": "router"}
    assert spans["s-llm"]["parent_span_id"] == "s-root" and spans["s-root"]["parent_span_id"] is None
    assert spans["s-llm"]["start_time"] == datetime(2025, 3, 3, 12, 0, 0, 100000, tzinfo=UTC)  # epoch ms
    assert spans["s-llm"]["duration_ms"] == 1800.0
    assert (spans["s-llm"]["tokens_in"], spans["s-llm"]["tokens_out"]) == (120, 9)
    assert json.loads(spans["s-llm"]["input"]) == [{"role": "user", "content": "Do you ship to Canada?"}]
    assert spans["s-kb"]["status"] == "error" and spans["s-kb"]["tokens_in"] is None
    assert spans["s2-root"]["start_time"] == datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
    t1 = nested.traces.filter(pl.col("trace_id") == "T-1").row(0, named=True)
    assert (t1["n_spans"], t1["n_llm_calls"], t1["n_errors"], t1["tokens_in"], t1["reward"]) == (4, 1, 1, 120, 0.5)
    assert nested.feedback.height == 1  # the reward repeated on two rows of T-1 is one trace-level score


def test_nested_json_problems(nested):
    assert nested.problems.select("line", "reason", "field").rows() == [
        (3, "bad field value", "usage.in"),
        (5, "missing required field", "ids.trace"),
        (6, "bad field value", "status"),
        (7, "invalid JSON", None),
    ]


def test_parquet_with_typed_columns(tmp_path):
    path = tmp_path / "spans.parquet"
    pl.DataFrame({
        "tid": ["a", "a", "b"], "sid": ["1", "2", "3"], "parent": [None, "1", None],
        "op": ["run", "gpt", "run"], "type": ["agent", "LLM", "agent"],
        "begin": [datetime(2025, 1, 1, 12), datetime(2025, 1, 1, 12, 0, 1), datetime(2025, 1, 2)],
        "labels": [["prod", "eu"], [], None], "ok": [True, True, False], "extra": [1, 2, 3],
    }).write_parquet(path)
    result = read_table(path, columns={"trace_id": "tid", "span_id": "sid", "parent_span_id": "parent", "name": "op",
                                       "kind": "type", "start_time": "begin", "tags": "labels", "passed": "ok"})
    assert result.problems.is_empty()
    assert result.spans["kind"].to_list() == ["agent", "llm", "agent"]
    assert result.spans["source_line"].to_list() == [1, 2, 3]
    assert result.spans["start_time"][0] == datetime(2025, 1, 1, 12, tzinfo=UTC)
    assert result.spans["tags"].to_list() == [["prod", "eu"], [], None]
    assert json.loads(result.spans["attributes"][2]) == {"extra": 3}
    assert dict(zip(result.traces["trace_id"], result.traces["passed"], strict=True)) == {"a": True, "b": False}


def test_a_mapped_column_the_file_lacks_is_a_clear_error(tmp_path):
    with pytest.raises(LoadError) as info:
        read_table(RUNS, columns={"trace_id": "id", "input": "question"})
    message = str(info.value)
    assert str(RUNS) in message and "'id' (for trace_id)" in message and "run_id" in message
    path = tmp_path / "t.parquet"
    pl.DataFrame({"x": [1]}).write_parquet(path)
    with pytest.raises(LoadError, match=r"'trace' \(for trace_id\)"):
        read_table(path, columns={"trace_id": "trace"})
    with pytest.raises(LoadError, match=r"spans_nested.jsonl.*'ids.nope' \(for session_id\)"):
        read_table(SPANS, columns={"trace_id": "ids.trace", "session_id": "ids.nope"})


def test_the_mapping_is_checked_before_reading():
    with pytest.raises(ValueError, match="must map 'trace_id'"):
        read_table(RUNS, columns={"input": "question"})
    with pytest.raises(ValueError, match="unknown target column"):
        read_table(RUNS, columns={"trace_id": "run_id", "questions": "question"})
    with pytest.raises(ValueError, match="format"):
        read_table(RUNS, columns={"trace_id": "run_id"}, format="xlsx")


def test_strict_raises_at_the_first_bad_row():
    with pytest.raises(LoadError) as info:
        read_table(RUNS, columns=RUN_COLUMNS, strict=True)
    assert f"{RUNS}:5" in str(info.value) and "run_id" in str(info.value)


def test_format_comes_from_the_file_name_or_is_given(tmp_path):
    assert [file_format(n) for n in ("a.csv", "b.CSV.gz", "c.parquet", "d.ndjson", "e.json")] == [
        "csv", "csv", "parquet", "jsonl", "json"]
    with pytest.raises(ValueError, match="cannot tell"):
        file_format("runs.txt")
    path = tmp_path / "runs.txt"
    path.write_text("id,q\nx,hello\n", encoding="utf-8")
    result = read_table(path, columns={"trace_id": "id", "input": "q"}, format="csv")
    assert result.traces["input"].to_list() == ["hello"]
    doc = tmp_path / "rows.json"
    doc.write_text(json.dumps([{"id": "a", "q": "one"}, {"id": "b", "q": "two"}]), encoding="utf-8")
    assert sorted(read_table(doc, columns={"trace_id": "id", "input": "q"}).traces["input"]) == ["one", "two"]
