"""``workbench inspect`` and ``workbench convert`` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from workbench import schema
from workbench.cli import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
REQUESTS = FIXTURES / "otlp" / "openinference_requests.jsonl"
MALFORMED = FIXTURES / "bad" / "malformed.jsonl"


def test_inspect_json(capsys):
    assert main(["inspect", str(REQUESTS), str(MALFORMED), "--json", "--no-cache"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == {"spans": 10, "traces": 4, "sessions": 2, "feedback": 3, "problems": 1}
    assert report["formats"] == {str(REQUESTS): "otlp", str(MALFORMED): "otlp"}
    assert report["problems_by_reason"] == {"invalid JSON": 1}


def test_inspect_text_and_strict(capsys):
    assert main(["inspect", str(MALFORMED), "--no-cache"]) == 0
    out = capsys.readouterr().out
    assert "invalid JSON 1" in out and "otlp (detected)" in out
    assert main(["inspect", str(MALFORMED), "--strict", "--no-cache"]) == 1
    assert "malformed.jsonl:3: invalid JSON" in capsys.readouterr().err


def test_inspect_nothing_loaded_is_non_zero(tmp_path, capsys):
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"hello": 1}\n')
    assert main(["inspect", str(odd), "--no-cache"]) == 1
    assert main(["inspect", str(tmp_path / "missing.jsonl"), "--no-cache"]) == 1
    assert "no trace files" in capsys.readouterr().err


def test_convert_writes_every_table(tmp_path, capsys):
    out = tmp_path / "parquet"
    assert main(["convert", str(REQUESTS), "--to", str(out), "--format", "otlp", "--no-cache"]) == 0
    spans = pl.read_parquet(out / "spans.parquet")
    schema.validate(spans, schema.SPANS, table="spans")
    assert spans.height == 5
    assert pl.read_parquet(out / "traces.parquet").height == 2
    assert pl.read_parquet(out / "feedback.parquet").height == 3
    assert sorted(p.name for p in out.iterdir()) == [f"{t}.parquet" for t in
                                                     sorted(["spans", "traces", "sessions", "feedback", "problems"])]
