"""Generate the bundled sample: a customer-support agent over two weeks, with planted failures.

Writes, next to this file (or into ``--out``):

``support_agent.otlp.jsonl``
    OTLP JSON as the OpenTelemetry Collector ``file`` exporter writes it (one
    ExportTraceServiceRequest batch per line, so a trace may span lines), with
    OpenInference attributes and trace-level feedback as inline annotations
    (``annotations.N.annotation.*``) on each root span.
``support_agent.langfuse.jsonl``
    The same traces as Langfuse single-trace ``{"trace": ..., "observations": ...}``
    objects, one per line, feedback in ``trace.scores``.
``support_agent.truth.csv``
    Ground truth per trace: intent, planted failure mode, XSS payload flag.

Deterministic: one seeded ``random.Random`` (stdlib only), so running it again
rewrites byte-identical files. Week 1 runs prompt ``v1`` (app 1.4.0), week 2
prompt ``v2`` (app 1.5.0). Planted modes and their rates are in
``_scenario.PLANTED``.

Example
-------
    python data/generate.py            # rewrite data/support_agent.*
    python data/generate.py --out /tmp/sample --summary
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _formats as F  # noqa: E402
import _scenario as S  # noqa: E402
from _spans import APP_VERSION, MODEL, build_trace  # noqa: E402

SEED = 20250303
WEEK1_START = datetime(2025, 3, 3, tzinfo=UTC).timestamp()
TRACES_PER_WEEK = 1000
N_USERS = 450
FILES = ("support_agent.otlp.jsonl", "support_agent.langfuse.jsonl", "support_agent.truth.csv")


def generate_traces(seed: int = SEED) -> list[dict]:
    """Every trace of the sample, in time order, as format-neutral dicts."""
    rng = random.Random(seed)
    users = [S.make_user(rng, i) for i in range(N_USERS)]
    weights = [1.0 / (1 + i) ** 0.6 for i in range(N_USERS)]  # some customers come back often
    turns: list[S.Turn] = []
    for week, version in enumerate(("v1", "v2")):
        week_turns = S.plan_sessions(rng, week_start_s=WEEK1_START + week * 7 * 86400, version=version,
                                     n_traces=TRACES_PER_WEEK, users=users, user_weights=weights)
        S.assign_failures(rng, week_turns, version)
        turns += week_turns
    for turn in turns:
        S.write_conversation(rng, turn)
    S.plant_xss(rng, turns)
    return [build_trace(rng, turn) for turn in turns]


def write_truth(traces: list[dict], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["trace_id", "session_id", "user_id", "prompt_version", "intent", "failure_mode", "xss_payload"])
        for t in traces:
            turn = t["turn"]
            writer.writerow([t["trace_id"], turn.session_id, turn.user["user_id"], turn.version, turn.intent,
                             turn.failure_mode, str(turn.xss_payload).lower()])


def summarize(traces: list[dict]) -> str:
    """Planted failure rates per prompt version (the numbers the compare stage should recover)."""
    per_version = Counter(t["turn"].version for t in traces)
    modes = Counter((t["turn"].version, t["turn"].failure_mode) for t in traces)
    lines = [f"{len(traces)} traces, {len({t['turn'].session_id for t in traces})} sessions, "
             f"{len({t['turn'].user['user_id'] for t in traces})} users, model {MODEL}"]
    for version in ("v1", "v2"):
        n = per_version[version]
        rates = ", ".join(f"{m} {modes[(version, m)]} ({modes[(version, m)] / n:.1%})"
                          for m in ("refund_no_policy", "wrong_tool_args", "hallucinated_no_results", "v2_regression"))
        lines.append(f"{version} (app {APP_VERSION[version]}): n={n}: {rates}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    parser.add_argument("--summary", action="store_true", help="print planted failure rates")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    traces = generate_traces()
    F.write_otlp(traces, args.out / FILES[0], seed=SEED)
    F.write_langfuse(traces, args.out / FILES[1])
    write_truth(traces, args.out / FILES[2])
    if args.summary:
        print(summarize(traces))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
