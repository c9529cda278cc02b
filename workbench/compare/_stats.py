"""Pure numeric functions behind cohort comparison (numpy in, numpy out).

Convention: every difference is ``candidate - baseline``. Functions take arrays and
work element-wise so that one call serves every slice of a comparison. scipy is
imported inside the functions that need it.

The single-proportion Wilson interval lives in :mod:`workbench.stats` (shared with
the review stage); this module adds the two-cohort, paired, clustered, rank and
resampling statistics of ``practice.md`` section 2.

Examples
--------
>>> low, high = newcombe_interval(30, 100, 18, 100)
>>> round(float(low[0]), 4), round(float(high[0]), 4)
(-0.2347, -0.0013)
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from workbench.stats import wilson_interval

POWER = 0.8


def z_quantile(confidence: float) -> float:
    """Two-sided normal quantile, e.g. 1.959964 for ``confidence=0.95``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(1 - (1 - confidence) / 2)


def _normal_two_sided_p(z: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.clip(2 * ndtr(-np.abs(z)), 0.0, 1.0)


def wilson_bounds(successes, n, *, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise :func:`workbench.stats.wilson_interval` (``n == 0`` gives NaN).

    ``successes`` may be fractional (effective counts of clustered data).
    """
    x = np.atleast_1d(np.asarray(successes, dtype=float))
    m = np.atleast_1d(np.asarray(n, dtype=float))
    x, m = np.broadcast_arrays(x, m)
    low = np.empty(x.shape)
    high = np.empty(x.shape)
    for i, (xi, ni) in enumerate(zip(x.ravel(), m.ravel(), strict=True)):
        low.flat[i], high.flat[i] = wilson_interval(min(xi, ni), ni, confidence=confidence)
    return low, high


def newcombe_interval(x_base, n_base, x_cand, n_cand, *, confidence: float = 0.95):
    """Newcombe hybrid score interval for ``p_cand - p_base`` (independent cohorts).

    The same as statsmodels ``confint_proportions_2indep(x_cand, n_cand, x_base, n_base,
    method="newcomb")``. Counts may be fractional (effective sample sizes).
    """
    x_a, n_a, x_b, n_b = (np.asarray(v, dtype=float) for v in (x_base, n_base, x_cand, n_cand))
    p_a, p_b = x_a / n_a, x_b / n_b
    l_a, u_a = wilson_bounds(x_a, n_a, confidence=confidence)
    l_b, u_b = wilson_bounds(x_b, n_b, confidence=confidence)
    d = p_b - p_a
    low = d - np.sqrt((p_b - l_b) ** 2 + (u_a - p_a) ** 2)
    high = d + np.sqrt((u_b - p_b) ** 2 + (p_a - l_a) ** 2)
    return low, high


def two_proportion_z_test(x_base, n_base, x_cand, n_cand):
    """Pooled two-proportion z-test; returns ``(z, two-sided p)``.

    The same as statsmodels ``test_proportions_2indep(..., method="score", correction=False)``
    and ``proportions_ztest``. With no events (or only events) in both cohorts ``p = 1``.
    """
    x_a, n_a, x_b, n_b = (np.asarray(v, dtype=float) for v in (x_base, n_base, x_cand, n_cand))
    pooled = (x_a + x_b) / (n_a + n_b)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (x_b / n_b - x_a / n_a) / np.where(se > 0, se, 1), 0.0)
    return z, _normal_two_sided_p(z)


def fisher_exact_p(x_base, n_base, x_cand, n_cand) -> np.ndarray:
    """Two-sided Fisher exact p-values (scipy ``fisher_exact``), element-wise."""
    from scipy.stats import fisher_exact

    x_a, n_a, x_b, n_b = (np.atleast_1d(np.asarray(v, dtype=np.int64)) for v in (x_base, n_base, x_cand, n_cand))
    out = np.empty(x_a.shape)
    for i in range(x_a.size):
        table = [[x_b[i], n_b[i] - x_b[i]], [x_a[i], n_a[i] - x_a[i]]]
        out[i] = fisher_exact(table).pvalue
    return out


def smallest_expected_cell(x_base, n_base, x_cand, n_cand) -> np.ndarray:
    """Smallest expected count of the 2x2 table under no difference (Fisher when < 5)."""
    x_a, n_a, x_b, n_b = (np.asarray(v, dtype=float) for v in (x_base, n_base, x_cand, n_cand))
    total = n_a + n_b
    events = x_a + x_b
    cells = [n * e / total for n in (n_a, n_b) for e in (events, total - events)]
    return np.minimum.reduce(cells)


def mcnemar_exact_p(only_base, only_cand) -> np.ndarray:
    """Exact McNemar p from the discordant counts (statsmodels ``mcnemar(exact=True)``)."""
    from scipy.special import bdtr

    b = np.asarray(only_base, dtype=np.int64)
    c = np.asarray(only_cand, dtype=np.int64)
    total = b + c
    p = 2 * bdtr(np.minimum(b, c), np.maximum(total, 1), 0.5)
    return np.where(total > 0, np.minimum(p, 1.0), 1.0)


def paired_newcombe_interval(both, only_base, only_cand, neither, *, confidence: float = 0.95):
    """Newcombe square-and-add interval for a paired difference ``p_cand - p_base``.

    Counts come from the paired 2x2 table of an event (e.g. failure): ``both`` had it
    in both cohorts, ``only_base`` only under the baseline, and so on. Newcombe (1998,
    method 10) with the correlation estimate corrected as in Fagerland, Lydersen &
    Laake (2017): Cavo et al.'s table gives ``-0.0621 (-0.1186, -0.0046)``.
    """
    a, b, c, d = (np.asarray(v, dtype=float) for v in (both, only_cand, only_base, neither))
    n = a + b + c + d
    row1, row2, col1, col2 = a + b, c + d, a + c, b + d  # row1: event under candidate
    p1, p2 = row1 / n, col1 / n
    l1, u1 = wilson_bounds(row1, n, confidence=confidence)
    l2, u2 = wilson_bounds(col1, n, confidence=confidence)
    det = a * d - b * c
    margins = row1 * row2 * col1 * col2
    numerator = np.where(det > n / 2, det - n / 2, np.where(det < 0, det, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        psi = np.where(margins > 0, numerator / np.sqrt(np.where(margins > 0, margins, 1)), 0.0)
    est = p1 - p2
    low = est - np.sqrt(np.maximum((p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * psi * (p1 - l1) * (u2 - p2), 0))
    high = est + np.sqrt(np.maximum((p2 - l2) ** 2 + (u1 - p1) ** 2 - 2 * psi * (p2 - l2) * (u1 - p1), 0))
    return low, high


def clustered_se(values, clusters) -> float:
    """Clustered standard error of a mean (Miller 2024, with the ``C/(C-1)`` factor).

    ``SE² = C/(C-1) · Σ_c (Σ_{i∈c} (s_i - s̄))² / n²``; with one observation per cluster
    it is the CLT standard error times ``sqrt(n/(n-1))``.
    """
    s = np.asarray(values, dtype=float)
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    n, n_clusters = s.size, codes.max() + 1 if s.size else 0
    if n_clusters < 2:
        return math.nan
    sums = np.bincount(codes, weights=s - s.mean())
    return math.sqrt(n_clusters / (n_clusters - 1) * np.sum(sums**2)) / n


def cluster_robust_difference(values, in_candidate, clusters) -> tuple[float, float]:
    """Difference of means (candidate - baseline) with a cluster-robust standard error.

    Identical to the slope of ``OLS(values, [1, in_candidate]).fit(cov_type="cluster",
    cov_kwds={"groups": clusters})`` in statsmodels (small-sample factor
    ``G/(G-1) · (N-1)/(N-2)``). Clusters may span both cohorts (paired tasks run by
    both agents): the cross terms are then the covariance that pairing removes.
    """
    s = np.asarray(values, dtype=float)
    cand = np.asarray(in_candidate, dtype=bool)
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    n_b, n_a = int(cand.sum()), int((~cand).sum())
    if n_a == 0 or n_b == 0:
        return math.nan, math.nan
    mean_b, mean_a = s[cand].mean(), s[~cand].mean()
    influence = np.where(cand, (s - mean_b) / n_b, -(s - mean_a) / n_a)
    sums = np.bincount(codes, weights=influence)
    g, total = sums.size, s.size
    if g < 2 or total < 3:
        return mean_b - mean_a, math.nan
    factor = g / (g - 1) * (total - 1) / (total - 2)
    return mean_b - mean_a, math.sqrt(factor * np.sum(sums**2))


def z_test_p(difference, se) -> np.ndarray:
    """Two-sided normal p-value of ``difference / se`` (``p = 1`` when both are 0)."""
    d = np.asarray(difference, dtype=float)
    s = np.asarray(se, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(s > 0, d / np.where(s > 0, s, 1), np.where(d == 0, 0.0, np.nan))
    return _normal_two_sided_p(z)


def mann_whitney(base_sorted: np.ndarray, cand_sorted: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U of the candidate sample and its two-sided p-value.

    Inputs must be sorted. Large samples use the tie-corrected normal approximation
    with continuity correction, exactly as ``scipy.stats.mannwhitneyu(cand, base)``;
    small samples without ties (one side <= 8) use scipy's exact distribution.
    ``U / (n_base · n_cand)`` is the probability that a candidate value exceeds a
    baseline value (ties count half).
    """
    a = np.asarray(base_sorted, dtype=float)
    b = np.asarray(cand_sorted, dtype=float)
    n1, n2 = b.size, a.size
    if n1 == 0 or n2 == 0:
        return math.nan, math.nan
    below = np.searchsorted(a, b, side="left")
    at_or_below = np.searchsorted(a, b, side="right")
    u = float(np.sum(below) + 0.5 * np.sum(at_or_below - below))
    merged = np.sort(np.concatenate([a, b]), kind="stable")
    starts = np.flatnonzero(np.r_[True, merged[1:] != merged[:-1]])
    ties = np.diff(np.r_[starts, merged.size]).astype(float)
    if (n1 <= 8 or n2 <= 8) and not np.any(ties > 1):
        from scipy.stats import mannwhitneyu

        return u, float(mannwhitneyu(b, a, method="exact").pvalue)
    n = n1 + n2
    tie_term = np.sum(ties**3 - ties)
    sd = math.sqrt(n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1))))
    if sd == 0:
        return u, 1.0
    z = (max(u, n1 * n2 - u) - n1 * n2 / 2 - 0.5) / sd
    return u, float(_normal_two_sided_p(np.asarray(z)))


def hodges_lehmann_shift(
    base: np.ndarray, cand: np.ndarray, *, max_pairs: int = 1_000_000, seed: int = 0
) -> float:
    """Hodges-Lehmann shift: the median of all differences ``cand_j - base_i``.

    Exact when ``len(base) * len(cand) <= max_pairs``; beyond that, the median of
    ``max_pairs`` seeded random pairs (an unbiased estimate whose Monte Carlo error is
    about ``1.25 · sd(cand - base) / sqrt(max_pairs)``).
    """
    a = np.asarray(base, dtype=float)
    b = np.asarray(cand, dtype=float)
    if a.size == 0 or b.size == 0:
        return math.nan
    if a.size * b.size <= max_pairs:
        return float(np.median(np.subtract.outer(b, a)))
    rng = np.random.default_rng(seed)
    return float(np.median(b[rng.integers(0, b.size, max_pairs)] - a[rng.integers(0, a.size, max_pairs)]))


def bootstrap_median_ranks(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Ranks (0-based, into the sorted sample) of ``size`` bootstrap medians of ``n`` values.

    The median of a bootstrap resample is exactly the ``k``-th smallest original value
    with ``P(K <= k) = P(Binomial(n, k/n) >= m) = I_{k/n}(m, n-m+1)``, ``m = ceil(n/2)``
    (the lower median). Inverting that CDF draws the resampled medians directly, which
    is the ordinary bootstrap at O(size) cost instead of O(size · n). Above
    ``n = 1000`` the (then symmetric, near-normal) Beta quantile is taken from its normal
    approximation, which moves a drawn rank by far less than one position.
    """
    from scipy.special import betaincinv, ndtri

    if n <= 0:
        raise ValueError("bootstrap of an empty sample")
    m = (n + 1) // 2
    u = rng.random(size)
    if n > 1000:
        a, b = m, n - m + 1
        mean, sd = a / (a + b), math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        quantile = mean + sd * ndtri(u)
    else:
        quantile = betaincinv(m, n - m + 1, u)
    k = np.ceil(n * quantile).astype(np.int64)
    return np.clip(k, 1, n) - 1


def percentile_interval(replicates: np.ndarray, *, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval ``[q_{α/2}, q_{1-α/2}]`` of the replicates."""
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def benjamini_hochberg(p_values) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values; NaN stays NaN and is not counted.

    ``p̃_(i) = min_{j >= i} min(1, m · p_(j) / j)``, as statsmodels
    ``multipletests(method="fdr_bh")``.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = valid.size
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    scaled = p[order] * m / np.arange(1, m + 1)
    out[order] = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    return out


def mde_from_se(se, *, alpha: float = 0.05, power: float = POWER) -> np.ndarray:
    """Minimum detectable effect ``(z_{1-α/2} + z_{power}) · SE`` (two-sided)."""
    factor = z_quantile(1 - alpha) + NormalDist().inv_cdf(power)
    return factor * np.asarray(se, dtype=float)


def mde_two_proportions(pooled_rate, n_base, n_cand, *, alpha: float = 0.05, power: float = POWER):
    """MDE of a difference of two independent proportions at the pooled rate.

    ``(z_{1-α/2} + z_{power}) · sqrt(p(1-p)(1/n_base + 1/n_cand))``; NaN when the pooled
    rate is 0 or 1 (no events to scale the variance by).
    """
    p = np.asarray(pooled_rate, dtype=float)
    se = np.sqrt(p * (1 - p) * (1 / np.asarray(n_base, dtype=float) + 1 / np.asarray(n_cand, dtype=float)))
    return np.where((p > 0) & (p < 1), mde_from_se(se, alpha=alpha, power=power), np.nan)


def pass_hat_k(successes, trials, k: int) -> np.ndarray:
    """Per-task ``pass^k = C(c, k) / C(n, k)``: all ``k`` trials of a task succeed.

    NaN for tasks with fewer than ``k`` trials. Average over tasks for the agent's pass^k.
    """
    from scipy.special import comb

    c = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= k, comb(c, k) / comb(n, k), np.nan)


def pass_at_k(successes, trials, k: int) -> np.ndarray:
    """Per-task ``pass@k = 1 - C(n - c, k) / C(n, k)``: at least one of ``k`` trials succeeds."""
    from scipy.special import comb

    c = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n >= k, 1 - comb(n - c, k) / comb(n, k), np.nan)
