"""Rows for skewed continuous metrics (latency, tokens, cost, tool calls), one per slice.

The row's values are the cohorts' medians and the difference is ``median(candidate) -
median(baseline)`` with a percentile bootstrap interval:

- independent: the exact bootstrap distribution of each median is sampled directly
  (:func:`_stats.bootstrap_median_ranks`); Mann-Whitney U test; Hodges-Lehmann shift.
- clustered: units (sessions / tasks) are resampled, not traces (more than
  ``_bootstrap.MAX_BLOCKS`` units are first dealt at random into that many blocks); z-test
  on the bootstrap standard error.
- paired: per task, mean candidate value minus mean baseline value; the median of
  those differences, its bootstrap over tasks, and the Wilcoxon signed-rank test.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from workbench.compare import _stats
from workbench.compare._binary import SLICE
from workbench.compare._bootstrap import cluster_bootstrap_medians, single_threaded_blas
from workbench.compare.cohorts import COHORT
from workbench.compare.design import INDEPENDENT, UNIT, Design

HL_PAIRS = 100_000


def continuous_rows(
    frame: pl.DataFrame,
    metric: str,
    *,
    baseline: str,
    candidate: str,
    design: Design,
    confidence: float,
    alpha: float,
    n_boot: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """Compare the metric's median between cohorts in every slice."""
    groups = (
        frame.select(SLICE, COHORT, UNIT, pl.col(metric).cast(pl.Float64).alias("_v"))
        .filter(pl.col("_v").is_not_null() & pl.col("_v").is_not_nan() & pl.col(COHORT).is_in([baseline, candidate]))
        .group_by(SLICE, COHORT)
        .agg("_v", UNIT)
        .sort(SLICE)
    )
    samples: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    values_col, units_col = groups.get_column("_v"), groups.get_column(UNIT)
    for i, (slice_value, cohort) in enumerate(groups.select(SLICE, COHORT).iter_rows()):
        samples.setdefault(slice_value, {})[cohort] = (values_col[i].to_numpy(), units_col[i].to_numpy())
    rows = []
    with single_threaded_blas():  # small products: BLAS threads only wait on each other
        for slice_value, pair in samples.items():
            if baseline not in pair or candidate not in pair:
                continue
            base, cand = pair[baseline], pair[candidate]
            if design.paired:
                row = _paired(base, cand, design, confidence=confidence, n_boot=n_boot, rng=rng)
            elif design.kind == INDEPENDENT:
                row = _independent(base[0], cand[0], confidence=confidence, n_boot=n_boot, rng=rng)
            else:
                row = _clustered(base, cand, design, confidence=confidence, n_boot=n_boot, rng=rng)
            if row is None:
                continue
            row[SLICE] = slice_value
            row["mde"] = float(_stats.mde_from_se(row.pop("se"), alpha=alpha))
            rows.append(row)
    schema = {
        SLICE: pl.String, "n_baseline": pl.Int64, "n_candidate": pl.Int64, "baseline_value": pl.Float64,
        "candidate_value": pl.Float64, "difference": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
        "p_value": pl.Float64, "mde": pl.Float64, "hl_shift": pl.Float64, "method": pl.String, "unit": pl.String,
    }
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _sorted_median(values: np.ndarray) -> float:
    n = values.size
    return float(values[n // 2]) if n % 2 else float((values[n // 2 - 1] + values[n // 2]) / 2)


def _independent(a: np.ndarray, b: np.ndarray, *, confidence: float, n_boot: int,
                 rng: np.random.Generator) -> dict:
    a, b = np.sort(a), np.sort(b)
    reps = b[_stats.bootstrap_median_ranks(b.size, n_boot, rng)] - a[_stats.bootstrap_median_ranks(a.size, n_boot, rng)]
    low, high = _stats.percentile_interval(reps, confidence=confidence)
    _, p = _stats.mann_whitney(a, b)
    med_a, med_b = _sorted_median(a), _sorted_median(b)
    return {
        "n_baseline": a.size, "n_candidate": b.size, "baseline_value": med_a,
        "candidate_value": med_b, "difference": med_b - med_a,
        "ci_low": low, "ci_high": high, "p_value": p, "se": float(np.std(reps, ddof=1)),
        "hl_shift": _stats.hodges_lehmann_shift(a, b, max_pairs=HL_PAIRS, seed=int(rng.integers(2**31))),
        "method": f"median difference, bootstrap ({n_boot:,}); Mann-Whitney U test",
        "unit": "traces",
    }


def _clustered(base: tuple[np.ndarray, np.ndarray], cand: tuple[np.ndarray, np.ndarray], design: Design, *,
               confidence: float, n_boot: int, rng: np.random.Generator) -> dict:
    medians = [cluster_bootstrap_medians(values, units, n_boot, rng) for values, units in (base, cand)]
    reps = medians[1] - medians[0]
    low, high = _stats.percentile_interval(reps, confidence=confidence)
    a, b = base[0], cand[0]
    med_a, med_b = float(np.median(a)), float(np.median(b))
    se = float(np.std(reps, ddof=1))
    return {
        "n_baseline": a.size, "n_candidate": b.size, "baseline_value": med_a,
        "candidate_value": med_b, "difference": med_b - med_a, "ci_low": low, "ci_high": high,
        "p_value": float(_stats.z_test_p(med_b - med_a, se)), "se": se,
        "hl_shift": _stats.hodges_lehmann_shift(a, b, max_pairs=HL_PAIRS, seed=int(rng.integers(2**31))),
        "method": f"clustered ({design.unit_key}): median difference, cluster bootstrap ({n_boot:,}); z-test",
        "unit": "traces",
    }


def _paired(base: tuple[np.ndarray, np.ndarray], cand: tuple[np.ndarray, np.ndarray], design: Design, *,
            confidence: float, n_boot: int, rng: np.random.Generator) -> dict | None:
    from scipy.stats import wilcoxon

    means = []
    for values, units in (base, cand):
        keys, codes = np.unique(units, return_inverse=True)
        means.append(dict(zip(keys.tolist(), np.bincount(codes, weights=values) / np.bincount(codes), strict=True)))
    shared = sorted(set(means[0]) & set(means[1]))
    if not shared:
        return None
    d = np.sort(np.array([means[1][k] - means[0][k] for k in shared]))
    reps = d[_stats.bootstrap_median_ranks(d.size, n_boot, rng)]
    low, high = _stats.percentile_interval(reps, confidence=confidence)
    p = 1.0 if not np.any(d != 0) else float(wilcoxon(d).pvalue)
    return {
        "n_baseline": d.size, "n_candidate": d.size, "baseline_value": float(np.median(base[0])),
        "candidate_value": float(np.median(cand[0])), "difference": _sorted_median(d),
        "ci_low": low, "ci_high": high, "p_value": p, "se": float(np.std(reps, ddof=1)),
        "hl_shift": math.nan,
        "method": f"paired by {design.unit_key}: median per-task difference, bootstrap ({n_boot:,}); "
                  "Wilcoxon signed-rank test",
        "unit": "tasks",
    }
