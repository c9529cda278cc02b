"""Write format-neutral sample traces as OTLP/OpenInference JSONL and as Langfuse JSONL."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

from _scenario import dumps
from _spans import APP_VERSION, MODEL

OTLP_KIND = {"AGENT": 2, "LLM": 3}  # SERVER for the request, CLIENT for model calls, INTERNAL otherwise
SCOPES = {
    "LLM": {"name": "openinference.instrumentation.openai", "version": "0.1.30"},
    "other": {"name": "support_agent.tracing", "version": "1.0.2"},
}
LANGFUSE_TYPE = {"AGENT": "AGENT", "LLM": "GENERATION", "TOOL": "TOOL", "RETRIEVER": "RETRIEVER",
                 "GUARDRAIL": "GUARDRAIL"}
PROJECT_ID = "cm7q2support0001agent"


def _any_value(value: object) -> dict:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def _kv(pairs: list[tuple[str, object]]) -> list[dict]:
    return [{"key": k, "value": _any_value(v)} for k, v in pairs if v is not None]


def _metadata(turn) -> str:
    return dumps({"prompt_version": turn.version, "channel": turn.channel, "locale": "en-US", "turn": turn.turn_index})


def _message_attrs(prefix: str, i: int, m: dict) -> list[tuple[str, object]]:
    base = f"{prefix}.{i}.message"
    pairs: list[tuple[str, object]] = [(f"{base}.role", m["role"])]
    if m.get("content"):
        pairs.append((f"{base}.content", m["content"]))
    if m.get("tool_call_id"):
        pairs.append((f"{base}.tool_call_id", m["tool_call_id"]))
    for j, tc in enumerate(m.get("tool_calls", ())):
        pairs += [(f"{base}.tool_calls.{j}.tool_call.id", tc["id"]),
                  (f"{base}.tool_calls.{j}.tool_call.function.name", tc["function"]["name"]),
                  (f"{base}.tool_calls.{j}.tool_call.function.arguments", tc["function"]["arguments"])]
    return pairs


def _otlp_attributes(span: dict, trace: dict) -> list[tuple[str, object]]:
    turn = trace["turn"]
    kind = span["kind"]
    pairs: list[tuple[str, object]] = [("openinference.span.kind", kind)]
    if kind == "AGENT":  # context attributes (session, user) are set on the request span
        pairs += [("session.id", turn.session_id), ("user.id", turn.user["user_id"])]
    for io in ("input", "output"):
        value = span.get(io)
        if value is not None:
            pairs.append((f"{io}.value", value))
            if value[:1] in "[{":
                pairs.append((f"{io}.mime_type", "application/json"))
    if kind == "AGENT":
        pairs += [("agent.name", "support-agent"), ("metadata", _metadata(turn)), ("tag.tags", [f"channel:{turn.channel}"])]
        for i, fb in enumerate(trace["feedback"]):
            base = f"annotations.{i}.annotation"
            pairs += [(f"{base}.name", fb["name"]), (f"{base}.score", fb["score"]), (f"{base}.label", fb["label"]),
                      (f"{base}.explanation", fb["explanation"]), (f"{base}.annotator_kind", fb["kind"])]
    elif kind == "LLM":
        pairs += [("llm.model_name", MODEL), ("llm.provider", "openai"), ("llm.prompt_template.version", turn.version)]
        for i, m in enumerate(span["messages_in"]):
            pairs += _message_attrs("llm.input_messages", i, m)
        pairs += _message_attrs("llm.output_messages", 0, span["message_out"])
        pairs += [("llm.token_count.prompt", span["tokens_prompt"]), ("llm.token_count.completion", span["tokens_completion"]),
                  ("llm.token_count.total", span["tokens_prompt"] + span["tokens_completion"]),
                  ("llm.cost.total", round(span["cost_prompt"] + span["cost_completion"], 8))]
    elif kind == "TOOL":
        pairs += [("tool.name", span["name"]), ("tool.parameters", span["tool_args"])]
    elif kind == "RETRIEVER":
        for i, doc in enumerate(span["documents"]):
            base = f"retrieval.documents.{i}.document"
            pairs += [(f"{base}.id", doc["id"]), (f"{base}.content", doc["content"]), (f"{base}.score", doc["score"])]
    return pairs


def _ns(ms: int) -> str:
    return str(ms * 1_000_000)


def _otlp_span(span: dict, trace: dict) -> dict:
    out = {"traceId": trace["trace_id"], "spanId": span["span_id"]}
    if span["parent_id"]:
        out["parentSpanId"] = span["parent_id"]
    out |= {"name": span["name"],
            "kind": OTLP_KIND.get(span["kind"], 1), "startTimeUnixNano": _ns(span["start_ms"]),
            "endTimeUnixNano": _ns(span["end_ms"]), "attributes": _kv(_otlp_attributes(span, trace))}
    if "exception" in span:
        exc = span["exception"]
        out["events"] = [{"timeUnixNano": _ns(exc["time_ms"]), "name": "exception", "attributes": _kv([
            ("exception.type", exc["type"]), ("exception.message", exc["message"]),
            ("exception.stacktrace", exc["stacktrace"]), ("exception.escaped", "False")])}]
        out["status"] = {"message": span["status_message"], "code": 2}
    else:
        out["status"] = {"code": 1}
    return out


def write_otlp(traces: list[dict], path: Path, *, seed: int) -> None:
    """Spans in the order they end, cut into Collector-sized batches (one JSON request per line)."""
    rng = random.Random(seed + 1)
    items = [(span["end_ms"], i, span, trace) for i, trace in enumerate(traces) for span in trace["spans"]]
    items.sort(key=lambda x: (x[0], x[1]))
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        start = 0
        while start < len(items):
            size = rng.randrange(30, 71)
            batch = items[start:start + size]
            start += size
            groups: dict[tuple[str, str], list[dict]] = {}
            for _, _, span, trace in batch:
                scope = "LLM" if span["kind"] == "LLM" else "other"
                groups.setdefault((trace["turn"].version, scope), []).append(_otlp_span(span, trace))
            resource_spans = []
            for version in ("v1", "v2"):
                scope_spans = [{"scope": SCOPES[scope], "spans": spans}
                               for (v, scope), spans in groups.items() if v == version]
                if scope_spans:
                    resource_spans.append({"resource": {"attributes": _kv([
                        ("service.name", "support-agent"), ("service.version", APP_VERSION[version]),
                        ("deployment.environment.name", "production"), ("telemetry.sdk.language", "python"),
                        ("telemetry.sdk.name", "opentelemetry"), ("telemetry.sdk.version", "1.33.1")])},
                        "scopeSpans": scope_spans})
            fh.write(json.dumps({"resourceSpans": resource_spans}, separators=(",", ":"), ensure_ascii=False) + "\n")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _observation(span: dict, trace: dict) -> dict:
    turn = trace["turn"]
    kind = span["kind"]
    obs = {"id": span["span_id"], "traceId": trace["trace_id"], "type": LANGFUSE_TYPE[kind],
           "name": span["name"], "startTime": _iso(span["start_ms"]), "endTime": _iso(span["end_ms"]),
           "parentObservationId": span["parent_id"], "level": "ERROR" if span["status"] == "ERROR" else "DEFAULT",
           "statusMessage": span.get("status_message"), "version": APP_VERSION[turn.version],
           "input": span.get("input"), "output": span.get("output")}
    if kind == "LLM":
        usage = {"input": span["tokens_prompt"], "output": span["tokens_completion"],
                 "total": span["tokens_prompt"] + span["tokens_completion"]}
        cost = {"input": span["cost_prompt"], "output": span["cost_completion"],
                "total": round(span["cost_prompt"] + span["cost_completion"], 8)}
        obs |= {"input": span["messages_in"], "output": span["message_out"], "model": MODEL,
                "modelParameters": {"temperature": 0.2}, "usageDetails": usage, "costDetails": cost,
                "promptName": "support-agent-system", "promptVersion": int(turn.version[1:]),
                "metadata": _metadata(turn)}
    elif kind == "TOOL":
        obs |= {"input": json.loads(span["tool_args"]), "output": json.loads(span["output"]) if span.get("output") else None}
    elif kind == "RETRIEVER":
        obs |= {"input": {"query": span["input"]}, "output": {"documents": span["documents"]}}
    elif kind == "GUARDRAIL":
        obs["output"] = json.loads(span["output"])
    return obs


def _score(fb: dict, trace: dict, score_id: str, ms: int) -> dict:
    boolean = fb["name"] in ("resolved", "judge_pass")
    source = {"CODE": "API", "LLM": "EVAL", "HUMAN": "ANNOTATION"}[fb["kind"]]
    return {"id": score_id, "projectId": PROJECT_ID, "environment": "production", "name": fb["name"],
            "value": fb["score"], "stringValue": ("True" if fb["score"] else "False") if boolean else None,
            "dataType": "BOOLEAN" if boolean else "NUMERIC", "source": source, "comment": fb["explanation"],
            "authorUserId": None, "traceId": trace["trace_id"], "observationId": None, "sessionId": None,
            "timestamp": _iso(ms), "createdAt": _iso(ms), "updatedAt": _iso(ms)}


def write_langfuse(traces: list[dict], path: Path) -> None:
    """One single-trace download object per line, as the Langfuse UI's "Download JSON" gives it."""
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for trace in traces:
            turn = trace["turn"]
            root = trace["spans"][0]
            cost = sum(s.get("cost_prompt", 0) + s.get("cost_completion", 0) for s in trace["spans"])
            scores = []
            for i, fb in enumerate(trace["feedback"]):
                ms = root["end_ms"] + 1000 * (1 + i * 7)
                scores.append(_score(fb, trace, f"{trace['trace_id'][:8]}-{i:04x}-4{trace['trace_id'][9:12]}-"
                                     f"8{trace['trace_id'][13:16]}-{trace['trace_id'][16:28]}", ms))
            body = {"id": trace["trace_id"], "projectId": PROJECT_ID, "name": "support-agent",
                    "timestamp": _iso(root["start_ms"]), "environment": "production",
                    "tags": [f"channel:{turn.channel}"], "bookmarked": False, "release": APP_VERSION[turn.version],
                    "version": APP_VERSION[turn.version], "userId": turn.user["user_id"], "sessionId": turn.session_id,
                    "public": False, "input": turn.user_text, "output": turn.answer, "metadata": _metadata(turn),
                    "createdAt": _iso(root["start_ms"]), "updatedAt": _iso(root["end_ms"] + 500),
                    "htmlPath": f"/project/{PROJECT_ID}/traces/{trace['trace_id']}",
                    "latency": round((root["end_ms"] - root["start_ms"]) / 1000, 3), "totalCost": round(cost, 8),
                    "scores": scores}
            observations = [_observation(s, trace) for s in trace["spans"]]
            fh.write(json.dumps({"trace": body, "observations": observations}, separators=(",", ":"), ensure_ascii=False) + "\n")
