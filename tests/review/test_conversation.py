"""conversation(), span_tree() and metadata_summary() on hand-built and real traces."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from workbench.review.conversation import conversation, metadata_summary, span_tree
from workbench.schema import SPANS, conform

ROOT = Path(__file__).resolve().parents[2]
RESEARCH = ROOT / ".." / "shared" / "research-data" / "langfuse-framework-traces"
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def spans(*rows: dict) -> pl.DataFrame:
    """A spans frame from rows with times given as seconds after T0."""
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        row.setdefault("trace_id", "t1")
        row.setdefault("span_id", f"s{i}")
        start = row.pop("t", i)
        row["start_time"] = T0 + timedelta(seconds=start)
        row["end_time"] = T0 + timedelta(seconds=start + row.pop("d", 0.5))
        for key in ("input", "output"):
            if key in row and not isinstance(row[key], str) and row[key] is not None:
                row[key] = json.dumps(row[key])
        out.append(row)
    return conform(pl.DataFrame(out, infer_schema_length=None), SPANS)


SYSTEM = {"role": "system", "content": "You are Sam."}
USER = {"role": "user", "content": "Where is order 42?"}
CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "42"}'}}]}
RESULT = {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'}
ANSWER = {"role": "assistant", "content": "It shipped yesterday."}


def agent_trace() -> pl.DataFrame:
    return spans(
        {"span_id": "root", "kind": "agent", "name": "agent", "t": 0, "d": 5, "input": "Where is order 42?",
         "output": "It shipped yesterday."},
        {"parent_span_id": "root", "kind": "llm", "name": "chat", "t": 0.1, "input": [SYSTEM, USER],
         "output": [CALL]},
        {"parent_span_id": "root", "kind": "tool", "name": "lookup_order", "t": 1, "input": {"order_id": "42"},
         "output": {"status": "shipped"}},
        {"parent_span_id": "root", "kind": "llm", "name": "chat", "t": 2, "input": [SYSTEM, USER, CALL, RESULT],
         "output": [ANSWER]},
    )


def test_openai_agent_trace_in_time_order_without_repeating_history():
    msgs = conversation(agent_trace())
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool", "assistant"]
    assert msgs[1].content == "Where is order 42?"
    assert [(c.name, json.loads(c.arguments)) for c in msgs[2].tool_calls] == [("lookup_order", {"order_id": "42"})]
    assert msgs[3].name == "lookup_order" and json.loads(msgs[3].content) == {"status": "shipped"}
    assert msgs[3].span_id == "s2"  # the tool span's result, not the copy in the next LLM input
    assert msgs[4].content == "It shipped yesterday."
    assert [m.time for m in msgs] == sorted(m.time for m in msgs)


def test_rows_out_of_order_and_pandas_input_give_the_same_conversation():
    frame = agent_trace()
    expected = [(m.role, m.content) for m in conversation(frame)]
    assert [(m.role, m.content) for m in conversation(frame.reverse())] == expected
    assert [(m.role, m.content) for m in conversation(frame.to_pandas())] == expected


def test_retried_identical_tool_call_is_shown_twice_in_order():
    failed = {"role": "tool", "tool_call_id": "call_1", "content": "TimeoutError: upstream"}
    call2 = {**CALL, "tool_calls": [{**CALL["tool_calls"][0], "id": "call_2"}]}
    result2 = {**RESULT, "tool_call_id": "call_2"}
    frame = spans(
        {"kind": "llm", "t": 0, "input": [USER], "output": [CALL]},
        {"kind": "tool", "name": "lookup_order", "t": 1, "input": {"order_id": "42"}, "output": None,
         "status": "error", "error_type": "TimeoutError", "error_message": "TimeoutError: upstream"},
        {"kind": "llm", "t": 2, "input": [USER, CALL, failed], "output": [call2]},
        {"kind": "tool", "name": "lookup_order", "t": 3, "input": {"order_id": "42"}, "output": {"status": "shipped"}},
        {"kind": "llm", "t": 4, "input": [USER, CALL, failed, call2, result2], "output": [ANSWER]},
    )
    msgs = conversation(frame)
    assert [m.role for m in msgs] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert msgs[2].is_error and msgs[2].content == "TimeoutError: upstream"  # not "TimeoutError: TimeoutError"
    assert not msgs[4].is_error


def test_retriever_span_gets_document_text_from_the_tool_message():
    call = {"role": "assistant", "tool_calls": [{"id": "c9", "function": {
        "name": "search_kb", "arguments": '{"query": "warranty"}'}}]}
    docs = [{"id": "kb-1", "content": "Motor: 5 years."}, {"id": "kb-2", "content": "Jar: 1 year."}]
    tool_msg = {"role": "tool", "tool_call_id": "c9", "content": json.dumps(docs)}
    frame = spans(
        {"kind": "llm", "t": 0, "input": [USER], "output": [call]},
        {"kind": "retriever", "name": "search_kb", "t": 1, "input": "warranty",
         "output": [{"id": "kb-1", "score": 0.8}, {"id": "kb-2", "score": 0.7}]},
        {"kind": "llm", "t": 2, "input": [USER, call, tool_msg], "output": [ANSWER]},
    )
    msgs = conversation(frame)
    assert [m.role for m in msgs] == ["user", "assistant", "retrieval", "assistant"]
    retrieval = msgs[2]
    assert retrieval.content == "warranty"
    assert [(d.doc_id, d.score, d.content) for d in retrieval.documents] == [
        ("kb-1", 0.8, "Motor: 5 years."), ("kb-2", 0.7, "Jar: 1 year.")]


@pytest.mark.parametrize(
    "inp, out",
    [
        # OpenTelemetry GenAI parts
        ([{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
         [{"role": "assistant", "parts": [{"type": "tool_call", "id": "x", "name": "f", "arguments": {"a": 1}}]}]),
        # Anthropic content blocks
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]},
         {"role": "assistant", "content": [{"type": "tool_use", "id": "x", "name": "f", "input": {"a": 1}}]}),
        # Gemini
        ({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
         {"candidates": [{"content": {"role": "model", "parts": [{"function_call": {"name": "f", "args": {"a": 1}}}]}}]}),
        # LangChain serialised messages
        ({"messages": [{"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "HumanMessage"],
                        "kwargs": {"content": "hi"}}]},
         {"lc": 1, "type": "constructor", "id": ["langchain_core", "messages", "AIMessage"],
          "kwargs": {"content": "", "tool_calls": [{"name": "f", "args": {"a": 1}, "id": "x"}]}}),
        # OpenAI Responses items
        ([{"role": "user", "content": "hi"}],
         {"output": [{"type": "function_call", "name": "f", "arguments": '{"a": 1}', "call_id": "x"}]}),
        # OpenAI chat completion response
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]},
         {"choices": [{"message": {"role": "assistant", "tool_calls": [
             {"id": "x", "function": {"name": "f", "arguments": '{"a": 1}'}}]}}]}),
    ],
    ids=["genai", "anthropic", "gemini", "langchain", "responses", "chat-completion"],
)
def test_message_shapes_of_each_provider(inp, out):
    msgs = conversation(spans({"kind": "llm", "input": inp, "output": out}))
    assert msgs[0].role == "user" and msgs[0].content == "hi"
    assert msgs[1].role == "assistant"
    assert [(c.name, json.loads(c.arguments)) for c in msgs[1].tool_calls] == [("f", {"a": 1})]


def test_openinference_flattened_attributes_when_input_is_empty():
    attrs = {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": "refund please",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "refund",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": 7}',
    }
    msgs = conversation(spans({"kind": "llm", "attributes": json.dumps(attrs)}))
    assert [(m.role, m.content) for m in msgs] == [("user", "refund please"), ("assistant", "")]
    assert msgs[1].tool_calls[0].name == "refund"


def test_plain_root_input_output_and_chat_transcript():
    plain = conversation(spans({"kind": "chain", "input": "hello?", "output": "hi there"}))
    assert [(m.role, m.content) for m in plain] == [("user", "hello?"), ("assistant", "hi there")]
    transcript = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                  {"role": "user", "content": "c"}]
    chat = conversation(spans({"kind": "other", "input": transcript, "output": {"role": "assistant", "content": "d"}}))
    assert [(m.role, m.content) for m in chat] == [("user", "a"), ("assistant", "b"), ("user", "c"), ("assistant", "d")]


def test_tool_only_trace_shows_the_call_and_its_result():
    msgs = conversation(spans({"kind": "tool", "name": "ping", "input": {"host": "x"}, "output": "pong"}))
    assert [m.role for m in msgs] == ["assistant", "tool"]
    assert msgs[0].tool_calls[0].name == "ping" and msgs[1].content == "pong"


def test_empty_and_missing_columns():
    assert conversation(pl.DataFrame({"span_id": ["a"]})) == []
    assert conversation(conform(pl.DataFrame({"span_id": []}, schema={"span_id": pl.String}), SPANS)) == []


# -- span tree -----------------------------------------------------------------------------------


def tree_of(parents: dict[str, str | None], ids: list[str] | None = None) -> list:
    ids = ids or list(parents)
    frame = pl.DataFrame({"span_id": ids, "parent_span_id": [parents[i] for i in ids], "name": ids,
                          "start_time": [T0 + timedelta(seconds=k) for k in range(len(ids))]})
    return span_tree(frame)


def test_tree_depth_first_children_by_start_time():
    rows = tree_of({"r": None, "b": "r", "a": "r", "b1": "b"}, ["r", "b", "b1", "a"])
    assert [(r.name, r.depth) for r in rows] == [("r", 0), ("b", 1), ("b1", 2), ("a", 1)]
    assert rows[1].start_offset_ms == 1000


def test_tree_terminates_on_cycle_and_self_loop_showing_each_once():
    rows = tree_of({"r": None, "x": "y", "y": "z", "z": "x", "self": "self", "c": "r"})
    names = [r.name for r in rows]
    assert sorted(names) == sorted(["r", "x", "y", "z", "self", "c"])  # every span exactly once
    flags = {r.name: r.flags for r in rows}
    assert all("cycle" in flags[n] for n in "xyz") and "cycle" not in flags["r"]
    assert "self-loop" in flags["self"] and "cycle" in flags["self"]
    assert {r.name: r.depth for r in rows}["x"] == 0  # cycle entered at its earliest member


def test_tree_orphans_top_level_and_duplicates_all_shown():
    frame = pl.DataFrame({"span_id": ["r", "d", "d", "o"], "parent_span_id": [None, "r", "r", "gone"],
                          "name": ["r", "d1", "d2", "o"]})
    rows = span_tree(frame)
    assert [r.name for r in rows] == ["r", "d1", "d2", "o"]
    assert {r.name: r.depth for r in rows} == {"r": 0, "d1": 1, "d2": 1, "o": 0}
    assert "orphan" in rows[3].flags and all("duplicate" in r.flags for r in rows[1:3])


def test_tree_deep_chain_has_no_recursion_limit():
    n = 20_000
    frame = pl.DataFrame({"span_id": [f"s{i}" for i in range(n)],
                          "parent_span_id": [None] + [f"s{i}" for i in range(n - 1)]})
    rows = span_tree(frame)
    assert len(rows) == n and rows[-1].depth == n - 1


def test_tree_timing_and_errors():
    frame = spans({"span_id": "r", "kind": "agent", "name": "agent", "t": 0, "d": 2},
                  {"parent_span_id": "r", "kind": "tool", "name": "t", "t": 1, "d": 0.25, "status": "error",
                   "error_type": "ValueError", "error_message": "bad id"})
    rows = span_tree(frame)
    assert rows[1].duration_ms == 250 and rows[1].error == "ValueError: bad id" and rows[1].status == "error"


def test_metadata_summary_counts_and_outcome():
    frame = agent_trace().with_columns(model=pl.lit("gpt-x"), tokens_in=pl.lit(10, pl.Int64))
    summary = metadata_summary(frame, {"user_feedback": 0.0, "passed": False})
    assert summary["spans"] == 4 and summary["llm calls"] == 2 and summary["tool calls"] == 1
    assert summary["tokens in"] == 20  # llm spans only
    assert summary["models"] == "gpt-x" and summary["user feedback"] == 0.0 and summary["passed"] is False


# -- real exports --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample():
    path = ROOT / "data" / "support_agent.otlp.jsonl"
    if not path.exists():
        pytest.skip("bundled sample not generated")
    from workbench.load import read_traces

    return read_traces(path), read_traces(ROOT / "data" / "support_agent.langfuse.jsonl")


def test_bundled_sample_every_trace_reads_as_a_conversation(sample):
    for result in sample:
        for (_tid,), frame in result.spans.partition_by("trace_id", as_dict=True).items():
            msgs = conversation(frame)
            roles = [m.role for m in msgs]
            assert "user" in roles
            assert msgs[-1].role == "assistant" and msgs[-1].content
            n_tools = int((frame["kind"] == "tool").sum())
            assert roles.count("tool") == n_tools  # each tool result once, none from LLM history
            assert roles.count("retrieval") == int((frame["kind"] == "retriever").sum())
            assert all(d.content for m in msgs for d in m.documents)


def test_bundled_sample_same_conversation_from_both_formats(sample):
    otlp, langfuse = sample
    ids = otlp.traces["trace_id"].head(60).to_list()
    for tid in ids:
        a = conversation(otlp.spans.filter(pl.col("trace_id") == tid))
        b = conversation(langfuse.spans.filter(pl.col("trace_id") == tid))
        assert [(m.role, _canonical(m.content)) for m in a] == [(m.role, _canonical(m.content)) for m in b]


def _canonical(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


@pytest.mark.skipif(not RESEARCH.exists(), reason="research data not beside the checkout")
def test_langfuse_framework_exports_each_have_a_question_and_an_answer():
    from workbench.load import read_traces

    files = sorted(RESEARCH.glob("*.trace.json"))
    assert len(files) >= 20
    for path in files:
        msgs = conversation(read_traces(path).spans)
        assert any(m.role == "user" and m.content for m in msgs), path.name
        assert any(m.role == "assistant" and (m.content or m.tool_calls) for m in msgs), path.name
