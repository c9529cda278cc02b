"""compare_cohorts end to end: method choice, agreement with statsmodels, warnings, rendering."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep

from tests.compare.frames import replayed_tasks, traces
from workbench.compare import by_filter, by_time, compare_cohorts
from workbench.compare.result import CANNOT_DECIDE, NO_CHANGE
from workbench.review.events import events_frame, new_label


def _row(result, metric, slice="(all)"):
    rows = result.to_frame().filter((pl.col("metric") == metric) & (pl.col("slice") == slice))
    assert rows.height == 1, rows
    return rows.row(0, named=True)


def test_independent_cohorts_use_newcombe_and_z_test():
    frame = traces(n_per_cohort=500, fail=(0.2, 0.12))
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", n_boot=500)
    assert result.designs["v2"].kind == "independent"
    row = _row(result, "failure_rate")
    fails = frame.group_by("prompt_version").agg((~pl.col("passed")).sum().alias("x"), pl.len().alias("n")).sort(
        "prompt_version")
    (x_a, x_b), (n_a, n_b) = fails["x"].to_list(), fails["n"].to_list()
    low, high = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb")
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high), abs=1e-9)
    assert row["difference"] == pytest.approx(x_b / n_b - x_a / n_a, abs=1e-12)
    assert row["n_baseline"] == n_a and row["verdict"] == "improved"
    assert "Newcombe" in row["method"]


def test_clustered_rows_agree_with_statsmodels_cluster_robust_ols():
    frame = traces(n_per_cohort=600, fail=(0.25, 0.2), session_size=4, seed=2)
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", n_boot=300)
    assert result.designs["v2"].kind == "clustered" and result.designs["v2"].unit_key == "session_id"
    cand = (frame["prompt_version"] == "v2").cast(pl.Float64).to_numpy()
    groups = frame["session_id"].to_numpy()
    failure = (~frame["passed"]).cast(pl.Float64).to_numpy()
    fit = sm.OLS(failure, sm.add_constant(cand)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    assert _row(result, "failure_rate")["p_value"] == pytest.approx(fit.pvalues[1], abs=1e-9)
    tools = frame["n_tool_calls"].cast(pl.Float64).to_numpy()
    fit = sm.OLS(tools, sm.add_constant(cand)).fit(cov_type="cluster", cov_kwds={"groups": groups})
    row = _row(result, "tool_calls")
    assert row["difference"] == pytest.approx(fit.params[1], abs=1e-12)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(fit.conf_int()[1]), abs=1e-9)


def test_paired_design_is_detected_and_narrower_than_independent():
    frame = replayed_tasks(n_tasks=120, runs=4)
    paired = compare_cohorts(frame, cohort="agent", baseline="old", task_key="task_id", n_boot=400)
    assert paired.designs["new"].kind == "paired-repeated"
    independent = compare_cohorts(frame, cohort="agent", baseline="old", n_boot=400)
    assert independent.designs["new"].kind == "independent"
    p_row, i_row = _row(paired, "failure_rate"), _row(independent, "failure_rate")
    assert p_row["difference"] == pytest.approx(i_row["difference"], abs=1e-12)
    assert p_row["ci_high"] - p_row["ci_low"] < 0.9 * (i_row["ci_high"] - i_row["ci_low"])
    assert p_row["mde"] < i_row["mde"]
    passk = _row(paired, "pass^4")
    assert passk["unit"] == "tasks" and passk["n_baseline"] == 120
    assert passk["baseline_value"] < 1 - _row(paired, "failure_rate")["baseline_value"]


def test_single_run_pairs_use_mcnemar():
    frame = replayed_tasks(n_tasks=200, runs=1, seed=4)
    result = compare_cohorts(frame, cohort="agent", baseline="old", task_key="task_id", n_boot=300)
    assert result.designs["new"].kind == "paired"
    wide = frame.pivot(on="agent", index="task_id", values="passed")
    old_fail, new_fail = ~wide["old"].to_numpy(), ~wide["new"].to_numpy()
    table = [[np.sum(old_fail & new_fail), np.sum(old_fail & ~new_fail)],
             [np.sum(~old_fail & new_fail), np.sum(~old_fail & ~new_fail)]]
    row = _row(result, "failure_rate")
    assert row["p_value"] == pytest.approx(mcnemar(table, exact=True).pvalue, abs=1e-9)
    assert row["n_baseline"] == 200 and "McNemar" in row["method"]
    latency = _row(result, "latency_ms")
    assert "Wilcoxon" in latency["method"] and latency["unit"] == "tasks"


def test_not_enough_data_is_said_in_words():
    frame = traces(n_per_cohort=6)
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", n_boot=200)
    assert set(result.to_frame()["verdict"]) == {CANNOT_DECIDE}
    assert "The data cannot decide" in result.to_markdown()
    small = compare_cohorts(traces(n_per_cohort=40, fail=(0.05, 0.05), seed=3), cohort="prompt_version",
                            baseline="v1", metrics=["failure_rate"], n_boot=200)
    assert small.verdict("failure_rate") == CANNOT_DECIDE  # MDE larger than the rate itself


def test_unchanged_rate_is_no_detectable_change_and_bh_is_across_rows():
    frame = traces(n_per_cohort=1500, fail=(0.2, 0.2), seed=5)
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="intent", n_boot=300)
    assert result.verdict("failure_rate") == NO_CHANGE
    rows = result.to_frame()
    valid = rows.filter(pl.col("p_value").is_not_null() & pl.col("p_value").is_not_nan())
    expected = multipletests(valid["p_value"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(valid["p_adjusted"].to_numpy(), expected, atol=1e-12)
    assert set(rows["slice"]) == {"(all)", "refund", "billing", "tech"}


def test_mix_shift_and_simpsons_paradox_are_warned():
    rng = np.random.default_rng(8)
    rows = []
    # easy segment fails 10% -> 8%, hard fails 50% -> 45%; v2 gets mostly hard traffic
    for version, mix, rates in (("v1", 0.2, (0.10, 0.50)), ("v2", 0.8, (0.08, 0.45))):
        for i in range(1500):
            hard = rng.random() < mix
            rows.append({"trace_id": f"{version}-{i}", "prompt_version": version, "segment": "hard" if hard else "easy",
                         "passed": bool(rng.random() >= rates[int(hard)])})
    frame = pl.DataFrame(rows)
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="segment")
    assert result.verdict("failure_rate") == "regressed"
    text = " ".join(result.warnings)
    assert "mix shift in segment" in text
    assert "Simpson's paradox" in text


def test_version_and_overlap_warnings():
    frame = traces(n_per_cohort=50)
    events = [new_label(t, "ana", "fail", categories=["x"], taxonomy_version=1 if v == "v1" else 2)
              for t, v in frame.select("trace_id", "prompt_version").rows()]
    feedback = pl.DataFrame({
        "trace_id": frame["trace_id"], "name": ["judge_pass"] * frame.height, "annotator_kind": ["llm"] * frame.height,
        "annotator_id": np.where(frame["prompt_version"] == "v1", "gpt-judge@1", "gpt-judge@2"),
    })
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", labels=events_frame(events),
                             feedback=feedback, n_boot=200)
    text = " ".join(result.warnings)
    assert "label taxonomy version differs" in text and "judge differs" in text
    spec = by_filter({"all": pl.lit(True), "late": pl.col("prompt_version") == "v2"}, baseline="all")
    overlapping = compare_cohorts(frame, cohort=spec, n_boot=200)
    assert any("in both all and late" in w for w in overlapping.warnings)


def test_labels_drive_failure_rate_and_categories_by_majority():
    frame = traces(n_per_cohort=30)
    events = []
    for t, v in frame.select("trace_id", "prompt_version").rows():
        events.append(new_label(t, "ana", "fail", categories=["refund"] if v == "v1" else ["tone"]))
        events.append(new_label(t, "bo", "pass" if v == "v2" else "fail", categories=[]))
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", labels=events_frame(events), n_boot=200)
    assert _row(result, "failure_rate")["baseline_value"] == 1.0  # both reviewers fail v1
    assert _row(result, "failure_rate")["candidate_value"] == 1.0  # 1 of 2 fails: a tie counts as failure
    assert _row(result, "category: refund")["baseline_value"] == 1.0
    assert "reviewer labels" in result.sources["failure_rate"]


def test_time_cohorts_and_pandas_input():
    frame = traces(n_per_cohort=200)
    result = compare_cohorts(frame.to_pandas(), cohort=by_time(datetime(2025, 3, 8, tzinfo=UTC)), n_boot=200)
    assert result.baseline == "before" and result.candidates == ("after",)
    assert _row(result, "failure_rate")["n_baseline"] == 200
    with pytest.raises(ValueError, match="baseline"):
        compare_cohorts(frame, cohort="prompt_version")
    with pytest.raises(ValueError, match="not in the traces table"):
        compare_cohorts(frame, cohort="nope", baseline="v1")
    with pytest.raises(ValueError, match="not available"):
        compare_cohorts(frame, cohort="prompt_version", baseline="v1", metrics=["nope"])


def test_result_renders_escaped_html_markdown_and_a_forest_plot():
    frame = traces(n_per_cohort=100).with_columns(
        pl.when(pl.col("prompt_version") == "v2").then(pl.lit("<script>alert(1)</script>|v2"))
        .otherwise(pl.lit("v1")).alias("prompt_version"))
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="intent", n_boot=200)
    html = result._repr_html_()
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    markdown = result.to_markdown()
    assert "<script>" not in markdown and "\\|v2" in markdown
    assert markdown.count("\n| ") >= result.to_frame().height
    figure = result.figure()
    assert len(figure.data) >= 2 and "<script>" not in figure.data[0].y[0]
    assert set(result.to_frame().columns) >= {"n_baseline", "ci_low", "p_adjusted", "mde", "verdict"}


def test_lifecycle_tells_fixed_from_chance():
    frame = traces(n_per_cohort=300)
    events = []
    for i, (t, v) in enumerate(frame.select("trace_id", "prompt_version").rows()):
        cats = []
        if v == "v1" and i % 5 == 0:
            cats.append("common_then_gone")
        if v == "v1" and i == 7:
            cats.append("rare_then_gone")
        if v == "v2" and i % 9 == 0:
            cats.append("new_in_v2")
        events.append(new_label(t, "ana", "fail" if cats else "pass", categories=cats))
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", labels=events_frame(events), n_boot=200)
    status = dict(result.lifecycle.select("category", "status").rows())
    assert status == {"common_then_gone": "fixed", "rare_then_gone": "not seen since (could be chance)",
                      "new_in_v2": "introduced in v2"}
    fixed = result.lifecycle.filter(pl.col("category") == "common_then_gone").row(0, named=True)
    assert fixed["stopped_in"] == "v2" and fixed["time_to_fix"].days == 7


def test_failure_clusters_get_a_direction_intents_do_not():
    from workbench.compare import compare_cohorts

    frame = traces(n_per_cohort=400, fail=(0.3, 0.1), seed=3)
    modes = frame.select("trace_id", pl.when(~pl.col("passed")).then(pl.lit("refund")).otherwise(pl.lit("none"))
                         .alias("mode"))
    as_failures = compare_cohorts(frame, cohort="prompt_version", baseline="v1", clusters=modes,
                                  clusters_better="lower", n_boot=200)
    as_intents = compare_cohorts(frame, cohort="prompt_version", baseline="v1", clusters=modes, n_boot=200)
    assert as_failures.verdict("mode: refund") == "improved"
    assert as_intents.verdict("mode: refund") == "decreased"
    with pytest.raises(ValueError, match="clusters_better"):
        compare_cohorts(frame, cohort="prompt_version", baseline="v1", clusters=modes, clusters_better="up")
