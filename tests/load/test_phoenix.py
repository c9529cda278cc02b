"""Phoenix reader: spans dataframe as JSONL and Parquet, REST span pages, inline annotations, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import phoenix
from workbench.load._base import LoadError
from workbench.load._records import read_head
from workbench.load.detect import detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "phoenix"
TRACE = "6a1b2c3d4e5f60718293a4b5c6d7e8f9"
COMPARED = [c for c in schema.SPANS if c not in ("source_file", "source_line")]


def load(name: str):
    return phoenix.read(str(FIXTURES / name)).conformed()


def span(result, span_id: str) -> dict:
    rows = result.spans.filter(pl.col("span_id") == span_id).to_dicts()
    assert len(rows) == 1, span_id
    return rows[0]


@pytest.mark.parametrize("name", ["spans.jsonl", "spans.parquet", "rest_spans.json"])
def test_sniff_claims_phoenix_files(name):
    path = FIXTURES / name
    assert phoenix.sniff(str(path), read_head(path))
    assert detect_format(path, read_head(path)) == "phoenix"  # no earlier reader claims it


@pytest.mark.parametrize("head", [
    b'{"resourceSpans": []}',
    b'{"trace": {"id": "t"}, "observations": []}',
    b'{"info": {"trace_id": "tr-1"}, "data": {"spans": [{"context": {"span_id": "0x1"}}]}}',
    b'{"object": "trace.span", "id": "span_1", "trace_id": "trace_1", "span_data": {}}',
])
def test_sniff_rejects_other_formats(head):
    assert not phoenix.sniff("x.json", head)


def test_sniff_rejects_a_parquet_without_phoenix_columns(tmp_path):
    path = tmp_path / "other.parquet"
    pl.DataFrame({"trace_id": ["a"], "value": [1]}).write_parquet(path)
    assert not phoenix.sniff(str(path), read_head(path))


def test_jsonl_dataframe_export_maps_openinference_columns():
    result = load("spans.jsonl")
    schema.validate(result.spans, schema.SPANS, table="spans")
    assert result.spans.height == 4 and set(result.spans["trace_id"]) == {TRACE}

    agent = span(result, "a000000000000001")
    assert (agent["kind"], agent["parent_span_id"], agent["status"]) == ("agent", None, "ok")
    assert (agent["session_id"], agent["user_id"], agent["prompt_version"]) == ("sess-ph-1", "user-ph-1", "v3")
    assert agent["tags"] == ["billing", "web"]
    assert agent["start_time"] == datetime(2025, 9, 1, 8, 0, tzinfo=UTC)  # pandas epoch milliseconds
    assert agent["duration_ms"] == pytest.approx(3000.0)
    assert agent["input"] == "Cancel my subscription" and json.loads(agent["output"]) == {"status": "cancelled"}
    assert json.loads(agent["attributes"])["metadata"] == {"prompt_version": "v3", "region": "eu"}

    llm = span(result, "a000000000000002")
    assert (llm["kind"], llm["model"], llm["provider"]) == ("llm", "gpt-4o-mini", "openai")
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (210, 25, 235)
    assert json.loads(llm["input"]) == [{"role": "system", "content": "You are helpful."},
                                        {"role": "user", "content": "Cancel my subscription"}]
    assert json.loads(llm["output"]) == [{"role": "assistant", "content": "Done."}]
    assert json.loads(llm["attributes"])["llm.invocation_parameters"] == '{"temperature": 0.2}'

    retriever = span(result, "a000000000000003")
    assert (retriever["kind"], retriever["status"], retriever["error_type"], retriever["error_message"]) == (
        "retriever", "error", "TimeoutError", "kb offline")
    assert json.loads(retriever["output"]) == [{"id": "kb-1", "score": 0.9, "content": "Cancel any time."}]
    attrs = json.loads(retriever["attributes"])
    assert attrs["url.host"] == "kb.internal" and attrs["events"][0]["name"] == "exception"


def test_inline_annotations_become_feedback():
    fb = {row["name"]: row for row in load("spans.jsonl").feedback.to_dicts()}
    assert set(fb) == {"resolved", "helpful"}
    resolved = fb["resolved"]  # on the root span: about the whole trace
    assert (resolved["target_level"], resolved["target_id"], resolved["value_num"], resolved["value_label"]) == (
        "trace", TRACE, 1.0, "yes")
    assert resolved["annotator_kind"] == "code"
    helpful = fb["helpful"]
    assert (helpful["target_level"], helpful["target_id"], helpful["trace_id"]) == ("span", "a000000000000002", TRACE)
    assert (helpful["value_num"], helpful["value_text"], helpful["annotator_kind"]) == (
        0.0, "ignored the refund question", "human")


def test_bad_rows_become_problems_and_good_rows_load():
    path = FIXTURES / "spans.jsonl"
    result = load("spans.jsonl")
    problems = sorted((p.line, p.reason, p.field) for p in result.problems)
    assert problems == [
        (4, "missing required field", "context.span_id"),
        (5, "invalid JSON", None),
        (6, "bad field value", "start_time"),
        (6, "type drift", "llm.token_count.prompt"),
    ]
    offsets = [0]
    for line in path.read_bytes().split(b"\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    assert all(p.byte_offset == offsets[p.line - 1] for p in result.problems)
    late = span(result, "a000000000000004")
    assert late["start_time"] is None and late["tokens_in"] is None and late["kind"] == "tool"
    attrs = json.loads(late["attributes"])
    assert attrs["start_time"] == "twelve o'clock" and attrs["llm.token_count.prompt"] == "lots"
    with pytest.raises(LoadError, match=r"spans\.jsonl:4 \(field 'context.span_id'\)"):
        phoenix.read(str(path), strict=True)


def test_parquet_export_gives_the_same_spans_and_feedback_as_jsonl():
    from_parquet = load("spans.parquet")
    from_jsonl = load("spans.jsonl")
    assert from_parquet.problems == []
    assert from_parquet.spans["source_line"].to_list() == [1, 2, 3]  # row numbers
    good = from_jsonl.spans.filter(pl.col("span_id") != "a000000000000004")
    assert from_parquet.spans.select(COMPARED).equals(good.select(COMPARED))
    assert from_parquet.feedback.drop("source_file").equals(from_jsonl.feedback.drop("source_file"))


def test_rest_span_page_with_nested_attributes():
    result = load("rest_spans.json")
    chain = span(result, "cdcdcdcdcdcdcdcd")
    assert (chain["trace_id"], chain["kind"], chain["session_id"], chain["app_version"]) == (
        "ab" * 16, "chain", "rest-session", "1.2.3")
    assert (chain["input"], chain["output"]) == ("hello", "hi there")
    assert json.loads(chain["attributes"])["phoenix.columns"] == {"id": "U3BhbjoxMjM="}
    llm = span(result, "efefefefefefefef")
    assert (llm["kind"], llm["model"], llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (
        "llm", "claude-3-5-haiku", 12, 3, 15)
    assert json.loads(llm["input"]) == [{"role": "user", "content": "hello"}]
    [problem] = result.problems
    assert problem.reason == "not a Phoenix span" and "data[2]" in problem.detail
