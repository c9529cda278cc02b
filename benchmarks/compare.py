"""Benchmark ``compare_cohorts``: 1M traces, 2 cohorts, 50 slices, 2,000 bootstrap resamples.

Goal (issue "compare stage"): under 10 s on this machine. Prints a markdown table.

    .venv/bin/python benchmarks/compare.py [--traces 1000000] [--slices 50] [--n-boot 2000] [--clustered]

The traces carry an outcome (``passed``), status, output, latency, tokens, cost and tool
calls, so every row kind runs: 6 proportion / mean metrics with analytic intervals and
3 skewed metrics (latency, tokens, cost) with bootstrap intervals and Mann-Whitney tests,
each overall and within each of the slices. ``--clustered`` adds sessions of 4 traces,
which switches to cluster-robust errors (:mod:`workbench.compare._robust`: one sort of
integer cell keys shared by every metric) and the cluster bootstrap
(:mod:`workbench.compare._bootstrap`: chunked, two-step exact histogram products).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workbench.compare import compare_cohorts  # noqa: E402


def synthetic_traces(n: int, n_slices: int, *, session_size: int = 1, seed: int = 0) -> pl.DataFrame:
    """``n`` traces, half v1 and half v2, spread over ``n_slices`` segments; v2 fails less."""
    rng = np.random.default_rng(seed)
    cohort = rng.random(n) < 0.5
    segment = rng.integers(0, n_slices, n)
    fail = np.where(cohort, 0.12, 0.15) + 0.002 * (segment % 10)
    return pl.DataFrame({
        "trace_id": pl.int_range(n, eager=True).cast(pl.String),
        "session_id": (pl.int_range(n, eager=True) // session_size).cast(pl.String),
        "prompt_version": np.where(cohort, "v2", "v1"),
        "segment": pl.Series(segment).cast(pl.String),
        "passed": rng.random(n) >= fail,
        "status": np.where(rng.random(n) < 0.03, "error", "ok"),
        "output": np.where(rng.random(n) < 0.02, "", "final answer"),
        "duration_ms": rng.lognormal(7.5 - 0.05 * cohort, 0.9),
        "tokens_total": rng.integers(200, 4000, n),
        "cost_usd": rng.lognormal(-6, 0.7, n),
        "n_tool_calls": rng.poisson(1.6, n),
        "n_errors": rng.poisson(0.05, n),
    })


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traces", type=int, default=1_000_000)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument("--n-boot", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--clustered", action="store_true", help="also time sessions of 4 traces")
    args = parser.parse_args(argv)
    scenarios = [("independent", 1)] + ([("clustered (sessions of 4)", 4)] if args.clustered else [])
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other work slows every number)")
    print(f"| design | traces | slices | rows | bootstrap | best of {args.repeats} | median | goal |")
    print("|---|---|---|---|---|---|---|---|")
    for name, size in scenarios:
        frame = synthetic_traces(args.traces, args.slices, session_size=size)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="segment",
                                     n_boot=args.n_boot, seed=0)
            times.append(time.perf_counter() - start)
        rows = result.to_frame().height
        assert result.designs["v2"].kind == ("independent" if size == 1 else "clustered")
        print(f"| {name} | {args.traces:,} | {args.slices} | {rows} | {args.n_boot:,} | {min(times):.2f} s | "
              f"{float(np.median(times)):.2f} s | < 10 s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
