"""``workbench inspect`` and ``workbench convert``: the load report and Parquet export, headless."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from workbench.load._base import LoadError

TABLES = ("spans", "traces", "sessions", "feedback", "problems")


def register(subparsers: argparse._SubParsersAction) -> None:
    inspect = subparsers.add_parser("inspect", help="load trace exports and print the load report")
    _add_load_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    inspect.set_defaults(run=run_inspect)
    convert = subparsers.add_parser("convert", help="load trace exports and write each table as Parquet")
    _add_load_arguments(convert)
    convert.add_argument("--to", required=True, metavar="DIR", help="output directory")
    convert.set_defaults(run=run_convert)


def _add_load_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="files, directories or globs")
    parser.add_argument("--format", default="auto", help="reader name (default: auto-detect)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the load cache (~/.cache/workbench)")


def _load(args: argparse.Namespace):
    from workbench.load.api import read_traces

    try:
        return read_traces(args.files, format=args.format, strict=args.strict, cache=not args.no_cache)
    except (LoadError, FileNotFoundError, ValueError) as exc:
        print(f"workbench: {exc}", file=sys.stderr)
        return None


def run_inspect(args: argparse.Namespace) -> int:
    result = _load(args)
    if result is None:
        return 1
    if args.json:
        sys.stdout.write(orjson.dumps(result.to_dict(), default=str, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print(result.report_text())
    return 0 if result.spans.height else 1


def run_convert(args: argparse.Namespace) -> int:
    result = _load(args)
    if result is None:
        return 1
    out = Path(args.to)
    out.mkdir(parents=True, exist_ok=True)
    for name in TABLES:
        getattr(result, name).write_parquet(out / f"{name}.parquet")
    print(f"wrote {', '.join(f'{n}.parquet ({getattr(result, n).height:,} rows)' for n in TABLES)} to {out}")
    return 0 if result.spans.height else 1
