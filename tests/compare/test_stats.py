"""Known answers of the comparison statistics against statsmodels and scipy (to 1e-9)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats as st
import statsmodels.api as sm
from statsmodels.stats import proportion as sm_proportion
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from workbench.compare import _stats

COUNTS = [(0, 20, 3, 25), (5, 40, 12, 38), (30, 100, 18, 100), (200, 1000, 170, 1000), (7, 7, 0, 9), (1, 3, 2, 2)]


@pytest.mark.parametrize("x_a, n_a, x_b, n_b", COUNTS)
def test_newcombe_matches_statsmodels(x_a, n_a, x_b, n_b):
    low, high = _stats.newcombe_interval(x_a, n_a, x_b, n_b)
    ref = confint_proportions_2indep(x_b, n_b, x_a, n_a, method="newcomb")
    assert low[0] == pytest.approx(ref[0], abs=1e-9)
    assert high[0] == pytest.approx(ref[1], abs=1e-9)


def test_wilson_bounds_vectorise_the_shared_wilson():
    x, n = np.array([0, 3, 50, 20]), np.array([20, 30, 100, 20])
    low, high = _stats.wilson_bounds(x, n, confidence=0.9)
    ref_low, ref_high = proportion_confint(x, n, alpha=0.1, method="wilson")
    np.testing.assert_allclose(low, ref_low, atol=1e-9)
    np.testing.assert_allclose(high, ref_high, atol=1e-9)


@pytest.mark.parametrize("x_a, n_a, x_b, n_b", COUNTS[:4])
def test_two_proportion_z_test_matches_statsmodels(x_a, n_a, x_b, n_b):
    z, p = _stats.two_proportion_z_test(x_a, n_a, x_b, n_b)
    ref = sm_proportion.test_proportions_2indep(x_b, n_b, x_a, n_a, method="score", correction=False)
    ref_z, ref_p = proportions_ztest([x_b, x_a], [n_b, n_a])
    assert float(p) == pytest.approx(ref.pvalue, abs=1e-9)
    assert float(p) == pytest.approx(ref_p, abs=1e-9)
    assert float(z) == pytest.approx(ref_z, abs=1e-9)


def test_fisher_exact_matches_scipy():
    p = _stats.fisher_exact_p([1, 0, 4], [10, 12, 9], [6, 5, 4], [11, 12, 9])
    for value, table in zip(p, [[[6, 5], [1, 9]], [[5, 7], [0, 12]], [[4, 5], [4, 5]]], strict=True):
        assert value == pytest.approx(st.fisher_exact(table).pvalue, abs=1e-12)
    assert _stats.smallest_expected_cell(1, 10, 6, 11)[()] < 5


@pytest.mark.parametrize("b, c", [(0, 0), (3, 11), (11, 3), (20, 25), (0, 9), (150, 120)])
def test_mcnemar_exact_matches_statsmodels(b, c):
    ref = mcnemar([[40, b], [c, 30]], exact=True).pvalue
    assert float(_stats.mcnemar_exact_p(b, c)) == pytest.approx(ref, abs=1e-9)
    assert float(_stats.mcnemar_exact_p(b, c)) == pytest.approx(st.binomtest(min(b, c), max(b + c, 1)).pvalue if b + c else 1.0, abs=1e-9)


def test_paired_newcombe_known_answer():
    # Fagerland, Lydersen & Laake (2017), ch. 8, Cavo et al. (2012): -0.0621 (-0.1186 to -0.0046)
    low, high = _stats.paired_newcombe_interval(both=59, only_base=16, only_cand=6, neither=80)
    assert pytest.approx(-0.0621, abs=5e-5) == (6 - 16) / 161
    assert low[0] == pytest.approx(-0.1186, abs=5e-5)
    assert high[0] == pytest.approx(-0.0046, abs=5e-5)


def _clustered_data(seed=3):
    rng = np.random.default_rng(seed)
    clusters = np.repeat(np.arange(60), rng.integers(1, 6, 60))
    candidate = clusters % 2 == 1
    values = rng.binomial(1, np.where(candidate, 0.3, 0.45) + rng.normal(0, 0.1, 60)[clusters].clip(-0.2, 0.2))
    return values.astype(float), candidate, clusters


def test_cluster_robust_difference_matches_statsmodels_ols():
    values, candidate, clusters = _clustered_data()
    fit = sm.OLS(values, sm.add_constant(candidate.astype(float))).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    diff, se = _stats.cluster_robust_difference(values, candidate, clusters)
    assert diff == pytest.approx(fit.params[1], abs=1e-12)
    assert se == pytest.approx(fit.bse[1], abs=1e-9)
    assert float(_stats.z_test_p(diff, se)) == pytest.approx(fit.pvalues[1], abs=1e-9)


def test_cluster_robust_difference_with_clusters_spanning_cohorts_matches_statsmodels():
    rng = np.random.default_rng(5)
    tasks = np.tile(np.repeat(np.arange(40), 3), 2)
    candidate = np.repeat([False, True], 120)
    difficulty = rng.normal(0, 1.5, 40)[tasks]
    values = rng.binomial(1, 1 / (1 + np.exp(-(difficulty + 0.5 * candidate)))).astype(float)
    fit = sm.OLS(values, sm.add_constant(candidate.astype(float))).fit(cov_type="cluster", cov_kwds={"groups": tasks})
    diff, se = _stats.cluster_robust_difference(values, candidate, tasks)
    assert se == pytest.approx(fit.bse[1], abs=1e-9)


def test_clustered_se_is_millers_formula_and_statsmodels():
    values, _, clusters = _clustered_data(seed=9)
    fit = sm.OLS(values, np.ones_like(values)).fit(cov_type="cluster", cov_kwds={"groups": clusters})
    assert _stats.clustered_se(values, clusters) == pytest.approx(fit.bse[0], abs=1e-9)


def test_mann_whitney_matches_scipy_with_ties_and_exact():
    rng = np.random.default_rng(1)
    a = np.sort(rng.lognormal(size=300).round(1))
    b = np.sort(rng.lognormal(0.15, size=250).round(1))
    u, p = _stats.mann_whitney(a, b)
    ref = st.mannwhitneyu(b, a)
    assert u == ref.statistic
    assert p == pytest.approx(ref.pvalue, abs=1e-9)
    small_a, small_b = np.array([1.0, 2.0, 3.5, 7.0]), np.array([2.5, 4.0, 8.0, 9.0, 11.0])
    u, p = _stats.mann_whitney(small_a, small_b)
    assert p == pytest.approx(st.mannwhitneyu(small_b, small_a).pvalue, abs=1e-12)


def test_hodges_lehmann_exact_and_sampled():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 300), rng.normal(0.5, 1, 400)
    exact = _stats.hodges_lehmann_shift(a, b)
    assert exact == pytest.approx(np.median(b[:, None] - a[None, :]), abs=1e-12)
    sampled = _stats.hodges_lehmann_shift(a, b, max_pairs=50_000, seed=0)
    assert abs(sampled - exact) < 0.03


def test_benjamini_hochberg_matches_statsmodels_and_keeps_nan():
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2, 0.0001, 0.049])
    ours = _stats.benjamini_hochberg(p)
    ref = multipletests(p[~np.isnan(p)], method="fdr_bh")[1]
    np.testing.assert_allclose(ours[~np.isnan(p)], ref, atol=1e-12)
    assert np.isnan(ours[2])
    assert st.false_discovery_control(p[~np.isnan(p)], method="bh") == pytest.approx(ref, abs=1e-12)


def test_mde_gives_80_percent_power():
    mde = float(_stats.mde_two_proportions(0.2, 500, 500))
    effect = NormalIndPower().solve_power(nobs1=500, alpha=0.05, power=0.8, ratio=1.0)
    assert mde / np.sqrt(0.2 * 0.8) == pytest.approx(effect, rel=1e-6)
    assert np.isnan(_stats.mde_two_proportions(0.0, 100, 100))


def test_pass_hat_k_and_pass_at_k():
    assert _stats.pass_hat_k(3, 5, 2) == pytest.approx(3 / 10)
    assert _stats.pass_at_k(3, 5, 2) == pytest.approx(1 - 1 / 10)
    assert _stats.pass_hat_k(5, 5, 3) == 1.0
    assert np.isnan(_stats.pass_hat_k(1, 2, 3))


def test_bootstrap_median_ranks_is_the_ordinary_bootstrap():
    rng = np.random.default_rng(4)
    values = np.sort(rng.lognormal(size=101))
    direct = _stats.bootstrap_median_ranks(values.size, 40_000, rng)
    brute = np.sort(values[rng.integers(0, 101, size=(40_000, 101))], axis=1)[:, 50]
    ranks = np.searchsorted(values, brute)
    # same distribution of the resampled median's rank (two-sample KS on 40k draws each)
    assert st.ks_2samp(direct, ranks).pvalue > 0.001
    assert abs(direct.mean() - ranks.mean()) < 0.1


REPS = 2000


def test_coverage_of_95_percent_intervals():
    rng = np.random.default_rng(12345)
    x = rng.binomial(200, 0.3, REPS)
    low, high = _stats.wilson_bounds(x, np.full(REPS, 200))
    assert 0.94 <= np.mean((low <= 0.3) & (high >= 0.3)) <= 0.96

    xa, xb = rng.binomial(300, 0.2, REPS), rng.binomial(300, 0.15, REPS)
    low, high = _stats.newcombe_interval(xa, 300, xb, 300)
    assert 0.94 <= np.mean((low <= -0.05) & (high >= -0.05)) <= 0.96

    probs = np.array([0.10, 0.08, 0.04, 0.78])  # both, only baseline, only candidate, neither
    cells = rng.multinomial(300, probs, size=REPS)
    low, high = _stats.paired_newcombe_interval(cells[:, 0], cells[:, 1], cells[:, 2], cells[:, 3])
    assert 0.94 <= np.mean((low <= -0.04) & (high >= -0.04)) <= 0.96


def test_coverage_of_cluster_robust_interval():
    rng = np.random.default_rng(12345)
    clusters = np.r_[np.repeat(np.arange(100), 5), 100 + np.repeat(np.arange(100), 5)]
    candidate = np.repeat([False, True], 500)
    hits = 0
    for _ in range(REPS):
        rates = np.r_[rng.beta(2, 6, 100), rng.beta(2, 8, 100)]  # means 0.25 and 0.2
        values = rng.binomial(1, rates[clusters])
        diff, se = _stats.cluster_robust_difference(values, candidate, clusters)
        hits += abs(diff + 0.05) <= 1.959964 * se
    assert 0.94 <= hits / REPS <= 0.96


def test_coverage_of_bootstrap_median_difference():
    rng = np.random.default_rng(12345)
    truth = np.exp(7.1) - np.exp(7.0)
    hits = 0
    for _ in range(REPS):
        a, b = np.sort(rng.lognormal(7.0, 1, 301)), np.sort(rng.lognormal(7.1, 1, 301))
        reps = b[_stats.bootstrap_median_ranks(301, 1000, rng)] - a[_stats.bootstrap_median_ranks(301, 1000, rng)]
        low, high = _stats.percentile_interval(reps)
        hits += low <= truth <= high
    assert 0.94 <= hits / REPS <= 0.96
