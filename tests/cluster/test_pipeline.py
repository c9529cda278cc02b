"""cluster_traces on planted topics: recovery, determinism, noise policy, stability, assignment."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from tests.cluster.conftest import topic_of_cluster
from tests.cluster.planted import planted_texts
from workbench.cluster import HdbscanClusterer, VectorColumn, cluster_traces
from workbench.cluster.clusterer import NOISE
from workbench.cluster.reduce import PcaReducer


def test_recovers_planted_topics_and_names_them(planted, fitted):
    a = fitted.assignments
    assert a.columns == ["trace_id", "cluster", "cluster_name", "membership", "x", "y"]
    assert a["trace_id"].to_list() == planted["trace_id"].to_list()
    assert adjusted_rand_score(planted["topic"].to_list(), a["cluster"].to_list()) > 0.95
    assert fitted.n_clusters == 6
    refund = [c for c, t in topic_of_cluster(a, planted).items() if t == "refund"]
    assert len(refund) == 1
    keywords = [w for w, _ in fitted.keywords[refund[0]][:5]]
    refund_vocabulary = ["refund", "money", "back", "charge", "reimburse", "returned", "purchase", "policy", "credit", "card"]
    assert all(w in refund_vocabulary for w in keywords)
    assert ((a["membership"] >= 0) & (a["membership"] <= 1)).all()


def test_same_seed_gives_identical_assignments(planted, fitted):
    again = cluster_traces(planted, text="input", outcome="passed", seed=0, progress=False)
    assert again.assignments.equals(fitted.assignments)
    assert again.summary().to_frame().equals(fitted.summary().to_frame())


def test_noise_is_kept_as_an_unclustered_group(planted):
    # UMAP pulls stray points into the nearest cluster, so plant noise where HDBSCAN sees it:
    # six tight groups plus scattered vectors, clustered on the vectors themselves (PCA, all dims).
    rng = np.random.default_rng(0)
    centres = np.eye(6, 16) * 3
    topic = np.repeat(np.arange(6), 60)
    vectors = np.vstack([centres[topic] + rng.normal(0, 0.05, (360, 16)), rng.normal(0, 1, (40, 16))])
    ids = [f"t{i}" for i in range(360)] + [f"noise-{i}" for i in range(40)]
    texts = [f"topic{t} words" for t in topic] + ["stray text"] * 40
    traces = pl.DataFrame({"trace_id": ids, "input": texts, "embedding": vectors.tolist()})
    clusters = cluster_traces(traces, embedder=VectorColumn("embedding", normalize=False),
                              reducer=PcaReducer(n_components=16), seed=0, progress=False, stability_runs=0)
    a = clusters.assignments
    assert len(a) == len(traces)  # nothing dropped
    assert clusters.n_clusters == 6
    noise = a.filter(pl.col("cluster") == NOISE)
    assert noise.height >= 30 and noise["trace_id"].str.starts_with("noise-").all()
    assert set(noise["cluster_name"]) == {"unclustered"}
    frame = clusters.summary().to_frame()
    row = frame.filter(pl.col("cluster") == NOISE).row(0, named=True)
    assert row["name"] == "unclustered" and row["size"] == noise.height and row["stability"] != row["stability"]
    assert frame["cluster"].to_list()[-1] == NOISE  # shown as its own, last group
    intent = clusters.with_column(traces)
    assert intent.filter(pl.col("trace_id").is_in(noise["trace_id"].to_list()))["intent"].unique().to_list() == ["unclustered"]
    assert noise["membership"].max() == 0.0


def test_stability_warning_fires_on_a_fragile_cluster():
    # five topics of 100 and one of 22, with min_cluster_size 20: an 80% subsample
    # holds ~18 of the small topic's traces, too few to form a cluster.
    sizes = [100, 100, 100, 100, 100, 22]
    parts = []
    for i, size in enumerate(sizes):
        part = planted_texts(size * 6, n_topics=6, seed=10 + i)
        parts.append(part.filter(pl.col("topic") == part["topic"].unique().sort()[i]).head(size))
    traces = pl.concat(parts).with_columns(pl.format("p{}", pl.int_range(pl.len())).alias("trace_id"))
    small_topic = parts[-1]["topic"][0]
    clusters = cluster_traces(traces, text="input", seed=0, progress=False,
                              clusterer=HdbscanClusterer(min_cluster_size=20), stability_runs=5)
    small = [c for c, t in topic_of_cluster(clusters.assignments, traces).items() if t == small_topic and c >= 0]
    assert len(small) == 1, "the small topic should be found in the full data"
    summary = clusters.summary()
    row = summary.to_frame().filter(pl.col("cluster") == small[0]).row(0, named=True)
    assert row["stability"] < 0.6 and row["stability_band"] == "unstable"
    assert any(row["name"] in w and "unstable" in w for w in summary.warnings)
    others = summary.to_frame().filter((pl.col("cluster") >= 0) & (pl.col("cluster") != small[0]))
    assert (others["stability"] > 0.85).all()
    assert "unstable" in summary._repr_html_() and "⚠" in summary.to_markdown()


def test_assign_puts_new_traces_into_the_right_clusters(planted, fitted):
    new = planted_texts(300, n_topics=6, seed=7).with_columns((pl.col("topic") != "refund").alias("passed"))
    assigned = fitted.assign(new, progress=False)
    assert assigned.kind == "assigned"
    a = assigned.assignments
    assert a["trace_id"].to_list() == new["trace_id"].to_list()
    expected = {t: c for c, t in topic_of_cluster(fitted.assignments, planted).items()}
    predicted = a.join(new.select("trace_id", "topic"), on="trace_id")
    hits = sum(expected[t] == c for t, c in predicted.select("topic", "cluster").rows())
    assert hits / len(new) > 0.97
    assert a["membership"].min() >= 0 and a["membership"].max() <= 1
    assert not a["x"].is_nan().any()
    # the new cohort is measured on the fitted failure modes
    frame = assigned.summary().to_frame()
    refund = expected["refund"]
    row = frame.filter(pl.col("cluster") == refund).row(0, named=True)
    assert row["failure_rate"] == 1.0 and row["name"] == fitted.names[refund]
    assert row["size"] == new.filter(pl.col("topic") == "refund").height


def test_recluster_flags_a_new_failure_mode(planted, fitted):
    extra = planted_texts(700, n_topics=7, seed=3).filter(pl.col("topic") == "topic00")
    combined = pl.concat([planted, extra.with_columns(pl.lit(True).alias("passed"))])
    again = fitted.recluster(combined, progress=False)
    new_cluster = [c for c, t in topic_of_cluster(again.assignments, combined).items() if t == "topic00"]
    assert again.new_clusters == frozenset(new_cluster)
    assert again.summary().to_frame().filter(pl.col("is_new"))["cluster"].to_list() == new_cluster


def test_recluster_with_only_hdbscan_changes_reuses_the_layout(fitted):
    coarse = fitted.recluster(min_cluster_size=250, progress=False)
    assert coarse.assignments.select("x", "y").equals(fitted.assignments.select("x", "y"))
    assert coarse.n_clusters < fitted.n_clusters
    assert coarse.model.reducer is fitted.model.reducer


def test_large_inputs_fit_a_sample_and_assign_the_rest(planted):
    clusters = cluster_traces(planted, text="input", seed=0, progress=False, fit_size=300, stability_runs=0)
    fitted_flags = clusters.to_frame()["fitted"]
    assert fitted_flags.sum() == 300 and len(fitted_flags) == 600
    assert adjusted_rand_score(planted["topic"].to_list(), clusters.assignments["cluster"].to_list()) > 0.95
    assert "sample of 300" in clusters.summary().note


def test_precomputed_vectors_from_a_column(planted):
    centres = np.eye(6, 16)
    names = sorted(planted["topic"].unique())
    rng = np.random.default_rng(0)
    vectors = [(centres[names.index(t)] + rng.normal(0, 0.05, 16)).tolist() for t in planted["topic"]]
    traces = planted.with_columns(pl.Series("embedding", vectors))
    clusters = cluster_traces(traces, embedder=VectorColumn("embedding"), seed=0, progress=False, stability_runs=0)
    assert adjusted_rand_score(planted["topic"].to_list(), clusters.assignments["cluster"].to_list()) > 0.95


def test_progress_reports_each_step(planted):
    events = []
    cluster_traces(planted.head(200), text="input", seed=0, progress=events.append, stability_runs=1)
    finished = [e.step for e in events if e.seconds is not None]
    for step in ("embed", "neighbours", "reduce to 5-D", "2-D map", "HDBSCAN", "keywords (c-TF-IDF)", "stability"):
        assert step in finished
    assert all(e.message.startswith("[cluster] ") for e in events)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="at least 10 traces"):
        cluster_traces(pl.DataFrame({"trace_id": ["a", "b"], "input": ["x", "y"]}), progress=False)
    with pytest.raises(ValueError, match="appears more than once"):
        cluster_traces(pl.DataFrame({"trace_id": ["a", "a"], "input": ["x", "y"]}), progress=False)
    with pytest.raises(ValueError, match="not one of"):
        cluster_traces(pl.DataFrame({"trace_id": ["a"], "input": ["x"]}), text="nope", progress=False)
