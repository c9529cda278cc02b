"""Vendor-reader benchmark: Langfuse, LangSmith, OpenAI Agents, MLflow, Phoenix vs the orjson parse bound.

Writes a synthetic export per format (4 spans per trace: agent/chain root, two
LLM calls with 200-2,000-char messages, one tool call; seeded) into a temporary
directory, then times ``<reader>.read(path)`` (best of ``--repeat``) and
``orjson.loads`` of every line of the same file (the bound), and prints a
markdown table with spans/s, MB/s and the ratio to the bound.

    .venv/bin/python benchmarks/load_vendor.py --spans 40000 --repeat 3
"""

from __future__ import annotations

import argparse
import importlib
import math
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORDS = ["refund", "order", "shipping", "policy", "customer", "account", "password", "reset", "invoice", "tool", "timeout", "the", "a", "to", "of", "and"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def text(rng: random.Random) -> str:
    length = int(math.exp(rng.uniform(math.log(200), math.log(2000))))
    return " ".join(rng.choice(WORDS) for _ in range(length // 6))[:length]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def traces(n_traces: int, seed: int = 7):
    """Per trace: ids, times and texts shared by every format's writer."""
    rng = random.Random(seed)
    for i in range(n_traces):
        start = T0 + timedelta(seconds=30 * i)
        yield {
            "trace": f"{rng.getrandbits(128):032x}", "ids": [f"{rng.getrandbits(64):016x}" for _ in range(4)],
            "start": start, "times": [start + timedelta(milliseconds=k) for k in (0, 100, 900, 1200, 2500, 3000)],
            "question": text(rng), "answer": text(rng), "tool_out": text(rng),
            "tokens": [(rng.randint(200, 900), rng.randint(10, 200)) for _ in range(2)],
            "session": f"sess-{i // 4}",
        }


def langfuse_line(t: dict) -> dict:
    root, g1, tool, g2 = t["ids"]
    times = t["times"]
    msgs = [{"role": "user", "content": t["question"]}]
    obs = [{"id": root, "traceId": t["trace"], "type": "AGENT", "name": "agent", "startTime": iso(times[0]),
            "endTime": iso(times[5]), "parentObservationId": None, "level": "DEFAULT", "input": t["question"],
            "output": t["answer"]}]
    for oid, (a, b), (u, v) in ((g1, (1, 2), t["tokens"][0]), (g2, (3, 4), t["tokens"][1])):
        obs.append({"id": oid, "traceId": t["trace"], "type": "GENERATION", "name": "chat", "model": "gpt-4o-mini",
                    "startTime": iso(times[a]), "endTime": iso(times[b]), "parentObservationId": root,
                    "level": "DEFAULT", "input": msgs, "output": {"role": "assistant", "content": t["answer"]},
                    "usageDetails": {"input": u, "output": v, "total": u + v},
                    "costDetails": {"total": (u + v) * 1e-7}, "metadata": '{"prompt_version": "v1"}'})
    obs.append({"id": tool, "traceId": t["trace"], "type": "TOOL", "name": "search", "startTime": iso(times[2]),
                "endTime": iso(times[3]), "parentObservationId": root, "level": "DEFAULT",
                "input": '{"q": "refund"}', "output": t["tool_out"]})
    scores = [{"name": "resolved", "value": 1, "dataType": "BOOLEAN", "source": "API", "traceId": t["trace"],
               "timestamp": iso(times[5])}]
    return {"trace": {"id": t["trace"], "name": "agent", "timestamp": iso(times[0]), "sessionId": t["session"],
                      "scores": scores}, "observations": obs}


def langsmith_lines(t: dict) -> list[dict]:
    root, g1, tool, g2 = (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[1:4]}-{t['trace'][:12]}" for h in t["ids"])
    times = t["times"]
    meta = {"thread_id": t["session"], "ls_provider": "openai", "ls_model_name": "gpt-4o-mini"}
    out = [{"id": root, "trace_id": root, "name": "agent", "run_type": "chain", "start_time": iso(times[0]),
            "end_time": iso(times[5]), "inputs": {"q": t["question"]}, "outputs": {"a": t["answer"]},
            "extra": {"metadata": {"thread_id": t["session"]}}}]
    for rid, (a, b), (u, v) in ((g1, (1, 2), t["tokens"][0]), (g2, (3, 4), t["tokens"][1])):
        out.append({"id": rid, "trace_id": root, "parent_run_id": root, "name": "ChatOpenAI", "run_type": "llm",
                    "start_time": iso(times[a]), "end_time": iso(times[b]),
                    "inputs": {"messages": [{"role": "user", "content": t["question"]}]},
                    "outputs": {"content": t["answer"], "usage_metadata": {"input_tokens": u, "output_tokens": v,
                                                                           "total_tokens": u + v}},
                    "extra": {"metadata": meta}})
    out.append({"id": tool, "trace_id": root, "parent_run_id": root, "name": "search", "run_type": "tool",
                "start_time": iso(times[2]), "end_time": iso(times[3]), "inputs": {"q": "refund"},
                "outputs": {"output": t["tool_out"]}, "extra": {"metadata": {"thread_id": t["session"]}}})
    return out


def agents_lines(t: dict) -> list[dict]:
    trace = "trace_" + t["trace"]
    root, g1, tool, g2 = ("span_" + h + h[:8] for h in t["ids"])
    times = t["times"]

    def span(sid, parent, a, b, data):
        return {"object": "trace.span", "id": sid, "trace_id": trace, "parent_id": parent,
                "started_at": times[a].isoformat(), "ended_at": times[b].isoformat(), "span_data": data, "error": None}

    out = [{"object": "trace", "id": trace, "workflow_name": "Agent workflow", "group_id": t["session"]},
           span(root, None, 0, 5, {"type": "agent", "name": "Support"})]
    for sid, (a, b), (u, v) in ((g1, (1, 2), t["tokens"][0]), (g2, (3, 4), t["tokens"][1])):
        out.append(span(sid, root, a, b, {"type": "generation", "model": "gpt-4o-mini",
                                          "input": [{"role": "user", "content": t["question"]}],
                                          "output": [{"role": "assistant", "content": t["answer"]}],
                                          "usage": {"input_tokens": u, "output_tokens": v}}))
    out.append(span(tool, root, 2, 3, {"type": "function", "name": "search", "input": '{"q": "refund"}',
                                       "output": t["tool_out"]}))
    return out


def mlflow_line(t: dict) -> dict:
    tid = "tr-" + t["trace"]
    root, g1, tool, g2 = t["ids"]
    ns = [int(x.timestamp() * 1e9) for x in t["times"]]

    def span(sid, parent, a, b, attrs):
        attrs = {"mlflow.traceRequestId": tid, **attrs}
        return {"trace_id": tid, "span_id": sid, "parent_span_id": parent, "name": attrs["mlflow.spanType"].lower(),
                "start_time_unix_nano": ns[a], "end_time_unix_nano": ns[b], "status": {"code": "OK"},
                "events": [], "attributes": {k: orjson.dumps(v).decode() for k, v in attrs.items()}}

    spans = [span(root, None, 0, 5, {"mlflow.spanType": "AGENT", "mlflow.spanInputs": t["question"],
                                      "mlflow.spanOutputs": t["answer"]})]
    for sid, (a, b), (u, v) in ((g1, (1, 2), t["tokens"][0]), (g2, (3, 4), t["tokens"][1])):
        spans.append(span(sid, root, a, b, {
            "mlflow.spanType": "CHAT_MODEL", "mlflow.llm.model": "gpt-4o-mini",
            "mlflow.spanInputs": [{"role": "user", "content": t["question"]}], "mlflow.spanOutputs": t["answer"],
            "mlflow.chat.tokenUsage": {"input_tokens": u, "output_tokens": v, "total_tokens": u + v}}))
    spans.append(span(tool, root, 2, 3, {"mlflow.spanType": "TOOL", "mlflow.spanInputs": {"q": "refund"},
                                         "mlflow.spanOutputs": t["tool_out"]}))
    return {"info": {"trace_id": tid, "state": "OK", "trace_metadata": {"mlflow.trace.session": t["session"]}},
            "data": {"spans": spans}}


def phoenix_lines(t: dict) -> list[dict]:
    root, g1, tool, g2 = t["ids"]
    times = t["times"]

    def row(sid, parent, a, b, kind, attrs):
        return {"context.span_id": sid, "context.trace_id": t["trace"], "parent_id": parent, "name": kind.lower(),
                "span_kind": kind, "start_time": times[a].isoformat(), "end_time": times[b].isoformat(),
                "status_code": "OK", "status_message": "", "events": [],
                **{"attributes." + k: v for k, v in attrs.items()}}

    out = [row(root, None, 0, 5, "AGENT", {"input.value": t["question"], "output.value": t["answer"],
                                           "session.id": t["session"]})]
    for sid, (a, b), (u, v) in ((g1, (1, 2), t["tokens"][0]), (g2, (3, 4), t["tokens"][1])):
        out.append(row(sid, root, a, b, "LLM", {
            "llm.model_name": "gpt-4o-mini", "llm.token_count.prompt": u, "llm.token_count.completion": v,
            "llm.input_messages": [{"message.role": "user", "message.content": t["question"]}],
            "llm.output_messages": [{"message.role": "assistant", "message.content": t["answer"]}]}))
    out.append(row(tool, root, 2, 3, "TOOL", {"input.value": '{"q": "refund"}', "output.value": t["tool_out"]}))
    return out


WRITERS = {
    "langfuse": lambda t: [langfuse_line(t)],
    "langsmith": langsmith_lines,
    "openai_agents": agents_lines,
    "mlflow": lambda t: [mlflow_line(t)],
    "phoenix": phoenix_lines,
}


def write(directory: Path, n_traces: int) -> dict[str, Path]:
    paths = {}
    for name, lines_of in WRITERS.items():
        path = directory / f"{name}.jsonl"
        with open(path, "wb") as handle:
            for t in traces(n_traces):
                for line in lines_of(t):
                    handle.write(orjson.dumps(line) + b"\n")
        paths[name] = path
    return paths


def best_of(repeat: int, run) -> tuple[float, object]:
    best, result = math.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=40_000, help="spans per format (4 per trace)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = write(Path(tmp), max(1, args.spans // 4))
        for name, path in paths.items():
            reader = importlib.import_module(f"workbench.load.{name}")
            data = path.read_bytes()
            bound, _ = best_of(args.repeat, lambda data=data: [orjson.loads(line) for line in data.splitlines()])
            seconds, result = best_of(args.repeat, lambda reader=reader, path=path: reader.read(str(path)))
            assert not result.problems, result.problems[:3]
            megabytes = len(data) / 1e6
            rows.append((name, result.spans.height, megabytes, seconds, bound))
    print("| format | spans | MB | read s | spans/s | MB/s | orjson bound s | x bound |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, spans, megabytes, seconds, bound in rows:
        print(f"| {name} | {spans:,} | {megabytes:.1f} | {seconds:.2f} | {spans / seconds:,.0f} | "
              f"{megabytes / seconds:.1f} | {bound:.2f} | {seconds / bound:.1f} |")


if __name__ == "__main__":
    main()
