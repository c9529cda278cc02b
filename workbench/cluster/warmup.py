"""Hide numba's compile time: where the first clustering's seconds go, and what cuts them.

Where the time went (umap-learn 0.5.12, pynndescent 0.7.0, numba 0.68, 2 shared cores):

- ``import umap`` the very first time compiles ~40 functions that umap/pynndescent mark
  ``cache=True`` (13-17 s); afterwards they load from numba's disk cache (~1-2 s).
- A UMAP fit in a *new* process paid ~30 s more even with that cache full: pynndescent's
  ``nn_descent`` (~20 s; it takes the distance function as an argument and is compiled
  again in every process) plus umap's own kernels not marked ``cache=True``
  (``smooth_knn_dist`` ~4-6 s, ``compute_membership_strengths`` ~2-3 s, layout ~1 s).

What workbench does about it, and what each option measured (``benchmarks/cluster.py
--only jit``: first UMAP 5-D fit of 5k texts in a fresh process, disk cache full, two
runs on a loaded machine):

======================================================  ===============
option                                                   first UMAP 5-D
======================================================  ===============
umap default (pynndescent k-NN)                          40-56 s
scikit-learn exact k-NN as ``precomputed_knn``           9.3-11.3 s
... plus disk cache for umap's kernels (the default)     5.5-6.1 s
... plus ``init="pca"`` instead of spectral              5.6-5.9 s (no gain)
first run ever (empty cache): default / workbench        17 + 59 s / 15 + 10 s
======================================================  ===============

1. **No pynndescent on the default path.** The reducer computes the k-nearest-neighbour
   graph exactly with scikit-learn (brute force, BLAS) and hands it to UMAP as
   ``precomputed_knn``; ``transform`` queries the same index (large batches through
   :class:`~workbench.cluster.reduce.CellSearch`). Above ``EXACT_KNN_LIMIT`` fitted
   points (only with ``fit_size=None``) pynndescent is used instead.
2. **Disk-cache umap's uncached kernels.** :func:`load_umap` calls numba's
   ``Dispatcher.enable_caching()`` on umap's module-level serial kernels before their
   first call, so only the first process ever compiles them. Parallel variants are left
   alone: numba's cache key does not include the ``parallel`` flag, and a serial and a
   parallel dispatcher of the same Python function would otherwise share an entry.
3. **Vectorise umap's transform initialisation.** ``UMAP.transform`` spent ~85% of its
   time in ``init_graph_transform``, a Python loop over new points (4.1 of 4.8 s for 30k
   points); :func:`fast_init_graph_transform` does it with one sparse product.
4. **Compile ahead in the background.** :func:`warm_up` starts a daemon thread that
   imports umap/hdbscan and runs a tiny fit + transform through the same code paths
   (same array types, so the same signatures), while the user loads data.
   ``cluster_traces`` waits for a running warm-up instead of compiling twice. The whole
   first clustering of 5k traces in a fresh process took 7.9-8.9 s, 6.1-8.2 s when
   ``warm_up()`` ran during the 10 s before it. ``workbench cluster --warm-up`` fills the
   disk cache at install time (the ~25 s first-ever compile).

The environment variable ``NUMBA_CACHE_DIR`` is honoured but not needed: numba writes
next to umap's sources when they are writable and falls back to the user cache
directory otherwise.

Examples
--------
>>> import workbench.cluster as wc
>>> handle = wc.warm_up()          # doctest: +SKIP
>>> handle.wait()                  # doctest: +SKIP
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

_LOCK = threading.Lock()
_PATCHED = False
_WARM_THREAD: threading.Thread | None = None
_WARM_STATE: WarmUp | None = None

# Modules whose serial, module-level numba kernels get a disk cache.
_UMAP_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.distances", "umap.spectral", "umap.sparse")


def _cacheable_dispatchers(modules: list[ModuleType]) -> list[Any]:
    """Module-level numba dispatchers without a disk cache that are safe to cache."""
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    found: dict[int, Any] = {}
    by_function: dict[Any, list[Any]] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Dispatcher) and id(value) not in found:
                found[id(value)] = value
                by_function.setdefault(value.py_func, []).append(value)
    chosen = []
    for dispatchers in by_function.values():
        serial = [d for d in dispatchers if not d.targetoptions.get("parallel")]
        if len(dispatchers) > 1 and not serial:
            continue
        candidates = serial if len(dispatchers) > 1 else dispatchers
        for dispatcher in candidates[:1]:
            if isinstance(dispatcher._cache, NullCache) and dispatcher.py_func.__closure__ is None:
                chosen.append(dispatcher)
    return chosen


def fast_init_graph_transform(graph: Any, embedding: Any) -> Any:
    """Vectorised ``umap.umap_.init_graph_transform`` (same result up to float rounding).

    umap 0.5.12 loops over the new points in Python with scipy row slicing (~0.1 ms per
    point: ~4 s for 30k, most of ``UMAP.transform``). Semantics kept: a point with an edge
    of strength exactly 1 takes that neighbour's position (the first such edge in row
    order), a point without edges is NaN, any other point is the strength-weighted mean
    of its neighbours' positions.
    """
    import numpy as np
    import scipy.sparse as sp

    graph = sp.csr_matrix(graph)
    embedding = np.asarray(embedding)
    sums = np.asarray(graph.sum(axis=1), dtype=np.float64).ravel()
    nnz = np.diff(graph.indptr)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.asarray(graph @ embedding.astype(np.float64)) / sums[:, None]
    exact = np.flatnonzero(graph.data == 1)
    if exact.size:
        rows = np.repeat(np.arange(graph.shape[0]), nnz)[exact]
        first_rows, first = np.unique(rows, return_index=True)
        result[first_rows] = embedding[graph.indices[exact[first]]]
    result[nnz == 0] = np.nan
    return result.astype(np.float32)


def load_umap() -> ModuleType:
    """Import umap once per process, give its uncached serial kernels a disk cache and
    replace its Python-loop ``init_graph_transform`` with :func:`fast_init_graph_transform`.

    Returns the ``umap`` module. Safe to call from several threads.
    """
    global _PATCHED
    from workbench._optional import require

    umap = require("umap", purpose="clustering traces (UMAP)")
    if _PATCHED:
        return umap
    with _LOCK:
        if not _PATCHED:
            import importlib

            modules = [importlib.import_module(name) for name in _UMAP_MODULES]
            for dispatcher in _cacheable_dispatchers(modules):
                try:
                    dispatcher.enable_caching()
                except Exception:  # pragma: no cover - a read-only, uncachable location
                    continue
            if hasattr(modules[0], "init_graph_transform"):
                modules[0].init_graph_transform = fast_init_graph_transform
            _PATCHED = True
    return umap


def umap_is_compiled() -> bool:
    """Whether this process has already compiled (or loaded) umap's fit kernels."""
    import sys

    module = sys.modules.get("umap.umap_")
    if module is None:
        return False
    return bool(getattr(module.smooth_knn_dist, "signatures", ()))


@dataclass
class WarmUp:
    """Handle of a background warm-up (see :func:`warm_up`)."""

    thread: threading.Thread | None
    started: float = field(default_factory=time.perf_counter)
    seconds: float | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        """True when the warm-up has finished (or failed)."""
        return self.thread is None or not self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> WarmUp:
        """Block until the warm-up ends (re-raises its error, if any)."""
        if self.thread is not None:
            self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self

    def __repr__(self) -> str:
        if not self.done:
            return f"WarmUp(running for {time.perf_counter() - self.started:.0f} s)"
        if self.error is not None:
            return f"WarmUp(failed: {self.error!r})"
        return f"WarmUp(done in {self.seconds or 0.0:.1f} s)"


def _tiny_texts(n: int) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    topics = [words[i * 8 : (i + 1) * 8] for i in range(5)]
    return [" ".join(rng.choice(topics[i % 5], size=6)) for i in range(n)]


def run_warm_up(*, n: int = 300) -> float:
    """Compile (or load from the disk cache) everything a clustering run calls; return seconds.

    Runs a tiny embed -> kNN -> UMAP 5-D and 2-D -> HDBSCAN -> transform -> approximate
    prediction, with the same dtypes as a real run so the compiled signatures match.
    """
    import numpy as np

    from workbench.cluster.clusterer import HdbscanClusterer
    from workbench.cluster.embed import TfidfSvdEmbedder
    from workbench.cluster.reduce import NeighborIndex, UmapReducer

    start = time.perf_counter()
    texts = _tiny_texts(n)
    vectors = TfidfSvdEmbedder(dims=16).fit_transform(texts)
    neighbors = NeighborIndex(vectors, n_neighbors=15)
    reducer = UmapReducer(n_components=5, n_epochs=20)
    reduced = reducer.fit_transform(vectors, neighbors=neighbors)
    flat = UmapReducer(n_components=2, n_epochs=20)
    flat.fit_transform(vectors, neighbors=neighbors)
    clusterer = HdbscanClusterer(min_cluster_size=10).fit(reduced)
    new = vectors[:50] + np.float32(0.01)
    neighbors.prepare(new)
    clusterer.predict(reducer.transform(new, neighbors=neighbors))
    flat.transform(new, neighbors=neighbors)
    return time.perf_counter() - start


def warm_up(*, background: bool = True) -> WarmUp:
    """Compile clustering's numerical kernels now, in a background thread by default.

    Call it in the notebook's first cell (it returns at once); by the time traces are
    loaded the first ``cluster_traces`` no longer waits for numba. Repeated calls return
    the same handle.

    Parameters
    ----------
    background
        ``False`` runs the warm-up in the calling thread (what ``workbench cluster
        warm-up`` does at install time to fill numba's disk cache).
    """
    global _WARM_THREAD, _WARM_STATE
    with _LOCK:
        if _WARM_STATE is not None:
            return _WARM_STATE
        state = WarmUp(thread=None)

        def target() -> None:
            try:
                state.seconds = run_warm_up()
            except BaseException as exc:  # reported through WarmUp.wait()
                state.error = exc

        if background:
            state.thread = threading.Thread(target=target, name="workbench-cluster-warm-up", daemon=True)
            _WARM_STATE = state
            state.thread.start()
            return state
        _WARM_STATE = state
    target()
    return state


def running_warm_up() -> WarmUp | None:
    """The background warm-up of this process, if one was started."""
    return _WARM_STATE
