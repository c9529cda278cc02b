"""pass^k rows for repeated trials: the chance that all ``k`` runs of a task succeed.

Per task with ``c`` successes in ``n`` runs, ``pass^k = C(c,k)/C(n,k)`` (unbiased);
a cohort's pass^k is the mean over its tasks. The interval is a bootstrap over tasks
(jointly over the shared tasks when paired) and the p-value a z-test on its
standard error.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench.compare import _stats
from workbench.compare._binary import SLICE
from workbench.compare._bootstrap import single_threaded_blas
from workbench.compare.cohorts import COHORT
from workbench.compare.design import UNIT, Design


def pass_k_rows(
    frame: pl.DataFrame,
    failure_column: str,
    *,
    k: int,
    baseline: str,
    candidate: str,
    design: Design,
    confidence: float,
    alpha: float,
    n_boot: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    """One pass^k row per slice (success = not a failure)."""
    tasks = (
        frame.drop_nulls(failure_column)
        .group_by(SLICE, COHORT, UNIT)
        .agg(pl.len().alias("n"), (1 - pl.col(failure_column)).sum().alias("c"))
        .filter(pl.col("n") >= k)
        .sort(SLICE, COHORT, UNIT)  # group-by order is arbitrary: fix it so the bootstrap is reproducible
    )
    tasks = tasks.with_columns(pl.Series("v", _stats.pass_hat_k(tasks["c"].to_numpy(), tasks["n"].to_numpy(), k)))
    rows = []
    with single_threaded_blas():  # small products: BLAS threads only wait on each other
        for (slice_value,), group in tasks.group_by(SLICE, maintain_order=True):
            a = group.filter(pl.col(COHORT) == baseline)
            b = group.filter(pl.col(COHORT) == candidate)
            if a.is_empty() or b.is_empty():
                continue
            if design.paired:
                joined = a.select(UNIT, pl.col("v").alias("a")).join(b.select(UNIT, pl.col("v").alias("b")), on=UNIT)
                if joined.is_empty():
                    continue
                d = (joined["b"] - joined["a"]).to_numpy()
                reps = _resampled_means(d, n_boot, rng)
                diff, n_a, n_b = float(d.mean()), joined.height, joined.height
                va, vb = float(joined["a"].mean()), float(joined["b"].mean())
            else:
                va_arr, vb_arr = a["v"].to_numpy(), b["v"].to_numpy()
                reps = _resampled_means(vb_arr, n_boot, rng) - _resampled_means(va_arr, n_boot, rng)
                va, vb, n_a, n_b = float(va_arr.mean()), float(vb_arr.mean()), va_arr.size, vb_arr.size
                diff = vb - va
            low, high = _stats.percentile_interval(reps, confidence=confidence)
            se = float(np.std(reps, ddof=1))
            rows.append({
                SLICE: slice_value, "n_baseline": n_a, "n_candidate": n_b, "baseline_value": va,
                "candidate_value": vb, "difference": diff, "ci_low": low, "ci_high": high,
                "p_value": float(_stats.z_test_p(diff, se)), "mde": float(_stats.mde_from_se(se, alpha=alpha)),
                "method": f"pass^{k} per task (unbiased), mean over tasks; bootstrap over tasks ({n_boot:,}); z-test",
                "unit": "tasks",
            })
    schema = {
        SLICE: pl.String, "n_baseline": pl.Int64, "n_candidate": pl.Int64, "baseline_value": pl.Float64,
        "candidate_value": pl.Float64, "difference": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
        "p_value": pl.Float64, "mde": pl.Float64, "method": pl.String, "unit": pl.String,
    }
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _resampled_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``n_boot`` bootstrap resamples (multinomial weights, chunked to bound memory)."""
    n = values.size
    out = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(n, 1))
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        weights = rng.multinomial(n, np.full(n, 1 / n), size=size)
        out[start:start + size] = weights @ values / n
    return out
