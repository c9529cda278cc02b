"""The ``workbench`` command: headless entry points for each stage.

Each stage owns its sub-commands in ``workbench/<stage>/_cli.py`` with two
functions, ``register(subparsers)`` (adds its parsers, each with
``set_defaults(run=<callable taking the parsed args, returning an exit code>)``).
This module only wires them together, importing each lazily so that
``workbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

_STAGES = (
    "workbench.load._cli",
    "workbench.cluster._cli",
    "workbench.compare._cli",
    "workbench.export._cli",
    "workbench._demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Load agent traces, review them, cluster failures, compare cohorts, export eval sets.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in _STAGES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
