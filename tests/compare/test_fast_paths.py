"""The optimised clustered paths give the numbers of the straightforward computations.

- ``_robust.robust_table`` (one sort of integer keys, shared by all metrics) against
  statsmodels' cluster-robust OLS, slice by slice, and against Miller's clustered SE.
- ``_bootstrap.cluster_bootstrap_medians`` (two-step, chunked product) against the full
  ``times @ histogram`` product and against brute-force medians of the resampled values.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from tests.compare.frames import replayed_tasks, traces
from workbench.compare import _bootstrap, _stats, compare_cohorts
from workbench.compare._robust import cluster_cells, robust_table


def _clustered_frame() -> pl.DataFrame:
    frame = traces(n_per_cohort=450, fail=(0.3, 0.22), session_size=3, seed=11)
    rng = np.random.default_rng(3)
    # a few traces without a value (nulls must drop out of that metric only)
    tools = frame["n_tool_calls"].to_numpy().astype(float)
    tools[rng.random(tools.size) < 0.05] = np.nan
    return frame.with_columns(pl.Series("n_tool_calls", tools).fill_nan(None).cast(pl.Int64))


def _cluster_fit(values: np.ndarray, candidate: np.ndarray, groups: np.ndarray):
    return sm.OLS(values, sm.add_constant(candidate)).fit(cov_type="cluster", cov_kwds={"groups": groups})


def test_sliced_clustered_rows_agree_with_statsmodels_in_every_slice():
    frame = _clustered_frame()
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="intent", n_boot=200)
    assert result.designs["v2"].kind == "clustered"
    rows = result.to_frame()
    checked = 0
    for slice_value in ["(all)", *sorted(set(frame["intent"].to_list()))]:
        part = frame if slice_value == "(all)" else frame.filter(pl.col("intent") == slice_value)
        for metric, column in (("failure_rate", ~part["passed"]), ("tool_calls", part["n_tool_calls"])):
            keep = column.is_not_null().to_numpy()
            values = column.cast(pl.Float64).to_numpy()[keep]
            cand = (part["prompt_version"] == "v2").cast(pl.Float64).to_numpy()[keep]
            fit = _cluster_fit(values, cand, part["session_id"].to_numpy()[keep])
            row = rows.filter((pl.col("metric") == metric) & (pl.col("slice") == slice_value)).row(0, named=True)
            assert row["difference"] == pytest.approx(fit.params[1], abs=1e-12)
            assert row["p_value"] == pytest.approx(fit.pvalues[1], rel=1e-9, abs=1e-12)
            if metric == "tool_calls":
                assert (row["ci_low"], row["ci_high"]) == pytest.approx(tuple(fit.conf_int()[1]), abs=1e-9)
            checked += 1
    assert checked == 8


def test_clustered_proportion_interval_uses_miller_design_effect():
    frame = _clustered_frame()
    result = compare_cohorts(frame, cohort="prompt_version", baseline="v1", slices="intent", n_boot=200)
    part = frame.filter(pl.col("intent") == "billing")
    effective = []
    for version in ("v1", "v2"):
        cohort = part.filter(pl.col("prompt_version") == version)
        failed = (~cohort["passed"]).cast(pl.Float64).to_numpy()
        n, p = failed.size, failed.mean()
        se = _stats.clustered_se(failed, cohort["session_id"].to_numpy())  # straightforward Miller SE
        deff = max(se**2 / (p * (1 - p) / n), 1.0)
        effective.append((p, n / deff))
    (p_a, m_a), (p_b, m_b) = effective
    low, high = _stats.newcombe_interval(p_a * m_a, m_a, p_b * m_b, m_b)
    row = result.to_frame().filter((pl.col("metric") == "failure_rate") & (pl.col("slice") == "billing")).row(
        0, named=True)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((float(low[0]), float(high[0])), abs=1e-12)


def test_robust_table_matches_cluster_robust_difference_with_nulls_and_lopsided_slices():
    rng = np.random.default_rng(8)
    n = 3000
    frame = pl.DataFrame({
        "_slice": rng.choice(["a", "b", "c", "only-baseline"], n),
        "_cohort": rng.choice(["base", "cand"], n),
        "_unit": rng.integers(0, 400, n),  # units span cohorts and slices
        "value": np.where(rng.random(n) < 0.1, np.nan, rng.poisson(2.0, n).astype(float)),
    }).with_columns(
        pl.col("value").fill_nan(None),
        pl.when(pl.col("_slice") == "only-baseline").then(pl.lit("base")).otherwise("_cohort").alias("_cohort")
    )
    frame = pl.concat([frame.with_columns(pl.lit("(all)").alias("_slice")), frame])
    cells = cluster_cells(frame, candidate="cand")
    valued = frame.drop_nulls("value")
    stats = valued.group_by("_slice", "_cohort").agg(pl.len().alias("n"), pl.col("value").mean().alias("m"))
    means = (
        stats.filter(pl.col("_cohort") == "base").select("_slice", n_a="n", p_a="m")
        .join(stats.filter(pl.col("_cohort") == "cand").select("_slice", n_b="n", p_b="m"), on="_slice")
        .sort("_slice")
    )
    table = robust_table(frame["value"], means, cells)
    assert table["_slice"].to_list() == ["(all)", "a", "b", "c"]
    for row in table.iter_rows(named=True):
        part = valued.filter(pl.col("_slice") == row["_slice"])
        values, units = part["value"].to_numpy(), part["_unit"].to_numpy()
        is_cand = (part["_cohort"] == "cand").to_numpy()
        diff, se = _stats.cluster_robust_difference(values, is_cand, units)
        assert row["se"] == pytest.approx(se, rel=1e-12)
        assert row["p_b"] - row["p_a"] == pytest.approx(diff, abs=1e-12)
        assert row["g"] == np.unique(units).size
        for name, mask in (("a", ~is_cand), ("b", is_cand)):
            keys, codes = np.unique(units[mask], return_inverse=True)
            totals = np.bincount(codes, weights=values[mask] - row[f"p_{name}"])
            assert row[f"c_{name}"] == keys.size
            assert row[f"rr_{name}"] == pytest.approx(np.sum(totals**2), rel=1e-12)


def _full_product_medians(values, units, n_boot, rng):
    """The straightforward cluster bootstrap: the whole ``times @ histogram`` product at once."""
    _, units = np.unique(units, return_inverse=True)
    n_units = int(units.max()) + 1
    if n_units > _bootstrap.MAX_BLOCKS:
        blocks = _bootstrap.MAX_BLOCKS
        units = rng.permutation(blocks * (n_units // blocks + 1))[:n_units][units] % blocks
    else:
        blocks = n_units
    distinct = np.unique(values)
    exact = distinct.size <= _bootstrap.MAX_BINS
    if exact:
        edges = distinct
    else:
        width = min(0.5, 4 / np.sqrt(n_units))
        edges = np.unique(np.quantile(values, np.linspace(0.5 - width, 0.5 + width, _bootstrap.MAX_BINS + 1)))
    bins = np.searchsorted(edges, values, side="left")
    histogram = np.zeros((blocks, edges.size + 1))
    np.add.at(histogram, (units, bins), 1)
    times = np.zeros((n_boot, blocks))
    draws = rng.integers(0, blocks, size=(n_boot, blocks))
    np.add.at(times, (np.repeat(np.arange(n_boot), blocks), draws.ravel()), 1)
    cumulative = np.cumsum(times @ histogram, axis=1)
    half = cumulative[:, -1] / 2
    j = np.minimum((cumulative < half[:, None]).sum(axis=1), edges.size - 1)
    if exact:
        return edges[j]
    rows = np.arange(n_boot)
    below = np.where(j > 0, cumulative[rows, j - 1], 0.0)
    inside = cumulative[rows, j] - below
    fraction = np.where(inside > 0, (half - below) / np.where(inside > 0, inside, 1), 1.0)
    left = edges[np.maximum(j - 1, 0)]
    return np.where(j > 0, left + np.clip(fraction, 0, 1) * (edges[j] - left), edges[0])


@pytest.mark.parametrize(("n_values", "n_units", "distinct"), [
    (4000, 1500, None),   # units dealt into blocks, interpolated bins
    (900, 120, None),     # one block per unit
    (3000, 800, 40),      # few distinct values: exact value points
    (60, 25, None),       # tiny sample: bins span all values
    (50, 1, None),        # a single unit: every resample is the sample
])
@pytest.mark.parametrize("float32", [True, False])
def test_cluster_bootstrap_equals_full_product_bit_for_bit(monkeypatch, n_values, n_units, distinct, float32):
    data_rng = np.random.default_rng(n_values)
    values = data_rng.lognormal(5, 1, n_values)
    if distinct:
        values = data_rng.integers(0, distinct, n_values).astype(float)
    units = data_rng.integers(0, n_units, n_values) * 7 + 3  # any ids, not 0..n-1
    monkeypatch.setattr(_bootstrap, "CHUNK_CELLS", 9_000)  # several chunks, the last one short
    if not float32:
        monkeypatch.setattr(_bootstrap, "FLOAT32_EXACT", 0)  # the float64 path of huge samples
    fast = _bootstrap.cluster_bootstrap_medians(values, units, 777, np.random.default_rng(5))
    slow = _full_product_medians(values, units, 777, np.random.default_rng(5))
    assert np.array_equal(fast, slow)
    spread = np.unique(fast).size
    assert (spread == 1) if n_units == 1 else (spread > 2)


def test_median_bins_above_the_last_edge_match_the_full_product():
    rng = np.random.default_rng(2)
    histogram = rng.integers(0, 4, size=(30, 40))
    histogram[:, -1] += 70  # most values above the last edge: the median bin is clipped
    histogram[::7, 5] += 200  # and some resamples have their median low
    times = np.zeros((300, 30))
    np.add.at(times, (np.repeat(np.arange(300), 30), rng.integers(0, 30, 9000)), 1)
    half, j, below, inside = _bootstrap.median_bins(times, histogram, last=38)
    counts = times @ histogram
    cumulative = np.cumsum(counts, axis=1)
    expected_j = np.minimum((cumulative < cumulative[:, -1:] / 2).sum(axis=1), 38)
    rows = np.arange(300)
    assert np.array_equal(j, expected_j) and (j == 38).any() and (j < 30).any()
    assert np.array_equal(half, cumulative[:, -1] / 2)
    assert np.array_equal(inside, counts[rows, j])
    assert np.array_equal(below[j > 0], cumulative[rows, j - 1][j > 0])


def test_exact_cluster_bootstrap_is_the_median_of_the_resampled_traces():
    data_rng = np.random.default_rng(9)
    units = data_rng.integers(0, 60, 400)
    values = data_rng.integers(0, 30, 400).astype(float)
    medians = _bootstrap.cluster_bootstrap_medians(values, units, 300, np.random.default_rng(1))
    keys, codes = np.unique(units, return_inverse=True)
    draws = np.random.default_rng(1).integers(0, keys.size, size=(300, keys.size))
    for i, drawn in enumerate(draws):
        resample = np.sort(np.concatenate([values[codes == unit] for unit in drawn]))
        assert medians[i] == resample[(resample.size + 1) // 2 - 1]  # the lower median


def test_pass_k_bootstrap_is_reproducible():
    frame = replayed_tasks(n_tasks=80, runs=3)
    first, second = (
        compare_cohorts(frame, cohort="agent", baseline="old", task_key="task_id", n_boot=300, seed=4)
        .to_frame().filter(pl.col("metric") == "pass^3")
        for _ in range(2)
    )
    assert first.height == 1 and first.equals(second)
