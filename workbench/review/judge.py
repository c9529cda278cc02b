"""Automated judges against human verdicts: TPR/TNR and judge-corrected pass rates.

Pass is the positive class (practice.md 1.7): ``TPR = TP / (TP + FN)`` is the share of
human-pass traces the judge passes, ``TNR = TN / (TN + FP)`` the share of human-fail
traces it fails. The Rogan-Gladen estimator corrects the judge's observed pass rate:
``theta = clip((p_obs + TNR - 1) / (TPR + TNR - 1), 0, 1)`` (practice.md 2.7), with a
bootstrap interval that resamples both the calibration pairs and the judged traces.

Examples
--------
>>> round(rogan_gladen(0.80, tpr=0.92, tnr=0.88), 4)
0.85
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from workbench import _html, _markdown
from workbench._frames import as_polars
from workbench.review.events import DEFAULT_VOCABULARY, Vocabulary, current_labels
from workbench.stats import wilson_interval

AUTOMATED_KINDS = ("llm", "code")
PASS_WORDS = ("pass", "passed", "true", "yes", "correct", "good", "resolved", "1")
FAIL_WORDS = ("fail", "failed", "false", "no", "incorrect", "bad", "unresolved", "0")


def rogan_gladen(p_obs: float, *, tpr: float, tnr: float) -> float:
    """The judge-corrected pass rate; ``nan`` when ``TPR + TNR - 1 <= 0`` (judge no better than chance)."""
    j = tpr + tnr - 1
    if not j > 0:
        return math.nan
    return min(1.0, max(0.0, (p_obs + tnr - 1) / j))


@dataclass(frozen=True)
class CorrectedPassRate:
    """A judge-corrected pass rate with its bootstrap interval."""

    estimate: float
    low: float
    high: float
    p_obs: float
    tpr: float
    tnr: float
    n_labeled: int
    n_judged: int
    confidence: float
    n_boot: int
    n_invalid: int

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame([self.__dict__])

    def _repr_html_(self) -> str:
        pairs = {
            "corrected pass rate": f"{self.estimate:.3f} [{self.low:.3f}, {self.high:.3f}] "
            f"({self.confidence:.0%} bootstrap, {self.n_boot:,} replicates)",
            "judge's observed pass rate": f"{self.p_obs:.3f} over {self.n_judged:,} traces",
            "judge TPR / TNR": f"{self.tpr:.3f} / {self.tnr:.3f} on {self.n_labeled:,} human-labelled traces",
        }
        return _html.report("Judge-corrected pass rate (Rogan-Gladen)", [_html.key_values(pairs)])


def judge_corrected_pass_rate(
    human_pass: Sequence[bool],
    judge_pass_labeled: Sequence[bool],
    judge_pass_all: Sequence[bool],
    *,
    n_boot: int = 20_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CorrectedPassRate:
    """Rogan-Gladen pass rate over ``judge_pass_all`` with a two-sample bootstrap interval.

    ``human_pass`` and ``judge_pass_labeled`` are aligned over the human-labelled
    (calibration) traces; ``judge_pass_all`` is the judge on every trace the rate is about.
    Each replicate resamples the calibration pairs (new TPR/TNR) and the judged traces
    (new p_obs); replicates whose judge is no better than chance are dropped and counted.
    """
    human = np.asarray(human_pass, dtype=bool)
    judged_lab = np.asarray(judge_pass_labeled, dtype=bool)
    judged_all = np.asarray(judge_pass_all, dtype=bool)
    if human.shape != judged_lab.shape:
        raise ValueError("human_pass and judge_pass_labeled must be aligned (same length)")
    if len(human) == 0 or len(judged_all) == 0:
        raise ValueError("need at least one labelled trace and one judged trace")
    cells = np.array(
        [
            (human & judged_lab).sum(),
            (human & ~judged_lab).sum(),
            (~human & ~judged_lab).sum(),
            (~human & judged_lab).sum(),
        ]
    )  # TP, FN, TN, FP
    tpr = cells[0] / (cells[0] + cells[1]) if cells[0] + cells[1] else math.nan
    tnr = cells[2] / (cells[2] + cells[3]) if cells[2] + cells[3] else math.nan
    p_obs = float(judged_all.mean())
    estimate = rogan_gladen(p_obs, tpr=tpr, tnr=tnr)
    rng = np.random.default_rng(seed)
    boot = rng.multinomial(len(human), cells / cells.sum(), size=n_boot)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr_b = boot[:, 0] / (boot[:, 0] + boot[:, 1])
        tnr_b = boot[:, 2] / (boot[:, 2] + boot[:, 3])
        p_b = rng.binomial(len(judged_all), p_obs, size=n_boot) / len(judged_all)
        j_b = tpr_b + tnr_b - 1
        theta = np.clip((p_b + tnr_b - 1) / j_b, 0.0, 1.0)
    valid = np.isfinite(theta) & (j_b > 0)
    alpha = 1 - confidence
    low, high = (
        (float(np.quantile(theta[valid], alpha / 2)), float(np.quantile(theta[valid], 1 - alpha / 2)))
        if valid.any()
        else (math.nan, math.nan)
    )
    return CorrectedPassRate(
        estimate=estimate, low=low, high=high, p_obs=p_obs, tpr=float(tpr), tnr=float(tnr),
        n_labeled=len(human), n_judged=len(judged_all), confidence=confidence, n_boot=n_boot,
        n_invalid=int((~valid).sum()),
    )  # fmt: skip


def judge_verdicts(feedback: Any, *, name: str | None = None, threshold: float = 0.5) -> pl.DataFrame:
    """``trace_id, name, annotator_kind, judge_pass`` for automated trace-level scores (latest per trace).

    A numeric value passes when ``>= threshold``; without a number, the label is read
    (pass/true/yes/correct/... vs fail/false/no/incorrect/...). Unreadable scores are dropped.
    """
    frame = as_polars(feedback, name="feedback")
    frame = frame.filter(
        pl.col("annotator_kind").is_in(list(AUTOMATED_KINDS)) & pl.col("trace_id").is_not_null()
    )
    if "target_level" in frame.columns:
        frame = frame.filter(pl.col("target_level").fill_null("trace") == "trace")
    if name is not None:
        frame = frame.filter(pl.col("name") == name)
    word = pl.col("value_label").cast(pl.String).str.strip_chars().str.to_lowercase()
    judged = (
        pl.when(pl.col("value_num").is_not_null())
        .then(pl.col("value_num") >= threshold)
        .when(word.is_in(list(PASS_WORDS)))
        .then(True)
        .when(word.is_in(list(FAIL_WORDS)))
        .then(False)
        .otherwise(None)
    )
    if "created_at" in frame.columns:
        frame = frame.sort("created_at", nulls_last=False, maintain_order=True)
    return (
        frame.with_columns(judged.alias("judge_pass"))
        .drop_nulls("judge_pass")
        .unique(["trace_id", "name"], keep="last", maintain_order=True)
        .select("trace_id", "name", "annotator_kind", "judge_pass")
    )


def human_verdicts(
    labels: Any, *, vocabulary: Vocabulary = DEFAULT_VOCABULARY, reviewer: str | None = None
) -> pl.DataFrame:
    """``trace_id, human_pass, n_reviewers``: the majority pass/fail of current labels (ties dropped)."""
    current = current_labels(as_polars(labels, name="labels"))
    if reviewer is not None:
        current = current.filter(pl.col("reviewer") == reviewer)
    votes = current.with_columns(vocabulary.failed_expr().alias("failed")).drop_nulls("failed")
    tally = votes.group_by("trace_id").agg(
        (~pl.col("failed")).sum().alias("n_pass"), pl.col("failed").sum().alias("n_fail"), pl.len().alias("n")
    )
    return tally.filter(pl.col("n_pass") != pl.col("n_fail")).select(
        "trace_id",
        (pl.col("n_pass") > pl.col("n_fail")).alias("human_pass"),
        pl.col("n").alias("n_reviewers"),
    )


@dataclass(frozen=True)
class JudgeAlignment:
    """Per automated score: confusion counts, TPR/TNR with Wilson intervals, corrected pass rate."""

    summary: pl.DataFrame
    disagreements: pl.DataFrame = field(repr=False)

    def to_frame(self) -> pl.DataFrame:
        return self.summary

    def to_markdown(self) -> str:
        lines = [
            "| score | n | TPR [CI] | TNR [CI] | judge pass rate | corrected [CI] |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.summary.iter_rows(named=True):
            lines.append(
                f"| {_markdown.cell(r['name'])} | {r['n']} | {r['tpr']:.3f} [{r['tpr_low']:.3f}, {r['tpr_high']:.3f}] | "
                f"{r['tnr']:.3f} [{r['tnr_low']:.3f}, {r['tnr_high']:.3f}] | {r['judge_pass_rate']:.3f} | "
                f"{r['corrected_pass_rate']:.3f} [{r['corrected_low']:.3f}, {r['corrected_high']:.3f}] |"
            )
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return _html.report(
            "Judge vs human (pass = positive)",
            [
                _html.frame_table(self.summary),
                _html.section(
                    f"Disagreements ({len(self.disagreements)})",
                    _html.frame_table(self.disagreements, max_rows=20),
                ),
            ],
        )


def judge_alignment(
    labels: Any,
    feedback: Any,
    *,
    name: str | None = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    reviewer: str | None = None,
    threshold: float = 0.5,
    confidence: float = 0.95,
    n_boot: int = 20_000,
    seed: int = 0,
) -> JudgeAlignment:
    """Compare every automated score in ``feedback`` (or just ``name``) with the human verdicts.

    The human verdict of a trace is the majority pass/fail of its current labels (ties are
    left out), or one ``reviewer``'s. The corrected pass rate is over every trace the judge
    scored. Report TPR/TNR from held-out traces only (not the judge's few-shot examples).

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.review.events import events_frame, new_label
    >>> labels = events_frame([new_label("t1", "ana", "pass"), new_label("t2", "ana", "fail")])
    >>> fb = pl.DataFrame({"trace_id": ["t1", "t2"], "name": ["judge_pass"] * 2,
    ...                    "annotator_kind": ["llm"] * 2, "value_num": [1.0, 1.0]})
    >>> judge_alignment(labels, fb).to_frame().select("tpr", "tnr").row(0)
    (1.0, 0.0)
    """
    judges = judge_verdicts(feedback, name=name, threshold=threshold)
    humans = human_verdicts(labels, vocabulary=vocabulary, reviewer=reviewer)
    rows, mismatches = [], []
    for (score,), judged in judges.group_by("name", maintain_order=True):
        pairs = judged.join(humans, on="trace_id", how="inner")
        h, j = pairs["human_pass"], pairs["judge_pass"]
        tp, fn = int((h & j).sum()), int((h & ~j).sum())
        tn, fp = int((~h & ~j).sum()), int((~h & j).sum())
        tpr_ci, tnr_ci = (
            wilson_interval(tp, tp + fn, confidence=confidence),
            wilson_interval(tn, tn + fp, confidence=confidence),
        )
        row = {
            "name": score, "annotator_kind": judged["annotator_kind"][0], "n": len(pairs),
            "tp": tp, "fn": fn, "tn": tn, "fp": fp,
            "tpr": tp / (tp + fn) if tp + fn else math.nan, "tpr_low": tpr_ci[0], "tpr_high": tpr_ci[1],
            "tnr": tn / (tn + fp) if tn + fp else math.nan, "tnr_low": tnr_ci[0], "tnr_high": tnr_ci[1],
            "n_judged": len(judged), "judge_pass_rate": float(judged["judge_pass"].mean()),
        }  # fmt: skip
        if len(pairs) and (tp + fn) and (tn + fp):
            corrected = judge_corrected_pass_rate(
                h.to_list(),
                j.to_list(),
                judged["judge_pass"].to_list(),
                n_boot=n_boot,
                confidence=confidence,
                seed=seed,
            )
            row |= {
                "corrected_pass_rate": corrected.estimate,
                "corrected_low": corrected.low,
                "corrected_high": corrected.high,
            }
        else:
            row |= {"corrected_pass_rate": math.nan, "corrected_low": math.nan, "corrected_high": math.nan}
        rows.append(row)
        wrong = pairs.filter(pl.col("human_pass") != pl.col("judge_pass"))
        mismatches.append(
            wrong.select(
                "trace_id",
                "name",
                "human_pass",
                "judge_pass",
                pl.when(pl.col("judge_pass"))
                .then(pl.lit("false pass"))
                .otherwise(pl.lit("false fail"))
                .alias("kind"),
            )  # fmt: skip
        )
    summary = pl.DataFrame(rows, schema=_SUMMARY_SCHEMA)
    schema = {
        "trace_id": pl.String,
        "name": pl.String,
        "human_pass": pl.Boolean,
        "judge_pass": pl.Boolean,
        "kind": pl.String,
    }
    wrong_all = pl.concat(mismatches) if mismatches else pl.DataFrame(schema=schema)
    return JudgeAlignment(summary=summary, disagreements=wrong_all)


_SUMMARY_SCHEMA = {
    "name": pl.String, "annotator_kind": pl.String, "n": pl.Int64, "tp": pl.Int64, "fn": pl.Int64,
    "tn": pl.Int64, "fp": pl.Int64, "tpr": pl.Float64, "tpr_low": pl.Float64, "tpr_high": pl.Float64,
    "tnr": pl.Float64, "tnr_low": pl.Float64, "tnr_high": pl.Float64, "n_judged": pl.Int64,
    "judge_pass_rate": pl.Float64, "corrected_pass_rate": pl.Float64, "corrected_low": pl.Float64,
    "corrected_high": pl.Float64,
}  # fmt: skip
