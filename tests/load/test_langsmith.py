"""LangSmith reader: run JSONL, ingest post/patch payloads, nested child runs, feedback, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import langsmith
from workbench.load._base import LoadError
from workbench.load._records import read_head
from workbench.load.detect import detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "langsmith"
ROOT = "1f0a6b1c-0000-4000-8000-000000000001"
AGENT = "1f0a6b1c-0000-4000-8000-000000000002"
LLM = "1f0a6b1c-0000-4000-8000-000000000003"
TOOL = "1f0a6b1c-0000-4000-8000-000000000004"
LATE = "1f0a6b1c-0000-4000-8000-000000000005"


def load(name: str):
    return langsmith.read(str(FIXTURES / name)).conformed()


def span(result, span_id: str) -> dict:
    rows = result.spans.filter(pl.col("span_id") == span_id).to_dicts()
    assert len(rows) == 1, span_id
    return rows[0]


@pytest.mark.parametrize("name", ["runs.jsonl", "ingest_payload.json", "runs_list.json"])
def test_sniff_claims_langsmith_files(name):
    path = FIXTURES / name
    assert langsmith.sniff(str(path), read_head(path))
    assert detect_format(path, read_head(path)) == "langsmith"  # no earlier reader claims it


@pytest.mark.parametrize("head", [
    b'{"object": "trace.span", "id": "span_1", "trace_id": "trace_1", "parent_id": null, "span_data": {}}',
    b'{"info": {"trace_id": "tr-1"}, "data": {"spans": []}}',
    b'{"context.trace_id": "ab", "context.span_id": "cd", "span_kind": "LLM"}',
    b"id,run_type\n1,llm\n",
])
def test_sniff_rejects_other_formats(head):
    assert not langsmith.sniff("x.json", head)


def test_parse_dotted_order_gives_root_first_segments():
    parts = langsmith.parse_dotted_order(f"20250301T100000000000Z{ROOT}.20250301T100000100000Z{AGENT}")
    assert parts == [("20250301T100000000000Z", ROOT), ("20250301T100000100000Z", AGENT)]
    with pytest.raises(ValueError):
        langsmith.parse_dotted_order("garbage")


def test_runs_jsonl_maps_runs_and_keeps_good_ones():
    result = load("runs.jsonl")
    schema.validate(result.spans, schema.SPANS, table="spans")
    assert result.spans.height == 6
    assert set(result.spans["trace_id"]) == {ROOT}

    root = span(result, ROOT)  # upper-case id in the file
    assert root["parent_span_id"] is None and root["kind"] == "chain" and root["status"] == "ok"
    assert (root["session_id"], root["user_id"], root["app_version"]) == ("thread-7", "u-9", "rev-abc")
    assert root["tags"] == ["graph", "prod"]
    assert json.loads(root["input"]) == {"question": "Where is my parcel?"}
    assert root["start_time"] == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)  # naive time read as UTC
    attrs = json.loads(root["attributes"])
    assert attrs["session_id"] == "project-uuid-not-a-session"  # Run.session_id is the project: kept, not mapped
    assert attrs["feedback_stats"] == {"correct": {"n": 1, "avg": 1.0}}

    llm = span(result, LLM)
    assert (llm["kind"], llm["model"], llm["provider"]) == ("llm", "gpt-4o-mini", "openai")
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (50, 14, 64)
    assert llm["cost_usd"] == pytest.approx(0.0000159)  # Decimal text
    assert llm["parent_span_id"] == AGENT and llm["duration_ms"] == pytest.approx(800.0)

    tool = span(result, TOOL)  # no parent_run_id, no trace_id, no start_time: all from dotted_order
    assert tool["parent_span_id"] == AGENT and tool["trace_id"] == ROOT
    assert tool["start_time"] == datetime(2025, 3, 1, 10, 0, 1, tzinfo=UTC)
    assert (tool["status"], tool["error_type"]) == ("error", "TimeoutError")
    assert tool["error_message"].endswith("carrier API timed out")

    late = span(result, LATE)  # parent only: the trace is its topmost known ancestor
    assert late["trace_id"] == ROOT and late["kind"] == "chain"  # parser -> chain

    fb = {row["name"]: row for row in result.feedback.to_dicts()}
    assert set(fb) == {"correct", "tone"}
    assert (fb["correct"]["target_level"], fb["correct"]["target_id"], fb["correct"]["value_num"]) == ("trace", ROOT, 1.0)
    assert (fb["correct"]["annotator_kind"], fb["correct"]["annotator_id"]) == ("human", "reviewer-1")
    assert fb["correct"]["value_text"] == "matches the carrier status"
    assert (fb["tone"]["target_level"], fb["tone"]["target_id"], fb["tone"]["trace_id"]) == ("span", LLM, ROOT)
    assert (fb["tone"]["value_label"], fb["tone"]["annotator_kind"]) == ("polite", "llm")

    problems = sorted((p.line, p.reason, p.field) for p in result.problems)
    assert problems == [
        (8, "missing required field", "id"),
        (9, "invalid JSON", None),
        (10, "not a LangSmith run or feedback", None),
        (11, "bad field value", "start_time"),
        (12, "missing required field", "key"),
    ]
    offsets = [0]
    for line in (FIXTURES / "runs.jsonl").read_bytes().split(b"\n"):
        offsets.append(offsets[-1] + len(line) + 1)
    assert all(p.byte_offset == offsets[p.line - 1] for p in result.problems)
    bad_time = span(result, "1f0a6b1c-0000-4000-8000-000000000006")
    assert bad_time["start_time"] is None and json.loads(bad_time["attributes"])["start_time"] == "half past ten"


def test_ingest_payload_merges_patches_into_posts():
    result = load("ingest_payload.json")
    assert result.spans.height == 2
    root = span(result, "aa000000-0000-4000-8000-000000000001")
    assert root["end_time"] == datetime(2025, 4, 2, 8, 0, 2, tzinfo=UTC)
    assert (root["status"], root["error_type"], root["error_message"]) == ("error", "ValueError", "ValueError: bad arithmetic")
    assert root["session_id"] == "conv-3"
    llm = span(result, "aa000000-0000-4000-8000-000000000002")
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (12, 1, 13)
    assert (llm["model"], llm["provider"], llm["session_id"]) == ("claude-3-5-haiku", "anthropic", "conv-3")
    assert json.loads(llm["output"])["content"] == "4"
    assert json.loads(llm["attributes"])["extra"]["metadata"]["ls_temperature"] == 0.0  # patch metadata merged
    assert llm["duration_ms"] == pytest.approx(750.0)
    [problem] = result.problems
    assert problem.reason == "not a LangSmith run or feedback" and "patch[2]" in problem.detail


def test_merge_patch_keeps_post_values_the_patch_leaves_empty():
    post = {"id": "1", "outputs": {"a": 1}, "extra": {"metadata": {"x": 1}, "runtime": {"sdk": "py"}}}
    merged = langsmith.merge_patch(post, {"id": "1", "outputs": {}, "end_time": "t", "extra": {"metadata": {"y": 2}}})
    assert merged == {"id": "1", "outputs": {"a": 1}, "end_time": "t",
                      "extra": {"metadata": {"x": 1, "y": 2}, "runtime": {"sdk": "py"}}}


def test_nested_child_runs_are_flattened():
    result = load("runs_list.json")
    assert result.problems == []
    rows = result.spans.select("span_id", "parent_span_id", "kind").rows()
    assert rows == [("bb000000-0000-4000-8000-000000000001", None, "chain"),
                    ("bb000000-0000-4000-8000-000000000002", "bb000000-0000-4000-8000-000000000001", "retriever")]
    assert "child_runs" not in json.loads(result.spans["attributes"][0] or "{}")


def test_strict_raises_naming_file_and_line():
    with pytest.raises(LoadError, match=r"runs\.jsonl:8 \(field 'id'\)"):
        langsmith.read(str(FIXTURES / "runs.jsonl"), strict=True)
