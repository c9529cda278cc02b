"""Shared planted-topic data and one fitted clustering (numba compiles once per session)."""

from __future__ import annotations

import polars as pl
import pytest

from tests.cluster.planted import planted_texts
from workbench.cluster import cluster_traces


@pytest.fixture(scope="session")
def planted() -> pl.DataFrame:
    """600 texts over 6 named topics; only the refund topic fails (``passed`` False)."""
    return planted_texts(600, n_topics=6, seed=0).with_columns((pl.col("topic") != "refund").alias("passed"))


@pytest.fixture(scope="session")
def fitted(planted):
    return cluster_traces(planted, text="input", outcome="passed", seed=0, progress=False)


def topic_of_cluster(assignments: pl.DataFrame, truth: pl.DataFrame) -> dict[int, str]:
    """Majority planted topic of each cluster."""
    joined = assignments.join(truth.select("trace_id", "topic"), on="trace_id")
    counts = joined.group_by("cluster", "topic").len().sort("len", descending=True)
    return {c: t for c, t, _ in counts.unique("cluster", keep="first", maintain_order=True).rows()}
