"""The bundled sample: deterministic, planted rates as designed, both formats hold the same traces."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data"
FILES = ("support_agent.otlp.jsonl", "support_agent.langfuse.jsonl", "support_agent.truth.csv")
MODES = ("refund_no_policy", "wrong_tool_args", "hallucinated_no_results", "v2_regression")
PLANNED = {
    "v1": {"refund_no_policy": 0.09, "wrong_tool_args": 0.05, "hallucinated_no_results": 0.04, "v2_regression": 0.0},
    "v2": {"refund_no_policy": 0.0, "wrong_tool_args": 0.05, "hallucinated_no_results": 0.04, "v2_regression": 0.06},
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def truth() -> dict[str, dict]:
    with (DATA / FILES[2]).open(encoding="utf-8") as fh:
        return {row["trace_id"]: row for row in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def otlp_spans() -> list[tuple[int, dict, dict]]:
    """(line number, resource attributes, span) for every span in the OTLP file."""
    out = []
    with (DATA / FILES[0]).open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            request = json.loads(line)
            for rs in request["resourceSpans"]:
                resource = {kv["key"]: kv["value"] for kv in rs["resource"]["attributes"]}
                for ss in rs["scopeSpans"]:
                    assert ss["scope"]["name"]
                    out += [(line_no, resource, span) for span in ss["spans"]]
    return out


@pytest.fixture(scope="module")
def langfuse() -> dict[str, dict]:
    with (DATA / FILES[1]).open(encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    return {r["trace"]["id"]: r for r in records}


def _attrs(span: dict) -> dict[str, object]:
    def value(v: dict) -> object:
        (kind, inner), = v.items()
        if kind == "intValue":
            return int(inner)
        if kind == "arrayValue":
            return [value(x) for x in inner["values"]]
        return inner

    return {kv["key"]: value(kv["value"]) for kv in span["attributes"]}


def test_regenerating_gives_byte_identical_files(tmp_path):
    subprocess.run([sys.executable, str(DATA / "generate.py"), "--out", str(tmp_path)], check=True)
    for name in FILES:
        assert _sha(tmp_path / name) == _sha(DATA / name), f"{name} differs from a fresh run (re-run data/generate.py)"


def test_files_stay_small_enough_to_commit():
    assert (DATA / FILES[0]).stat().st_size < 15_000_000
    assert (DATA / FILES[1]).stat().st_size < 12_000_000


def test_planted_failure_rates_match_the_plan(truth):
    per_version = Counter(r["prompt_version"] for r in truth.values())
    assert set(per_version) == {"v1", "v2"}
    assert all(950 <= n <= 1050 for n in per_version.values())
    counts = Counter((r["prompt_version"], r["failure_mode"]) for r in truth.values())
    for version, rates in PLANNED.items():
        for mode, rate in rates.items():
            assert counts[(version, mode)] == round(rate * per_version[version]), (version, mode)
    modes = {r["failure_mode"] for r in truth.values()}
    assert modes == {"none", *MODES}


def test_sessions_users_and_intents_look_like_real_traffic(truth):
    sessions = Counter(r["session_id"] for r in truth.values())
    assert min(sessions.values()) == 1 and max(sessions.values()) == 5
    assert 300 <= len({r["user_id"] for r in truth.values()}) <= 600
    intents = Counter(r["intent"] for r in truth.values())
    assert len(intents) >= 9 and {"refund_request", "order_status", "password_reset", "product_question"} <= set(intents)
    # every session stays within one prompt version (week 1 = v1, week 2 = v2)
    versions = defaultdict(set)
    for r in truth.values():
        versions[r["session_id"]].add(r["prompt_version"])
    assert all(len(v) == 1 for v in versions.values())


def test_otlp_is_collector_shaped_with_valid_ids_and_trees(otlp_spans, truth):
    by_trace: dict[str, list[dict]] = defaultdict(list)
    lines: dict[str, set[int]] = defaultdict(set)
    for line_no, resource, span in otlp_spans:
        assert len(span["traceId"]) == 32 and int(span["traceId"], 16) >= 0
        assert len(span["spanId"]) == 16 and int(span["spanId"], 16) >= 0
        assert span["startTimeUnixNano"].isdigit() and int(span["endTimeUnixNano"]) >= int(span["startTimeUnixNano"])
        assert resource["service.name"] == {"stringValue": "support-agent"}
        by_trace[span["traceId"]].append(span)
        lines[span["traceId"]].add(line_no)
    assert set(by_trace) == set(truth)
    assert sum(len(v) > 1 for v in lines.values()) > 20  # batches split some traces across lines
    for trace_id, spans in by_trace.items():
        ids = {s["spanId"] for s in spans}
        roots = [s for s in spans if not s.get("parentSpanId")]
        assert len(roots) == 1, trace_id
        assert all(s["parentSpanId"] in ids for s in spans if s.get("parentSpanId"))
        root = _attrs(roots[0])
        assert root["openinference.span.kind"] == "AGENT"
        assert root["session.id"] == truth[trace_id]["session_id"] and root["user.id"] == truth[trace_id]["user_id"]
        assert json.loads(root["metadata"])["prompt_version"] == truth[trace_id]["prompt_version"]
        names = [root[k] for k in root if k.endswith(".annotation.name")]
        assert names[:2] == ["resolved", "judge_pass"]
        assert {root[k] for k in root if k.endswith(".annotator_kind")} <= {"CODE", "LLM", "HUMAN"}


def test_llm_spans_carry_openinference_model_tokens_cost_and_prompt_version(otlp_spans, truth):
    llm = [(_attrs(s), s) for _, _, s in otlp_spans if _attrs(s)["openinference.span.kind"] == "LLM"]
    assert len(llm) > 3000
    for attrs, span in llm[:500]:
        assert attrs["llm.model_name"] == "gpt-4o-mini" and attrs["llm.provider"] == "openai"
        assert attrs["llm.prompt_template.version"] == truth[span["traceId"]]["prompt_version"]
        assert attrs["llm.token_count.total"] == attrs["llm.token_count.prompt"] + attrs["llm.token_count.completion"]
        assert 0 < attrs["llm.cost.total"] < 0.01
        assert attrs["llm.input_messages.0.message.role"] == "system"
        assert attrs["llm.output_messages.0.message.role"] == "assistant"
    versions = {(a["llm.prompt_template.version"], "Refund policy" in a["llm.input_messages.0.message.content"]) for a, _ in llm}
    assert versions == {("v1", False), ("v2", True)}  # the v2 fix: the refund policy is in the prompt


def test_failures_are_visible_in_the_trace_text(otlp_spans, truth):
    roots, tools, retrievers = {}, defaultdict(list), defaultdict(list)
    for _, _, span in otlp_spans:
        attrs = _attrs(span)
        kind = attrs["openinference.span.kind"]
        if kind == "AGENT":
            roots[span["traceId"]] = attrs
        elif kind == "TOOL":
            tools[span["traceId"]].append((attrs, span))
        elif kind == "RETRIEVER":
            retrievers[span["traceId"]].append(attrs)
    for trace_id, row in truth.items():
        mode, answer = row["failure_mode"], roots[trace_id]["output.value"].lower()
        if mode == "refund_no_policy":
            assert "refund policy" in answer
        elif mode == "v2_regression":
            assert "password" in answer and "human agent" in answer
        elif mode == "wrong_tool_args":
            assert "invalid" in answer
            failed = [s for _, s in tools[trace_id] if s["status"]["code"] == 2]
            assert failed and failed[0]["events"][0]["name"] == "exception"
            assert "ValidationError" in _attrs(failed[0]["events"][0])["exception.type"]
        elif mode == "hallucinated_no_results":
            assert retrievers[trace_id] and not any(k.startswith("retrieval.documents") for k in retrievers[trace_id][0])
            assert "warranty" in answer
    # the same words are rare where nothing failed
    healthy = [roots[t]["output.value"].lower() for t, r in truth.items() if r["failure_mode"] == "none"]
    assert sum("refund policy" in a and "couldn't find" in a for a in healthy) == 0
    assert sum("human agent" in a for a in healthy) == 0


def test_feedback_is_an_imperfect_judge_and_a_noisy_outcome(otlp_spans, truth):
    scores: dict[str, dict[str, float]] = defaultdict(dict)
    for _, _, span in otlp_spans:
        attrs = _attrs(span)
        for i in range(3):
            if f"annotations.{i}.annotation.name" in attrs:
                scores[span["traceId"]][attrs[f"annotations.{i}.annotation.name"]] = attrs[f"annotations.{i}.annotation.score"]
    ok = [t for t, r in truth.items() if r["failure_mode"] == "none"]
    bad = [t for t, r in truth.items() if r["failure_mode"] != "none"]
    tpr = sum(scores[t]["judge_pass"] for t in ok) / len(ok)
    tnr = sum(1 - scores[t]["judge_pass"] for t in bad) / len(bad)
    assert 0.80 < tpr < 0.90 and 0.85 < tnr < 0.95
    agreement = sum(scores[t]["resolved"] == (t in set(ok)) for t in truth) / len(truth)
    assert 0.95 < agreement < 0.99
    rated = [t for t in truth if "user_feedback" in scores[t]]
    assert 0.10 < len(rated) / len(truth) < 0.20
    down_bad = sum(scores[t]["user_feedback"] == 0 for t in rated if t in set(bad)) / sum(t in set(bad) for t in rated)
    down_ok = sum(scores[t]["user_feedback"] == 0 for t in rated if t in set(ok)) / sum(t in set(ok) for t in rated)
    assert down_bad > 0.6 > 0.3 > down_ok


def test_xss_payloads_are_planted_and_flagged(otlp_spans, truth):
    flagged = {t for t, r in truth.items() if r["xss_payload"] == "true"}
    assert 3 <= len(flagged) <= 5
    texts = {s["traceId"]: _attrs(s)["input.value"] for _, _, s in otlp_spans if not s.get("parentSpanId")}
    payloads = " ".join(texts[t] for t in flagged)
    for needle in ("<script>window.__xss=1</script>", '<img src=x onerror="window.__xss=1">', "<style>body{display:none}</style>"):
        assert needle in payloads
    assert not any("<script" in texts[t] or "onerror" in texts[t] for t in set(truth) - flagged)


def test_langfuse_holds_the_same_traces_spans_and_scores(langfuse, otlp_spans, truth):
    assert set(langfuse) == set(truth)
    otlp_ids: dict[str, set[str]] = defaultdict(set)
    for _, _, span in otlp_spans:
        otlp_ids[span["traceId"]].add(span["spanId"])
    types = Counter()
    for trace_id, record in langfuse.items():
        trace = record["trace"]
        assert trace["sessionId"] == truth[trace_id]["session_id"] and trace["userId"] == truth[trace_id]["user_id"]
        assert json.loads(trace["metadata"])["prompt_version"] == truth[trace_id]["prompt_version"]
        assert trace["timestamp"].endswith("Z") and trace["release"] in ("1.4.0", "1.5.0")
        assert {o["id"] for o in record["observations"]} == otlp_ids[trace_id]
        assert all(o["traceId"] == trace_id for o in record["observations"])
        names = [s["name"] for s in trace["scores"]]
        assert names[:2] == ["resolved", "judge_pass"]
        types.update(o["type"] for o in record["observations"])
        for obs in record["observations"]:
            if obs["type"] == "GENERATION":
                assert obs["promptVersion"] == int(truth[trace_id]["prompt_version"][1:])  # Langfuse's own: an int
                assert json.loads(obs["metadata"])["prompt_version"] == truth[trace_id]["prompt_version"]
                assert obs["usageDetails"]["total"] == obs["usageDetails"]["input"] + obs["usageDetails"]["output"]
    assert set(types) == {"AGENT", "GENERATION", "TOOL", "RETRIEVER", "GUARDRAIL"}
