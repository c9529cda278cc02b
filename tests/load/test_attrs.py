"""Attribute mapping: OpenInference and GenAI (old and new names) -> span columns, nothing lost."""

from __future__ import annotations

import orjson

from workbench.load._attrs import kind_from, otlp_attributes_to_dict, span_fields_from_attributes


def test_anyvalue_decoding():
    kv = [
        {"key": "s", "value": {"stringValue": "x"}},
        {"key": "i", "value": {"intValue": "12"}},
        {"key": "i_num", "value": {"intValue": 7}},
        {"key": "d", "value": {"doubleValue": 1.5}},
        {"key": "d_nan", "value": {"doubleValue": "NaN"}},
        {"key": "b", "value": {"boolValue": False}},
        {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "p"}, {"intValue": "2"}]}}},
        {"key": "kv", "value": {"kvlistValue": {"values": [{"key": "in", "value": {"boolValue": True}}]}}},
        {"key": "bytes", "value": {"bytesValue": "AAE="}},
        {"key": "empty", "value": {}},
        {"key": "i", "value": {"intValue": "13"}},
    ]
    assert otlp_attributes_to_dict(kv) == {
        "s": "x", "i": 13, "i_num": 7, "d": 1.5, "d_nan": "NaN", "b": False, "a": ["p", 2],
        "kv": {"in": True}, "bytes": "AAE=", "empty": None,
    }
    assert otlp_attributes_to_dict(None) == {}


def test_kind_priority():
    both = {"openinference.span.kind": "TOOL", "gen_ai.operation.name": "chat"}
    assert kind_from(both) == "tool"
    assert kind_from({"gen_ai.operation.name": "invoke_agent"}) == "agent"
    assert kind_from({"gen_ai.operation.name": "embeddings"}) == "embedding"
    assert kind_from({}, "chat gpt-4o") == "llm"
    assert kind_from({}, "execute_tool get_weather") == "tool"
    assert kind_from({}, "HTTP GET") == "other"
    assert kind_from({}, "HTTP GET", vendor_kind="retriever") == "retriever"
    assert kind_from({"openinference.span.kind": "unknown"}) == "other"


def test_openinference_llm_span_with_flattened_messages():
    attrs = {
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o-mini",
        "llm.provider": "openai",
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "be nice",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "refund?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_1",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "lookup",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"id": 3}',
        "input.value": '{"messages": []}',
        "llm.token_count.prompt": 120,
        "llm.token_count.completion": "30",
        "llm.token_count.total": 150,
        "llm.cost.prompt": 0.001,
        "llm.cost.completion": 0.002,
        "llm.prompt_template.version": "v2",
        "session.id": "sess-1",
        "user.id": "u-9",
        "tag.tags": ["a", "b"],
        "metadata": '{"team": "support"}',
        "llm.invocation_parameters": '{"temperature": 0}',
    }
    f = span_fields_from_attributes(attrs)
    assert f["kind"] == "llm" and f["model"] == "gpt-4o-mini" and f["provider"] == "openai"
    assert orjson.loads(f["input"]) == [
        {"role": "system", "content": "be nice"},
        {"role": "user", "content": "refund?"},
    ]
    assert orjson.loads(f["output"]) == [
        {"role": "assistant",
         "tool_calls": [{"id": "call_1", "function": {"name": "lookup", "arguments": '{"id": 3}'}}]},
    ]
    assert (f["tokens_in"], f["tokens_out"], f["tokens_total"]) == (120, 30, 150)
    assert abs(f["cost_usd"] - 0.003) < 1e-12
    assert f["prompt_version"] == "v2" and f["session_id"] == "sess-1" and f["user_id"] == "u-9"
    assert f["tags"] == ["a", "b"]
    # unmapped (and the unused input.value) kept
    assert f["attributes"] == {
        "input.value": '{"messages": []}',
        "llm.cost.prompt": 0.001,
        "llm.cost.completion": 0.002,
        "metadata": '{"team": "support"}',
        "llm.invocation_parameters": '{"temperature": 0}',
    }
    assert f["drift"] == [] and f["feedback"] == []


def test_genai_new_and_old_names():
    new = span_fields_from_attributes({
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x", "gen_ai.response.model": "claude-x-2025",
        "gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 5,
        "gen_ai.conversation.id": "conv-1", "gen_ai.prompt.name": "triage", "gen_ai.prompt.version": "3",
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "hi"}]}],
        "gen_ai.output.messages": '[{"role": "assistant", "parts": []}]',
        "error.type": "timeout",
    })
    assert (new["kind"], new["provider"], new["model"]) == ("llm", "anthropic", "claude-x-2025")
    assert (new["tokens_in"], new["tokens_out"], new["tokens_total"]) == (10, 5, 15)
    assert new["session_id"] == "conv-1" and new["prompt_name"] == "triage" and new["prompt_version"] == "3"
    assert orjson.loads(new["input"])[0]["parts"][0]["content"] == "hi"
    assert new["output"] == '[{"role": "assistant", "parts": []}]'
    assert new["error_type"] == "timeout"
    assert new["attributes"] == {"gen_ai.operation.name": "chat", "gen_ai.request.model": "claude-x"}
    old = span_fields_from_attributes({
        "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4",
        "gen_ai.usage.prompt_tokens": 7, "gen_ai.usage.completion_tokens": 2,
        "gen_ai.prompt": "hello", "gen_ai.completion": "world",
    }, name="chat gpt-4")
    assert (old["kind"], old["provider"], old["model"]) == ("llm", "openai", "gpt-4")
    assert (old["tokens_in"], old["tokens_out"], old["input"], old["output"]) == (7, 2, "hello", "world")
    assert old["attributes"] == {}


def test_type_drift_is_kept_not_nulled():
    f = span_fields_from_attributes({
        "llm.token_count.prompt": {"cached": 3, "fresh": 9},
        "gen_ai.usage.input_tokens": 12,
        "llm.token_count.completion": "twelve",
        "llm.model_name": {"name": "x"},
    })
    assert f["tokens_in"] == 12  # the next key in priority order
    assert "tokens_out" not in f and "model" not in f
    assert f["attributes"] == {
        "llm.token_count.prompt": {"cached": 3, "fresh": 9},
        "llm.token_count.completion": "twelve",
        "llm.model_name": {"name": "x"},
    }
    assert [key for key, _ in f["drift"]] == [
        "llm.model_name", "llm.token_count.prompt", "llm.token_count.completion",
    ]


def test_inline_annotations_become_feedback():
    f = span_fields_from_attributes({
        "annotations.0.annotation.name": "helpful",
        "annotations.0.annotation.score": 1,
        "annotations.0.annotation.annotator_kind": "HUMAN",
        "annotations.0.annotation.identifier": "abc",
        "evaluations.0.evaluation.name": "relevance",
        "evaluations.0.evaluation.label": "relevant",
        "evaluations.0.evaluation.explanation": "on topic",
        "evaluations.0.evaluation.annotator_kind": "LLM",
        "trace.annotations.0.annotation.name": "resolved",
        "trace.annotations.0.annotation.score": "1.0",
        "trace.annotations.0.annotation.annotator_kind": "CODE",
        "session.annotations.1.annotation.name": "csat",
        "session.annotations.1.annotation.score": 4,
    })
    rows = {r["name"]: r for r in f["feedback"]}
    assert rows["helpful"] == {"target_level": "span", "name": "helpful", "value_num": 1.0,
                               "value_label": None, "value_text": None, "annotator_kind": "human"}
    assert rows["relevance"]["value_label"] == "relevant" and rows["relevance"]["value_text"] == "on topic"
    assert rows["relevance"]["annotator_kind"] == "llm" and rows["relevance"]["target_level"] == "span"
    assert rows["resolved"]["target_level"] == "trace" and rows["resolved"]["value_num"] == 1.0
    assert rows["resolved"]["annotator_kind"] == "code"
    assert rows["csat"]["target_level"] == "session" and rows["csat"]["annotator_kind"] is None
    assert f["attributes"] == {"annotations.0.annotation.identifier": "abc"}


def test_metadata_supplies_prompt_version_when_no_attribute():
    f = span_fields_from_attributes({"metadata": '{"prompt_version": "v1", "app_version": 7}'})
    assert f["prompt_version"] == "v1" and f["app_version"] == "7"
    assert f["attributes"] == {"metadata": '{"prompt_version": "v1", "app_version": 7}'}


def test_retrieval_documents_become_output_when_no_output_value():
    f = span_fields_from_attributes({
        "openinference.span.kind": "RETRIEVER",
        "retrieval.documents.0.document.id": "d1",
        "retrieval.documents.0.document.content": "policy text",
        "retrieval.documents.1.document.id": "d2",
    })
    assert orjson.loads(f["output"]) == [{"id": "d1", "content": "policy text"}, {"id": "d2"}]
    assert "retrieval.documents.0.document.id" in f["attributes"]
