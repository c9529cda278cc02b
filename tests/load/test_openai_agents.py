"""OpenAI Agents SDK reader: processor JSONL, ingest batches, span types, tokens counted once, bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import openai_agents
from workbench.load._base import LoadError
from workbench.load._records import read_head
from workbench.load.detect import detect_format
from workbench.load.rollup import build_traces

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openai_agents"
TRACE = "trace_0a1b2c3d4e5f60718293a4b5c6d7e8f9"


def sp(i: int) -> str:
    return f"span_{i:024x}"


def load(name: str):
    return openai_agents.read(str(FIXTURES / name)).conformed()


def span(result, span_id: str) -> dict:
    rows = result.spans.filter(pl.col("span_id") == span_id).to_dicts()
    assert len(rows) == 1, span_id
    return rows[0]


@pytest.mark.parametrize("name", ["processor_export.jsonl", "ingest_batch.json"])
def test_sniff_claims_agents_files(name):
    path = FIXTURES / name
    assert openai_agents.sniff(str(path), read_head(path))
    assert detect_format(path, read_head(path)) == "openai_agents"  # no earlier reader claims it


@pytest.mark.parametrize("head", [
    b'{"info": {"trace_id": "tr-1"}, "data": {"spans": []}}',
    b'{"context.trace_id": "ab", "context.span_id": "cd", "span_kind": "LLM"}',
    b'{"data": [{"id": "o1", "traceId": "t1", "type": "SPAN"}], "meta": {}}',
])
def test_sniff_rejects_other_formats(head):
    assert not openai_agents.sniff("x.json", head)


def test_processor_export_maps_every_span_type():
    result = load("processor_export.jsonl")
    schema.validate(result.spans, schema.SPANS, table="spans")
    kinds = dict(result.spans.select("span_id", "kind").iter_rows())
    assert kinds == {
        TRACE: "chain", sp(1): "agent", sp(2): "llm", sp(3): "llm", sp(4): "tool", sp(5): "agent",
        sp(6): "guardrail", sp(7): "chain", sp(8): "tool", sp(10): "tool",
    }
    assert set(result.spans["trace_id"]) == {TRACE}  # "trace_0A1B..." lower-cased, prefix kept
    assert set(result.spans["session_id"]) == {"group_5f2c9e1a7b3d4c6e8f0a1b2c"}  # group_id on every span

    root = span(result, TRACE)  # the trace object becomes the root
    assert (root["name"], root["parent_span_id"], root["user_id"], root["prompt_version"]) == (
        "Customer service", None, "cust-31", "v2")
    assert root["start_time"] == datetime(2025, 8, 1, 11, 59, 59, 900000, tzinfo=UTC)  # earliest child
    assert root["end_time"] == datetime(2025, 8, 1, 12, 0, 5, tzinfo=UTC)
    assert json.loads(root["attributes"])["metadata"]["channel"] == "chat"
    assert span(result, sp(1))["parent_span_id"] == TRACE and span(result, sp(6))["parent_span_id"] == TRACE

    gen = span(result, sp(2))
    assert (gen["model"], gen["tokens_in"], gen["tokens_out"], gen["tokens_total"]) == ("gpt-4.1-mini", 120, 18, 138)
    assert json.loads(gen["input"]) == [{"role": "user", "content": "I want a refund for order 17"}]
    assert json.loads(gen["attributes"])["span_data"]["model_config"] == {"temperature": 0.3}

    response = span(result, sp(3))  # repeats the generation's usage: counted once
    assert response["tokens_in"] is None and response["tokens_total"] is None
    attrs = json.loads(response["attributes"])
    assert attrs["tokens_counted_on"] == sp(2) and attrs["span_data"]["response_id"] == "resp_abc123"

    tool = span(result, sp(4))
    assert (tool["name"], tool["status"], tool["error_message"]) == ("lookup_order", "error", "Error running tool")
    assert json.loads(tool["input"]) == {"order_id": 17}
    assert json.loads(tool["attributes"])["error_data"]["error"] == "404 order not found"

    assert span(result, sp(5))["name"] == "handoff Triage Agent -> Refund Agent"
    assert json.loads(span(result, sp(8))["output"]) == ["refund", "lookup"]

    traces = build_traces(result.spans)
    [trace] = traces.to_dicts()
    assert (trace["tokens_in"], trace["tokens_out"], trace["tokens_total"]) == (120, 18, 138)
    assert (trace["name"], trace["status"], trace["n_errors"]) == ("Customer service", "error", 1)


def test_bad_records_become_problems_and_good_ones_load():
    result = load("processor_export.jsonl")
    problems = sorted((p.line, p.reason, p.field) for p in result.problems)
    assert problems == [
        (10, "missing required field", "trace_id"),
        (11, "invalid JSON", None),
        (12, "not an OpenAI Agents trace or span", "object"),
        (13, "bad field value", "started_at"),
    ]
    late = span(result, sp(10))
    assert late["start_time"] is None and json.loads(late["attributes"])["started_at"] == "soon"
    assert late["source_line"] == 13
    with pytest.raises(LoadError, match=r"processor_export\.jsonl:10 \(field 'trace_id'\)"):
        openai_agents.read(str(FIXTURES / "processor_export.jsonl"), strict=True)


def test_ingest_batch_without_trace_object_keeps_span_roots():
    result = load("ingest_batch.json")
    assert result.spans.height == 2
    response = span(result, "span_" + "b" * 24)  # no generation twin: its usage counts
    assert (response["tokens_in"], response["tokens_out"], response["tokens_total"]) == (7, 3, 10)
    assert span(result, "span_" + "a" * 24)["parent_span_id"] is None
    assert result.spans["session_id"].null_count() == 2
    [problem] = result.problems
    assert "data[2]" in problem.detail
