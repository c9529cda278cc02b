"""End to end: manifest, versions and diffs, canaries (P2), failing detector (P4), CLI, HTML."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import polars as pl
import pytest

from tests.export.conftest import make_labels, make_traces
from workbench.cli import main
from workbench.export import (
    FORMATS,
    PatternDetector,
    RedactionError,
    diff_versions,
    export_eval_set,
    read_export,
    read_manifest,
    versions,
)
from workbench.export.manifest import sha256_file
from workbench.review.events import events_frame, new_label
from workbench.review.store import LabelStore

CANARIES = {
    "input": "canary.input.7f3a@example.org",
    "output": "+44 20 7946 0958",
    "corrected_output": "4532 0151 1283 0366",
    "note": "sk-proj-CANARYnoteZ1x9Q2w8E3r7T4y6U5i0O",
    "metadata": "DE44 5001 0517 5407 3249 31",
    "metadata_field": "canary-field@example.net",
    "session": "canary.session@example.com",
}


def _all_bytes(root: Path) -> list[tuple[Path, bytes]]:
    return [(p, p.read_bytes()) for p in sorted(root.rglob("*")) if p.is_file()]


def test_manifest_contents(tmp_path, traces, labels):
    source = tmp_path / "labels-source.txt"
    source.write_text("label store snapshot")
    result = export_eval_set(
        traces.with_columns(pl.lit(str(source)).alias("source_file")),
        labels,
        name="support",
        out_dir=tmp_path / "out",
        formats=["jsonl", "parquet"],
        select=pl.col("verdict") == "fail",
        split={"dev": 0.5, "test": 0.5},
    )
    m = read_manifest(result.path)
    assert m == result.manifest
    assert (m["name"], m["version"]) == ("support", 1)
    assert m["created_at"].endswith("+00:00")
    assert m["n_items"] == result.dataset.items.height == len(m["items"]) > 0
    assert set(m["verdicts"]) == {"fail"}
    assert m["reviewers"] == ["ana", "bo"]
    assert m["taxonomy_version"] == 2
    first = m["items"][0]
    assert set(first) == {
        "item_id",
        "trace_id",
        "span_id",
        "trace_start_time",
        "label_event_ids",
        "split",
        "hash",
    }
    all_events = set(labels["event_id"].to_list())
    assert all(set(i["label_event_ids"]) <= all_events for i in m["items"])
    assert (
        m["filters"]["select"]["kind"] == "expression" and "verdict" in m["filters"]["select"]["expression"]
    )
    assert m["dedup"]["n_items"] >= m["n_items"]
    assert m["redaction"]["enabled"] and m["redaction"]["ner"] == "not run"
    assert m["sources"] == [
        {"path": str(source), "bytes": source.stat().st_size, "sha256": sha256_file(source)}
    ]
    assert m["leakage"]["ok"]
    for entry in m["files"]:
        assert sha256_file(result.path / entry["path"]) == entry["sha256"]
    assert len(m["content_hash"]) == 64


def test_versions_and_diff(tmp_path, traces, labels):
    out = tmp_path / "out"
    v1 = export_eval_set(traces, labels, name="ds", out_dir=out)
    assert v1.version == 1
    same = export_eval_set(traces, labels, name="ds", out_dir=out)
    assert same.version == 2 and same.diff().identical
    assert same.manifest["content_hash"] == v1.manifest["content_hash"]
    # relabel one trace, drop some traces, add new labels
    relabel = new_label("trace-001", "ana", "fail", categories=["refund_no_policy"], note="changed my mind")
    fewer = traces.filter(
        ~pl.col("trace_id").is_in(["trace-002", "trace-005"])
    )  # last turns of their sessions
    extra = new_label("trace-003", "ana", "pass")  # trace-003 was unlabelled (k % 4 == 3)
    v3 = export_eval_set(fewer, pl.concat([labels, events_frame([relabel, extra])]), name="ds", out_dir=out)
    diff = diff_versions(v1.path, v3)
    ids = {r["trace_id"]: r["item_id"] for r in v3.dataset.items.iter_rows(named=True)}
    v1_ids = {r["trace_id"]: r["item_id"] for r in v1.dataset.items.iter_rows(named=True)}
    assert diff.added == (ids["trace-003"],)
    assert set(diff.removed) == {v1_ids["trace-002"], v1_ids["trace-005"]}
    assert diff.changed == (ids["trace-001"],)
    assert diff.unchanged == v1.dataset.items.height - 3
    assert versions(out, "ds") == [1, 2, 3]
    # items present in v1 keep their split
    v1_split = dict(v1.dataset.items.select("item_id", "split").iter_rows())
    for item_id, split in v3.dataset.items.select("item_id", "split").iter_rows():
        if item_id in v1_split and item_id != ids["trace-001"]:
            assert split == v1_split[item_id]
    assert "removed" in diff.to_markdown() and diff.to_frame().height == 4
    assert "<script>" not in diff._repr_html_()


def _canary_inputs() -> tuple[pl.DataFrame, pl.DataFrame]:
    traces = make_traces(40)
    k = pl.int_range(pl.len())
    meta = orjson.dumps(
        {"crm": {"note": f"iban {CANARIES['metadata']}", "email": CANARIES["metadata_field"]}}
    ).decode()
    traces = traces.with_columns(
        pl.when(k == 6)
        .then(pl.lit(f"please mail {CANARIES['input']} now"))
        .otherwise(pl.col("input"))
        .alias("input"),
        pl.when(k == 6)
        .then(pl.lit(f"I will call {CANARIES['output']}"))
        .otherwise(pl.col("output"))
        .alias("output"),
        pl.when(k == 6).then(pl.lit(meta)).otherwise(pl.col("metadata")).alias("metadata"),
        pl.when(k // 3 == 2)
        .then(pl.lit(CANARIES["session"]))
        .otherwise(pl.col("session_id"))
        .alias("session_id"),
    )
    labels = pl.concat(
        [
            make_labels(traces).filter(pl.col("trace_id") != "trace-006"),
            events_frame(
                [
                    new_label(
                        "trace-006",
                        "ana",
                        "fail",
                        categories=["refund_no_policy"],
                        corrected_output=f"Refund to card {CANARIES['corrected_output']}",
                        note=f"customer pasted key {CANARIES['note']}",
                    )
                ]
            ),
        ]
    )
    return traces, labels


def _needles(value: str) -> set[bytes]:
    compact = value.replace(" ", "").replace("-", "")
    return {value.encode(), compact.encode()}


def test_canaries_never_reach_any_exported_file(tmp_path):
    traces, labels = _canary_inputs()
    result = export_eval_set(traces, labels, name="canary", out_dir=tmp_path, formats=list(FORMATS))
    assert result.dataset.items.filter(pl.col("trace_id") == "trace-006").height == 1
    files = _all_bytes(tmp_path)
    assert len(files) >= len(FORMATS) + 1
    for path, data in files:
        for name, value in CANARIES.items():
            for needle in _needles(value):
                assert data.count(needle) == 0, f"canary {name} found in {path}"
    # the non-canary content is still there
    jsonl = (result.path / "items.jsonl").read_text()
    assert "refund_no_policy" in jsonl and "<EMAIL_" in jsonl and "<CARD_" in jsonl and "<IBAN_" in jsonl


class _ExplodingDetector:
    name = "exploding"
    version = "1"

    def find(self, texts):
        raise RuntimeError("detector crashed")


def test_failing_detector_writes_nothing(tmp_path, traces, labels):
    out = tmp_path / "out"
    export_eval_set(traces, labels, name="ds", out_dir=out)
    before = _all_bytes(tmp_path)
    with pytest.raises(RedactionError, match="exploding.*detector crashed"):
        export_eval_set(traces, labels, name="ds", out_dir=out, formats=list(FORMATS),
                        detectors=[PatternDetector(), _ExplodingDetector()])  # fmt: skip
    assert _all_bytes(tmp_path) == before
    with pytest.raises(RedactionError):
        export_eval_set(
            traces, labels, name="fresh", out_dir=tmp_path / "new", detectors=[_ExplodingDetector()]
        )
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").rglob("*.*"))


def test_no_redaction_is_recorded(tmp_path):
    traces, labels = _canary_inputs()
    result = export_eval_set(traces, labels, name="raw", out_dir=tmp_path, redact=False)
    assert result.manifest["redaction"]["enabled"] is False
    assert CANARIES["input"].encode() in (result.path / "items.jsonl").read_bytes()


def test_bad_name_and_empty_labels(tmp_path, traces):
    with pytest.raises(ValueError, match="dataset name"):
        export_eval_set(traces, events_frame([]), name="../evil", out_dir=tmp_path)
    empty = export_eval_set(traces, events_frame([]), name="empty", out_dir=tmp_path, formats=list(FORMATS))
    assert empty.manifest["n_items"] == 0
    for fmt in FORMATS:
        assert read_export(empty.path, format=fmt).height == 0


def test_html_and_frames_escape_trace_text(tmp_path, traces, labels):
    result = export_eval_set(traces, labels, name="html", out_dir=tmp_path)
    for html in (result._repr_html_(), result.dataset._repr_html_()):
        assert "<script>alert" not in html
    assert "&lt;script&gt;" in result.dataset._repr_html_()
    assert result.to_frame().columns == ["format", "path", "bytes", "sha256", "n_records"]
    assert result.dataset.to_frame().height == result.manifest["n_items"]
    assert "| split | items |" in result.dataset.to_markdown()


SAMPLE = Path(__file__).resolve().parents[2] / "data" / "support_agent.otlp.jsonl"


def test_cli_export(tmp_path, capsys):
    from workbench.load import read_traces

    trace_file = tmp_path / "traces.otlp.jsonl"
    trace_file.write_bytes(b"".join(SAMPLE.read_bytes().splitlines(keepends=True)[:4]))
    loaded = read_traces(trace_file, cache=False)
    assert loaded.traces.height > 10 and loaded.problems.height == 0
    store_path = tmp_path / "labels.sqlite"
    with LabelStore(store_path) as store:
        store.save_many(
            new_label(t, "ana", "fail" if k % 2 else "pass", categories=["wrong_tool_args"] if k % 2 else [],
                      note=f"note for {t}")
            for k, t in enumerate(loaded.traces["trace_id"].to_list())
        )  # fmt: skip
    out = tmp_path / "evals"
    code = main(["export", str(trace_file), "--labels", str(store_path), "--name", "cli", "--out", str(out),
                 "--format", "jsonl,inspect", "--format", "csv", "--verdict", "fail", "--split", "dev=0.5,test=0.5",
                 "--no-cache", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = orjson.loads(captured.out)
    assert summary["version"] == 1 and summary["n_items"] > 0
    assert set(summary["splits"]) <= {"dev", "test"}
    m = read_manifest(out / "cli" / "v1")
    assert set(m["verdicts"]) == {"fail"}
    assert any(s["path"] == str(store_path) and s["sha256"] for s in m["sources"])
    assert any(s["path"] == str(trace_file) and s["sha256"] == sha256_file(trace_file) for s in m["sources"])
    assert {f["format"] for f in m["files"]} == {"jsonl", "inspect", "csv"}
    bad = main(["export", str(trace_file), "--labels", str(store_path), "--name", "cli", "--out", str(out),
                "--format", "xml", "--no-cache"])  # fmt: skip
    assert bad == 1 and "unknown export format" in capsys.readouterr().err
    assert sorted(os.listdir(out / "cli")) == ["v1"]
