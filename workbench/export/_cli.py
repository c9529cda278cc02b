"""``workbench export``: build and publish a versioned eval dataset, headless.

Example::

    workbench export data/support_agent.otlp.jsonl --labels labels.sqlite \\
        --name support-failures --out evals --format jsonl --format inspect --verdict fail
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from workbench.export.writers import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="build a versioned eval dataset from traces and labels",
        description="Build eval items from labelled traces, dedup, split by group, redact PII "
        "(on by default) and publish <out>/<name>/v<N>/ with a manifest.",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="trace exports (files, directories or globs)"
    )
    parser.add_argument("--labels", required=True, metavar="STORE", help="label store (SQLite path or URL)")
    parser.add_argument("--name", required=True, help="dataset name (letters, digits, '._-')")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help=f"output format, repeatable or comma-separated (default jsonl): {', '.join(FORMATS)}",
    )
    parser.add_argument("--verdict", action="append", help="keep items with this verdict (repeatable)")
    parser.add_argument(
        "--category", action="append", help="keep items with this failure category (repeatable)"
    )
    parser.add_argument("--prompt-version", action="append", help="keep traces of this prompt version")
    parser.add_argument(
        "--trace-ids", metavar="FILE", help="keep only the trace ids listed in FILE (one per line)"
    )
    parser.add_argument("--split", default="train=0.2,dev=0.4,test=0.4", help="shares, e.g. dev=0.5,test=0.5")
    parser.add_argument("--no-split", action="store_true", help="do not split")
    parser.add_argument("--seed", type=int, default=0, help="seed for splits and hashing")
    parser.add_argument("--history-turns", type=int, default=5, help="earlier session turns to include")
    parser.add_argument("--no-dedup", action="store_true", help="keep duplicates")
    parser.add_argument(
        "--no-redact", action="store_true", help="export raw text (PII and secrets included!)"
    )
    parser.add_argument("--deny", action="append", default=[], help="term to always redact (repeatable)")
    parser.add_argument("--system-prompt", help="system message for the OpenAI formats")
    parser.add_argument(
        "--allow-problems", action="store_true", help="export even if loading found bad records"
    )
    parser.add_argument(
        "--no-cache", action="store_true", help="do not read or write the trace Parquet cache"
    )
    parser.add_argument("--json", action="store_true", help="print the manifest summary as JSON")
    parser.set_defaults(run=run_export)


def _formats(values: list[str] | None) -> list[str]:
    if not values:
        return ["jsonl"]
    return [f.strip() for value in values for f in value.split(",") if f.strip()]


def _ratios(text: str) -> dict[str, float]:
    ratios = {}
    for part in text.split(","):
        name, _, share = part.partition("=")
        try:
            ratios[name.strip()] = float(share)
        except ValueError as exc:
            raise ValueError(f"--split: cannot read {part!r}; use name=share,name=share") from exc
    return ratios


def _selection(args: argparse.Namespace):
    import polars as pl

    conditions = []
    if args.verdict:
        conditions.append(pl.col("verdict").is_in(args.verdict))
    if args.category:
        conditions.append(pl.col("categories").list.eval(pl.element().is_in(args.category)).list.any())
    if args.prompt_version:
        conditions.append(pl.col("prompt_version").is_in(args.prompt_version))
    if args.trace_ids:
        ids = [line.strip() for line in Path(args.trace_ids).read_text().splitlines() if line.strip()]
        conditions.append(pl.col("trace_id").is_in(ids))
    if not conditions:
        return None
    combined = conditions[0]
    for condition in conditions[1:]:
        combined = combined & condition
    return combined


def run_export(args: argparse.Namespace) -> int:
    from workbench.export.dataset import export_eval_set
    from workbench.export.redact import RedactionError
    from workbench.load.api import read_traces
    from workbench.review.store import LabelStore

    try:
        formats = _formats(args.format)
        split = None if args.no_split else _ratios(args.split)
        loaded = read_traces(args.files, cache=not args.no_cache)
        if loaded.problems.height and not args.allow_problems:
            first = loaded.problems.row(0, named=True)
            print(
                f"workbench: loading found {loaded.problems.height} bad record(s), e.g. "
                f"{first['source_file']}:{first['line']}: {first['reason']}. Fix them or pass --allow-problems.",
                file=sys.stderr,
            )
            return 1
        with LabelStore(args.labels) as store:
            events = store.events()
        label_sources = [args.labels] if Path(args.labels).is_file() else []
        result = export_eval_set(
            loaded.traces,
            events,
            name=args.name,
            out_dir=args.out,
            formats=formats,
            spans=loaded.spans,
            select=_selection(args),
            history_turns=args.history_turns,
            dedup=not args.no_dedup,
            split=split,
            seed=args.seed,
            redact=not args.no_redact,
            deny_list=args.deny,
            sources=label_sources,
            system_prompt=args.system_prompt,
        )
    except RedactionError as exc:
        print(f"workbench: export aborted, nothing written: {exc}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, OSError) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return 1
    m = result.manifest
    summary = {
        "path": str(result.path),
        "name": m["name"],
        "version": m["version"],
        "n_items": m["n_items"],
        "splits": m["splits"],
        "content_hash": m["content_hash"],
        "redaction": m["redaction"]["counts"],
        "files": [f["path"] for f in m["files"]],
    }
    if args.json:
        sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(f"{m['name']} v{m['version']}: {m['n_items']} items -> {result.path}")
        print(f"  splits: {m['splits']}  redacted: {m['redaction']['counts'] or 'nothing found'}")
        for entry in m["files"]:
            print(f"  {entry['path']}  ({entry['bytes']:,} bytes)")
    return 0
