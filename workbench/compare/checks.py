"""Warnings that qualify a comparison: mix shift, Simpson's paradox, version drift, overlap.

Each function returns a list of plain sentences (never HTML); the result object
escapes them when it renders.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"trace_id": ["a", "a"], "_cohort": ["v1", "v2"]})
>>> overlap_warnings(frame, baseline="v1", candidates=("v2",))
['1 trace is in both v1 and v2: the cohorts overlap, so the comparison is not between independent groups']
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from workbench.compare.cohorts import COHORT

ALL = "(all)"


def overlap_warnings(assigned: pl.DataFrame, *, baseline: str, candidates: tuple[str, ...]) -> list[str]:
    """Traces that fall into the baseline and a candidate cohort at once."""
    out = []
    base_ids = assigned.filter(pl.col(COHORT) == baseline).select("trace_id")
    for cand in candidates:
        both = assigned.filter(pl.col(COHORT) == cand).join(base_ids, on="trace_id", how="semi")["trace_id"].n_unique()
        if both:
            noun = "trace is" if both == 1 else "traces are"
            out.append(
                f"{both:,} {noun} in both {baseline} and {cand}: the cohorts overlap, so the comparison "
                "is not between independent groups"
            )
    return out


def mix_shift_warnings(
    assigned: pl.DataFrame, column: str, *, baseline: str, candidates: tuple[str, ...], alpha: float
) -> list[str]:
    """A chi-square test of the composition of ``column`` (intent, cluster...) per candidate."""
    out = []
    values = pl.col(column).cast(pl.String).fill_null("(none)")
    for cand in candidates:
        counts = (
            assigned.filter(pl.col(COHORT).is_in([baseline, cand]))
            .group_by(values.alias("_value"), COHORT)
            .len()
            .pivot(on=COHORT, index="_value", values="len")
            .fill_null(0)
        )
        if baseline not in counts.columns or cand not in counts.columns or counts.height < 2:
            continue
        table = np.vstack([counts[baseline].to_numpy(), counts[cand].to_numpy()]).astype(float)
        p = chi_square_p(table)
        if p >= alpha:
            continue
        share = table / table.sum(axis=1, keepdims=True)
        change = share[1] - share[0]
        top = np.argsort(-np.abs(change))[:3]
        parts = ", ".join(
            f"{counts['_value'][int(i)]} {share[0, i]:.0%} → {share[1, i]:.0%}" for i in top
        )
        out.append(
            f"mix shift in {column} between {baseline} and {cand} (chi-square p = {p:.2g}): {parts}; "
            "overall rates mix these segments, so read the per-slice rows too"
        )
    return out


def chi_square_p(table: np.ndarray) -> float:
    """Pearson chi-square test of independence (scipy ``chi2_contingency`` without correction)."""
    from scipy.special import chdtrc

    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return float(chdtrc((table.shape[0] - 1) * (table.shape[1] - 1), statistic))


def simpson_warnings(rows: pl.DataFrame, *, slice_column: str | None) -> list[str]:
    """Claimed overall changes whose slice-standardised difference points the other way.

    For every overall proportion row with a significant verdict, the standardised
    difference ``Σ_s w_s (p_cand,s - p_base,s)`` (``w_s`` = pooled share of slice ``s``)
    is compared with the overall difference; opposite signs are Simpson's paradox.
    """
    if slice_column is None:
        return []
    out = []
    claimed = rows.filter(
        (pl.col("slice") == ALL) & (pl.col("kind") == "proportion")
        & pl.col("verdict").is_in(["improved", "regressed", "increased", "decreased"])
    )
    for row in claimed.iter_rows(named=True):
        parts = rows.filter(
            (pl.col("candidate") == row["candidate"]) & (pl.col("metric") == row["metric"]) & (pl.col("slice") != ALL)
        )
        if parts.height < 2:
            continue
        weight = (parts["n_baseline"] + parts["n_candidate"]).to_numpy().astype(float)
        diffs = (parts["candidate_value"] - parts["baseline_value"]).to_numpy()
        standardised = float(np.sum(weight * diffs) / weight.sum())
        if np.sign(standardised) != np.sign(row["difference"]) and standardised != 0:
            out.append(
                f"Simpson's paradox check: {row['metric']} changed by {row['difference']:+.1%} overall "
                f"({row['candidate']} vs baseline) but by {standardised:+.1%} within {slice_column} segments "
                "(weighted by segment size): the overall change comes from the mix, not from the segments"
            )
    return out


def version_warnings(
    assigned: pl.DataFrame,
    *,
    baseline: str,
    candidates: tuple[str, ...],
    labels: pl.DataFrame | None,
    feedback: Any,
) -> list[str]:
    """Different taxonomy, judge or dataset versions between the cohorts."""
    out = []
    cohorts = assigned.select("trace_id", COHORT)
    sources: list[tuple[str, pl.DataFrame]] = []
    if labels is not None and "taxonomy_version" in labels.columns:
        sources.append(("label taxonomy version", labels.select("trace_id", pl.col("taxonomy_version").alias("_v"))))
    if feedback is not None:
        from workbench._frames import as_polars

        fb = as_polars(feedback, name="feedback")
        if {"annotator_kind", "annotator_id", "trace_id"} <= set(fb.columns):
            judges = fb.filter(pl.col("annotator_kind") == "llm")
            name = pl.col("name") if "name" in fb.columns else pl.lit("")
            sources.append(("judge", judges.select("trace_id", pl.concat_str([name, pl.lit(" by "),
                                                                                pl.col("annotator_id")]).alias("_v"))))
    if "dataset_version" in assigned.columns:
        sources.append(("dataset version", assigned.select("trace_id", pl.col("dataset_version").alias("_v"))))
    for what, table in sources:
        joined = table.with_columns(pl.col("_v").cast(pl.String)).drop_nulls("_v").join(cohorts, on="trace_id")
        seen = {k: sorted(set(v)) for k, v in joined.group_by(COHORT).agg(pl.col("_v").unique()).iter_rows()}
        for cand in candidates:
            a, b = seen.get(baseline), seen.get(cand)
            if a and b and a != b:
                out.append(
                    f"{what} differs: {baseline} has {', '.join(a)}; {cand} has {', '.join(b)}; "
                    "a change in the measuring instrument can look like a change in the agent"
                )
    return out
