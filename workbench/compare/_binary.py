"""Rows for proportion metrics: one row per slice, all slices computed at once.

Input frames hold the two cohorts' rows with ``_cohort``, ``_slice``, ``_unit`` and the
metric column (0/1, null where the trace has no value). Counts per slice and cohort are a
polars group-by; the cluster-robust parts come from :func:`_robust.robust_table` (numpy on
integer keys); the statistics are element-wise numpy over slices.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench.compare import _stats
from workbench.compare._robust import SLICE, ClusterCells, cluster_cells, robust_table
from workbench.compare.cohorts import COHORT
from workbench.compare.design import CLUSTERED, INDEPENDENT, PAIRED, UNIT, Design

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
    cells: ClusterCells | None = None,
) -> pl.DataFrame:
    """Compare the metric's rate between cohorts in every slice (see the module docstring).

    ``cells`` (:func:`_robust.cluster_cells` of ``frame``) is computed when a clustered
    design needs it and not given; callers share it between metrics.
    """
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
        cells = cells if cells is not None else cluster_cells(frame, candidate=candidate)
        stats = _clustered(frame[metric], totals, cells, design, confidence=confidence, alpha=alpha)
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


def _clustered(values: pl.Series, totals: pl.DataFrame, cells: ClusterCells, design: Design, *,
               confidence: float, alpha: float) -> dict:
    rates = totals.select(SLICE, "n_a", "n_b", (pl.col("x_a") / pl.col("n_a")).alias("p_a"),
                          (pl.col("x_b") / pl.col("n_b")).alias("p_b"))
    table = robust_table(values, rates, cells)
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


def _design_effect(resid_sq, clusters, p, n) -> np.ndarray:
    """Clustered variance over binomial variance (Miller's SE², ``C/(C-1)``), at least 1."""
    c = np.asarray(clusters, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        clustered = np.where(c > 1, c / (c - 1) * np.asarray(resid_sq, dtype=float) / n**2, np.nan)
        binomial = p * (1 - p) / n
        deff = np.where(binomial > 0, clustered / binomial, 1.0)
    return np.where(np.isfinite(deff), np.maximum(deff, 1.0), 1.0)
