"""``workbench cluster``: cluster trace exports headless, and ``warm-up`` numba's cache after install."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "cluster", help="cluster traces by their text and print the cluster summary (markdown)"
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="trace exports (files, directories or globs)")
    parser.add_argument("--text", default="input", help="input, output, error or a traces column (default: input)")
    parser.add_argument("--failed-only", action="store_true", help="cluster only traces whose outcome failed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", metavar="FILE", help="write the per-trace assignments (.csv or .parquet)")
    parser.add_argument("--warm-up", action="store_true",
                        help="only compile and cache the clustering code (run once after install)")
    parser.set_defaults(run=run_cluster)


def run_cluster(args: argparse.Namespace) -> int:
    if args.warm_up:
        from workbench.cluster.warmup import warm_up

        start = time.perf_counter()
        warm_up(background=False).wait()
        print(f"workbench: clustering code compiled and cached in {time.perf_counter() - start:.1f} s")
        return 0
    if not args.files:
        print("workbench cluster: give trace files, or --warm-up", file=sys.stderr)
        return 2
    import polars as pl

    from workbench.cluster.inputs import error_messages
    from workbench.cluster.pipeline import cluster_traces
    from workbench.load import read_traces

    try:
        loaded = read_traces(args.files)
    except (FileNotFoundError, ValueError) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 1
    traces = loaded.traces
    if args.text == "error":
        traces = traces.join(error_messages(loaded.spans), on="trace_id", how="left")
    if args.failed_only:
        traces = traces.filter(pl.col("passed").not_())
    try:
        clusters = cluster_traces(traces, text=args.text, outcome="passed", seed=args.seed, progress=True)
    except ValueError as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 1
    print(clusters.summary().to_markdown())
    if args.out:
        out = Path(args.out)
        frame = clusters.assignments
        if out.suffix == ".parquet":
            frame.write_parquet(out)
        else:
            frame.write_csv(out)
        print(f"workbench: wrote {frame.height:,} assignments to {out}", file=sys.stderr)
    return 0
