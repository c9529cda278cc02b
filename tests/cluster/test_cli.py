"""``workbench cluster``: headless clustering of a trace export and the install-time warm-up."""

from __future__ import annotations

import argparse
from pathlib import Path

import polars as pl
import pytest

from workbench.cluster import _cli

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "support_agent.otlp.jsonl"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    _cli.register(parser.add_subparsers())
    return parser.parse_args(["cluster", *argv])


def test_warm_up_command(capsys):
    args = _parse(["--warm-up"])
    assert args.run(args) == 0
    assert "compiled and cached" in capsys.readouterr().out


def test_no_files_is_an_error(capsys):
    args = _parse([])
    assert args.run(args) == 2
    assert "give trace files" in capsys.readouterr().err


@pytest.mark.skipif(not SAMPLE.exists(), reason="bundled sample not generated")
def test_cluster_failed_traces_of_the_sample(tmp_path, capsys):
    out = tmp_path / "assignments.csv"
    args = _parse([str(SAMPLE), "--failed-only", "--text", "output", "--out", str(out)])
    assert args.run(args) == 0
    printed = capsys.readouterr().out
    assert "| cluster | size |" in printed and "refund" in printed
    frame = pl.read_csv(out)
    assert frame.columns == ["trace_id", "cluster", "cluster_name", "membership", "x", "y"]
    assert frame.height > 100
