"""Cluster bootstrap of a median: resample whole units (sessions / tasks), not traces.

Units are summarised as histograms over value bins, a resample as how many times each
unit (or block of units) was drawn, and a resampled histogram as ``times @ histogram``.
Only the bin holding the median matters, so the product is taken in two steps: counts
per group of ``BIN_GROUP`` bins for every resample, then the single bins of the group
that holds each resample's median. All counts are whole numbers, summed in float32 while a
resample holds fewer than ``2**24`` values (else float64), so every sum is exact and the
result is bit for bit that of the full float64 product (tested against the full product
and against brute-force medians of the resampled values).
Resamples are drawn and summed in chunks of about ``CHUNK_CELLS`` block draws (numpy's
bounded integers come from one stream, so the draws are those of a single call).

The products are small, so OpenBLAS threads only wait on each other, badly so on a busy
machine: callers run the loop inside :func:`single_threaded_blas`.

Examples
--------
>>> import numpy as np
>>> values = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
>>> units = np.array([0, 0, 1, 1, 2, 2])
>>> medians = cluster_bootstrap_medians(values, units, 1000, np.random.default_rng(0))
>>> sorted(set(medians.tolist())) == [1.0, 2.0, 3.0, 4.0, 5.0]
True
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

MAX_BLOCKS = 500
MAX_BINS = 128
BIN_GROUP = 16
FLOAT32_EXACT = 2**24  # float32 holds every whole number below this
CHUNK_CELLS = 250_000  # resamples x blocks per chunk: temporaries of ~2 MB stay in cache


def cluster_bootstrap_medians(values: np.ndarray, units: np.ndarray, n_boot: int,
                              rng: np.random.Generator) -> np.ndarray:
    """Medians of ``n_boot`` resamples of whole units (sessions / tasks), not traces.

    More than ``MAX_BLOCKS`` units are dealt at random into that many blocks (a block of
    random units is itself an independent unit). Values are summarised as a histogram
    per block: exact value points when there are few distinct values, otherwise
    ``MAX_BINS`` equal-count bins over the central quantiles where a resampled median
    can fall (16 standard errors wide), with linear interpolation inside a bin. A
    resample's histogram is then a weight vector times the block histograms.

    Parameters
    ----------
    values
        One value per trace.
    units
        The unit (any sortable id) of each trace.
    n_boot
        Number of resamples.
    rng
        Random generator (draws: one permutation when units are dealt into blocks, then
        ``n_boot x blocks`` block indices).

    Returns
    -------
    numpy.ndarray
        ``n_boot`` resampled (lower) medians.
    """
    _, units = np.unique(units, return_inverse=True)
    n_units = int(units.max()) + 1
    if n_units > MAX_BLOCKS:
        units = rng.permutation(MAX_BLOCKS * (n_units // MAX_BLOCKS + 1))[:n_units][units] % MAX_BLOCKS
        n_blocks = MAX_BLOCKS
    else:
        n_blocks = n_units
    # more than MAX_BINS distinct values among the first few settles it without sorting them all
    distinct = np.unique(values[: 4 * MAX_BINS])
    exact = distinct.size <= MAX_BINS
    if exact and values.size > 4 * MAX_BINS:
        distinct = np.unique(values)
        exact = distinct.size <= MAX_BINS
    if exact:
        edges = distinct
    else:
        width = min(0.5, 4 / np.sqrt(n_units))
        edges = np.unique(np.quantile(values, np.linspace(0.5 - width, 0.5 + width, MAX_BINS + 1)))
    bins = np.searchsorted(edges, values, side="left")  # bin j holds edges[j-1] < v <= edges[j]
    n_bins = edges.size + 1
    histogram = np.bincount(units * n_bins + bins, minlength=n_blocks * n_bins).reshape(n_blocks, n_bins)
    half, below, inside = np.empty(n_boot), np.empty(n_boot), np.empty(n_boot)
    j = np.empty(n_boot, dtype=np.int64)
    # float32 sums whole numbers exactly up to 2**24: enough unless a resample can hold more values
    dtype = np.float32 if n_blocks * int(histogram.sum(axis=1).max()) < FLOAT32_EXACT else np.float64
    groups = bin_groups(histogram, dtype=dtype)
    chunk = max(1, min(n_boot, CHUNK_CELLS // n_blocks))
    offsets = (np.arange(chunk, dtype=np.int32) * n_blocks)[:, None]
    times = np.empty((chunk, n_blocks), dtype=dtype)  # reused: a fresh large array per chunk costs page faults
    one = dtype(1)  # np.add.at's fast path needs the buffer's own scalar type
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        # int32 draws are the same numbers as the default int64 ones (one bounded-uint32 stream)
        draws = rng.integers(0, n_blocks, size=(size, n_blocks), dtype=np.int32)
        draws += offsets[:size]
        counts = times[:size]
        counts.fill(0.0)
        np.add.at(counts.reshape(-1), draws.reshape(-1), one)
        part = slice(start, start + size)
        half[part], j[part], below[part], inside[part] = median_bins(counts, histogram, last=edges.size - 1,
                                                                     groups=groups)
    if exact:
        return edges[j]
    fraction = np.where(inside > 0, (half - below) / np.where(inside > 0, inside, 1), 1.0)
    left = edges[np.maximum(j - 1, 0)]
    return np.where(j > 0, left + np.clip(fraction, 0, 1) * (edges[j] - left), edges[0])


def bin_groups(histogram: np.ndarray, *, dtype=np.float64) -> tuple[np.ndarray, list[np.ndarray]]:
    """Block counts per group of ``BIN_GROUP`` bins, and each group's bins (float, contiguous)."""
    n_blocks, n_bins = histogram.shape
    n_groups = -(-n_bins // BIN_GROUP)
    padded = np.zeros((n_blocks, n_groups * BIN_GROUP), dtype=dtype)
    padded[:, :n_bins] = histogram
    fine = [np.ascontiguousarray(padded[:, g * BIN_GROUP:(g + 1) * BIN_GROUP]) for g in range(n_groups)]
    return padded.reshape(n_blocks, n_groups, BIN_GROUP).sum(axis=2), fine


def median_bins(times: np.ndarray, histogram: np.ndarray, *, last: int,
                groups: tuple[np.ndarray, list[np.ndarray]] | None = None):
    """Locate the median bin of every resampled histogram ``times @ histogram``.

    Parameters
    ----------
    times
        ``(n_boot, n_blocks)`` float: how often each block is in each resample. float32
        is exact while every resample holds fewer than ``2**24`` values.
    histogram
        ``(n_blocks, n_bins)`` integer counts per block and bin.
    last
        Largest bin index to return (bins above it are clipped to it).
    groups
        ``bin_groups(histogram, dtype=times.dtype)``, when the caller reuses it.

    Returns
    -------
    tuple of numpy.ndarray
        Per resample: ``half`` (half its total count), ``j`` (the first bin whose
        cumulative count reaches ``half``, at most ``last``), ``below`` (cumulative count
        before bin ``j``) and ``inside`` (count in bin ``j``); exactly the values read
        off the full ``cumsum(times @ histogram, axis=1)``.
    """
    group_totals, fine = groups if groups is not None else bin_groups(histogram, dtype=times.dtype)
    n_boot = times.shape[0]
    group_cum = np.cumsum(times @ group_totals, axis=1)
    half = group_cum[:, -1] / 2
    group = (group_cum < half[:, None]).sum(axis=1)  # the group where the cumulative count reaches half
    rows = np.arange(n_boot)
    before = np.where(group > 0, group_cum[rows, np.maximum(group - 1, 0)], 0.0)
    counts = np.empty((n_boot, BIN_GROUP), dtype=times.dtype)
    for g in np.unique(group):
        chosen = np.flatnonzero(group == g)
        counts[chosen] = (times if chosen.size == n_boot else times[chosen]) @ fine[g]
    cumulative = before[:, None] + np.cumsum(counts, axis=1)
    position = (cumulative < half[:, None]).sum(axis=1)
    j = group * BIN_GROUP + position
    inside = counts[rows, position]
    below = np.where(position > 0, cumulative[rows, np.maximum(position - 1, 0)], before)
    clipped = np.flatnonzero(j > last)
    if clipped.size:  # median above the last edge: read bin `last` off the full product
        full = times[clipped] @ histogram.astype(float)
        j[clipped] = last
        inside[clipped] = full[:, last]
        below[clipped] = full[:, :last].sum(axis=1) if last > 0 else 0.0
    return half, j, below, inside


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS to one thread inside the block (``threadpoolctl``; a no-op without it).

    Examples
    --------
    >>> with single_threaded_blas():
    ...     pass
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
