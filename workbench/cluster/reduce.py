"""Reducers: unit vectors -> a few dimensions (UMAP), over one shared k-NN graph.

The k-nearest-neighbour graph is the expensive, JIT-heavy part of UMAP. It is computed
once (:class:`NeighborIndex`) and handed to both the 5-D clustering fit and the 2-D map
fit as ``precomputed_knn``; the same index answers ``umap.transform`` queries for new
traces (queried once, reused by both reducers). See :mod:`workbench.cluster.warmup`
for why this path avoids ~20 s of per-process compilation.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> vectors = rng.normal(size=(200, 8)).astype("float32")
>>> neighbors = NeighborIndex(vectors, n_neighbors=10)
>>> UmapReducer(n_components=2, seed=0).fit_transform(vectors, neighbors=neighbors).shape  # doctest: +SKIP
(200, 2)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

EXACT_KNN_LIMIT = 60_000
"""Above this many fitted points the k-NN graph is approximate (pynndescent)."""
MAP_EPOCHS = 100
"""Layout epochs of the 2-D map, which starts from a PCA of the 5-D layout (UMAP's own
default from a spectral start is 500 up to 10k points, 200 above)."""


def _self_first(indices: np.ndarray, dists: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put each point itself in column 0 (distance 0); duplicates can displace it otherwise."""
    n, k = indices.shape
    rows = np.arange(n)
    is_self = indices == rows[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")  # non-self neighbours first, in order
    others = np.take_along_axis(indices, order, axis=1)[:, : k - 1]
    other_dists = np.take_along_axis(dists, order, axis=1)[:, : k - 1]
    out_indices = np.hstack([rows[:, None], others]).astype(np.int32)
    out_dists = np.hstack([np.zeros((n, 1), dtype=np.float32), other_dists]).astype(np.float32)
    return np.ascontiguousarray(out_indices), np.ascontiguousarray(out_dists)


APPROXIMATE_QUERY_ABOVE = 10_000
"""Query batches this large against an index this large use the cell search (:class:`CellSearch`)."""


class CellSearch:
    """Approximate k-NN by an inverted file: k-means cells over the fitted vectors.

    A query scans only the fitted points of its ``n_probe`` nearest cells (about
    ``n_probe / sqrt(n)`` of the data), so assigning 100k traces to a 20k fit does ~14x
    fewer distance computations than brute force. Deterministic for a seed. On diffuse
    16-D blobs (20k queries, 141 cells) it finds 79% of the true 15 neighbours with
    ``n_probe=6`` (90% with 10, 96% with 16), and the ones it finds instead are 0.8% farther
    on average (0.3%, 0.1%); on planted topics it finds 99.6%. UMAP's own neighbour search
    (pynndescent) is approximate too.
    """

    def __init__(self, data: np.ndarray, *, seed: int = 0, n_probe: int = 6) -> None:
        from sklearn.cluster import KMeans

        self.data = data
        n = data.shape[0]
        n_cells = int(np.clip(round(np.sqrt(n)), 4, 1024))
        rng = np.random.default_rng(seed)
        sample = data if n <= 10_000 else data[np.sort(rng.choice(n, 10_000, replace=False))]
        kmeans = KMeans(n_clusters=n_cells, n_init=1, max_iter=20, random_state=seed).fit(sample)
        self.centroids = kmeans.cluster_centers_.astype(np.float32)
        cells = kmeans.predict(data)
        self.order = np.argsort(cells, kind="stable")
        self.bounds = np.searchsorted(cells[self.order], np.arange(n_cells + 1))
        self.squares = np.einsum("ij,ij->i", data, data)
        self.n_probe = min(n_probe, n_cells)

    def search(self, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(indices, distances)`` of the ``k`` nearest fitted points found, nearest first."""
        n, n_cells = points.shape[0], self.centroids.shape[0]
        best_d = np.full((n, k), np.inf, dtype=np.float32)
        best_i = np.full((n, k), -1, dtype=np.int64)
        to_centre = (self.centroids ** 2).sum(axis=1)[None, :] - 2 * points @ self.centroids.T
        probes = np.argpartition(to_centre, self.n_probe - 1, axis=1)[:, : self.n_probe].ravel()
        asking = np.repeat(np.arange(n), self.n_probe)
        by_cell = np.argsort(probes, kind="stable")
        cuts = np.searchsorted(probes[by_cell], np.arange(n_cells + 1))
        for cell in range(n_cells):
            who = asking[by_cell[cuts[cell] : cuts[cell + 1]]]
            members = self.order[self.bounds[cell] : self.bounds[cell + 1]]
            if who.size == 0 or members.size == 0:
                continue
            dist = self.squares[members][None, :] - 2 * (points[who] @ self.data[members].T)
            merged_d = np.hstack([best_d[who], dist])
            merged_i = np.hstack([best_i[who], np.broadcast_to(members, dist.shape)])
            if merged_d.shape[1] > k:
                keep = np.argpartition(merged_d, k - 1, axis=1)[:, :k]
                merged_d = np.take_along_axis(merged_d, keep, axis=1)
                merged_i = np.take_along_axis(merged_i, keep, axis=1)
            best_d[who], best_i[who] = merged_d, merged_i
        best_d = np.sqrt(np.maximum(best_d + np.einsum("ij,ij->i", points, points)[:, None], 0.0))
        order = np.argsort(best_d, axis=1, kind="stable")
        return np.take_along_axis(best_i, order, axis=1), np.take_along_axis(best_d, order, axis=1)


class NeighborIndex:
    """k nearest neighbours of fitted vectors (Euclidean; cosine on unit vectors), queryable.

    Exact (scikit-learn brute force) up to :data:`EXACT_KNN_LIMIT` points, pynndescent
    above. Also serves as the search index ``umap.UMAP.transform`` calls
    (``query(X, k, epsilon)``), so a query prepared once with :meth:`prepare` is reused
    by the 5-D and the 2-D reducer.

    Parameters
    ----------
    data
        Fitted vectors (n x d).
    n_neighbors
        Neighbours per point, the point itself included (capped at ``n - 1``).
    method
        ``"auto"``, ``"exact"`` or ``"nndescent"``.
    seed
        Seed of pynndescent (the exact method is deterministic).
    """

    _angular_trees = False  # read by umap's transform to choose its search epsilon

    def __init__(self, data: np.ndarray, *, n_neighbors: int = 15, method: str = "auto", seed: int = 0) -> None:
        self.data = np.ascontiguousarray(data, dtype=np.float32)
        n = self.data.shape[0]
        if n < 3:
            raise ValueError(f"need at least 3 points for a neighbour graph, got {n}")
        self.n_neighbors = max(2, min(n_neighbors, n - 1))
        if method == "auto":
            method = "exact" if n <= EXACT_KNN_LIMIT else "nndescent"
        if method not in ("exact", "nndescent"):
            raise ValueError(f"method must be 'auto', 'exact' or 'nndescent', not {method!r}")
        self.method = method
        self.seed = seed
        self._graph: tuple[np.ndarray, np.ndarray] | None = None
        self._pending: tuple[np.ndarray, int, np.ndarray, np.ndarray] | None = None
        self._cells: CellSearch | None = None
        if method == "exact":
            from sklearn.neighbors import NearestNeighbors

            self._index: Any = NearestNeighbors(algorithm="brute", metric="euclidean").fit(self.data)
        else:
            from pynndescent import NNDescent

            self._index = NNDescent(self.data, n_neighbors=self.n_neighbors, metric="euclidean",
                                    random_state=seed, low_memory=True)

    def __repr__(self) -> str:
        return f"NeighborIndex({self.data.shape[0]:,} points, k={self.n_neighbors}, {self.method})"

    def graph(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indices int32, distances float32)`` of every fitted point, itself first (copies)."""
        if self._graph is None:
            if self.method == "exact":
                dists, indices = self._index.kneighbors(self.data, n_neighbors=self.n_neighbors)
            else:
                indices, dists = self._index.neighbor_graph
            self._graph = _self_first(indices, dists)
        return self._graph[0].copy(), self._graph[1].copy()

    def _search(self, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        large = min(points.shape[0], self.data.shape[0]) >= APPROXIMATE_QUERY_ABOVE
        if self.method == "exact" and large:
            if self._cells is None:
                self._cells = CellSearch(self.data, seed=self.seed)
            indices, dists = self._cells.search(points, k)
        elif self.method == "exact":
            dists, indices = self._index.kneighbors(points, n_neighbors=k)
        else:
            indices, dists = self._index.query(points, k=k)
        return np.ascontiguousarray(indices, dtype=np.int32), np.ascontiguousarray(dists, dtype=np.float32)

    def prepare(self, points: np.ndarray) -> np.ndarray:
        """Search ``points`` now and keep the answer for the next :meth:`query` of them.

        Returns ``points`` as float32 C-ordered (pass that array to the reducers).
        """
        points = np.ascontiguousarray(points, dtype=np.float32)
        indices, dists = self._search(points, self.n_neighbors)
        self._pending = (points, self.n_neighbors, indices, dists)
        return points

    def query(self, points: np.ndarray, k: int, epsilon: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of ``points`` among the fitted vectors (umap's search-index interface)."""
        pending = self._pending
        if (
            pending is not None
            and pending[1] >= k
            and pending[0].shape == points.shape
            and (pending[0] is points or np.shares_memory(pending[0], points) or np.array_equal(pending[0], points))
        ):
            return pending[2][:, :k].copy(), pending[3][:, :k].copy()
        return self._search(np.ascontiguousarray(points, dtype=np.float32), k)


class UmapReducer:
    """UMAP to ``n_components`` dimensions, seeded (the same seed gives the same layout).

    Parameters
    ----------
    n_components
        5 for clustering, 2 for the map.
    n_neighbors, min_dist
        UMAP's parameters (defaults follow BERTopic's practice: 15 and 0.0).
    seed
        UMAP ``random_state`` and ``transform_seed``. A seed makes UMAP single-threaded
        (about 1.5x slower than its unseeded parallel mode) but reproducible.
    n_epochs
        Layout epochs (UMAP's default: 500 up to 10k points, 200 above).
    init
        ``"spectral"`` (UMAP's default) or ``"pca"``.
    """

    def __init__(
        self,
        *,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        seed: int = 0,
        n_epochs: int | None = None,
        init: str = "spectral",
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.seed = seed
        self.n_epochs = n_epochs
        self.init = init
        self.model_: Any = None
        self.neighbors_: NeighborIndex | None = None

    uses_neighbors = True

    def __repr__(self) -> str:
        return f"UmapReducer(n_components={self.n_components}, n_neighbors={self.n_neighbors}, seed={self.seed})"

    def map_reducer(self) -> UmapReducer:
        """The 2-D counterpart for the map (``min_dist`` at least 0.1 so points do not pile up)."""
        return UmapReducer(n_components=2, n_neighbors=self.n_neighbors, min_dist=max(self.min_dist, 0.1),
                           seed=self.seed, n_epochs=self.n_epochs or MAP_EPOCHS, init=self.init)

    def fit_transform(self, vectors: np.ndarray, *, neighbors: NeighborIndex | None = None,
                      start: np.ndarray | None = None) -> np.ndarray:
        """Fit UMAP on ``vectors`` (using ``neighbors`` when given) and return the layout.

        ``start``: an optional (n x n_components) layout to start from instead of ``init``
        (the map starts from a PCA of the 5-D clustering layout and converges in fewer epochs).
        """
        from workbench.cluster.warmup import load_umap

        umap = load_umap()
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if neighbors is None:
            neighbors = NeighborIndex(vectors, n_neighbors=self.n_neighbors, seed=self.seed)
        if neighbors.data.shape[0] != vectors.shape[0]:
            raise ValueError("the neighbour index was built on other vectors than the ones being fitted")
        k = min(self.n_neighbors, neighbors.n_neighbors)
        indices, dists = neighbors.graph()
        n_components = min(self.n_components, vectors.shape[0] - 2)
        init: Any = self.init
        if start is not None and start.shape == (vectors.shape[0], n_components) and np.isfinite(start).all():
            init = np.ascontiguousarray(start, dtype=np.float32)
        model = umap.UMAP(
            n_neighbors=k,
            n_components=n_components,
            min_dist=self.min_dist,
            metric="euclidean",
            random_state=self.seed,
            transform_seed=self.seed,
            n_jobs=1,
            n_epochs=self.n_epochs,
            init=init,
            precomputed_knn=(indices[:, :k], dists[:, :k], neighbors),
            verbose=False,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*knn_search_index.*")
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            embedding = model.fit_transform(vectors)
        self.model_ = model
        self.neighbors_ = neighbors
        return np.ascontiguousarray(embedding, dtype=np.float32)

    def transform(self, vectors: np.ndarray, *, neighbors: NeighborIndex | None = None,
                  refine: bool = True) -> np.ndarray:
        """Place new vectors in the fitted layout (``umap.UMAP.transform``).

        ``refine=False`` stops after UMAP's initial placement (each new point at the
        membership-weighted mean of its fitted neighbours), skipping the layout epochs:
        what the map uses for assigned traces.
        """
        if self.model_ is None:
            raise RuntimeError("fit_transform() must be called before transform()")
        index = neighbors if neighbors is not None else self.neighbors_
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if not refine:
            return self._place(vectors, index)
        self.model_._knn_search_index = index
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*n_jobs value.*")
            placed = self.model_.transform(vectors)
        return np.ascontiguousarray(placed, dtype=np.float32)

    def _place(self, vectors: np.ndarray, index: NeighborIndex) -> np.ndarray:
        import scipy.sparse as sp

        from workbench.cluster.warmup import fast_init_graph_transform, load_umap

        umap_module = load_umap().umap_
        model = self.model_
        indices, dists = index.query(vectors, model._n_neighbors)
        sigmas, rhos = umap_module.smooth_knn_dist(
            dists, float(model._n_neighbors), local_connectivity=float(max(0.0, model.local_connectivity - 1.0)))
        rows, cols, vals, _ = umap_module.compute_membership_strengths(indices, dists, sigmas, rhos, bipartite=True)
        graph = sp.csr_matrix((vals, (rows, cols)), shape=(vectors.shape[0], model.embedding_.shape[0]))
        graph.eliminate_zeros()
        placed = fast_init_graph_transform(graph, model.embedding_)
        lonely = np.isnan(placed).any(axis=1)
        placed[lonely] = model.embedding_[indices[lonely, 0]]  # no edge: sit on the nearest neighbour
        return np.ascontiguousarray(placed, dtype=np.float32)


class PcaReducer:
    """A linear projection (scikit-learn PCA, seeded): no numba, no neighbour graph.

    A fast path for small inputs, where HDBSCAN on the embedding itself (or a PCA of
    it) separates topics as well as UMAP without its compile time; its map is a 2-D PCA.
    ``n_components`` at or above the embedding's dimension keeps every dimension.
    """

    uses_neighbors = False

    def __init__(self, *, n_components: int = 5, seed: int = 0) -> None:
        self.n_components = n_components
        self.seed = seed
        self.n_neighbors = 15
        self.model_: Any = None

    def __repr__(self) -> str:
        return f"PcaReducer(n_components={self.n_components}, seed={self.seed})"

    def map_reducer(self) -> PcaReducer:
        """The 2-D PCA used for the map."""
        return PcaReducer(n_components=2, seed=self.seed)

    def fit_transform(self, vectors: np.ndarray, *, neighbors: NeighborIndex | None = None,
                      start: np.ndarray | None = None) -> np.ndarray:
        """Fit the projection and return the projected vectors (``start`` is ignored)."""
        from sklearn.decomposition import PCA

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        k = max(1, min(self.n_components, vectors.shape[1], vectors.shape[0] - 1))
        self.model_ = PCA(n_components=k, random_state=self.seed)
        return np.ascontiguousarray(self.model_.fit_transform(vectors), dtype=np.float32)

    def transform(self, vectors: np.ndarray, *, neighbors: NeighborIndex | None = None,
                  refine: bool = True) -> np.ndarray:
        """Project new vectors."""
        if self.model_ is None:
            raise RuntimeError("fit_transform() must be called before transform()")
        return np.ascontiguousarray(self.model_.transform(np.asarray(vectors, dtype=np.float32)), dtype=np.float32)
