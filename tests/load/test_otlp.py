"""OTLP reader: field-level checks on hand-made OpenInference and GenAI exports, both code paths."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import orjson
import polars as pl
import pytest

from workbench import schema
from workbench.load import otlp
from workbench.load._records import read_bytes, read_head

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
REQUESTS = FIXTURES / "openinference_requests.jsonl"
GENAI_DOC = FIXTURES / "genai_single_doc.json"
PER_LINE = FIXTURES / "spans_per_line.jsonl"
T1 = "5b8efff798038103d269b633813fc60c"


def read_fast(path):
    return otlp.read(str(path)).conformed()


def read_lines(path):
    return otlp.read_python(str(path), read_bytes(path)).conformed()


@pytest.fixture(params=[read_fast, read_lines], ids=["read", "line_by_line"])
def reader(request):
    return request.param


def by_span(result) -> dict[str, dict]:
    return {row["span_id"]: row for row in result.spans.iter_rows(named=True)}


def test_sniff():
    assert otlp.sniff(str(REQUESTS), read_head(REQUESTS))
    assert otlp.sniff(str(PER_LINE), read_head(PER_LINE))
    assert not otlp.sniff("x.jsonl", b'{"trace": {"id": "t"}, "observations": []}')


def test_openinference_requests_split_across_lines(reader):
    result = reader(REQUESTS)
    assert result.problems == []
    schema.validate(result.spans, schema.SPANS, table="spans")
    spans = by_span(result)
    assert set(spans) == {"eee19b7ec3c1b174", "aaaa00000000000a", "bbbb00000000000b", "cccc00000000000c",
                          "b7ad6b7169203331"}
    root = spans["eee19b7ec3c1b174"]
    assert root["trace_id"] == T1  # upper-case hex normalised
    assert root["parent_span_id"] is None and root["kind"] == "chain" and root["status"] == "ok"
    assert root["start_time"] == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
    assert root["duration_ms"] == 5500.0
    assert (root["input"], root["output"]) == ("Where is my refund?", "Your refund was issued on Monday.")
    assert (root["session_id"], root["user_id"]) == ("sess-42", "user-7")
    assert root["tags"] == ["support", "refund"]
    assert root["prompt_version"] == "v1"  # from the metadata JSON
    assert root["app_version"] == "1.4.2"  # resource service.version
    assert root["source_line"] == 1 and root["source_format"] == "otlp"
    attrs = orjson.loads(root["attributes"])
    assert attrs["otel.resource"]["deployment.environment.name"] == "prod"
    assert attrs["otel.scope"] == {"name": "openinference.instrumentation.openai", "version": "0.1.20"}
    assert attrs["metadata"] == '{"prompt_version": "v1", "channel": "chat"}'

    llm = spans["aaaa00000000000a"]
    assert (llm["kind"], llm["model"], llm["provider"], llm["status"]) == ("llm", "gpt-4o-mini", "openai", "unset")
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"], llm["cost_usd"]) == (812, 41, 853, 0.00131)
    assert orjson.loads(llm["input"])[1] == {"role": "user", "content": "Where is my refund?"}
    call = orjson.loads(llm["output"])[0]["tool_calls"][0]
    assert call == {"id": "call_1", "function": {"name": "lookup_refund", "arguments": '{"order": 991}'}}
    assert orjson.loads(llm["attributes"])["llm.invocation_parameters"] == '{"temperature": 0.2}'

    tool = spans["bbbb00000000000b"]
    assert (tool["kind"], tool["status"], tool["source_line"]) == ("tool", "error", 2)
    assert (tool["error_type"], tool["error_message"]) == ("TimeoutError", "upstream took 30s")
    tool_attrs = orjson.loads(tool["attributes"])
    assert tool_attrs["otel.status.message"] == "tool failed"
    assert tool_attrs["otel.events"][0]["attributes"]["exception.stacktrace"] == "Traceback..."

    retriever = spans["cccc00000000000c"]
    assert retriever["kind"] == "retriever"
    assert orjson.loads(retriever["output"]) == [{"id": "kb-1", "content": "Refunds take 5 days.", "score": 0.92}]

    other = spans["b7ad6b7169203331"]
    assert (other["kind"], other["status"], other["app_version"]) == ("agent", "unset", None)
    assert orjson.loads(other["attributes"])["otel.resource"] == {"service.name": "other-svc"}


def test_feedback_from_annotations_and_evaluation_events(reader):
    feedback = reader(REQUESTS).feedback.sort("name")
    rows = feedback.select("target_level", "target_id", "trace_id", "name", "value_num", "value_label",
                           "value_text", "annotator_kind").rows()
    assert rows == [
        ("trace", "0af7651916cd43dd8448eb211c80319c", "0af7651916cd43dd8448eb211c80319c", "judge_pass", 0.0,
         "fail", "did not greet by name", None),
        ("trace", T1, T1, "resolved", 1.0, None, None, "code"),
        ("trace", T1, T1, "thumbs", -1.0, "down", None, "human"),
    ]
    assert feedback["created_at"].null_count() == 0
    assert set(feedback["source_format"]) == {"otlp"}


def test_genai_single_document_old_and_new_names(reader):
    result = reader(GENAI_DOC)
    assert result.problems == []
    spans = by_span(result)
    root = spans["00f067aa0ba902b7"]
    assert (root["kind"], root["session_id"], root["status"], root["app_version"]) == ("agent", "conv-9", "ok", "2.0.0")
    assert orjson.loads(root["input"])[0]["parts"][0]["content"] == "reset my password"
    chat = spans["00f067aa0ba902b8"]
    assert (chat["kind"], chat["provider"], chat["model"]) == ("llm", "anthropic", "claude-sonnet-20250101")
    assert (chat["tokens_in"], chat["tokens_out"], chat["tokens_total"]) == (300, 20, 320)
    assert (chat["prompt_name"], chat["prompt_version"]) == ("triage-prompt", "7")
    assert orjson.loads(chat["attributes"])["gen_ai.request.model"] == "claude-sonnet"
    old = spans["00f067aa0ba902b9"]
    assert (old["kind"], old["provider"], old["model"], old["status"]) == ("llm", "openai", "gpt-4", "error")
    assert (old["tokens_in"], old["tokens_out"], old["input"], old["output"]) == (50, 5, "classify: reset", "account")
    assert old["error_type"] == "rate_limited"
    assert spans["00f067aa0ba902c0"]["kind"] == "tool"
    assert set(result.spans["source_line"]) == {1}


def test_one_span_per_line(reader):
    result = reader(PER_LINE)
    assert result.spans["span_id"].to_list() == ["00f067aa0ba902b7", "00f067aa0ba902b8", "00f067aa0ba902c0"]
    assert result.spans["source_line"].to_list() == [1, 2, 3]
    assert result.spans["kind"].to_list() == ["agent", "llm", "tool"]
    assert result.spans["app_version"].null_count() == 3  # no resource on bare spans


def test_gzip_gives_the_same_rows(tmp_path, reader):
    packed = tmp_path / "requests.jsonl.gz"
    packed.write_bytes(gzip.compress(REQUESTS.read_bytes()))
    plain, zipped = reader(REQUESTS), reader(packed)
    assert zipped.spans.drop("source_file").equals(plain.spans.drop("source_file"))


def _frame_rows(frame: pl.DataFrame) -> list[dict]:
    rows = frame.sort("span_id").to_dicts()
    for row in rows:
        row["attributes"] = orjson.loads(row["attributes"]) if row["attributes"] else None
    return rows


@pytest.mark.parametrize("path", [REQUESTS, GENAI_DOC, PER_LINE], ids=lambda p: p.name)
def test_fast_and_line_paths_agree(path):
    fast, slow = read_fast(path), read_lines(path)
    assert _frame_rows(fast.spans) == _frame_rows(slow.spans)
    assert fast.feedback.sort("name").equals(slow.feedback.sort("name"))
