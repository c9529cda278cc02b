"""``cluster_traces``: embed -> reduce -> cluster -> describe, each step swappable and seeded.

Large inputs are fitted on a seeded sample of ``fit_size`` traces and the rest are
assigned to the fitted clusters (``umap.transform`` + ``hdbscan.approximate_predict``),
which keeps a 50k-trace run interactive; pass ``fit_size=None`` to fit everything.

Examples
--------
>>> from workbench.load import read_traces                                    # doctest: +SKIP
>>> traces = read_traces("data/support_agent.otlp.jsonl").traces              # doctest: +SKIP
>>> failed = traces.filter(~pl.col("passed"))                                 # doctest: +SKIP
>>> clusters = cluster_traces(failed, text="output", outcome="passed")        # doctest: +SKIP
>>> clusters.summary()                                                        # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from workbench._frames import as_polars
from workbench.cluster.clusterer import HdbscanClusterer
from workbench.cluster.embed import Embedder, TfidfSvdEmbedder, VectorColumn
from workbench.cluster.inputs import categories_per_trace, failure_flags, select_text
from workbench.cluster.progress import Progress, ProgressCallback
from workbench.cluster.reduce import NeighborIndex, UmapReducer

MIN_TRACES = 10
DEFAULT_FIT_SIZE = 20_000


@dataclass(frozen=True)
class Settings:
    """How a clustering was made (kept for ``recluster`` and shown in the summary)."""

    text: str | pl.Expr
    seed: int
    fit_size: int | None
    stability_runs: int
    outcome: str | pl.Expr | None

    @property
    def text_label(self) -> str:
        if isinstance(self.text, pl.Expr):
            return f"expression {str(self.text)[:80]}"
        return {"input": "the user's request (input)", "output": "the final output", "note": "the reviewer's note",
                "error": "the error message"}.get(self.text, f"column {self.text!r}")


@dataclass
class Model:
    """The fitted components, reused to assign new traces."""

    embedder: Any
    neighbors: NeighborIndex | None
    reducer: Any
    mapper: Any
    clusterer: HdbscanClusterer


def _prepare(traces: Any, *, text: str | pl.Expr, labels: Any, outcome: Any, embedder: Any
             ) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Rows to cluster (with ``text``, ``failed``, ``categories``) and how many were skipped."""
    frame = as_polars(traces, name="traces")
    if "trace_id" not in frame.columns:
        raise ValueError(f"traces need a trace_id column; they have {frame.columns}")
    duplicated = frame["trace_id"].is_duplicated()
    if duplicated.any():
        example = frame["trace_id"].filter(duplicated)[0]
        raise ValueError(f"trace_id {example!r} appears more than once in the traces; pass one row per trace")
    if isinstance(embedder, VectorColumn):
        has_text = isinstance(text, pl.Expr) or text == "note" or text in frame.columns
        texts = (select_text(frame, text, labels=labels) if has_text  # text only feeds keywords/examples
                 else pl.Series("text", [None] * len(frame), dtype=pl.String))
        usable = frame[embedder.column].is_not_null()
    else:
        texts = select_text(frame, text, labels=labels)
        usable = texts.is_not_null() & (texts.str.strip_chars() != "")
    failed = failure_flags(frame, labels=labels, outcome=outcome)
    rows = pl.DataFrame({"trace_id": frame["trace_id"], "text": texts.fill_null(""), "failed": failed})
    if labels is not None:
        cats = categories_per_trace(labels)
        rows = rows.join(cats, on="trace_id", how="left", maintain_order="left")
    else:
        rows = rows.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias("categories"))
    return rows.filter(usable), frame.filter(usable), int((~usable).sum())


def _embed(embedder: Any, rows: pl.DataFrame, frame: pl.DataFrame, *, fit: bool) -> np.ndarray:
    if isinstance(embedder, VectorColumn):
        return embedder.vectors(frame)
    texts = rows["text"].to_list()
    return embedder.fit_transform(texts) if fit else embedder.transform(texts)


def _wait_for_warm_up(progress: Progress) -> None:
    from workbench.cluster.warmup import running_warm_up, umap_is_compiled

    handle = running_warm_up()
    if handle is not None and not handle.done:
        with progress.step("waiting for the background warm-up"):
            handle.wait()
    elif not umap_is_compiled():
        progress.note("first clustering in this kernel",
                      "loading numba-compiled UMAP code; the very first run on a machine compiles it (~25 s)")


def _principal_plane(points: np.ndarray) -> np.ndarray:
    """The first two principal components of ``points`` (a start for the 2-D map)."""
    centred = points - points.mean(axis=0)
    _, _, components = np.linalg.svd(centred[:: max(1, len(centred) // 5_000)], full_matrices=False)
    plane = centred @ components[:2].T
    return plane.astype(np.float32) if plane.shape[1] == 2 else np.zeros((len(points), 2), np.float32)


def fit_model(
    vectors: np.ndarray,
    *,
    reducer: Any,
    clusterer: HdbscanClusterer,
    embedder: Any,
    progress: Progress,
    map_layout: bool = True,
) -> tuple[Model, np.ndarray, np.ndarray]:
    """Fit kNN, the reducer (5-D) and its map (2-D) and HDBSCAN; return the model, 5-D and 2-D points."""
    n = vectors.shape[0]
    mapper = reducer.map_reducer()
    neighbors = None
    if reducer.uses_neighbors or (map_layout and mapper.uses_neighbors):
        _wait_for_warm_up(progress)
        with progress.step("neighbours", detail=f"{n:,} points"):
            neighbors = NeighborIndex(vectors, n_neighbors=reducer.n_neighbors, seed=reducer.seed)
            neighbors.graph()
    with progress.step(f"reduce to {reducer.n_components}-D", detail=type(reducer).__name__):
        points = reducer.fit_transform(vectors, neighbors=neighbors)
    if map_layout:
        with progress.step("2-D map", detail=type(mapper).__name__):
            flat = mapper.fit_transform(vectors, neighbors=neighbors, start=_principal_plane(points))
    else:
        flat = np.full((n, 2), np.nan, dtype=np.float32)
    with progress.step("HDBSCAN", detail=f"min_cluster_size {clusterer.resolved_min_cluster_size(n)}"):
        clusterer.fit(points)
    return Model(embedder, neighbors, reducer, mapper if map_layout else None, clusterer), points, flat


def assign_points(model: Model, vectors: np.ndarray, *, progress: Progress
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Place new vectors: reduced points, 2-D points, cluster labels and membership strengths."""
    n = vectors.shape[0]
    width = getattr(model.clusterer, "n_features_", 5)
    if n == 0:
        return (np.empty((0, width), np.float32), np.empty((0, 2), np.float32),
                np.empty(0, dtype=np.int64), np.empty(0))
    if model.neighbors is not None:
        with progress.step("neighbours of new traces", detail=f"{n:,}"):
            vectors = model.neighbors.prepare(vectors)
    with progress.step("transform (reduced)"):
        points = model.reducer.transform(vectors, neighbors=model.neighbors)
    if model.mapper is not None:
        with progress.step("transform (2-D map)"):
            flat = model.mapper.transform(vectors, neighbors=model.neighbors, refine=False)
    else:
        flat = np.full((n, 2), np.nan, dtype=np.float32)
    with progress.step("HDBSCAN approximate_predict"):
        labels, strengths = model.clusterer.predict(points)
    return points, flat, labels, strengths


def cluster_traces(
    traces: Any,
    *,
    text: str | pl.Expr = "input",
    labels: Any = None,
    outcome: str | pl.Expr | None = None,
    seed: int = 0,
    embedder: Embedder | VectorColumn | None = None,
    reducer: Any = None,
    clusterer: HdbscanClusterer | None = None,
    fit_size: int | None = DEFAULT_FIT_SIZE,
    stability_runs: int | None = None,
    progress: bool | ProgressCallback = True,
) -> Any:
    """Cluster traces by the text you choose; return a :class:`FailureClusters`.

    Parameters
    ----------
    traces
        The traces table (polars or pandas; needs ``trace_id``).
    text
        What to embed: ``"input"`` (the user's request: intents), ``"output"``,
        ``"note"`` (reviewers' notes; needs ``labels``), ``"error"``, another column, or
        a polars expression. Traces with no text are left out (counted in the summary).
    labels
        Label events or current labels: failure rates (``verdict``), category mix,
        notes. Several reviewers: majority verdict.
    outcome
        A boolean column or expression, True when the trace passed (e.g. ``"passed"``):
        failure rates for traces without a label.
    seed
        One seed for every random step; the same inputs and seed give identical results.
    embedder, reducer, clusterer
        Components; defaults :class:`TfidfSvdEmbedder`, :class:`UmapReducer` (5-D; its
        ``map_reducer()`` makes the 2-D map) and :class:`HdbscanClusterer`
        (``min_cluster_size`` 0.5% of the fitted traces, >= 20). Pass
        ``VectorColumn("embedding")`` to use precomputed vectors, ``PcaReducer`` to skip UMAP.
    fit_size
        Fit on a seeded sample of at most this many traces and assign the rest
        (``None``: fit all).
    stability_runs
        Subsample reclusterings used to score each cluster's stability (0 to skip;
        default 5, or 3 when more than 10,000 traces are fitted).
    progress
        ``True`` prints each step and its time; a callable receives
        :class:`~workbench.cluster.progress.ProgressEvent` objects; ``False`` is silent.
    """
    from workbench.cluster.result import FailureClusters

    report = Progress(progress)
    embedder = embedder if embedder is not None else TfidfSvdEmbedder(seed=seed)
    reducer = reducer if reducer is not None else UmapReducer(seed=seed)
    clusterer = clusterer if clusterer is not None else HdbscanClusterer()
    rows, frame, skipped = _prepare(traces, text=text, labels=labels, outcome=outcome, embedder=embedder)
    n = len(rows)
    if n < MIN_TRACES:
        raise ValueError(f"need at least {MIN_TRACES} traces with text to cluster, got {n} ({skipped} without text)")
    fitted = np.ones(n, dtype=bool)
    if fit_size is not None and n > fit_size:
        rng = np.random.default_rng(seed)
        fitted[:] = False
        fitted[rng.choice(n, size=fit_size, replace=False)] = True
    with report.step("embed", detail=f"{n:,} texts with {embedder!r}"):
        if fitted.all():
            vectors = _embed(embedder, rows, frame, fit=True)
        else:  # fit the embedder on the sample too; the rest is transformed like new traces
            first = _embed(embedder, rows.filter(fitted), frame.filter(fitted), fit=True)
            vectors = np.empty((n, first.shape[1]), dtype=np.float32)
            vectors[fitted] = first
            vectors[~fitted] = _embed(embedder, rows.filter(~fitted), frame.filter(~fitted), fit=False)
    model, fit_points, fit_flat = fit_model(vectors[fitted], reducer=reducer, clusterer=clusterer,
                                            embedder=embedder, progress=report)
    points = np.zeros((n, fit_points.shape[1]), dtype=np.float32)
    flat = np.zeros((n, 2), dtype=np.float32)
    cluster = np.full(n, -1, dtype=np.int64)
    membership = np.zeros(n, dtype=np.float64)
    points[fitted], flat[fitted] = fit_points, fit_flat
    cluster[fitted] = model.clusterer.labels_
    membership[fitted] = model.clusterer.probabilities_
    if not fitted.all():
        rest = ~fitted
        points[rest], flat[rest], cluster[rest], membership[rest] = assign_points(
            model, vectors[rest], progress=report)
    if stability_runs is None:
        stability_runs = 5 if int(fitted.sum()) <= 10_000 else 3
    settings = Settings(text=text, seed=seed, fit_size=fit_size, stability_runs=stability_runs, outcome=outcome)
    return FailureClusters.from_fit(
        rows=rows, frame=frame, labels=labels, vectors=vectors, points=points, flat=flat, cluster=cluster,
        membership=membership, fitted=fitted, model=model, settings=settings, skipped=skipped, progress=report,
    )
