"""Langfuse reader: trace downloads (JSON/JSONL), API pages, UI exports (CSV/JSON), bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import langfuse
from workbench.load._base import LoadError
from workbench.load._records import read_head
from workbench.load.detect import detect_format

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "langfuse"


def load(name: str):
    return langfuse.read(str(FIXTURES / name)).conformed()


def span(result, span_id: str) -> dict:
    rows = result.spans.filter(pl.col("span_id") == span_id).to_dicts()
    assert len(rows) == 1, span_id
    return rows[0]


def line_offsets(path: Path) -> list[int]:
    data = path.read_bytes()
    offsets, pos = [], 0
    for line in data.split(b"\n"):
        offsets.append(pos)
        pos += len(line) + 1
    return offsets


@pytest.mark.parametrize("name", [p.name for p in sorted(FIXTURES.iterdir())])
def test_sniff_claims_every_langfuse_fixture(name):
    path = FIXTURES / name
    assert langfuse.sniff(str(path), read_head(path))
    assert detect_format(path, read_head(path)) == "langfuse"  # no earlier reader claims it


@pytest.mark.parametrize("head", [
    b'{"resourceSpans": [{"scopeSpans": []}]}',
    b'{"id": "d0d8", "run_type": "llm", "trace_id": "d0d8", "dotted_order": "2024"}',
    b'{"post": [{"id": "x", "run_type": "chain"}], "patch": []}',
    b'{"object": "trace.span", "id": "span_1", "trace_id": "trace_1", "span_data": {"type": "agent"}}',
    b'{"data": [{"object": "trace", "id": "trace_1", "workflow_name": "w"}]}',
    b'{"info": {"trace_id": "tr-1"}, "data": {"spans": []}}',
    b'{"context.trace_id": "ab", "context.span_id": "cd", "span_kind": "LLM"}',
    b"trace_id,span_id,name\n1,2,x\n",
])
def test_sniff_rejects_other_formats(head):
    assert not langfuse.sniff("x.json", head)


def test_api_observations_page_maps_fields_and_reports_bad_items():
    result = load("api_observations_page.json")
    assert result.format == "langfuse"
    schema.validate(result.spans, schema.SPANS, table="spans")
    assert sorted(result.spans["span_id"]) == ["obs-bad-time", "obs-event-1", "obs-gen-1", "obs-span-1"]

    gen = span(result, "obs-gen-1")
    assert gen["kind"] == "llm" and gen["model"] == "gpt-4o-mini"
    assert (gen["tokens_in"], gen["tokens_out"], gen["tokens_total"]) == (21, 7, 28)  # legacy ``usage``
    assert gen["cost_usd"] == pytest.approx(0.00042)  # calculatedTotalCost
    assert gen["prompt_name"] == "support" and gen["prompt_version"] == "4"
    assert json.loads(gen["input"]) == {"messages": [{"role": "user", "content": "Where is my order?"}]}
    assert gen["output"] == "Your order ships tomorrow."
    assert gen["start_time"] == datetime(2025, 5, 1, 10, 0, tzinfo=UTC)
    assert gen["duration_ms"] == pytest.approx(1500.0)
    attrs = json.loads(gen["attributes"])
    assert attrs["metadata"] == {"team": "care"} and attrs["completionStartTime"] == "2025-05-01T10:00:00.400Z"

    root = span(result, "obs-span-1")
    assert root["parent_span_id"] is None and root["kind"] == "chain"
    assert root["status"] == "error" and root["error_message"] == "upstream timeout"
    assert (root["session_id"], root["user_id"], root["tags"], root["app_version"]) == ("sess-9", "u-77", ["beta"], "2.3.1")
    assert root["tokens_in"] is None and root["cost_usd"] is None  # zero totals of a plain span are not usage

    event = span(result, "obs-event-1")
    assert event["kind"] == "event" and event["status"] == "ok" and event["end_time"] is None
    assert json.loads(event["attributes"])["statusMessage"] == "cold cache"

    bad_time = span(result, "obs-bad-time")
    assert bad_time["start_time"] is None and bad_time["kind"] == "tool"
    assert json.loads(bad_time["attributes"])["startTime"] == "yesterday at noon"
    assert bad_time["output"] == "shipped"  # a JSON string literal is decoded

    reasons = {(p.field, p.reason) for p in result.problems}
    assert reasons == {("id", "missing required field"), ("startTime", "bad field value")}
    assert all(p.line == 1 and p.source_file.endswith("api_observations_page.json") for p in result.problems)


def test_api_scores_page_becomes_feedback():
    result = load("api_scores_page.json")
    assert result.spans.height == 0
    fb = {row["name"]: row for row in result.feedback.to_dicts()}
    assert set(fb) == {"helpfulness", "tone", "resolved", "summary"}
    h = fb["helpfulness"]
    assert (h["target_level"], h["target_id"], h["trace_id"]) == ("span", "obs-gen-1", "TRACE-A")
    assert (h["value_num"], h["value_text"], h["annotator_kind"], h["annotator_id"]) == (0.75, "mostly right", "human", "reviewer-3")
    assert (fb["tone"]["target_level"], fb["tone"]["value_label"], fb["tone"]["value_num"]) == ("trace", "friendly", None)
    assert (fb["tone"]["annotator_kind"], fb["tone"]["annotator_id"]) == ("llm", "judge-cfg-1")
    assert (fb["resolved"]["value_num"], fb["resolved"]["annotator_kind"]) == (0.0, "api")
    assert (fb["summary"]["target_level"], fb["summary"]["target_id"], fb["summary"]["value_text"]) == (
        "session", "sess-9", "user gave up")
    assert fb["summary"]["created_at"] == datetime(2025, 5, 1, 11, 0, 3, tzinfo=UTC)
    [problem] = result.problems
    assert problem.field == "traceId" and "orphan-score" in problem.detail


def test_api_traces_page_gives_one_root_span_per_trace():
    result = load("api_traces_page.json")
    [row] = result.spans.to_dicts()
    assert row["span_id"] == row["trace_id"] == "7f3a9c0e5b2d4e6f8a1b2c3d4e5f6a7b"
    assert (row["name"], row["session_id"], row["user_id"]) == ("refund-flow", "sess-1", "user-1")
    assert row["prompt_version"] == "v7" and row["app_version"] == "r42"  # metadata / release
    assert row["cost_usd"] == pytest.approx(0.0031)
    assert row["duration_ms"] == pytest.approx(2500.0)  # latency is in seconds
    assert json.loads(row["input"]) == {"question": "Can I get a refund?"}
    assert row["output"] == "Yes, within 30 days."
    assert json.loads(row["attributes"])["observations"] == ["aaaa1111bbbb2222", "cccc3333dddd4444"]
    [problem] = result.problems
    assert (problem.field, problem.reason) == ("id", "missing required field") and "data[1]" in problem.detail


def test_trace_bundles_jsonl_loads_good_lines_and_reports_bad_ones():
    path = FIXTURES / "trace_bundles.jsonl"
    result = load("trace_bundles.jsonl")
    assert result.spans.height == 4
    assert set(result.spans["source_line"]) == {1, 2}

    tool = span(result, "b7ad6b7169203331")  # SPAN observation with OpenInference kind TOOL
    assert tool["trace_id"] == "0af7651916cd43dd8448eb211c80319c"  # lower-cased hex
    assert tool["kind"] == "tool" and tool["session_id"] == "otel-session-5"  # from metadata.attributes
    assert tool["user_id"] == "user-42" and tool["tags"] == ["prod"] and tool["app_version"] == "2025.06"
    assert json.loads(tool["input"]) == {"query": "reset password"} and json.loads(tool["output"]) == ["doc-1", "doc-2"]
    raw = json.loads(tool["attributes"])["metadata"]
    assert raw["attributes"]["custom.flag"] == "on" and raw["resourceAttributes"]["service.version"] == "9.9.9"

    llm = span(result, "1111222233334444")
    assert (llm["model"], llm["provider"]) == ("gpt-4o", "openai")  # Langfuse model empty: OTel attributes fill it
    assert (llm["tokens_in"], llm["tokens_out"], llm["tokens_total"]) == (55, 12, 67)  # usageDetails beat attributes
    assert llm["cost_usd"] == pytest.approx(0.0015)
    assert llm["status"] == "error" and llm["error_message"] == "rate limited"
    assert json.loads(llm["input"]) == [{"role": "user", "content": "How do I reset my password?"}]  # double-encoded
    assert json.loads(llm["attributes"])["usageDetails"]["input_cached_tokens"] == 10

    root = span(result, "aaaabbbbccccdddd")
    assert root["kind"] == "agent" and root["parent_span_id"] is None
    trace_fields = json.loads(root["attributes"])["trace"]
    assert trace_fields["input"] == {"question": "How do I reset my password?"}
    assert trace_fields["metadata"] == {"channel": "email"}

    lonely = span(result, "trace-legacy-2")
    assert (lonely["session_id"], lonely["input"], lonely["output"]) == ("sess-L", "hi", "hello")
    assert lonely["cost_usd"] == pytest.approx(0.002)

    fb = {row["name"]: row for row in result.feedback.to_dicts()}
    assert (fb["correctness"]["target_level"], fb["correctness"]["value_num"], fb["correctness"]["annotator_kind"]) == (
        "trace", 0.0, "llm")
    assert fb["correctness"]["value_text"] == "misses the key step"
    assert (fb["thumbs"]["target_level"], fb["thumbs"]["target_id"], fb["thumbs"]["annotator_id"]) == (
        "span", "b7ad6b7169203331", "alice")
    assert (fb["resolved"]["trace_id"], fb["resolved"]["annotator_kind"]) == ("trace-legacy-2", "api")

    offsets = line_offsets(path)
    by_line = sorted((p.line, p.byte_offset, p.reason) for p in result.problems)
    assert by_line[0] == (3, offsets[2], "invalid JSON")
    assert {line for line, _, _ in by_line} == {3, 4, 5}
    assert all(offset == offsets[line - 1] for line, offset, _ in by_line)


def test_strict_raises_at_first_bad_record():
    with pytest.raises(LoadError, match=r"trace_bundles\.jsonl:3"):
        langfuse.read(str(FIXTURES / "trace_bundles.jsonl"), strict=True)


def test_ui_export_csv_decodes_cells_and_score_columns():
    path = FIXTURES / "ui_export_observations.csv"
    result = load("ui_export_observations.csv")
    assert result.spans["source_line"].to_list() == [2, 3]  # the first record's cell spans two lines
    gen = span(result, "e1f2a3b4c5d6e7f8")
    assert gen["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert (gen["model"], gen["provider"], gen["session_id"]) == ("claude-3-5-haiku", "anthropic", "conv-7")
    assert (gen["tokens_in"], gen["tokens_out"], gen["tokens_total"], gen["cost_usd"]) == (30, 5, 35, 0.0004)
    assert gen["tags"] == ["csv", "export"] and gen["user_id"] == "user-csv" and gen["prompt_version"] == "3"
    assert json.loads(gen["input"]) == [{"role": "user", "content": "line one\nline two, with a comma"}]
    attrs = json.loads(gen["attributes"])
    assert attrs["modelParameters"] == {"max_tokens": 256} and attrs["traceName"] == "qa"
    assert "helpfulness" not in attrs  # score columns go to feedback
    agent = span(result, "a1b2c3d4e5f6a7b8")
    assert agent["kind"] == "agent" and agent["tokens_total"] is None

    fb = result.feedback.sort("name", "value_num").select("name", "target_id", "value_num", "value_label").rows()
    assert fb == [("helpfulness", "e1f2a3b4c5d6e7f8", 0.5, None), ("helpfulness", "e1f2a3b4c5d6e7f8", 1.0, None),
                  ("tone", "e1f2a3b4c5d6e7f8", None, "polite")]

    offsets = line_offsets(path)
    problems = sorted((p.line, p.byte_offset, p.reason, p.field) for p in result.problems)
    assert problems == [(4, offsets[3], "wrong number of CSV cells", None),
                        (5, offsets[4], "missing required field", "id")]


def test_ui_export_json_matches_the_csv_export():
    from_json = load("ui_export_observations.json")
    from_csv = load("ui_export_observations.csv")
    columns = [c for c in schema.SPANS if c not in ("attributes", "source_file", "source_line")]
    assert from_json.spans.select(columns).equals(from_csv.spans.select(columns))
    assert from_json.feedback.drop("source_file").equals(from_csv.feedback.drop("source_file"))
    [problem] = from_json.problems
    assert problem.reason == "not a Langfuse object" and "item 2" in problem.detail


SAMPLE = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.skipif(not (SAMPLE / "support_agent.langfuse.jsonl").exists()
                    or not (SAMPLE / "support_agent.otlp.jsonl").exists(),
                    reason="bundled sample not generated (run data/generate.py)")
def test_bundled_langfuse_sample_matches_its_otlp_twin():
    from workbench.load import read_traces

    lf = read_traces(SAMPLE / "support_agent.langfuse.jsonl", format="langfuse", cache=False)
    otlp = read_traces(SAMPLE / "support_agent.otlp.jsonl", format="otlp", cache=False)
    assert lf.problems.height == 0 and lf.traces.height == otlp.traces.height
    columns = ["trace_id", "session_id", "user_id", "status", "n_spans", "n_llm_calls", "n_tool_calls", "n_errors",
               "tokens_in", "tokens_out", "tokens_total", "app_version", "passed", "user_feedback", "input", "output"]
    joined = otlp.traces.select(columns).join(lf.traces.select(columns), on="trace_id", suffix="_lf")
    assert joined.height == otlp.traces.height
    for column in columns[1:]:
        assert joined.filter(pl.col(column).ne_missing(pl.col(column + "_lf"))).height == 0, column
    # Langfuse's own promptVersion is an integer; the OTLP twin carries "v1"/"v2"
    versions = otlp.traces.select("trace_id", "prompt_version").join(
        lf.traces.select("trace_id", pl.col("prompt_version").alias("lf")), on="trace_id")
    assert versions.filter(pl.col("prompt_version") != "v" + pl.col("lf")).height == 0
    assert set(lf.feedback["name"]) == set(otlp.feedback["name"])


def test_ui_export_of_traces_gives_root_spans_and_trace_scores():
    result = load("ui_export_traces.csv")
    [row] = result.spans.to_dicts()
    assert row["trace_id"] == row["span_id"] == "d5f4c3b2a1908070605040302010ffee"
    assert (row["name"], row["user_id"], row["session_id"], row["app_version"], row["prompt_version"]) == (
        "order-status", "u-1", "s-1", "r9", "v4")
    assert (json.loads(row["input"]), row["output"], row["tags"]) == ({"q": "where is it?"}, "on its way", ["csv"])
    fb = result.feedback.sort("name", "value_label").select("target_level", "name", "value_num", "value_label").rows()
    assert fb == [("trace", "judge_label", None, "good"), ("trace", "judge_label", None, "great"),
                  ("trace", "user_rating", 1.0, None)]
    [problem] = result.problems
    assert (problem.line, problem.field, problem.reason) == (3, "id", "missing required field")


def test_trace_list_and_observations_loaded_together_give_one_root(tmp_path):
    from workbench.load import read_traces

    traces = {"data": [{"id": "T1", "timestamp": "2025-05-02T08:00:00.000Z", "name": "refund-flow", "latency": 3.0,
                        "input": "refund please", "output": "done", "totalCost": 0.5,
                        "htmlPath": "/project/p/traces/T1", "observations": ["top", "gen"]}], "meta": {"page": 1}}
    observations = {"data": [
        {"id": "top", "traceId": "T1", "type": "SPAN", "name": "handle", "startTime": "2025-05-02T08:00:00.100Z",
         "endTime": "2025-05-02T08:00:02.000Z", "parentObservationId": None},
        {"id": "gen", "traceId": "T1", "type": "GENERATION", "name": "chat", "startTime": "2025-05-02T08:00:00.200Z",
         "endTime": "2025-05-02T08:00:01.000Z", "parentObservationId": "top", "calculatedTotalCost": 0.02,
         "usage": {"input": 10, "output": 5, "total": 15}},
        {"id": "alone", "traceId": "T2", "type": "SPAN", "name": "other trace", "startTime": "2025-05-02T09:00:00Z",
         "parentObservationId": None},
    ], "meta": {"page": 1}}
    (tmp_path / "traces.json").write_text(json.dumps(traces))
    (tmp_path / "observations.json").write_text(json.dumps(observations))
    result = read_traces(tmp_path, cache=False)
    parents = dict(result.spans.select("span_id", "parent_span_id").iter_rows())
    assert parents == {"T1": None, "top": "T1", "gen": "top", "alone": None}
    row = result.traces.filter(pl.col("trace_id") == "T1").row(0, named=True)
    assert (row["root_span_id"], row["n_spans"], row["input"], row["n_anomalies"]) == ("T1", 3, "refund please", 0)
    assert row["cost_usd"] == pytest.approx(0.02)  # the LLM leaf's cost, not the trace total beside it
