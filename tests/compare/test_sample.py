"""The bundled sample: v1 vs v2 finds the planted fix, the planted regression and the unchanged modes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "data" / "support_agent.otlp.jsonl"
TRUTH = ROOT / "data" / "support_agent.truth.csv"

pytestmark = pytest.mark.skipif(not (TRACES.exists() and TRUTH.exists()), reason="bundled sample not generated yet")


def _truth_labels():
    """Label events a careful reviewer would give: fail with the planted failure mode."""
    from workbench.review.events import new_label

    truth = pl.read_csv(TRUTH)
    return [
        new_label(row["trace_id"], "reviewer", "pass" if row["failure_mode"] == "none" else "fail",
                  categories=[] if row["failure_mode"] == "none" else [row["failure_mode"]])
        for row in truth.iter_rows(named=True)
    ]


@pytest.fixture(scope="module")
def loaded():
    from workbench.load import read_traces

    return read_traces(TRACES)


def test_planted_fix_regression_and_unchanged_modes(loaded):
    from workbench.compare import compare_cohorts
    from workbench.review.events import events_frame

    truth = pl.read_csv(TRUTH).select("trace_id", "intent")
    result = compare_cohorts(loaded.traces, cohort="prompt_version", baseline="v1", labels=events_frame(_truth_labels()),
                             feedback=loaded.feedback, clusters=truth, n_boot=500)
    assert result.designs["v2"].kind == "clustered"  # multi-turn sessions
    assert result.verdict("category: refund_no_policy") == "improved"
    assert result.verdict("category: v2_regression") == "regressed"
    assert result.verdict("category: wrong_tool_args") == "no detectable change"
    assert result.verdict("category: hallucinated_no_results") == "no detectable change"
    for metric in ("category: refund_no_policy", "category: v2_regression"):
        row = result.to_frame().filter(pl.col("metric") == metric).row(0, named=True)
        assert row["p_adjusted"] < 0.001 and row["ci_low"] * row["ci_high"] > 0
    status = dict(result.lifecycle.select("category", "status").rows())
    assert status["refund_no_policy"] == "fixed" and status["v2_regression"] == "introduced in v2"
    assert status["wrong_tool_args"] == "active"


def test_cli_prints_markdown_with_a_label_store(loaded, tmp_path, capsys):
    from workbench.cli import main
    from workbench.review.store import LabelStore

    store = LabelStore(tmp_path / "labels.db")
    store.save_many(_truth_labels())
    store.close()
    code = main(["compare", str(TRACES), "--by", "prompt_version", "--baseline", "v1", "--labels",
                 str(tmp_path / "labels.db"), "--metric", "category: *", "--metric", "failure_rate",
                 "--n-boot", "300", "--output", str(tmp_path / "pr.md")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("### Cohort comparison: v2 vs v1 (baseline)")
    line = next(x for x in out.splitlines() if x.startswith("| category: refund_no_policy"))
    assert line.rstrip(" |").endswith("improved")
    assert (tmp_path / "pr.md").read_text(encoding="utf-8") == out


def test_cli_reports_bad_input(capsys):
    from workbench.cli import main

    assert main(["compare", str(TRACES), "--by", "prompt_version"]) == 2
    assert main(["compare", str(TRACES), "--by", "no_such_column", "--baseline", "v1"]) == 2
    assert "no_such_column" in capsys.readouterr().err
