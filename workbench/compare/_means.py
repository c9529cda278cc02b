"""Rows for small counts compared by their mean (tool calls per trace), one per slice.

A median of a count that is 1 for most traces cannot move; the mean can. Independent
cohorts use the unpooled (Welch) standard error; clustered and paired designs the
cluster-robust standard error of :func:`_robust.robust_table` (tasks as clusters make it
paired). Normal interval and z-test.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench.compare import _stats
from workbench.compare._robust import SLICE, ClusterCells, cluster_cells, robust_table
from workbench.compare.cohorts import COHORT
from workbench.compare.design import INDEPENDENT, UNIT, Design


def mean_rows(
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
    """Compare the metric's mean between cohorts in every slice.

    ``cells`` (:func:`_robust.cluster_cells` of ``frame``) is computed when a clustered
    or paired design needs it and not given.
    """
    data = frame.select(SLICE, COHORT, UNIT, pl.col(metric).cast(pl.Float64).alias("_s")).drop_nulls("_s")
    agg = data.group_by(SLICE, COHORT).agg(
        pl.len().alias("n"), pl.col("_s").mean().alias("m"), pl.col("_s").var().alias("v")
    )
    base = agg.filter(pl.col(COHORT) == baseline).select(SLICE, n_a="n", p_a="m", v_a="v")
    cand = agg.filter(pl.col(COHORT) == candidate).select(SLICE, n_b="n", p_b="m", v_b="v")
    means = base.join(cand, on=SLICE, how="inner").sort(SLICE)
    if means.is_empty():
        return means
    if design.kind == INDEPENDENT:
        se = np.sqrt((means["v_a"] / means["n_a"] + means["v_b"] / means["n_b"]).fill_null(np.nan).to_numpy())
        method = "difference of means, Welch standard error; z-test"
    else:
        cells = cells if cells is not None else cluster_cells(frame, candidate=candidate)
        table = robust_table(frame[metric], means.select(SLICE, "n_a", "n_b", "p_a", "p_b"), cells)
        se = table["se"].to_numpy()
        kind = "paired" if design.paired else "clustered"
        method = f"{kind} ({design.unit_key}): difference of means, cluster-robust standard error; z-test"
    diff = (means["p_b"] - means["p_a"]).to_numpy()
    z = _stats.z_quantile(confidence)
    return means.select(
        SLICE,
        pl.col("n_a").cast(pl.Int64).alias("n_baseline"),
        pl.col("n_b").cast(pl.Int64).alias("n_candidate"),
        pl.col("p_a").alias("baseline_value"),
        pl.col("p_b").alias("candidate_value"),
        pl.Series("difference", diff),
        pl.Series("ci_low", diff - z * se),
        pl.Series("ci_high", diff + z * se),
        pl.Series("p_value", _stats.z_test_p(diff, se)),
        pl.Series("mde", _stats.mde_from_se(se, alpha=alpha)),
        pl.lit(method).alias("method"),
        pl.lit("traces").alias("unit"),
    )
