"""Benchmark: time for the review widget to show the next trace (Python side).

Goal (issue "Review"): < 50 ms to show the next trace of 200 spans. Measures, with a
real SQLite LabelStore:

- ``next``: the "j" key on a trace never shown before (conversation + span tree +
  HTML render + store look-up of the existing label + trait sync);
- ``decide``: the "f" key (build the event, commit it, advance, render the next trace);
- ``render only``: conversation + tree + HTML for one 200-span trace, no widget;
- the same ``next`` over traces of the bundled sample, when it is present.

Run: ``.venv/bin/python benchmarks/review_widget.py``
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench._html.trace import trace_html  # noqa: E402
from workbench.review.conversation import conversation, metadata_summary, span_tree  # noqa: E402
from workbench.review.store import LabelStore  # noqa: E402
from workbench.schema import SPANS, conform  # noqa: E402
from workbench.widgets.review import review  # noqa: E402

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def big_trace(trace_id: str, n_spans: int = 200) -> list[dict]:
    """An agent trace: a root, then rounds of (llm call with the growing history, tool call)."""
    rows = [{"trace_id": trace_id, "span_id": f"{trace_id}-root", "kind": "agent", "name": "support-agent",
             "start_time": T0, "end_time": T0 + timedelta(seconds=n_spans), "input": "Where is my order 42?",
             "output": "It shipped."}]
    history = [{"role": "system", "content": "You are Sam, a support assistant. " * 20},
               {"role": "user", "content": "Where is my order 42? It has been a week."}]
    i = 1
    while len(rows) < n_spans:
        call_id = f"call_{i}"
        call = {"role": "assistant", "tool_calls": [{"id": call_id, "function": {
            "name": "lookup_order", "arguments": json.dumps({"order_id": f"ORD-{i}", "verbose": True})}}]}
        start = T0 + timedelta(seconds=i)
        rows.append({"trace_id": trace_id, "span_id": f"{trace_id}-l{i}", "parent_span_id": f"{trace_id}-root",
                     "kind": "llm", "name": "ChatCompletion", "start_time": start,
                     "end_time": start + timedelta(milliseconds=400), "input": json.dumps(history),
                     "output": json.dumps([call]), "model": "gpt-4o-mini", "tokens_in": 900, "tokens_out": 40})
        result = json.dumps({"order_id": f"ORD-{i}", "status": "shipped", "events": ["packed", "left hub"] * 5})
        rows.append({"trace_id": trace_id, "span_id": f"{trace_id}-t{i}", "parent_span_id": f"{trace_id}-root",
                     "kind": "tool", "name": "lookup_order", "start_time": start + timedelta(milliseconds=500),
                     "end_time": start + timedelta(milliseconds=700), "input": call["tool_calls"][0]["function"][
                         "arguments"], "output": result, "status": "error" if i % 17 == 0 else "ok"})
        history = history + [call, {"role": "tool", "tool_call_id": call_id, "content": result}]
        i += 1
    return rows[:n_spans]


def percentiles(samples: list[tuple[float, float]]) -> str:
    """p50 / p95 of wall-clock and CPU milliseconds (CPU time is robust to a busy machine)."""

    def p(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    return (f"wall p50 {statistics.median(wall):6.1f} p95 {p(wall, 0.95):6.1f} ms | "
            f"cpu p50 {statistics.median(cpu):6.1f} p95 {p(cpu, 0.95):6.1f} ms  (n={len(samples)})")


def timed(fn) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return (time.perf_counter() - wall) * 1000, (time.process_time() - cpu) * 1000


def main(n_traces: int = 40) -> None:
    rows = [r for k in range(n_traces) for r in big_trace(f"tr{k:03d}")]
    spans = conform(pl.DataFrame(rows), SPANS)
    traces = pl.DataFrame({"trace_id": [f"tr{k:03d}" for k in range(n_traces)],
                           "start_time": [T0 + timedelta(minutes=k) for k in range(n_traces)]})
    one = spans.filter(pl.col("trace_id") == "tr000")
    chars = sum(len(x or "") for x in one["input"].to_list() + one["output"].to_list())
    print(f"trace: {one.height} spans, {chars / 1e6:.1f} MB of input/output text")

    def render() -> None:
        msgs, tree = conversation(one), span_tree(one)
        trace_html(msgs, tree, metadata_summary(one))

    print("render only  ", percentiles([timed(render) for _ in range(30)]))
    with tempfile.TemporaryDirectory() as tmp, LabelStore(Path(tmp) / "labels.sqlite") as store:
        widget = review(traces, spans, store=store, reviewer="bench")
        nexts = [timed(lambda: widget._handle_custom_msg({"type": "key", "key": "j"}, [])) for _ in range(n_traces // 2)]
        print("next (j)     ", percentiles(nexts), f"  html {len(widget.trace_html) / 1e3:.0f} KB")
        decides = [timed(lambda: widget._handle_custom_msg({"type": "key", "key": "f"}, []))
                   for _ in range(n_traces // 2 - 1)]
        print("decide (f)   ", percentiles(decides), f"  stored {store.count()} labels")
        cpu_p50 = statistics.median(c for _, c in nexts)
        print(f"goal: next trace < 50 ms (CPU p50 {cpu_p50:.1f} ms): {'met' if cpu_p50 < 50 else 'NOT met'}")
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    sample = ROOT / "data" / "support_agent.otlp.jsonl"
    if sample.exists():
        from workbench.load import read_traces

        result = read_traces(sample)
        with tempfile.TemporaryDirectory() as tmp, LabelStore(Path(tmp) / "labels.sqlite") as store:
            widget = review(result.traces, result.spans, store=store, reviewer="bench")
            nexts = [timed(lambda: widget._handle_custom_msg({"type": "key", "key": "j"}, [])) for _ in range(200)]
            print("sample next  ", percentiles(nexts))


if __name__ == "__main__":
    main()
