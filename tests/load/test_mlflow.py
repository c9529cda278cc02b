"""MLflow reader: Trace JSON v3 (base64 span ids), v4 (location trace ids), MLflow 2.x, assessments, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import mlflow
from workbench.load._base import LoadError
from workbench.load._records import read_head
from workbench.load.detect import detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow"
V3_TRACE = "tr-5f9a1c2e3d4b5a69788796a5b4c3d2e1"


def load(name: str):
    return mlflow.read(str(FIXTURES / name)).conformed()


def span(result, span_id: str) -> dict:
    rows = result.spans.filter(pl.col("span_id") == span_id).to_dicts()
    assert len(rows) == 1, span_id
    return rows[0]


@pytest.mark.parametrize("name", ["trace_v3.json", "traces_v4.jsonl", "trace_v2.json"])
def test_sniff_claims_mlflow_files(name):
    path = FIXTURES / name
    assert mlflow.sniff(str(path), read_head(path))
    assert detect_format(path, read_head(path)) == "mlflow"  # no earlier reader claims it


def test_sniff_rejects_a_csv_and_a_langfuse_bundle():
    assert not mlflow.sniff("x.csv", b"trace_id,span_id\n")
    assert not mlflow.sniff("x.json", b'{"trace": {"id": "t"}, "observations": []}')


def test_decode_span_id_accepts_hex_0x_and_base64():
    assert mlflow.decode_span_id("AAAAAAAAAAE=", 8) == "0000000000000001"
    assert mlflow.decode_span_id("0x00000000000000FF", 8) == "00000000000000ff"
    assert mlflow.decode_span_id("1A2B3C4D5E6F7081", 8) == "1a2b3c4d5e6f7081"
    assert mlflow.decode_span_id("not an id!", 8) == "not an id!"


def test_v3_trace_maps_spans_and_attributes():
    result = load("trace_v3.json")
    schema.validate(result.spans, schema.SPANS, table="spans")
    assert result.spans.height == 3
    assert set(result.spans["trace_id"]) == {V3_TRACE}  # "tr-5F9A..." lower-cased
    assert set(result.spans["session_id"]) == {"chat-55"} and set(result.spans["user_id"]) == {"ana"}
    assert set(result.spans["app_version"]) == {"m-42"}  # mlflow.modelId
    assert set(result.spans["prompt_version"]) == {"3"}  # mlflow.linkedPrompts tag

    root = span(result, "1a2b3c4d5e6f7081")  # base64 "GissTV5vcIE=" decoded to hex
    assert (root["parent_span_id"], root["kind"], root["status"]) == (None, "chain", "ok")
    assert json.loads(root["input"]) == {"question": "What is MLflow?"}
    assert root["output"] == "An ML platform"  # JSON-encoded string decoded once
    assert root["start_time"] == datetime(2025, 1, 1, 10, 0, tzinfo=UTC)
    assert root["duration_ms"] == pytest.approx(2500.0)
    assert root["tags"] == ["env=staging"]
    attrs = json.loads(root["attributes"])
    assert attrs["mlflow.spanFunctionName"] == "run" and attrs["otel_trace_id"] == "5f9a1c2e3d4b5a69788796a5b4c3d2e1"
    info = attrs["mlflow.trace_info"]
    assert info["trace_location"]["mlflow_experiment"]["experiment_id"] == "7"
    assert [a["assessment_name"] for a in info["assessments_not_feedback"]] == ["expected_response", "relevance"]

    llm = span(result, "2b3c4d5e6f708192")
    assert (llm["kind"], llm["model"], llm["provider"]) == ("llm", "gpt-4o-mini", "openai")  # CHAT_MODEL
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (30, 9, 39)
    assert llm["cost_usd"] == pytest.approx(0.0000099)
    assert llm["parent_span_id"] == "1a2b3c4d5e6f7081"
    assert json.loads(llm["attributes"])["invocation_params"] == {"temperature": 0}

    tool = span(result, "3c4d5e6f708192a3")
    assert (tool["kind"], tool["status"], tool["error_type"], tool["error_message"]) == (
        "retriever", "error", "ConnectionError", "index unavailable")
    assert tool["duration_ms"] == pytest.approx(300.0)  # nanosecond decimal strings

    [problem] = result.problems
    assert (problem.field, problem.reason, problem.line) == ("span_id", "missing required field", 1)


def test_v3_assessments_become_feedback():
    fb = {row["name"]: row for row in load("trace_v3.json").feedback.to_dicts()}
    assert set(fb) == {"relevance", "thumbs_up", "latency_ok"}  # no expectation, no overridden judge
    rel = fb["relevance"]
    assert (rel["target_level"], rel["target_id"], rel["value_label"], rel["value_text"]) == (
        "trace", V3_TRACE, "yes", "answers the question")
    assert (rel["annotator_kind"], rel["annotator_id"]) == ("llm", "openai:/gpt-4o-mini")
    thumbs = fb["thumbs_up"]
    assert (thumbs["target_level"], thumbs["target_id"], thumbs["value_num"], thumbs["annotator_kind"]) == (
        "span", "2b3c4d5e6f708192", 1.0, "human")
    assert thumbs["created_at"] == datetime(2025, 1, 1, 10, 6, tzinfo=UTC)  # create_time_ms
    assert (fb["latency_ok"]["value_num"], fb["latency_ok"]["annotator_kind"]) == (0.8, "code")


def test_v4_jsonl_keeps_location_ids_and_reports_bad_lines():
    result = load("traces_v4.jsonl")
    assert result.spans.height == 5
    assert set(result.spans["trace_id"]) == {
        "trace:/catalog.Schema/aabbccddeeff00112233445566778899",  # location keeps its case, hex lower-cased
        "trace:/catalog.Schema/00112233445566778899aabbccddeeff",
    }
    llm = span(result, "b2b2b2b2b2b2b2b2")  # no mlflow.* usage: GenAI attributes fill the columns
    assert (llm["model"], llm["provider"], llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (
        "claude-sonnet-4", "anthropic", 11, 4, 15)
    root = span(result, "a1a1a1a1a1a1a1a1")
    assert root["session_id"] == "s-1" and root["kind"] == "agent"
    assert json.loads(root["attributes"])["unused_attribute_values"] == {
        "session_id": "ignored-because-trace-metadata-wins"}
    late = span(result, "4d5e6f708192a3b4")
    assert late["start_time"] is None and json.loads(late["attributes"])["start_time_unix_nano"] == "not-a-time"

    problems = sorted((p.line, p.reason, p.field) for p in result.problems)
    assert problems == [
        (1, "bad field value", "start_time_unix_nano"),
        (3, "invalid JSON", None),
        (4, "missing required field", "data.spans"),
        (5, "not an MLflow trace", "info"),
    ]
    with pytest.raises(LoadError, match=r"traces_v4\.jsonl:1 \(field 'start_time_unix_nano'\)"):
        mlflow.read(str(FIXTURES / "traces_v4.jsonl"), strict=True)


def test_mlflow_2x_trace_loads():
    result = load("trace_v2.json")
    assert result.problems == []
    [row] = result.spans.to_dicts()
    assert (row["trace_id"], row["span_id"], row["session_id"]) == (
        "tr-0123456789abcdef0123456789abcdef", "00000000000000aa", "legacy-session")
    assert (row["status"], row["error_type"], row["error_message"]) == ("error", "RuntimeError", "boom")
    assert row["duration_ms"] == pytest.approx(1200.0) and row["tags"] == ["team=search"]
    assert json.loads(row["input"]) == {"q": 1}
