"""The summary shows itself, converts to a frame and markdown; clusters become taxonomy categories."""

from __future__ import annotations

import polars as pl
import pytest

from tests.cluster.conftest import topic_of_cluster
from workbench.cluster import cluster_traces
from workbench.cluster.summary import SUMMARY_SCHEMA


def test_summary_frame_markdown_and_html(fitted, planted):
    summary = fitted.summary()
    frame = summary.to_frame()
    assert frame.schema == pl.Schema(SUMMARY_SCHEMA)
    assert frame["size"].sum() == 600 and frame["share"].sum() == pytest.approx(1.0)
    refund = {t: c for c, t in topic_of_cluster(fitted.assignments, planted).items()}["refund"]
    row = frame.filter(pl.col("cluster") == refund).row(0, named=True)
    assert row["failure_rate"] == 1.0 and row["failure_share"] == 1.0
    assert len(row["representative"]) == 3 and len(row["boundary"]) == 3
    assert summary.base_rate == pytest.approx(planted.filter(~pl.col("passed")).height / 600)
    markdown = summary.to_markdown()
    assert markdown.count("\n| ") == 1 + 7 and "failure rate [95% CI]" in markdown
    html = fitted._repr_html_()
    assert "Failure clusters" in html and row["name"] in html


def test_summary_escapes_trace_text():
    texts = ["<script>alert(1)</script> refund money policy"] * 30 + ["reset password email link"] * 30
    traces = pl.DataFrame({"trace_id": [f"t{i}" for i in range(60)], "input": texts})
    html = cluster_traces(traces, seed=0, progress=False, stability_runs=0).summary()._repr_html_()
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_name_cluster_and_intent_column(fitted, planted):
    renamed = fitted.name_cluster(0, "cancellations")
    assert renamed.names[0] == "cancellations" and fitted.names[0] != "cancellations"
    assert "cancellations" in renamed.assignments["cluster_name"].to_list()
    with_intent = renamed.with_column(planted, name="intent")
    assert with_intent.columns[-1] == "intent" and with_intent.height == 600
    assert with_intent.filter(pl.col("intent") == "cancellations").height == (fitted.assignments["cluster"] == 0).sum()
    with pytest.raises(KeyError):
        fitted.name_cluster(99, "x")


def test_cluster_becomes_a_taxonomy_category(fitted, planted, tmp_path):
    from workbench.review.store import LabelStore
    from workbench.review.taxonomy import Taxonomy

    refund = {t: c for c, t in topic_of_cluster(fitted.assignments, planted).items()}["refund"]
    proposal = fitted.category_proposal(refund)
    assert proposal["name"].replace("_", " ").split()[0] in fitted.names[refund]
    assert len(proposal["examples"]) == 5
    assert set(proposal["examples"]) <= set(planted.filter(pl.col("topic") == "refund")["trace_id"])
    taxonomy = Taxonomy(LabelStore(tmp_path / "labels.sqlite"), author="ana")
    fitted.name_cluster(refund, "refund without policy").add_to_taxonomy(taxonomy, refund)
    categories = taxonomy.categories()
    assert categories["name"].to_list() == ["refund_without_policy"]
    assert categories["examples"][0].to_list() == proposal["examples"]
    with pytest.raises(KeyError):
        fitted.category_proposal(-1)
