"""Cluster traces: embed -> reduce -> cluster -> describe; assign new traces; map them.

>>> from workbench.cluster import cluster_traces                           # doctest: +SKIP
>>> clusters = cluster_traces(failed_traces, text="output", outcome="passed")  # doctest: +SKIP
>>> clusters.summary()                                                      # doctest: +SKIP

Heavy libraries (scikit-learn, umap, hdbscan, plotly) are imported on first use.
Call :func:`warm_up` in a notebook's first cell to compile UMAP in the background.
"""

from __future__ import annotations

from workbench.cluster.clusterer import HdbscanClusterer, default_min_cluster_size
from workbench.cluster.embed import SentenceTransformerEmbedder, TfidfSvdEmbedder, VectorColumn
from workbench.cluster.inputs import error_messages
from workbench.cluster.map import ClusterMap, cluster_figure
from workbench.cluster.pipeline import cluster_traces
from workbench.cluster.progress import ProgressEvent
from workbench.cluster.reduce import NeighborIndex, UmapReducer
from workbench.cluster.result import FailureClusters
from workbench.cluster.summary import ClusterSummary
from workbench.cluster.warmup import warm_up

__all__ = [
    "ClusterMap",
    "ClusterSummary",
    "FailureClusters",
    "HdbscanClusterer",
    "NeighborIndex",
    "ProgressEvent",
    "SentenceTransformerEmbedder",
    "TfidfSvdEmbedder",
    "UmapReducer",
    "VectorColumn",
    "cluster_figure",
    "cluster_traces",
    "default_min_cluster_size",
    "error_messages",
    "warm_up",
]
