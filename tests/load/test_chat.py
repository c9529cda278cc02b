"""Chat-transcript records (benchmark dumps) -> spans, traces, feedback, problems."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from workbench import schema
from workbench.load import LoadError
from workbench.load._custom import stable_id
from workbench.load.chat import read_chat_transcripts

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chat"
TAU = FIXTURES / "tau_bench_retail.json"
NESTED = FIXTURES / "runs_nested.jsonl"
LEGACY = FIXTURES / "legacy_function_call.json"


@pytest.fixture(scope="module")
def tau():
    return read_chat_transcripts(TAU, messages="traj", outcome="reward", keys=("task_id", "trial"))


def test_tau_bench_records_become_traces_with_ids_from_the_keys(tau):
    assert tau.problems.is_empty()
    assert tau.traces.height == 3
    assert set(tau.traces["trace_id"]) == {stable_id([0, 0]), stable_id([0, 1]), stable_id([5, 0])}
    for name in ("spans", "traces", "sessions", "feedback", "problems"):
        schema.validate(getattr(tau, name), schema.TABLES[name], table=name)
    again = read_chat_transcripts(TAU, messages="traj", outcome="reward", keys=("task_id", "trial"))
    assert again.spans["span_id"].to_list() == tau.spans["span_id"].to_list()
    assert tau.spans["span_id"].n_unique() == tau.spans.height


def test_tau_bench_span_tree_llm_and_tool_spans(tau):
    spans = tau.spans.filter(pl.col("trace_id") == stable_id([0, 0]))
    assert spans["kind"].to_list() == ["agent", "llm", "llm", "tool", "llm", "tool", "llm"]
    root = spans.row(0, named=True)
    assert root["parent_span_id"] is None and root["name"] == "transcript"
    assert root["input"] == "Hi, I'd like to exchange a keyboard I received."
    assert root["output"].startswith("Your order #W2378156 was delivered.")
    assert root["tags"] == ["task_id=0", "trial=0"]
    rest = json.loads(root["attributes"])
    assert rest["reward"] == 1.0 and rest["info"]["task"]["user_id"] == "yusuf_rossi_9620" and "traj" not in rest
    assert set(spans["parent_span_id"].drop_nulls()) == {root["span_id"]}
    tools = spans.filter(pl.col("kind") == "tool")
    assert tools["name"].to_list() == ["find_user_id_by_zip", "get_order_details"]
    assert json.loads(tools["input"][0]) == {"first_name": "Yusuf", "last_name": "Rossi", "zip": "19122"}
    assert tools["output"][0] == "yusuf_rossi_9620"
    assert json.loads(tools["output"][1])["status"] == "delivered"
    assert json.loads(tools["attributes"][1]) == {"tool_call_id": "call_Qm2Lx7"}
    assert tools["status"].to_list() == ["ok", "ok"]
    llm = spans.filter(pl.col("kind") == "llm")
    # the first model call saw the system prompt and the user's message
    assert [m["role"] for m in json.loads(llm["input"][0])] == ["system", "user"]
    assert llm["output"][0].startswith("I can help with that.")
    # a turn with only tool calls shows the calls as its output
    assert json.loads(llm["output"][1])[0]["function"]["name"] == "find_user_id_by_zip"
    assert json.loads(llm["input"][2])[0]["role"] == "tool"


def test_parallel_tool_calls_match_results_by_id_not_order(tau):
    tools = tau.spans.filter((pl.col("trace_id") == stable_id([5, 0])) & (pl.col("kind") == "tool"))
    by_input = {json.loads(i)["order_id"]: json.loads(o)["status"] for i, o in zip(tools["input"], tools["output"], strict=True)}
    assert by_input == {"#W6390527": "delivered", "#W7800651": "pending"}


def test_reward_and_pass_flag_roll_up_to_traces(tau):
    traces = {r["trace_id"]: r for r in tau.traces.iter_rows(named=True)}
    ok, failed = traces[stable_id([0, 0])], traces[stable_id([0, 1])]
    assert (ok["reward"], ok["passed"]) == (1.0, True)
    assert (failed["reward"], failed["passed"]) == (0.0, False)
    assert failed["n_errors"] == 1 and failed["n_tool_calls"] == 1 and failed["n_llm_calls"] == 2
    assert ok["n_llm_calls"] == 4 and ok["n_tool_calls"] == 2 and ok["n_spans"] == 7
    error = tau.spans.filter((pl.col("trace_id") == stable_id([0, 1])) & (pl.col("status") == "error"))
    assert error["name"].to_list() == ["get_order_details"] and error["error_message"][0] == "Error: order not found"
    fb = tau.feedback.filter(pl.col("trace_id") == stable_id([0, 1]))
    assert dict(zip(fb["name"], fb["value_num"], strict=True)) == {"reward": 0.0, "passed": 0.0}
    assert set(fb["annotator_kind"]) == {"code"} and set(fb["target_level"]) == {"trace"}


def test_pass_threshold_decides_what_a_numeric_reward_means():
    loose = read_chat_transcripts(TAU, messages="traj", outcome="reward", keys=("task_id", "trial"), pass_threshold=0.0)
    assert loose.traces["passed"].to_list() == [True, True, True]
    off = read_chat_transcripts(TAU, messages="traj", outcome="reward", keys=("task_id", "trial"), pass_threshold=None)
    assert off.traces["passed"].null_count() == 3 and off.traces["reward"].sum() == 2.0


def test_nested_records_sessions_and_content_parts():
    result = read_chat_transcripts(NESTED, records="data.items", messages="trajectory.messages",
                                   outcome="result.passed", keys=("task_id", "trial"), session="conversation_id")
    traces = {r["trace_id"]: r for r in result.traces.iter_rows(named=True)}
    assert set(traces) == {stable_id(["refund-12", 0]), stable_id(["address-3", 0])}
    refund = traces[stable_id(["refund-12", 0])]
    assert refund["input"] == "I want a refund\nfor order 88"
    assert refund["output"] == "Refund issued for order 88."
    assert refund["passed"] is True and refund["session_id"] == "conv-1"
    assert traces[stable_id(["address-3", 0])]["passed"] is False  # "failed" is a fail word
    assert set(result.sessions["session_id"]) == {"conv-1", "conv-3"}
    root = result.spans.filter((pl.col("trace_id") == refund["trace_id"]) & pl.col("parent_span_id").is_null())
    kept = json.loads(root["attributes"][0])
    assert kept["trajectory"] == {"model": "gpt-4o-mini"} and kept["result"]["duration_s"] == 4.2
    assert set(result.spans["source_line"]) == {1, 2}


def test_bad_records_and_messages_become_problems_with_line_and_field_path():
    result = read_chat_transcripts(NESTED, records="data.items", messages="trajectory.messages",
                                   outcome="result.passed", keys=("task_id", "trial"))
    problems = result.problems.select("line", "reason", "field").rows()
    assert problems == [
        (1, "missing required field", "data.items[1].trajectory.messages"),
        (2, "malformed message", "data.items[0].trajectory.messages[1].role"),
        (2, "tool result without a matching call", "data.items[0].trajectory.messages[2].tool_call_id"),
        (3, "invalid JSON", None),
        (4, "bad field value", "data.items[0].trajectory.messages"),
        (5, "missing required field", "data.items"),
    ]
    assert set(result.problems["source_file"]) == {str(NESTED)}
    # the unmatched tool result is still shown, as its own tool span
    address = result.spans.filter(pl.col("trace_id") == stable_id(["address-3", 0]))
    assert address.filter(pl.col("kind") == "tool")["output"].to_list() == ["ok"]


def test_strict_raises_at_the_first_problem_naming_file_line_and_field():
    with pytest.raises(LoadError) as info:
        read_chat_transcripts(NESTED, records="data.items", messages="trajectory.messages", strict=True)
    assert f"{NESTED}:1" in str(info.value) and "data.items[1].trajectory.messages" in str(info.value)


def test_legacy_function_calls_times_string_outcomes():
    result = read_chat_transcripts(LEGACY, outcome=("status", "score"), session="session")
    assert result.problems.is_empty()
    spans = result.spans
    assert spans["kind"].to_list() == ["agent", "llm", "tool", "llm"]
    tool = spans.row(2, named=True)
    assert tool["name"] == "get_weather" and json.loads(tool["input"]) == {"city": "Oslo"}
    assert json.loads(tool["output"]) == {"temp_c": -3, "sky": "snow"} and tool["duration_ms"] == 1000.0
    trace = result.traces.row(0, named=True)
    assert trace["passed"] is True and trace["reward"] == 0.75 and trace["duration_ms"] == 5000.0
    assert trace["session_id"] == "sess-42"
    # without keys the trace id comes from the file name and record position, stably
    assert trace["trace_id"] == stable_id(["legacy_function_call.json", 1, 0])


def test_an_outcome_path_found_nowhere_is_reported_once():
    result = read_chat_transcripts(TAU, messages="traj", outcome="result.reward", keys=("task_id", "trial"))
    assert result.problems.select("reason", "field").rows() == [("outcome field not found", "result.reward")]
    assert result.traces["reward"].null_count() == 3


def test_missing_keys_fall_back_to_position_and_are_reported(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\n'
                    '{"messages": [{"role": "user", "content": "hey"}]}\n', encoding="utf-8")
    result = read_chat_transcripts(path, keys=("id",))
    assert result.problems.select("line", "reason", "field").rows() == [(2, "missing required field", "id")]
    assert set(result.traces["trace_id"]) == {stable_id(["a"]), stable_id(["runs.jsonl", 2, 0, None])}


def test_many_files_and_directories_load_together(tmp_path):
    for n in range(2):
        (tmp_path / f"part{n}.jsonl").write_text(
            json.dumps({"task": f"t{n}", "messages": [{"role": "user", "content": f"q{n}"},
                                                      {"role": "assistant", "content": f"a{n}"}], "ok": n == 0}) + "\n",
            encoding="utf-8")
    result = read_chat_transcripts(tmp_path, outcome="ok", keys=("task",))
    assert result.files.height == 2 and set(result.files["format"]) == {"chat"}
    assert dict(zip(result.traces["output"], result.traces["passed"], strict=True)) == {"a0": True, "a1": False}


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="format"):
        read_chat_transcripts(TAU, format="csv")
