"""Cluster descriptions: c-TF-IDF, examples, failure rates (checked against statsmodels), stability."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from workbench.cluster.clusterer import HdbscanClusterer
from workbench.cluster.describe import category_mix, cluster_name, ctfidf_keywords, examples, failure_stats
from workbench.cluster.stability import best_jaccard, bootstrap_stability, match_clusters, stability_band


def test_ctfidf_matches_the_formula():
    texts = ["alpha beta", "alpha alpha gamma", "delta beta", "delta delta delta"]
    labels = np.array([0, 0, 1, 1])
    got = ctfidf_keywords(texts, labels, top_n=10, ngram_range=(1, 1), min_df=1)
    # class term counts: c0 alpha 3, beta 1, gamma 1 (5 words); c1 beta 1, delta 4 (5 words)
    average = 10 / 2
    freq = {"alpha": 3, "beta": 2, "gamma": 1, "delta": 4}
    expected0 = {w: c / 5 * math.log(1 + average / freq[w]) for w, c in {"alpha": 3, "beta": 1, "gamma": 1}.items()}
    assert dict(got[0]) == pytest.approx(expected0)
    assert [w for w, _ in got[0]] == sorted(expected0, key=lambda w: -expected0[w])
    assert got[1][0][0] == "delta"


def test_cluster_names_skip_overlapping_keywords():
    words = [("refund policy", 1.0), ("refund", 0.9), ("policy", 0.8), ("money", 0.7), ("card", 0.6)]
    assert cluster_name(3, words) == "3: refund policy, money, card"
    assert cluster_name(-1, words) == "unclustered"


def test_failure_stats_wilson_and_lift_match_statsmodels():
    labels = np.array([0] * 10 + [1] * 20 + [-1] * 5)
    failed = [True] * 8 + [False] * 2 + [True] * 2 + [False] * 17 + [None] + [None] * 5
    frame = failure_stats(labels, failed)
    row = frame.filter(pl.col("cluster") == 0).row(0, named=True)
    low, high = proportion_confint(8, 10, alpha=0.05, method="wilson")
    assert (row["n_labelled"], row["n_failed"]) == (10, 8)
    assert row["rate_low"] == pytest.approx(low) and row["rate_high"] == pytest.approx(high)
    base = 10 / 29
    assert row["lift"] == pytest.approx(0.8 / base)
    assert row["failure_share"] == pytest.approx(0.8)
    noise = frame.filter(pl.col("cluster") == -1).row(0, named=True)
    assert noise["n_labelled"] == 0 and math.isnan(noise["failure_rate"]) and math.isnan(noise["rate_low"])


def test_examples_pick_central_and_weak_members():
    points = np.array([[0.0, 0.0], [0.1, 0.0], [-0.1, 0.0], [1.0, 0.0], [5.0, 5.0]])
    labels = np.array([0, 0, 0, 0, -1])
    membership = np.array([1.0, 0.9, 0.9, 0.2, 0.0])
    picked = examples(labels, membership, points, n=2)
    assert picked[0]["representative"][0] in (1, 2)  # nearest the centroid (0.25, 0)
    assert picked[0]["boundary"][0] == 3
    assert picked[-1]["representative"] == [4]


def test_category_mix_counts_categories():
    mix = category_mix(np.array([0, 0, 1]), [["a", "b"], ["a"], None])
    assert mix == {0: [("a", 2), ("b", 1)]}


def test_best_jaccard_and_bands():
    assert best_jaccard(np.array([0, 0, 1, 1, -1]), np.array([5, 5, 5, 7, -1])) == {0: 2 / 3, 1: 0.5}
    assert best_jaccard(np.array([0, 0]), np.array([-1, -1])) == {0: 0.0}
    assert [stability_band(s) for s in (0.5, 0.7, 0.8, 0.9, float("nan"))] == [
        "unstable", "doubtful", "stable", "highly stable", "unknown"]


def test_bootstrap_stability_separates_solid_from_fragile_clusters():
    rng = np.random.default_rng(0)
    solid = [rng.normal(centre, 0.05, (200, 2)) for centre in (0, 8)]
    fragile = rng.normal(4, 0.05, (21, 2))
    points = np.vstack([*solid, fragile])
    clusterer = HdbscanClusterer(min_cluster_size=20).fit(points)
    assert set(clusterer.labels_) == {0, 1, 2}
    scores = bootstrap_stability(points, clusterer.labels_, clusterer, runs=5, seed=0)
    assert scores[0] > 0.95 and scores[1] > 0.95 and scores[2] < 0.6


def test_match_clusters_finds_new_ones():
    old_ids, old = ["a", "b", "c", "d"], np.array([0, 0, 1, 1])
    new_ids, new = ["a", "b", "c", "d", "e", "f"], np.array([1, 1, 0, 0, 2, 2])
    matches = match_clusters(old_ids, old, new_ids, new)
    assert matches[1] == (0, 1.0) and matches[0] == (1, 1.0)
    assert matches[2] == (None, 0.0)


def test_vectorised_approximate_predict_matches_hdbscan():
    import hdbscan

    from workbench.cluster.clusterer import approximate_predict

    rng = np.random.default_rng(3)
    blobs = np.vstack([rng.normal(c, 0.3, (150, 5)) for c in (0, 3, 6)] + [rng.uniform(-2, 8, (30, 5))])
    for min_samples in (None, 5):
        model = hdbscan.HDBSCAN(min_cluster_size=20, min_samples=min_samples, prediction_data=True).fit(blobs)
        new = np.vstack([rng.normal(c, 0.5, (100, 5)) for c in (0, 3, 6)] + [rng.uniform(-4, 10, (100, 5)),
                                                                              blobs[:20]])
        expected_labels, expected_strengths = hdbscan.approximate_predict(model, new)
        labels, strengths = approximate_predict(model, new)
        assert (labels == -1).any() and (labels >= 0).any()
        np.testing.assert_array_equal(labels, expected_labels)
        np.testing.assert_allclose(strengths, expected_strengths, rtol=1e-12)
