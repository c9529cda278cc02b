"""Neighbour search: exact graph, cell search for large query batches, cached queries."""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors

from workbench.cluster import reduce as reduce_module
from workbench.cluster.reduce import CellSearch, NeighborIndex


def _blobs(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(12, 16))
    points = centres[rng.integers(0, 12, n)] + rng.normal(0, 0.4, (n, 16))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_graph_puts_each_point_first_even_with_duplicates():
    data = _blobs(300, 0)
    data[1] = data[0]  # an exact duplicate could displace the point itself
    indices, dists = NeighborIndex(data, n_neighbors=10).graph()
    assert (indices[:, 0] == np.arange(300)).all() and (dists[:, 0] == 0).all()
    assert 1 in indices[0] and 0 in indices[1]
    assert (np.diff(dists, axis=1) >= -1e-6).all()


def test_cell_search_finds_nearly_all_true_neighbours():
    data, queries = _blobs(4_000, 1), _blobs(2_000, 2)
    found, found_d = CellSearch(data, seed=0).search(queries, 15)
    true_d, true = NearestNeighbors(algorithm="brute").fit(data).kneighbors(queries, 15)
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(found, true, strict=True)])
    assert recall > 0.75  # diffuse blobs; the misses are near-ties:
    assert (found_d.mean(axis=1) / true_d.mean(axis=1)).mean() < 1.02
    wide = CellSearch(data, seed=0, n_probe=16).search(queries, 15)[0]
    assert np.mean([len(set(a) & set(b)) / 15 for a, b in zip(wide, true, strict=True)]) > recall
    exact = np.linalg.norm(queries[:, None, :] - data[found], axis=2)
    np.testing.assert_allclose(found_d, exact, atol=1e-3)
    assert (np.diff(found_d, axis=1) >= 0).all()
    again, _ = CellSearch(data, seed=0).search(queries, 15)
    assert np.array_equal(found, again)


def test_large_query_batches_use_the_cell_search(monkeypatch):
    monkeypatch.setattr(reduce_module, "APPROXIMATE_QUERY_ABOVE", 500)
    data, queries = _blobs(1_000, 3), _blobs(600, 4)
    index = NeighborIndex(data, n_neighbors=15)
    prepared = index.prepare(queries)
    assert index._cells is not None
    first = index.query(prepared, 15)
    second = index.query(prepared, 10)  # served from the prepared answer
    assert np.array_equal(first[0][:, :10], second[0])
