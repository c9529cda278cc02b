"""The bundled sample: clustering the failed traces recovers the planted failure modes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from sklearn.metrics import adjusted_rand_score

from workbench.cluster import cluster_traces

DATA = Path(__file__).resolve().parents[2] / "data"
EXPORT = DATA / "support_agent.otlp.jsonl"
TRUTH = DATA / "support_agent.truth.csv"

pytestmark = pytest.mark.skipif(not (EXPORT.exists() and TRUTH.exists()), reason="bundled sample not generated")


@pytest.fixture(scope="module")
def failed():
    from workbench.load import read_traces

    traces = read_traces(EXPORT).traces
    truth = pl.read_csv(TRUTH).select("trace_id", "failure_mode")
    return traces.join(truth, on="trace_id").filter(pl.col("failure_mode") != "none")


def test_failed_traces_cluster_into_the_planted_failure_modes(failed):
    clusters = cluster_traces(failed, text="output", outcome="passed", seed=0, progress=False)
    joined = clusters.assignments.join(failed.select("trace_id", "failure_mode"), on="trace_id")
    ari = adjusted_rand_score(joined["failure_mode"].to_list(), joined["cluster"].to_list())
    assert ari >= 0.6, f"ARI {ari:.3f}"
    purity = (joined.filter(pl.col("cluster") >= 0).group_by("cluster")
              .agg((pl.col("failure_mode") == "refund_no_policy").mean().alias("refund_share"), pl.len()))
    refund = purity.filter(pl.col("refund_share") >= 0.9)["cluster"].to_list()
    assert refund, "no cluster is made of refund failures"
    for cluster in refund:
        words = [w for w, _ in clusters.keywords[cluster][:5]]
        assert "refund" in words and "policy" in words, words
    in_refund = joined.filter(pl.col("failure_mode") == "refund_no_policy")["cluster"].is_in(refund).mean()
    assert in_refund >= 0.9
