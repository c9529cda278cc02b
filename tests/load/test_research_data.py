"""Real exports from ``../shared/research-data`` (read in place): 20 Langfuse traces, 4 LangSmith payloads.

Every file must load with zero problems; the asserted values were read off
the files (observation counts are also cross-checked against the raw JSON).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from workbench.load import langfuse, langsmith
from workbench.load._records import read_head
from workbench.load.detect import detect_format
from workbench.load.rollup import build_traces

RESEARCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "research-data"
LANGFUSE_DIR = RESEARCH / "langfuse-framework-traces"
LANGSMITH_DIR = RESEARCH / "langsmith-run-payloads"
LANGFUSE_FILES = sorted(LANGFUSE_DIR.glob("*.trace.json")) if LANGFUSE_DIR.is_dir() else []
LANGSMITH_FILES = sorted(LANGSMITH_DIR.glob("*.json")) if LANGSMITH_DIR.is_dir() else []

needs_langfuse = pytest.mark.skipif(len(LANGFUSE_FILES) != 20,
                                    reason=f"research data not found at {LANGFUSE_DIR} (expected 20 Langfuse exports)")
needs_langsmith = pytest.mark.skipif(len(LANGSMITH_FILES) != 4,
                                     reason=f"research data not found at {LANGSMITH_DIR} (expected 4 LangSmith payloads)")


def load_langfuse(stem: str):
    return langfuse.read(str(LANGFUSE_DIR / f"{stem}.trace.json")).conformed()


def trace_of(result) -> dict:
    [trace] = build_traces(result.spans, result.feedback).to_dicts()
    return trace


@needs_langfuse
@pytest.mark.parametrize("path", LANGFUSE_FILES, ids=lambda p: p.name.split(".")[0])
def test_every_langfuse_export_loads_cleanly(path):
    assert detect_format(path, read_head(path)) == "langfuse"
    result = langfuse.read(str(path)).conformed()
    assert result.problems == []
    raw = json.loads(path.read_bytes())
    assert result.spans.height == len(raw["observations"])
    assert set(result.spans["span_id"]) == {o["id"].lower() for o in raw["observations"]}
    assert set(result.spans["trace_id"]) == {raw["trace"]["id"].lower()}
    assert result.spans["start_time"].null_count() == 0 and result.spans["kind"].null_count() == 0
    assert set(result.spans["source_format"]) == {"langfuse"}
    levels = Counter(o["level"] for o in raw["observations"])
    assert (result.spans["status"] == "error").sum() == levels.get("ERROR", 0)
    scores = raw["trace"].get("scores") or []
    corrections = raw["trace"].get("corrections") or []
    assert result.feedback.height == len(scores) + len(corrections)


# stem -> (spans, kind counts, models, llm-leaf tokens in/out/total, session, user)
LANGFUSE_FACTS = {
    "agno-2025-06-11": (6, {"llm": 4, "agent": 1, "tool": 1}, ["gpt-4o-mini"], (826, 245, 1071),
                        "35cc6c90-b657-4819-b66c-c931c03ad569", None),
    "beeai-2025-08-01": (29, {"agent": 18, "llm": 5, "tool": 3, "chain": 3}, ["gpt-4o-mini"], (5542, 0, 5542),
                         None, None),
    "claude-agent-2025-12-22": (7, {"llm": 4, "tool": 2, "chain": 1}, ["claude-sonnet-4-5-20250929"],
                                (34, 232, 266), "6fb9b4b8-dd4d-4d41-8d4f-c0c0799a6559", None),
    "csharp-agent-with-gemini-2026-03-09": (8, {"llm": 3, "tool": 2, "chain": 3}, ["gemini-2.5-flash"],
                                            (8047, 414, 8461), "9714061f-20c0-4d98-9220-1dc7df15c3c2", "g.aprozeanu"),
    "google-adk-2025-08-28": (5, {"llm": 2, "chain": 1, "tool": 1, "agent": 1}, ["gemini-2.0-flash"], (67, 9, 76),
                              "demo-session", "demo-user"),
    "koog-2025-08-26": (11, {"agent": 2, "llm": 2, "chain": 7}, ["gpt-4o"], (215, 125, 340),
                        "6f8d2449-33ed-4c7c-82e7-5410e34ee4e6", None),
    "langgraph-python-2025-08-22": (9, {"llm": 2, "chain": 7}, ["gpt-4o-2024-08-06"], (168, 66, 234),
                                    "demo-thread-1", None),
    "openai-agents-2025-09-30": (5, {"agent": 2, "llm": 2, "tool": 1}, ["gpt-4.1-2025-04-14"], (140, 44, 184),
                                 None, None),
    "vertex-ai-2025-08-01": (1, {"llm": 1}, [
        "projects/vertex-ai-integration-467711/locations/europe-central2/publishers/google/models/gemini-2.5-flash"],
        (5, 845, 2023), None, None),
}


@needs_langfuse
@pytest.mark.parametrize("stem", sorted(LANGFUSE_FACTS))
def test_langfuse_span_facts(stem):
    n_spans, kinds, models, tokens, session, user = LANGFUSE_FACTS[stem]
    result = load_langfuse(stem)
    assert result.spans.height == n_spans
    assert dict(Counter(result.spans["kind"])) == kinds
    trace = trace_of(result)
    assert trace["models"] == models
    assert (trace["tokens_in"], trace["tokens_out"], trace["tokens_total"]) == tokens
    assert (trace["session_id"], trace["user_id"]) == (session, user)


@needs_langfuse
def test_sessions_come_from_langfuse_fields_otel_attributes_and_metadata():
    # koog: trace.sessionId is null, gen_ai.conversation.id sits in metadata.attributes on 8 spans
    koog = load_langfuse("koog-2025-08-26").spans
    assert koog.filter(pl.col("session_id") == "6f8d2449-33ed-4c7c-82e7-5410e34ee4e6").height == 8
    # langgraph-python: LangChain callback metadata thread_id on every observation
    assert set(load_langfuse("langgraph-python-2025-08-22").spans["session_id"]) == {"demo-thread-1"}
    # autogen: the trace's own sessionId / userId reach every span
    autogen = load_langfuse("autogen-2025-06-06").spans
    assert set(autogen["session_id"]) == {"session_abc"} and set(autogen["user_id"]) == {"user_123"}


@needs_langfuse
def test_eval_scores_become_llm_feedback_on_the_trace():
    eval_scores = {}
    for path in LANGFUSE_FILES:
        feedback = langfuse.read(str(path)).conformed().feedback.filter(pl.col("annotator_kind") == "llm")
        for row in feedback.to_dicts():
            assert (row["target_level"], row["source_format"]) == ("trace", "langfuse")
            assert row["target_id"] == row["trace_id"] and row["created_at"] is not None
            eval_scores[(path.name.split(".")[0], row["name"])] = row["value_num"]
    assert len({stem for stem, _ in eval_scores}) == 11
    assert {stem for stem, name in eval_scores if name == "correctness"} == {
        "claude-agent-2025-12-22", "microsoft-agent-2025-12-17"}
    assert {k: v for k, v in eval_scores.items() if k[0] == "claude-agent-2025-12-22"} == {
        ("claude-agent-2025-12-22", "correctness"): 0.0,
        ("claude-agent-2025-12-22", "hallucination"): 1.0,
        ("claude-agent-2025-12-22", "toxicity"): 0.0,
    }
    assert eval_scores[("microsoft-agent-2025-12-17", "correctness")] == 1.0
    assert eval_scores[("microsoft-agent-2025-12-17", "hallucination")] == pytest.approx(0.9)
    assert eval_scores[("crewai-2025-07-11", "toxicity")] == pytest.approx(0.8)
    assert sum(1 for _, name in eval_scores if name == "toxicity") == 11


@needs_langfuse
def test_claude_agent_details_decoded():
    result = load_langfuse("claude-agent-2025-12-22")
    [correctness] = result.feedback.filter(pl.col("name") == "correctness").to_dicts()
    assert correctness["value_text"].startswith("The generation does not provide any factual information")
    root = result.spans.filter(pl.col("parent_span_id").is_null()).to_dicts()[0]
    assert root["name"] == "claude.conversation"
    assert json.loads(root["input"])["prompt"] == "What's the weather like in Berlin and New York?"
    trace_fields = json.loads(root["attributes"])["trace"]
    assert trace_fields["latency"] == pytest.approx(7.36)
    first = result.spans.filter(pl.col("span_id") == "371496f71d82baed").to_dicts()[0]
    assert (first["provider"], first["tokens_in"], first["tokens_out"], first["cost_usd"]) == (
        "anthropic", 5, 94, pytest.approx(0.001425))
    assert json.loads(first["attributes"])["metadata"]["attributes"]["gen_ai.operation.name"] == "chat"


@needs_langfuse
@pytest.mark.parametrize("stem", ["pydantic-ai-2025-06-06", "pydantic-ai-tools-2025-06-06"])
def test_human_corrections_become_text_feedback(stem):
    [row] = load_langfuse(stem).feedback.to_dicts()
    assert (row["name"], row["annotator_kind"], row["annotator_id"]) == ("output", "human", "cm167x5rh00018bk3mcnituff")
    assert row["value_num"] is None and row["value_text"].startswith("Langfuse is a tool designed for observability")


LANGSMITH_FACTS = {  # file stem -> (model, tokens in/out/total, duration ms, streamed events)
    "langsmith_py_wrap_openai_": ("gpt-4o-mini", (9, 9, 18), 1118.333, 0),
    "langsmith_py_wrap_openai_reasoning": ("o1-mini", (43, 2497, 2540), 15138.093, 0),
    "langsmith_py_wrap_openai_stream": ("gpt-4o-mini", (9, 9, 18), 1328.441, 12),
    "langsmith_py_wrap_openai_stream_no_usage": ("gpt-4o-mini", (None, None, None), 927.004, 11),
}


@needs_langsmith
@pytest.mark.parametrize("path", LANGSMITH_FILES, ids=lambda p: p.stem)
def test_langsmith_payloads_load_cleanly(path):
    assert detect_format(path, read_head(path)) == "langsmith"
    result = langsmith.read(str(path)).conformed()
    assert result.problems == [] and result.feedback.height == 0
    raw = json.loads(path.read_bytes())
    [row] = result.spans.to_dicts()
    run_id = raw["post"][0]["id"]
    assert row["span_id"] == row["trace_id"] == run_id and row["parent_span_id"] is None
    model, tokens, duration, n_events = LANGSMITH_FACTS[path.stem]
    assert (row["kind"], row["name"], row["model"], row["provider"]) == ("llm", "ChatOpenAI", model, "openai")
    assert (row["tokens_in"], row["tokens_out"], row["tokens_total"]) == tokens
    assert row["duration_ms"] == pytest.approx(duration)  # end_time only arrives in the patch
    assert row["status"] == "ok" and row["app_version"] == "v0.1.82-381-g03d9e1a-dirty"
    assert json.loads(row["input"])["messages"][0]["role"] == "user"
    assert json.loads(row["output"])["choices"][0]["message"]["role"] == "assistant"
    attrs = json.loads(row["attributes"])
    assert len(attrs["events"]) == n_events and attrs["session_name"] == "default"
