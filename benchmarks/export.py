"""Benchmark the export stage: 100k labelled traces of realistic size, dedup + redaction + writing.

Text comes from the bundled support-agent sample (``data/support_agent.otlp.jsonl``):
real user requests and agent answers, recombined into 100k traces in multi-turn
sessions (about 200 MB of text for the redactor to scan), with planted PII in a
quarter of the inputs, corrected outputs, reviewer notes, trace metadata with
customer e-mails, and 5% exact / 3% near duplicates.

Measures, on this machine:

- each pipeline stage (items, dedup, split + leakage check, redaction, tags +
  metadata) and the whole ``export_eval_set`` with JSONL + Parquet + manifest;
- redaction throughput in MB/s of scanned text;
- the same redaction done the naive way, one Python ``re.sub`` per item, on a
  sample, as a ratio.

Run: ``.venv/bin/python benchmarks/export.py [--items 100000] [--repeat 1]``.
Prints a markdown table. Goal: whole export under 15 s, redaction >= 20 MB/s.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.export import build_eval_dataset  # noqa: E402
from workbench.export.dataset import _TEXT_COLUMNS, conversation_text  # noqa: E402
from workbench.export.dedup import deduplicate  # noqa: E402
from workbench.export.detectors import _PY_COMBINED, classify  # noqa: E402
from workbench.export.items import build_eval_items  # noqa: E402
from workbench.export.redact import redact_frame  # noqa: E402
from workbench.export.splits import assign_splits, check_leakage  # noqa: E402
from workbench.review.events import events_frame, new_label  # noqa: E402

FIRST = ["ana", "ben", "carla", "dev", "elena", "farid", "grace", "hiro", "ines", "jamal", "kate"]
LAST = ["smith", "garcia", "chen", "okafor", "novak", "rossi", "kim", "patel", "muller", "silva"]
CATEGORIES = ["refund_no_policy", "wrong_tool_args", "hallucinated_no_results", "v2_regression"]


def _sample_texts() -> tuple[list[str], list[str]]:
    from workbench.load import read_traces

    traces = read_traces(ROOT / "data" / "support_agent.otlp.jsonl", cache=False).traces
    inputs = [t for t in traces["input"].drop_nulls().to_list() if t]
    outputs = [t for t in traces["output"].drop_nulls().to_list() if t]
    return inputs, outputs


def _pii(rng: random.Random) -> str:
    kind = rng.randrange(6)
    if kind == 0:
        return f"my email is {rng.choice(FIRST)}.{rng.choice(LAST)}{rng.randrange(1000)}@example.com"
    if kind == 1:
        return f"call me on +1 {rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(10000):04d}"
    if kind == 2:
        return "card 4111 1111 1111 1111 expires 04/27"
    if kind == 3:
        return f"from IP 10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    if kind == 4:
        return "IBAN DE89 3704 0044 0532 0130 00"
    return "my key is sk-proj-" + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEF0123456789") for _ in range(40)
    )


def make_data(n: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``n`` traces in sessions of 1-5 turns and one label event per trace."""
    rng = random.Random(seed)
    inputs, outputs = _sample_texts()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    rows = []
    session = 0
    singles: list[int] = []
    while len(rows) < n:
        turns = rng.choice([1, 1, 2, 3, 4, 5])
        for turn in range(turns):
            if len(rows) >= n:
                break
            k = len(rows)
            text = f"{rng.choice(inputs)} {rng.choice(inputs)} (order #{rng.randrange(10**6, 10**7)})"
            if rng.random() < 0.25:
                text = f"{text} {_pii(rng)}."
            answer = " ".join(rng.choice(outputs) for _ in range(rng.choice([4, 5, 6])))
            if turns == 1 and singles and rng.random() < 0.08:  # duplicates of an earlier single-turn request
                source = rows[rng.choice(singles)]["input"]
                text = source if rng.random() < 0.6 else source.replace(" the ", " this ", 1) + " Thanks"
            if turns == 1:
                singles.append(k)
            meta = {"channel": rng.choice(["web", "mobile", "email"]), "turn": turn}
            if rng.random() < 0.1:
                meta["customer"] = {"email": f"{rng.choice(FIRST)}{k}@example.org", "plan": "Plus"}
            rows.append(
                {
                    "trace_id": f"{k:032x}",
                    "session_id": f"sess-{session}",
                    "user_id": f"user-{session // 3}",
                    "root_span_id": f"{k:016x}",
                    "start_time": start + timedelta(seconds=37 * k),
                    "input": text,
                    "output": answer,
                    "prompt_version": "v1" if k < n // 2 else "v2",
                    "metadata": orjson.dumps(meta).decode(),
                }
            )
        session += 1
    traces = pl.DataFrame(rows)
    events = []
    for k, trace_id in enumerate(traces["trace_id"].to_list()):
        failed = rng.random() < 0.35
        corrected = (
            rng.choice(outputs) + " " + rng.choice(outputs) if failed and rng.random() < 0.45 else None
        )
        note = f"agent ignored the policy; customer {rng.choice(FIRST)} wrote {_pii(rng)}" if failed else None
        events.append(
            new_label(
                trace_id,
                rng.choice(["ana", "bo", "cy"]),
                "fail" if failed else "pass",
                categories=[rng.choice(CATEGORIES)] if failed else [],
                corrected_output=corrected,
                note=note,
                taxonomy_version=1,
                event_id=f"ev-{k}",
            )
        )
    return traces, events_frame(events)


def _text_megabytes(items: pl.DataFrame) -> float:
    """Bytes the redactor scans: text columns, trace metadata and every message."""
    total = sum(int(items[c].str.len_bytes().sum() or 0) for c in _TEXT_COLUMNS)
    total += int(items["trace_metadata"].str.len_bytes().sum() or 0)
    total += int(items["messages"].explode().struct.field("content").str.len_bytes().sum() or 0)
    return total / 1e6


def naive_redaction(texts: list[str]) -> tuple[list[str], float]:
    """The per-item baseline: one Python regex pass with a callback per text."""
    mapping: dict[str, str] = {}
    counters: dict[str, int] = {}

    def replace(match: re.Match[str]) -> str:
        out = match.group(0)
        for kind, value in classify(out):
            if value not in mapping:
                counters[kind] = counters.get(kind, 0) + 1
                mapping[value] = f"<{kind}_{counters[kind]}>"
            out = out.replace(value, mapping[value])
        return out

    t0 = time.perf_counter()
    result = [_PY_COMBINED.sub(replace, t) for t in texts]
    return result, time.perf_counter() - t0


def timed(label: str, results: list[tuple[str, float]], fn, *args, **kwargs):
    t0 = time.perf_counter()
    value = fn(*args, **kwargs)
    results.append((label, time.perf_counter() - t0))
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--baseline-items", type=int, default=10_000)
    args = parser.parse_args()

    t0 = time.perf_counter()
    traces, labels = make_data(args.items)
    print(f"generated {traces.height:,} traces in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    stages: list[tuple[str, float]] = []
    items = timed("build items (labels, history, metadata)", stages, build_eval_items, traces, labels)
    megabytes = _text_megabytes(items)
    text = conversation_text(items)
    kept, dedup_report = timed("dedup (exact + MinHash near)", stages, deduplicate, items, text=text)
    split = timed("group split (stratified)", stages, assign_splits,
                  kept.with_columns(pl.col("verdict").alias("stratum")))  # fmt: skip
    kept = kept.with_columns(split)
    timed("leakage check", stages, check_leakage, kept, text=conversation_text(kept))
    scanned = _text_megabytes(kept)
    redacted, report = timed(
        "redaction (all text columns)", stages, redact_frame, kept, text_columns=_TEXT_COLUMNS,
        json_columns=("trace_metadata",), message_columns=("messages",),
    )  # fmt: skip
    redaction_seconds = stages[-1][1]

    with tempfile.TemporaryDirectory() as out:
        load_before = os.getloadavg()[0]
        t1, c1 = time.perf_counter(), time.process_time()
        dataset = build_eval_dataset(traces, labels, name="bench")
        built = time.perf_counter() - t1
        result = dataset.write(out, formats=["jsonl", "parquet"])
        whole, whole_cpu = time.perf_counter() - t1, time.process_time() - c1
        written = sum(f["bytes"] for f in result.manifest["files"]) / 1e6

    sample = kept.head(args.baseline_items)
    sample_texts = [
        t for c in ("input", "output", "expected", "note") for t in sample[c].drop_nulls().to_list()
    ]
    sample_texts += sample["messages"].explode().struct.field("content").drop_nulls().to_list()
    sample_mb = sum(len(t.encode()) for t in sample_texts) / 1e6
    _naive, naive_seconds = naive_redaction(sample_texts)
    naive_rate = sample_mb / naive_seconds
    vector_rate = scanned / redaction_seconds
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\n### Export benchmark: {traces.height:,} traces, {megabytes:,.0f} MB of item text\n")
    print("| stage (run one by one) | seconds |\n|---|---:|")
    for label, seconds in stages:
        print(f"| {label} | {seconds:.2f} |")
    print(
        f"| in-memory dataset: items, dedup, split, leakage, redaction, tags (`build_eval_dataset`) | {built:.2f} |"
    )
    print(f"| writing jsonl + parquet + manifest (`EvalDataset.write`) | {whole - built:.2f} |")
    print(f"| **whole export (= `export_eval_set`)** | **{whole:.2f}** |")
    print(f"| (its CPU time, all threads) | {whole_cpu:.2f} |")
    print("\n| measure | value |\n|---|---:|")
    print(f"| items after dedup | {kept.height:,} (exact {dedup_report.n_exact_removed:,}, near "
          f"{dedup_report.n_near_removed:,} removed) |")  # fmt: skip
    print(f"| text scanned by redaction | {scanned:,.0f} MB |")
    print(f"| redaction throughput (vectorised) | {vector_rate:,.0f} MB/s |")
    print(f"| per-item Python regex loop ({sample_mb:,.0f} MB sample) | {naive_rate:,.1f} MB/s |")
    print(f"| speed-up over the per-item loop | {vector_rate / naive_rate:,.1f}x |")
    print(f"| values redacted | {sum(report.counts.values()):,} ({report.counts}) |")
    print(f"| files written | {written:,.0f} MB |")
    print(f"| peak RSS | {peak:,.0f} MiB |")
    print(f"| machine: CPUs / 1-min load average at start | {os.cpu_count()} / {load_before:.1f} |")
    print(f"| goal: whole export < 15 s | {'met' if whole < 15 else 'NOT met'} |")
    print(f"| goal: redaction >= 20 MB/s | {'met' if vector_rate >= 20 else 'NOT met'} |")


if __name__ == "__main__":
    main()
