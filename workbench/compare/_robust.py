"""Cluster-robust standard errors of a difference of means, every slice at once (numpy).

Rows are traces with a slice, a cohort, an integer unit (session or task) and a value.
A *cell* is the rows of one (slice, unit, cohort); a *cluster* the rows of one (slice,
unit). :func:`cluster_cells` packs slice, unit and cohort into one integer key per row
and sorts the keys once: cells are then runs of equal keys and, the cohort being the
lowest bit, clusters are runs of cells. :func:`robust_table` reuses that for every
metric: per metric it is a few segment sums over arrays, with no group-by on strings
and no join.

The standard error is the slope's cluster-robust SE of ``OLS(value ~ 1 + candidate)``
in each slice (statsmodels ``cov_type="cluster"``), the same as
:func:`workbench.compare._stats.cluster_robust_difference`:

``SE² = G/(G-1) · (N-1)/(N-2) · Σ_g ψ_g²``, ``ψ_g = Σ_{i∈g} ±(s_i - s̄_cohort) / n_cohort``.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"_slice": ["(all)"] * 6, "_cohort": ["a", "a", "a", "b", "b", "b"],
...                       "_unit": [1, 1, 2, 3, 3, 4], "rate": [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]})
>>> cells = cluster_cells(frame, candidate="b")
>>> means = pl.DataFrame({"_slice": ["(all)"], "n_a": [3], "n_b": [3], "p_a": [2 / 3], "p_b": [1 / 3]})
>>> table = robust_table(frame["rate"], means, cells)
>>> table["g"].to_list(), round(table["se"][0], 6)  # statsmodels cluster OLS: 0.453609
([4], 0.453609)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from workbench.compare.cohorts import COHORT
from workbench.compare.design import UNIT

SLICE = "_slice"


@dataclass(frozen=True)
class ClusterCells:
    """The (slice, unit, cohort) cells of a frame's rows, shared by every metric.

    Attributes
    ----------
    slices
        Slice names; ``cell_slice`` indexes them.
    order
        Row permutation that sorts the rows by cell.
    cell_starts
        Start of each cell in the sorted rows.
    cell_slice, cell_candidate, cell_cluster
        Per cell: slice index, whether it is the candidate cohort's, cluster index
        (cells are sorted by slice, then unit, then cohort).
    """

    slices: tuple[str, ...]
    order: np.ndarray
    cell_starts: np.ndarray
    cell_slice: np.ndarray
    cell_candidate: np.ndarray
    cell_cluster: np.ndarray


def cluster_cells(frame: pl.DataFrame, *, candidate: str) -> ClusterCells:
    """Sort the rows of ``frame`` (``_slice``, ``_cohort``, integer ``_unit``) into cells.

    Every row not in the ``candidate`` cohort is a baseline row, as in a regression on
    the candidate indicator (callers pass the two cohorts only).
    """
    if frame.is_empty():
        empty = np.empty(0, dtype=np.int64)
        return ClusterCells((), empty, empty, empty, empty.astype(bool), empty)
    slices = tuple(frame[SLICE].unique().sort().to_list())
    codes = frame[SLICE].cast(pl.Enum(list(slices))).to_physical().to_numpy().astype(np.int64)
    units = frame[UNIT].to_numpy().astype(np.int64)
    units -= units.min()
    span = int(units.max()) + 1
    keys = (codes * span + units) * 2 + (frame[COHORT] == candidate).to_numpy()
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    cell_starts = _run_starts(keys)
    cell_keys = keys[cell_starts]
    cluster_keys = cell_keys >> 1
    return ClusterCells(
        slices=slices,
        order=order,
        cell_starts=cell_starts,
        cell_slice=cluster_keys // span,
        cell_candidate=(cell_keys & 1).astype(bool),
        cell_cluster=np.cumsum(np.r_[True, cluster_keys[1:] != cluster_keys[:-1]]) - 1,
    )


def robust_table(values: pl.Series, means: pl.DataFrame, cells: ClusterCells) -> pl.DataFrame:
    """Per slice of ``means``: the cluster-robust SE of the difference of means and its parts.

    Parameters
    ----------
    values
        The metric, row-aligned with the frame ``cells`` was built from (null = no value).
    means
        One row per slice: ``_slice, n_a, n_b, p_a, p_b`` (baseline and candidate counts
        and means of the non-null values). Other slices are ignored.
    cells
        :func:`cluster_cells` of the frame.

    Returns
    -------
    polars.DataFrame
        ``means`` (same rows, same order) plus ``ss`` (``Σ_g ψ_g²``), ``g`` (clusters),
        ``rr_a``, ``rr_b`` (per cohort, the sum of squared cell residual totals
        ``(Σ_{i∈cell} s_i - n_cell · p)²``, for Miller's clustered SE of one mean),
        ``c_a``, ``c_b`` (cells per cohort) and ``se``.
    """
    n_slices = means.height
    position = {name: i for i, name in enumerate(means[SLICE].to_list())}
    lookup = np.array([position.get(name, -1) for name in cells.slices], dtype=np.int64)
    filled = values.cast(pl.Float64).fill_null(0.0).to_numpy()[cells.order]
    if not cells.cell_starts.size:
        n_cell = x_cell = np.empty(0)
    elif values.null_count():
        n_cell = np.add.reduceat(values.is_not_null().to_numpy()[cells.order], cells.cell_starts, dtype=float)
        x_cell = np.add.reduceat(filled, cells.cell_starts)
    else:
        n_cell = np.diff(np.r_[cells.cell_starts, filled.size]).astype(float)
        x_cell = np.add.reduceat(filled, cells.cell_starts)
    cell_slice = lookup[cells.cell_slice]
    active = (n_cell > 0) & (cell_slice >= 0)  # the cells of the non-null rows of ``means``' slices
    cell_slice, cell_b = cell_slice[active], cells.cell_candidate[active]
    n_cell, x_cell, cell_cluster = n_cell[active], x_cell[active], cells.cell_cluster[active]

    n_a, n_b = (means[c].cast(pl.Float64).to_numpy() for c in ("n_a", "n_b"))
    p_a, p_b = (means[c].cast(pl.Float64).to_numpy() for c in ("p_a", "p_b"))
    resid = x_cell - np.where(cell_b, p_b[cell_slice], p_a[cell_slice]) * n_cell
    psi = np.where(cell_b, resid / n_b[cell_slice], -resid / n_a[cell_slice])
    if cell_cluster.size:
        cluster_starts = _run_starts(cell_cluster)
        psi_cluster, cluster_slice = np.add.reduceat(psi, cluster_starts), cell_slice[cluster_starts]
    else:
        psi_cluster, cluster_slice = np.empty(0), cell_slice
    ss = _segment_sums(cluster_slice, psi_cluster**2, n_slices)
    g = np.bincount(cluster_slice, minlength=n_slices)
    parts = {}
    for name, mask in (("a", ~cell_b), ("b", cell_b)):
        parts[f"rr_{name}"] = _segment_sums(cell_slice[mask], resid[mask] ** 2, n_slices)
        parts[f"c_{name}"] = np.bincount(cell_slice[mask], minlength=n_slices)
    big_n = n_a + n_b
    gf = g.astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where((gf > 1) & (big_n > 2), gf / (gf - 1) * (big_n - 1) / (big_n - 2), np.nan)
        se = np.sqrt(factor * ss)
    return means.with_columns(
        pl.Series("ss", ss), pl.Series("g", g, dtype=pl.UInt32),
        pl.Series("rr_a", parts["rr_a"]), pl.Series("c_a", parts["c_a"], dtype=pl.UInt32),
        pl.Series("rr_b", parts["rr_b"]), pl.Series("c_b", parts["c_b"], dtype=pl.UInt32),
        pl.Series("se", se),
    )


def _run_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Indices where a run of equal values starts in a sorted, non-empty array."""
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def _segment_sums(codes: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Sum of ``weights`` per code ``0..n-1``.

    Each code's values are summed with ``np.sum`` (pairwise summation, error ~ eps·log m)
    rather than ``np.bincount`` (sequential, error ~ eps·m over m clusters).
    """
    if codes.size and np.any(codes[1:] < codes[:-1]):
        order = np.argsort(codes, kind="stable")
        codes, weights = codes[order], weights[order]
    bounds = np.searchsorted(codes, np.arange(n + 1))
    return np.array([weights[lo:hi].sum() for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
