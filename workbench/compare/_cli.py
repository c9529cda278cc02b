"""``workbench compare``: compare cohorts of a trace export and print markdown.

Examples
--------
``workbench compare data/support_agent.otlp.jsonl --by prompt_version --baseline v1``
``workbench compare traces/*.jsonl --split-at 2025-03-10T00:00:00Z --labels labels.db --slice intent``
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``compare`` sub-command."""
    parser = subparsers.add_parser(
        "compare",
        help="compare a baseline cohort of traces with candidates (prints markdown)",
        description="Compare cohorts with confidence intervals, paired/clustered tests, "
        "Benjamini-Hochberg adjusted p-values and minimum detectable effects; prints markdown "
        "for a pull-request description.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="trace exports (any format read_traces reads)")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--by", metavar="COLUMN", help="cohorts from a traces column, e.g. prompt_version")
    how.add_argument("--split-at", metavar="TIME", help="cohorts before / after an ISO timestamp")
    parser.add_argument("--baseline", help="baseline value of --by")
    parser.add_argument("--candidates", nargs="+", metavar="VALUE", help="candidate values (default: all others)")
    parser.add_argument("--labels", metavar="PATH", help="label store (.db) or labels file (.parquet/.csv/.jsonl)")
    parser.add_argument("--slice", dest="slices", metavar="COLUMN", help="also compare within each value")
    parser.add_argument("--clusters", metavar="COLUMN", help="traces column of clusters or intents (prevalence)")
    parser.add_argument("--task-key", metavar="COLUMN", help="task column: shared tasks make it paired")
    parser.add_argument("--metric", dest="metrics", action="append", metavar="NAME",
                        help="metric to keep (repeatable; 'category: *' keeps all categories)")
    parser.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--output", metavar="PATH", help="also write the markdown to this file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Load, compare, print markdown. Returns 0, or 2 with a message on bad input."""
    from workbench.compare.api import compare_cohorts
    from workbench.compare.cohorts import by_time
    from workbench.load import read_traces

    if args.by and not args.baseline:
        print("workbench compare: --by needs --baseline", file=sys.stderr)
        return 2
    try:
        loaded = read_traces(args.files if len(args.files) > 1 else args.files[0])
        labels = _read_labels(args.labels) if args.labels else None
        cohort: Any = args.by
        if args.split_at:
            cohort = by_time(datetime.fromisoformat(args.split_at.replace("Z", "+00:00")))
        result = compare_cohorts(
            loaded.traces, cohort=cohort, baseline=args.baseline, candidates=args.candidates, labels=labels,
            feedback=loaded.feedback, clusters=args.clusters, task_key=args.task_key, metrics=args.metrics,
            slices=args.slices, alpha=args.alpha, n_boot=args.n_boot, seed=args.seed,
        )
    except (ValueError, TypeError, OSError) as exc:
        print(f"workbench compare: {exc}", file=sys.stderr)
        return 2
    text = result.to_markdown()
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


def _read_labels(path: str) -> Any:
    import polars as pl

    suffix = Path(path).suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix == ".csv":
        return pl.read_csv(path, try_parse_dates=True)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    if not Path(path).exists():
        raise OSError(f"label store {path} does not exist")
    from workbench.review.store import LabelStore

    store = LabelStore(path)
    try:
        return store.events()
    finally:
        store.close()
