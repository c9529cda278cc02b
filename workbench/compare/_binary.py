"""Rows for proportion metrics: one row per slice, all slices computed at once.

Input frames hold the two cohorts' rows with ``_cohort``, ``_slice``, ``_unit`` and the
metric column (0/1, null where the trace has no value). Aggregation is a polars
group-by; the statistics are element-wise numpy over slices.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench.compare import _stats
from workbench.compare.cohorts import COHORT
from workbench.compare.design import CLUSTERED, INDEPENDENT, PAIRED, UNIT, Design

SLICE = "_slice"
FISHER_BELOW = 5.0


def proportion_rows(
    frame: pl.DataFrame,
    metric: str,
    *,
    baseline: str,
    candidate: str,
    design: Design,
    confidence: float,
    alpha: float,
) -> pl.DataFrame:
    """Compare the metric's rate between cohorts in every slice (see the module docstring)."""
    data = frame.select(SLICE, COHORT, UNIT, pl.col(metric).alias("_s")).drop_nulls("_s")
    totals = _per_cohort(data, baseline, candidate)
    if totals.is_empty():
        return totals
    x_a, n_a = totals["x_a"].to_numpy(), totals["n_a"].to_numpy()
    x_b, n_b = totals["x_b"].to_numpy(), totals["n_b"].to_numpy()
    l_a, u_a = _stats.wilson_bounds(x_a, n_a, confidence=confidence)
    l_b, u_b = _stats.wilson_bounds(x_b, n_b, confidence=confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_a, p_b = x_a / n_a, x_b / n_b
    out = totals.with_columns(
        pl.Series("baseline_value", p_a), pl.Series("candidate_value", p_b),
        pl.Series("baseline_low", l_a), pl.Series("baseline_high", u_a),
        pl.Series("candidate_low", l_b), pl.Series("candidate_high", u_b),
        pl.Series("difference", p_b - p_a),
    )
    if design.kind == INDEPENDENT:
        stats = _independent(x_a, n_a, x_b, n_b, confidence=confidence, alpha=alpha)
        unit = "traces"
    elif design.kind == PAIRED:
        stats = _paired(data, totals[SLICE], baseline, candidate, confidence=confidence, alpha=alpha)
        unit = "tasks"
    else:
        stats = _clustered(data, totals, baseline, candidate, design, confidence=confidence, alpha=alpha)
        unit = "traces"
    out = out.with_columns(
        pl.Series("ci_low", stats["ci_low"]), pl.Series("ci_high", stats["ci_high"]),
        pl.Series("p_value", stats["p"]), pl.Series("mde", stats["mde"]),
        pl.Series("method", stats["method"], dtype=pl.String), pl.lit(unit).alias("unit"),
    )
    if "difference" in stats:
        out = out.with_columns(pl.Series("difference", stats["difference"]))
    return out.rename({"n_a": "n_baseline", "n_b": "n_candidate"}).drop("x_a", "x_b")


def _per_cohort(data: pl.DataFrame, baseline: str, candidate: str) -> pl.DataFrame:
    agg = data.group_by(SLICE, COHORT).agg(pl.len().alias("n"), pl.col("_s").sum().alias("x"))
    base = agg.filter(pl.col(COHORT) == baseline).select(SLICE, pl.col("n").alias("n_a"), pl.col("x").alias("x_a"))
    cand = agg.filter(pl.col(COHORT) == candidate).select(SLICE, pl.col("n").alias("n_b"), pl.col("x").alias("x_b"))
    return base.join(cand, on=SLICE, how="inner").sort(SLICE)


def _independent(x_a, n_a, x_b, n_b, *, confidence: float, alpha: float) -> dict:
    low, high = _stats.newcombe_interval(x_a, n_a, x_b, n_b, confidence=confidence)
    _, p_z = _stats.two_proportion_z_test(x_a, n_a, x_b, n_b)
    small = _stats.smallest_expected_cell(x_a, n_a, x_b, n_b) < FISHER_BELOW
    p = p_z.copy()
    if small.any():
        p[small] = _stats.fisher_exact_p(x_a[small], n_a[small], x_b[small], n_b[small])
    method = np.where(small, "Newcombe interval; Fisher exact test", "Newcombe interval; two-proportion z-test")
    pooled = (x_a + x_b) / (n_a + n_b)
    mde = _stats.mde_two_proportions(pooled, n_a, n_b, alpha=alpha)
    return {"ci_low": low, "ci_high": high, "p": p, "mde": mde, "method": method.tolist()}


def _paired(data: pl.DataFrame, slices: pl.Series, baseline: str, candidate: str, *,
            confidence: float, alpha: float) -> dict:
    wide = (
        data.group_by(SLICE, UNIT)
        .agg(
            pl.col("_s").filter(pl.col(COHORT) == baseline).first().alias("a"),
            pl.col("_s").filter(pl.col(COHORT) == candidate).first().alias("b"),
        )
        .drop_nulls(["a", "b"])
    )
    cells = wide.group_by(SLICE).agg(
        ((pl.col("a") == 1) & (pl.col("b") == 1)).sum().alias("both"),
        ((pl.col("a") == 1) & (pl.col("b") == 0)).sum().alias("only_a"),
        ((pl.col("a") == 0) & (pl.col("b") == 1)).sum().alias("only_b"),
        ((pl.col("a") == 0) & (pl.col("b") == 0)).sum().alias("neither"),
        pl.len().alias("pairs"),
    )
    cells = pl.DataFrame({SLICE: slices}).join(cells, on=SLICE, how="left", maintain_order="left").fill_null(0)
    both, only_a, only_b, neither, n = (cells[c].to_numpy().astype(float)
                                        for c in ("both", "only_a", "only_b", "neither", "pairs"))
    low, high = _stats.paired_newcombe_interval(both, only_a, only_b, neither, confidence=confidence)
    p = _stats.mcnemar_exact_p(only_a, only_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        discordance = (only_a + only_b) / n
        diff = (only_b - only_a) / n
        mde = np.where(discordance > 0, _stats.mde_from_se(np.sqrt(discordance / n), alpha=alpha), np.nan)
    method = ["paired: Newcombe paired interval; McNemar exact test"] * len(n)
    return {"ci_low": low, "ci_high": high, "p": p, "mde": mde, "method": method, "difference": diff,
            "pairs": n}


def _clustered(data: pl.DataFrame, totals: pl.DataFrame, baseline: str, candidate: str, design: Design, *,
               confidence: float, alpha: float) -> dict:
    rates = totals.select(SLICE, "n_a", "n_b", (pl.col("x_a") / pl.col("n_a")).alias("p_a"),
                          (pl.col("x_b") / pl.col("n_b")).alias("p_b"))
    table = robust_table(data, rates, baseline=baseline, candidate=candidate)
    se = table["se"].to_numpy()
    g = table["g"].to_numpy()
    p_a, p_b = table["p_a"].to_numpy(), table["p_b"].to_numpy()
    n_a, n_b = table["n_a"].to_numpy().astype(float), table["n_b"].to_numpy().astype(float)
    diff = p_b - p_a
    p = _stats.z_test_p(diff, se)
    if design.kind == CLUSTERED:
        deff_a = _design_effect(table["rr_a"].to_numpy(), table["c_a"].to_numpy(), p_a, n_a)
        deff_b = _design_effect(table["rr_b"].to_numpy(), table["c_b"].to_numpy(), p_b, n_b)
        eff_a, eff_b = n_a / deff_a, n_b / deff_b
        low, high = _stats.newcombe_interval(p_a * eff_a, eff_a, p_b * eff_b, eff_b, confidence=confidence)
        pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
        mde = _stats.mde_two_proportions(pooled, eff_a, eff_b, alpha=alpha)
        method = [
            f"clustered ({design.unit_key}): Newcombe interval on effective n (design effect "
            f"{da:.2f} / {db:.2f}); cluster-robust z-test"
            for da, db in zip(deff_a, deff_b, strict=True)
        ]
    else:
        z = _stats.z_quantile(confidence)
        low, high = diff - z * se, diff + z * se
        mde = _stats.mde_from_se(se, alpha=alpha)
        method = [f"paired by {design.unit_key}, repeated runs: task-clustered robust interval and z-test"] * len(g)
    return {"ci_low": low, "ci_high": high, "p": p, "mde": mde, "method": method}


def robust_table(data: pl.DataFrame, means: pl.DataFrame, *, baseline: str, candidate: str) -> pl.DataFrame:
    """Per slice: cluster-robust SE of the difference of means (``se``), clusters ``g``, and
    per cohort the sum of squared cluster residual totals (``rr_a``, ``rr_b``) and cluster
    counts (``c_a``, ``c_b``).

    ``means`` has ``_slice, n_a, n_b, p_a, p_b`` (cohort means). The SE equals statsmodels'
    OLS cluster-robust SE of the cohort indicator (:func:`_stats.cluster_robust_difference`).
    """
    cells = (
        data.group_by(SLICE, UNIT, COHORT)
        .agg(pl.len().alias("n_c"), pl.col("_s").sum().alias("x_c"))
        .join(means, on=SLICE)
        .with_columns(is_b=pl.col(COHORT) == candidate)
        .with_columns(resid=pl.col("x_c") - pl.when("is_b").then("p_b").otherwise("p_a") * pl.col("n_c"))
        .with_columns(
            psi=pl.when("is_b").then(pl.col("resid") / pl.col("n_b")).otherwise(-pl.col("resid") / pl.col("n_a"))
        )
    )
    robust = (
        cells.group_by(SLICE, UNIT).agg(pl.col("psi").sum())
        .group_by(SLICE).agg((pl.col("psi") ** 2).sum().alias("ss"), pl.len().alias("g"))
    )
    miller = cells.group_by(SLICE, COHORT).agg((pl.col("resid") ** 2).sum().alias("rr"), pl.len().alias("c"))
    table = means.join(robust, on=SLICE, how="left", maintain_order="left")
    for name, cohort in (("a", baseline), ("b", candidate)):
        part = miller.filter(pl.col(COHORT) == cohort).select(
            SLICE, pl.col("rr").alias(f"rr_{name}"), pl.col("c").alias(f"c_{name}")
        )
        table = table.join(part, on=SLICE, how="left", maintain_order="left")
    g = table["g"].to_numpy().astype(float)
    big_n = (table["n_a"] + table["n_b"]).to_numpy().astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where((g > 1) & (big_n > 2), g / (g - 1) * (big_n - 1) / (big_n - 2), np.nan)
        se = np.sqrt(factor * table["ss"].to_numpy())
    return table.with_columns(pl.Series("se", se))


def _design_effect(resid_sq, clusters, p, n) -> np.ndarray:
    """Clustered variance over binomial variance (Miller's SE², ``C/(C-1)``), at least 1."""
    c = np.asarray(clusters, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        clustered = np.where(c > 1, c / (c - 1) * np.asarray(resid_sq, dtype=float) / n**2, np.nan)
        binomial = p * (1 - p) / n
        deff = np.where(binomial > 0, clustered / binomial, 1.0)
    return np.where(np.isfinite(deff), np.maximum(deff, 1.0), 1.0)
