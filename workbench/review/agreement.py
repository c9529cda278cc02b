"""Agreement between reviewers, and between automated judges and reviewers.

Human vs human (practice.md 1.4, 3.1): Cohen's kappa for two reviewers, Krippendorff's
alpha (nominal; any number of reviewers; missing labels allowed), percent agreement,
per verdict and per category (each category as a yes/no question), and a queue of the
traces where reviewers differ.

Judge vs human (practice.md 1.7, 2.7): for every automated score in the feedback table
(``annotator_kind`` llm or code), TPR and TNR with Wilson intervals against the human
verdicts (pass = positive), and the judge-corrected pass rate (Rogan-Gladen) with a
bootstrap interval that resamples both the calibration pairs and the judged traces.
Judge alignment lives in :mod:`workbench.review.judge`; it is re-exported here.

Examples
--------
>>> cohen_kappa(["pass", "fail", "pass", "pass"], ["pass", "fail", "fail", "pass"])
0.5
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench import _html, _markdown
from workbench._frames import as_polars
from workbench.review.events import DEFAULT_VOCABULARY, Vocabulary, current_labels
from workbench.review.judge import (
    CorrectedPassRate,
    JudgeAlignment,
    judge_alignment,
    judge_corrected_pass_rate,
    rogan_gladen,
)

__all__ = [
    "Agreement",
    "CorrectedPassRate",
    "JudgeAlignment",
    "agreement",
    "cohen_kappa",
    "disagreements",
    "judge_alignment",
    "judge_corrected_pass_rate",
    "krippendorff_alpha",
    "percent_agreement",
    "rating_table",
    "rogan_gladen",
]


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa of two aligned rating lists (nominal): ``(p_o - p_e) / (1 - p_e)``.

    Returns ``nan`` when it is undefined (no items, or both reviewers always give the
    same single value), like scikit-learn's ``cohen_kappa_score``.
    """
    if len(a) != len(b):
        raise ValueError(f"cohen_kappa needs aligned ratings, got {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return math.nan
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    p_e = sum(count_a[k] * count_b.get(k, 0) for k in count_a) / (n * n)
    if p_e == 1:
        return math.nan
    return (p_o - p_e) / (1 - p_e)


def krippendorff_alpha(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Krippendorff's alpha for nominal data; ``None`` marks a missing rating.

    ``units`` holds one sequence of ratings per item (one slot per reviewer). Items with
    fewer than two ratings are not pairable and are ignored. Computational form with the
    coincidence matrix ``o_ck``: ``alpha = 1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k``.
    Returns ``nan`` when undefined (fewer than two pairable values, or one value only).

    Examples
    --------
    >>> round(krippendorff_alpha([["a", "a"], ["b", "b"], ["a", "b"], ["a", None]]), 4)
    0.4444
    """
    disagree = 0.0
    totals: Counter[Hashable] = Counter()
    for unit in units:
        values = [v for v in unit if v is not None and not (isinstance(v, float) and math.isnan(v))]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        totals.update(counts)
        # ordered pairs of different values within the unit, weighted 1/(m-1)
        disagree += (m * m - sum(c * c for c in counts.values())) / (m - 1)
    n = sum(totals.values())
    if n < 2:
        return math.nan
    expected = (n * n - sum(c * c for c in totals.values())) / (n - 1)
    if expected == 0:
        return math.nan
    return 1 - disagree / expected


def percent_agreement(units: Sequence[Sequence[Hashable | None]]) -> float:
    """Share of pairable items on which every rating is the same."""
    rated = [[v for v in unit if v is not None] for unit in units]
    rated = [values for values in rated if len(values) >= 2]
    if not rated:
        return math.nan
    return sum(len(set(values)) == 1 for values in rated) / len(rated)


def _current(labels: Any) -> pl.DataFrame:
    return current_labels(as_polars(labels, name="labels"))


def rating_table(
    labels: Any,
    *,
    field: str = "verdict",
    category: str | None = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
) -> pl.DataFrame:
    """One row per trace, one column per reviewer, holding that reviewer's rating (null = not rated).

    ``field`` is ``"verdict"`` or ``"failed"`` (pass/fail through ``vocabulary``); with
    ``category`` the rating is ``"yes"``/``"no"`` for that category.
    """
    current = _current(labels)
    if category is not None:
        value = (
            pl.when(pl.col("categories").list.contains(category)).then(pl.lit("yes")).otherwise(pl.lit("no"))
        )
    elif field == "failed":
        value = vocabulary.failed_expr().replace_strict({True: "fail", False: "pass"}, default=None)
    elif field == "verdict":
        value = pl.col("verdict")
    else:
        raise ValueError(f"field must be 'verdict' or 'failed', got {field!r}")
    long = current.select("trace_id", "reviewer", value.cast(pl.String).alias("rating"))
    if long.is_empty():
        return pl.DataFrame(schema={"trace_id": pl.String})
    wide = long.pivot(on="reviewer", index="trace_id", values="rating", aggregate_function="last")
    reviewers = sorted(c for c in wide.columns if c != "trace_id")
    return wide.select("trace_id", *reviewers).sort("trace_id")


def _units(table: pl.DataFrame, reviewers: Sequence[str]) -> list[tuple[Any, ...]]:
    return table.select(list(reviewers)).rows() if reviewers else []


@dataclass(frozen=True, repr=False)
class Agreement:
    """Agreement between reviewers per field (verdict, pass/fail, each category)."""

    summary: pl.DataFrame
    pairs: pl.DataFrame
    disagreements: pl.DataFrame = field(repr=False)

    def to_frame(self) -> pl.DataFrame:
        """One row per field: items, reviewers, percent agreement, alpha, kappa (two reviewers)."""
        return self.summary

    def __repr__(self) -> str:
        return self.to_markdown()

    def to_markdown(self) -> str:
        lines = ["| field | items | percent agreement | alpha | kappa |", "|---|---|---|---|---|"]
        for row in self.summary.iter_rows(named=True):
            cells = [_fmt(row[k]) for k in ("percent_agreement", "krippendorff_alpha", "cohen_kappa")]
            lines.append(f"| {_markdown.cell(row['field'])} | {row['n_items']} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        sections = [
            _html.section("Per field", _html.frame_table(self.summary)),
            _html.section("Reviewer pairs", _html.frame_table(self.pairs)),
            _html.section(
                f"Disagreement queue ({len(self.disagreements)} traces)",
                _html.frame_table(self.disagreements, max_rows=20),
            ),
        ]
        return _html.report("Reviewer agreement", sections)


def _fmt(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def agreement(
    labels: Any,
    *,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    categories: Sequence[str] | None = None,
    reviewers: Sequence[str] | None = None,
) -> Agreement:
    """Agreement on verdict, on pass/fail, and on each category, over the current labels.

    Only traces rated by at least two reviewers count. ``categories`` defaults to every
    category used; ``reviewers`` to everyone. Kappa is filled when exactly two reviewers
    rate; the ``pairs`` frame has kappa for every reviewer pair.

    Examples
    --------
    >>> from workbench.review.events import events_frame, new_label
    >>> labels = events_frame([new_label("t1", "ana", "pass"), new_label("t1", "bo", "pass"),
    ...                        new_label("t2", "ana", "fail"), new_label("t2", "bo", "pass")])
    >>> agreement(labels).to_frame()["percent_agreement"][0]
    0.5
    """
    current = _current(labels)
    if reviewers is not None:
        current = current.filter(pl.col("reviewer").is_in(list(reviewers)))
    if categories is None:
        categories = sorted(set(current["categories"].explode().drop_nulls().to_list()))
    fields: list[tuple[str, pl.DataFrame]] = [
        ("verdict", rating_table(current, field="verdict")),
        ("pass/fail", rating_table(current, field="failed", vocabulary=vocabulary)),
    ] + [(f"category: {c}", rating_table(current, category=c)) for c in categories]
    summary_rows, pair_rows = [], []
    for name, table in fields:
        raters = [c for c in table.columns if c != "trace_id"]
        units = [u for u in _units(table, raters) if sum(v is not None for v in u) >= 2]
        kappa = math.nan
        for a, b in itertools.combinations(raters, 2):
            both = table.filter(pl.col(a).is_not_null() & pl.col(b).is_not_null())
            k = cohen_kappa(both[a].to_list(), both[b].to_list())
            pair_rows.append(
                {"field": name, "reviewer_a": a, "reviewer_b": b, "n_items": len(both),
                 "percent_agreement": percent_agreement(both.select(a, b).rows()), "cohen_kappa": k}
            )  # fmt: skip
            if len(raters) == 2:
                kappa = k
        summary_rows.append(
            {"field": name, "n_items": len(units), "n_reviewers": len(raters),
             "percent_agreement": percent_agreement(units), "krippendorff_alpha": krippendorff_alpha(units),
             "cohen_kappa": kappa}
        )  # fmt: skip
    summary_schema = {"field": pl.String, "n_items": pl.Int64, "n_reviewers": pl.Int64,
                      "percent_agreement": pl.Float64, "krippendorff_alpha": pl.Float64, "cohen_kappa": pl.Float64}  # fmt: skip
    pair_schema = {"field": pl.String, "reviewer_a": pl.String, "reviewer_b": pl.String, "n_items": pl.Int64,
                   "percent_agreement": pl.Float64, "cohen_kappa": pl.Float64}  # fmt: skip
    return Agreement(
        summary=pl.DataFrame(summary_rows, schema=summary_schema),
        pairs=pl.DataFrame(pair_rows, schema=pair_schema),
        disagreements=disagreements(current, vocabulary=vocabulary),
    )


def disagreements(labels: Any, *, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> pl.DataFrame:
    """The disagreement queue: traces whose reviewers differ on verdict or categories.

    Columns ``trace_id, n_reviewers, differs_on`` (``verdict`` and/or the categories not
    shared by every reviewer), ``ratings`` (``"reviewer: verdict [categories]"``). Traces
    with a pass/fail split come first; use ``["trace_id"].to_list()`` as a review queue.
    """
    current = _current(labels).sort("trace_id", "reviewer")
    rows = []
    for (trace_id,), group in current.group_by("trace_id", maintain_order=True):
        if len(group) < 2:
            continue
        verdicts = group["verdict"].to_list()
        sets = [set(c or []) for c in group["categories"].to_list()]
        split = set(sets[0].union(*sets)) - set(sets[0].intersection(*sets))
        differs = (["verdict"] if len(set(verdicts)) > 1 else []) + sorted(split)
        if not differs:
            continue
        failed = {v in vocabulary.failing for v in verdicts}
        ratings = [
            f"{r}: {v}" + (f" [{', '.join(c)}]" if c else "")
            for r, v, c in group.select("reviewer", "verdict", "categories").rows()
        ]
        rows.append((trace_id, len(group), len(failed) > 1, differs, ratings))
    schema = {"trace_id": pl.String, "n_reviewers": pl.Int64, "pass_fail_split": pl.Boolean,
              "differs_on": pl.List(pl.String), "ratings": pl.List(pl.String)}  # fmt: skip
    frame = pl.DataFrame(rows, schema=schema, orient="row")
    return frame.sort(["pass_fail_split", "trace_id"], descending=[True, False])
