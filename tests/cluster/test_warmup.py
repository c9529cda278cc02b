"""The JIT strategy: umap's serial kernels get a disk cache; the background warm-up runs once."""

from __future__ import annotations

from workbench.cluster import warm_up
from workbench.cluster.warmup import load_umap, running_warm_up, umap_is_compiled


def test_load_umap_caches_serial_kernels_only():
    from numba.core.caching import NullCache

    umap = load_umap()
    assert not isinstance(umap.umap_.smooth_knn_dist._cache, NullCache)
    assert not isinstance(umap.umap_.compute_membership_strengths._cache, NullCache)
    assert not isinstance(umap.layouts._nb_optimize_layout_euclidean_single_epoch._cache, NullCache)
    # numba's cache key ignores the parallel flag: the parallel twin must stay uncached
    assert isinstance(umap.layouts._nb_optimize_layout_euclidean_single_epoch_parallel._cache, NullCache)


def test_background_warm_up_runs_once_and_compiles():
    handle = warm_up()
    assert warm_up() is handle and running_warm_up() is handle
    handle.wait()
    assert handle.done and handle.error is None and handle.seconds is not None
    assert umap_is_compiled()
    assert "done" in repr(handle)


def test_fast_init_graph_transform_matches_umaps_loop():
    import numpy as np
    import scipy.sparse as sp

    from workbench.cluster.warmup import fast_init_graph_transform

    umap = load_umap()
    assert umap.umap_.init_graph_transform is fast_init_graph_transform
    rng = np.random.default_rng(0)
    graph = sp.random(50, 30, density=0.2, random_state=1, format="csr", dtype=np.float64)
    graph.data = rng.uniform(0.1, 0.9, graph.nnz)
    graph.data[[0, 5, 6]] = 1.0  # exact matches
    graph.data[graph.indptr[7]:graph.indptr[8]] = 0  # a point without neighbours
    graph.eliminate_zeros()
    embedding = rng.normal(size=(30, 3)).astype(np.float32)
    expected = np.zeros((50, 3), dtype=np.float32)  # umap 0.5.12's loop, verbatim semantics
    for row in range(50):
        part = graph[row]
        if part.nnz == 0:
            expected[row] = np.nan
            continue
        total = part.sum()
        for value, col in zip(part.data, part.indices, strict=True):
            if value == 1:
                expected[row] = embedding[col]
                break
            expected[row] += value / total * embedding[col]
    np.testing.assert_allclose(fast_init_graph_transform(graph, embedding), expected, rtol=1e-5, equal_nan=True)
