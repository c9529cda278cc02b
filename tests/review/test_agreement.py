"""Agreement statistics cross-checked against scikit-learn, krippendorff and statsmodels."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import polars as pl
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from workbench.review.agreement import (
    agreement,
    cohen_kappa,
    disagreements,
    judge_alignment,
    judge_corrected_pass_rate,
    krippendorff_alpha,
    percent_agreement,
    rating_table,
    rogan_gladen,
)
from workbench.review.events import OUTCOME_VOCABULARY, events_frame, new_label, new_retraction
from workbench.review.judge import human_verdicts, judge_verdicts
from workbench.stats import wilson_interval


@pytest.mark.parametrize("seed", range(8))
def test_cohen_kappa_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(5, 300)), int(rng.integers(2, 6))
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < rng.random(), a, rng.integers(0, k, n))  # correlated raters
    labels = [f"v{x}" for x in range(k)]
    assert cohen_kappa([labels[x] for x in a], [labels[x] for x in b]) == pytest.approx(
        cohen_kappa_score(a, b), abs=1e-12
    )


def test_cohen_kappa_edge_cases() -> None:
    assert math.isnan(cohen_kappa([], []))
    assert math.isnan(cohen_kappa(["pass"] * 4, ["pass"] * 4))
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(cohen_kappa_score(["a", "b"], ["b", "a"]))
    with pytest.raises(ValueError, match="aligned"):
        cohen_kappa(["a"], ["a", "b"])


@pytest.mark.parametrize(("seed", "raters", "units", "values", "missing"),
                         [(0, 2, 30, 2, 0.0), (1, 3, 50, 3, 0.2), (2, 5, 200, 4, 0.4), (3, 4, 12, 2, 0.3),
                          (4, 6, 80, 5, 0.5), (5, 2, 400, 2, 0.1)])  # fmt: skip
def test_krippendorff_alpha_matches_the_package(seed, raters, units, values, missing) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, values, units)
    data = np.where(
        rng.random((raters, units)) < 0.7, truth, rng.integers(0, values, (raters, units))
    ).astype(float)
    data[rng.random((raters, units)) < missing] = np.nan
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    ours = krippendorff_alpha([[None if np.isnan(v) else f"c{int(v)}" for v in col] for col in data.T])
    assert ours == pytest.approx(expected, abs=1e-12)


def test_alpha_undefined_and_percent_agreement() -> None:
    assert math.isnan(krippendorff_alpha([["a", None], [None, "b"]]))  # nothing pairable
    assert math.isnan(krippendorff_alpha([["a", "a"], ["a", "a"]]))  # one value only
    assert percent_agreement([["a", "a"], ["a", "b"], ["a", None], ["b", "b", "b"]]) == pytest.approx(2 / 3)


def _two_reviewers(seed: int = 7, n: int = 120) -> tuple[pl.DataFrame, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    events, ana, bo = [], [], []
    for i in range(n):
        a = "fail" if rng.random() < 0.4 else "pass"
        b = a if rng.random() < 0.8 else ("pass" if a == "fail" else "fail")
        cats_a = ["tool_args"] if a == "fail" and rng.random() < 0.5 else []
        cats_b = ["tool_args"] if b == "fail" and rng.random() < 0.5 else []
        events += [
            new_label(f"t{i:03d}", "ana", a, categories=cats_a),
            new_label(f"t{i:03d}", "bo", b, categories=cats_b),
        ]
        ana.append(a)
        bo.append(b)
    return events_frame(events), ana, bo


def test_agreement_report_matches_reference_implementations() -> None:
    labels, ana, bo = _two_reviewers()
    # an extra trace rated by one reviewer only (missing for alpha), and an undone relabel
    first = new_label("t999", "ana", "fail")
    undo = new_retraction("t999", "ana", supersedes=first.event_id)
    labels = pl.concat([labels, events_frame([first, undo, new_label("x1", "ana", "pass")])])
    report = agreement(labels)
    summary = {r["field"]: r for r in report.to_frame().iter_rows(named=True)}
    verdict = summary["verdict"]
    assert verdict["n_items"] == 120 and verdict["n_reviewers"] == 2
    assert verdict["cohen_kappa"] == pytest.approx(cohen_kappa_score(ana, bo))
    codes = {"pass": 0, "fail": 1}
    data = np.array([[codes[v] for v in ana] + [0], [codes[v] for v in bo] + [np.nan]], dtype=float)
    assert verdict["krippendorff_alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    )
    assert verdict["percent_agreement"] == pytest.approx(np.mean(np.array(ana) == np.array(bo)))
    category = summary["category: tool_args"]
    table = rating_table(labels, category="tool_args")
    assert category["cohen_kappa"] == pytest.approx(
        cohen_kappa_score(table["ana"].to_list()[:120], table["bo"].to_list()[:120])
    )
    assert report.pairs.height == 3  # verdict, pass/fail, one category; one reviewer pair each
    assert "Reviewer agreement" in report._repr_html_() and "| verdict | 120 |" in report.to_markdown()


def test_three_reviewers_and_custom_vocabulary() -> None:
    events = [
        new_label("t1", "a", "accepted"), new_label("t1", "b", "accepted"), new_label("t1", "c", "corrected"),
        new_label("t2", "a", "rejected"), new_label("t2", "b", "corrected"),
        new_label("t3", "a", "accepted"), new_label("t3", "c", "accepted"),
    ]  # fmt: skip
    report = agreement(events_frame(events), vocabulary=OUTCOME_VOCABULARY)
    rows = {r["field"]: r for r in report.to_frame().iter_rows(named=True)}
    assert rows["verdict"]["n_reviewers"] == 3 and math.isnan(rows["verdict"]["cohen_kappa"])
    # pass/fail: t1 (pass, pass, fail) t2 (fail, fail) t3 (pass, pass)
    assert rows["pass/fail"]["percent_agreement"] == pytest.approx(2 / 3)
    expected = krippendorff.alpha(
        reliability_data=np.array([[0, 1, 0], [0, 1, np.nan], [1, np.nan, 0]]), level_of_measurement="nominal"
    )
    assert rows["pass/fail"]["krippendorff_alpha"] == pytest.approx(expected)


def test_disagreement_queue() -> None:
    events = [
        new_label("t1", "ana", "pass"), new_label("t1", "bo", "fail", categories=["x"]),
        new_label("t2", "ana", "fail", categories=["x", "y"]), new_label("t2", "bo", "fail", categories=["x"]),
        new_label("t3", "ana", "fail", categories=["x"]), new_label("t3", "bo", "fail", categories=["x"]),
        new_label("t4", "ana", "pass"),
    ]  # fmt: skip
    queue = disagreements(events_frame(events))
    assert queue["trace_id"].to_list() == ["t1", "t2"]
    assert queue["differs_on"].to_list() == [["verdict", "x"], ["y"]]
    assert queue["pass_fail_split"].to_list() == [True, False]
    assert queue["ratings"][0].to_list() == ["ana: pass", "bo: fail [x]"]


def test_wilson_matches_statsmodels() -> None:
    for x, n in [(0, 1), (1, 1), (0, 30), (30, 30), (7, 19), (50, 100), (999, 1000), (3, 7)]:
        for confidence in (0.9, 0.95, 0.99):
            low, high = proportion_confint(x, n, alpha=1 - confidence, method="wilson")
            assert wilson_interval(x, n, confidence=confidence) == pytest.approx((low, high), abs=1e-12)
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


def test_rogan_gladen_known_answers() -> None:
    assert rogan_gladen(0.80, tpr=0.92, tnr=0.88) == pytest.approx(0.85)  # practice.md 2.7
    assert rogan_gladen(0.99, tpr=0.9, tnr=0.9) == 1.0  # clipped
    assert rogan_gladen(0.05, tpr=0.9, tnr=0.9) == 0.0
    assert math.isnan(rogan_gladen(0.5, tpr=0.5, tnr=0.5))


def _judge_fixture() -> tuple[pl.DataFrame, pl.DataFrame]:
    # 50 human-pass traces: judge passes 46 (TPR 0.92); 50 human-fail traces: judge fails 44 (TNR 0.88)
    events, feedback = [], []
    for i in range(100):
        human_pass = i < 50
        judge_pass = (i < 46) or (i >= 94)
        events.append(new_label(f"t{i}", "ana", "pass" if human_pass else "fail"))
        feedback.append((f"t{i}", "judge_pass", "llm", 1.0 if judge_pass else 0.0, None))
    # 400 more traces only the judge saw: 320 pass -> p_obs over all 500 = (46 + 6 + 320) / 500
    feedback += [(f"u{i}", "judge_pass", "llm", 1.0 if i < 320 else 0.0, None) for i in range(400)]
    feedback += [(f"t{i}", "resolved", "code", None, "true" if i % 2 else "false") for i in range(100)]
    feedback += [(f"t{i}", "thumbs", "human", 1.0, None) for i in range(100)]  # not automated: ignored
    schema = {"trace_id": pl.String, "name": pl.String, "annotator_kind": pl.String,
              "value_num": pl.Float64, "value_label": pl.String}  # fmt: skip
    fb = pl.DataFrame(feedback, schema=schema, orient="row")
    return events_frame(events), fb


def test_judge_alignment_tpr_tnr_and_corrected_rate() -> None:
    labels, feedback = _judge_fixture()
    result = judge_alignment(labels, feedback, n_boot=4000)
    rows = {r["name"]: r for r in result.to_frame().iter_rows(named=True)}
    assert set(rows) == {"judge_pass", "resolved"}
    judge = rows["judge_pass"]
    assert (judge["tp"], judge["fn"], judge["tn"], judge["fp"]) == (46, 4, 44, 6)
    assert judge["tpr"] == pytest.approx(0.92) and judge["tnr"] == pytest.approx(0.88)
    assert (judge["tpr_low"], judge["tpr_high"]) == pytest.approx(proportion_confint(46, 50, method="wilson"))
    assert (judge["tnr_low"], judge["tnr_high"]) == pytest.approx(proportion_confint(44, 50, method="wilson"))
    p_obs = (46 + 6 + 320) / 500
    assert judge["judge_pass_rate"] == pytest.approx(p_obs)
    assert judge["corrected_pass_rate"] == pytest.approx((p_obs + 0.88 - 1) / 0.80)
    assert judge["corrected_low"] < judge["corrected_pass_rate"] < judge["corrected_high"]
    assert len(result.disagreements.filter(pl.col("name") == "judge_pass")) == 10
    assert set(result.disagreements["kind"]) == {"false pass", "false fail"}
    resolved = rows["resolved"]  # labels "true"/"false": odd traces pass
    assert (resolved["tp"], resolved["fn"], resolved["tn"], resolved["fp"]) == (25, 25, 25, 25)
    assert math.isnan(resolved["corrected_pass_rate"])  # J = 0: no correction possible
    assert "Judge vs human" in result._repr_html_() and "judge_pass" in result.to_markdown()


def test_corrected_rate_bootstrap_covers_truth_and_resamples_both_sets() -> None:
    rng = np.random.default_rng(3)
    truth, tpr, tnr = 0.7, 0.9, 0.85
    human = rng.random(300) < truth
    judge_lab = np.where(human, rng.random(300) < tpr, rng.random(300) > tnr)
    pop = rng.random(5000) < truth
    judge_all = np.where(pop, rng.random(5000) < tpr, rng.random(5000) > tnr)
    result = judge_corrected_pass_rate(human, judge_lab, judge_all, n_boot=5000, seed=1)
    assert result.low < truth < result.high
    assert result.low < result.estimate < result.high
    # a smaller calibration set must widen the interval (its uncertainty is part of the CI)
    small = judge_corrected_pass_rate(human[:60], judge_lab[:60], judge_all, n_boot=5000, seed=1)
    assert (small.high - small.low) > (result.high - result.low)
    assert result.to_frame().height == 1 and "Rogan-Gladen" in result._repr_html_()
    with pytest.raises(ValueError, match="aligned"):
        judge_corrected_pass_rate([True], [True, False], [True])


def test_judge_and_human_verdict_readers() -> None:
    fb = pl.DataFrame(
        {"trace_id": ["a", "a", "b", "c", "d"], "name": ["j"] * 5, "annotator_kind": ["llm"] * 5,
         "value_num": [0.2, 0.9, None, None, None], "value_label": [None, None, "PASS", "incorrect", "maybe"],
         "created_at": [1, 2, 1, 1, 1]}
    )  # fmt: skip
    assert dict(judge_verdicts(fb).select("trace_id", "judge_pass").rows()) == {
        "a": True,
        "b": True,
        "c": False,
    }
    events = [new_label("t", "a", "pass"), new_label("t", "b", "pass"), new_label("t", "c", "fail"),
              new_label("u", "a", "pass"), new_label("u", "b", "fail")]  # fmt: skip
    humans = human_verdicts(events_frame(events))
    assert humans.rows() == [("t", True, 3)]  # u is a tie and is left out


def test_markdown_escapes_untrusted_category_names():
    from workbench.review.agreement import agreement
    from workbench.review.events import events_frame, new_label

    hostile = "x|y <img src=x onerror=alert(1)>"
    labels = events_frame([new_label("t1", "ana", "fail", categories=[hostile]), new_label("t1", "bo", "fail"),
                           new_label("t2", "ana", "pass"), new_label("t2", "bo", "pass")])
    markdown = agreement(labels).to_markdown()
    assert "<img" not in markdown and "x\\|y &lt;img" in markdown
