"""``FailureClusters``: a fitted clustering of traces (or a cohort assigned to one).

Immutable in use: ``name_cluster``, ``assign`` and ``recluster`` return new objects.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import polars as pl

from workbench.cluster.clusterer import NOISE
from workbench.cluster.describe import category_mix, cluster_name, ctfidf_keywords, examples, failure_stats
from workbench.cluster.progress import Progress, ProgressCallback
from workbench.cluster.stability import bootstrap_stability, match_clusters, stability_band
from workbench.cluster.summary import SUMMARY_SCHEMA, ClusterSummary

SNIPPET = 300


def _snippet(text: str, cap: int = SNIPPET) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= cap else text[: cap - 1] + "…"


class FailureClusters:
    """Traces grouped into clusters, with what is needed to describe, map and extend them.

    Attributes
    ----------
    assignments
        ``trace_id, cluster (-1 = unclustered), cluster_name, membership, x, y``.
    keywords
        c-TF-IDF keywords per cluster (from the fit).
    stability
        Mean best-Jaccard per cluster over subsample reclusterings (from the fit).
    kind
        ``"fit"`` or ``"assigned"`` (a later cohort placed on a fitted clustering).
    """

    def __init__(self, *, data: pl.DataFrame, points: np.ndarray, vectors: np.ndarray, model: Any, settings: Any,
                 keywords: dict[int, list[tuple[str, float]]], stability: dict[int, float], names: dict[int, str],
                 kind: str, skipped: int, frame: pl.DataFrame, labels: Any, timings: dict[str, float],
                 new_clusters: frozenset[int] = frozenset()) -> None:
        self._data = data
        self._points = points
        self._vectors = vectors
        self.model = model
        self.settings = settings
        self.keywords = keywords
        self.stability = stability
        self.names = names
        self.kind = kind
        self.skipped = skipped
        self._frame = frame
        self._labels = labels
        self.timings = timings
        self.new_clusters = new_clusters

    # -- construction -----------------------------------------------------------------
    @classmethod
    def from_fit(cls, *, rows: pl.DataFrame, frame: pl.DataFrame, labels: Any, vectors: np.ndarray,
                 points: np.ndarray, flat: np.ndarray, cluster: np.ndarray, membership: np.ndarray,
                 fitted: np.ndarray, model: Any, settings: Any, skipped: int, progress: Progress,
                 new_clusters: frozenset[int] = frozenset()) -> FailureClusters:
        data = rows.with_columns(
            pl.Series("cluster", cluster, dtype=pl.Int64),
            pl.Series("membership", membership, dtype=pl.Float64),
            pl.Series("x", flat[:, 0].astype(np.float64)),
            pl.Series("y", flat[:, 1].astype(np.float64)),
            pl.Series("fitted", fitted),
        )
        with progress.step("keywords (c-TF-IDF)"):
            keywords = ctfidf_keywords(rows["text"].to_list(), cluster, seed=settings.seed)
        with progress.step("stability", detail=f"{settings.stability_runs} subsample runs"):
            stability = bootstrap_stability(points[fitted], cluster[fitted], model.clusterer,
                                            runs=settings.stability_runs, seed=settings.seed)
        ids = sorted(set(np.unique(cluster).tolist()) | {NOISE})
        names = {c: cluster_name(c, keywords.get(c, [])) for c in ids}
        return cls(data=data, points=points, vectors=vectors, model=model, settings=settings, keywords=keywords,
                   stability=stability, names=names, kind="fit", skipped=skipped, frame=frame, labels=labels,
                   timings=dict(progress.timings), new_clusters=new_clusters)

    def _replace(self, **changes: Any) -> FailureClusters:
        fields = dict(data=self._data, points=self._points, vectors=self._vectors, model=self.model,
                      settings=self.settings, keywords=self.keywords, stability=self.stability, names=self.names,
                      kind=self.kind, skipped=self.skipped, frame=self._frame, labels=self._labels,
                      timings=self.timings, new_clusters=self.new_clusters)
        fields.update(changes)
        return FailureClusters(**fields)

    # -- views --------------------------------------------------------------------------
    @property
    def assignments(self) -> pl.DataFrame:
        """``trace_id, cluster, cluster_name, membership, x, y`` (one row per clustered trace)."""
        return self._data.select(
            "trace_id", "cluster", self._name_expr().alias("cluster_name"), "membership", "x", "y"
        )

    def _name_expr(self) -> pl.Expr:
        return pl.col("cluster").replace_strict(list(self.names), list(self.names.values()),
                                                default=None, return_dtype=pl.String)

    @property
    def n_clusters(self) -> int:
        """Number of clusters (the unclustered group not counted)."""
        return sum(1 for c in self.names if c != NOISE)

    def to_frame(self) -> pl.DataFrame:
        """Per trace: the assignments plus the embedded ``text``, ``failed`` and ``categories``."""
        return self._data.select(
            "trace_id", "cluster", self._name_expr().alias("cluster_name"), "membership", "x", "y",
            "text", "failed", "categories", "fitted",
        )

    def with_column(self, traces: Any, *, name: str = "intent") -> pl.DataFrame:
        """``traces`` with a column ``name`` holding each trace's cluster name (null if not clustered).

        The column can drive ``compare`` (segment by intent) and review queues.
        """
        from workbench._frames import as_polars

        frame = as_polars(traces, name="traces")
        if name in frame.columns:
            raise ValueError(f"traces already have a column {name!r}; choose another name")
        names = self.assignments.select("trace_id", pl.col("cluster_name").alias(name))
        return frame.join(names, on="trace_id", how="left", maintain_order="left")

    # -- description ----------------------------------------------------------------------
    def summary(self, *, n_examples: int = 3) -> ClusterSummary:
        """Size, share, keywords, examples, failure rate (Wilson) and lift, categories, stability."""
        labels = self._data["cluster"].to_numpy()
        failed = self._data["failed"].to_list()
        stats = {row["cluster"]: row for row in failure_stats(labels, failed).iter_rows(named=True)}
        picks = examples(labels, self._data["membership"].to_numpy(), self._points, n=n_examples)
        mix = category_mix(labels, self._data["categories"].to_list())
        texts = self._data["text"].to_list()
        n = len(labels)
        rows = []
        order = sorted(c for c in self.names if c != NOISE) + [NOISE]
        for c in order:
            size = int((labels == c).sum())
            stat = stats.get(c, {})
            score = self.stability.get(c, float("nan")) if c != NOISE else float("nan")
            chosen = picks.get(c, {"representative": [], "boundary": []})
            rows.append({
                "cluster": c, "name": self.names[c], "size": size, "share": size / n if n else float("nan"),
                "keywords": [w for w, _ in self.keywords.get(c, [])],
                "representative": [_snippet(texts[i]) for i in chosen["representative"]],
                "boundary": [_snippet(texts[i]) for i in chosen["boundary"]],
                "n_labelled": stat.get("n_labelled", 0), "n_failed": stat.get("n_failed", 0),
                "failure_rate": stat.get("failure_rate", float("nan")),
                "rate_low": stat.get("rate_low", float("nan")), "rate_high": stat.get("rate_high", float("nan")),
                "lift": stat.get("lift", float("nan")), "failure_share": stat.get("failure_share", float("nan")),
                "categories": [f"{k} ({v})" for k, v in mix.get(c, [])],
                "stability": score, "stability_band": stability_band(score) if c != NOISE else None,
                "is_new": c in self.new_clusters,
            })
        frame = pl.DataFrame(rows, schema=SUMMARY_SCHEMA)
        known = [f for f in failed if f is not None]
        base = sum(known) / len(known) if known else float("nan")
        return ClusterSummary(frame=frame, n_traces=n, text=self.settings.text_label, base_rate=base,
                              warnings=tuple(self._warnings(frame)), note=self._note())

    def _note(self) -> str:
        fitted = int(self._data["fitted"].sum())
        if self.kind == "assigned":
            return f"a cohort assigned to a clustering fitted earlier (seed {self.settings.seed})"
        if fitted < len(self._data):
            return (f"fitted on a seeded sample of {fitted:,} traces; the other {len(self._data) - fitted:,} "
                    f"were assigned (seed {self.settings.seed})")
        return f"seed {self.settings.seed}"

    def _warnings(self, frame: pl.DataFrame) -> list[str]:
        out = []
        for row in frame.filter(pl.col("cluster") >= 0).iter_rows(named=True):
            score = row["stability"]
            if score is None or math.isnan(score):
                continue
            if row["stability_band"] == "unstable":
                out.append(f"cluster {row['name']!r} is unstable (stability {score:.2f} < 0.60): it does not "
                           "survive resampling; read it before treating it as a failure mode")
            elif row["stability_band"] == "doubtful":
                out.append(f"cluster {row['name']!r} is doubtful (stability {score:.2f} < 0.75)")
        noise = frame.filter(pl.col("cluster") == NOISE)["share"]
        if len(noise) and noise[0] > 0.3:
            out.append(f"{noise[0]:.0%} of traces are unclustered; try a smaller min_cluster_size or another text")
        if self.skipped:
            out.append(f"{self.skipped:,} traces had no text to embed and were left out")
        return out

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __repr__(self) -> str:
        return (f"FailureClusters({len(self._data):,} traces, {self.n_clusters} clusters, "
                f"{int((self._data['cluster'] == NOISE).sum()):,} unclustered, {self.kind})")

    # -- naming -----------------------------------------------------------------------------
    def name_cluster(self, cluster: int, name: str) -> FailureClusters:
        """A copy with ``cluster`` renamed (e.g. after reading it)."""
        if cluster not in self.names:
            raise KeyError(f"no cluster {cluster}; clusters are {sorted(self.names)}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a cluster name must be a non-empty string")
        return self._replace(names={**self.names, cluster: name.strip()})

    def category_proposal(self, cluster: int, *, name: str | None = None, n_examples: int = 5) -> dict[str, Any]:
        """``name``, ``definition`` and ``examples`` (trace ids) for a taxonomy category."""
        if cluster == NOISE or cluster not in self.names:
            raise KeyError(f"cluster {cluster} cannot become a category; clusters are "
                           f"{sorted(c for c in self.names if c != NOISE)}")
        words = [w for w, _ in self.keywords.get(cluster, [])]
        if name is None:
            default = cluster_name(cluster, self.keywords.get(cluster, []), words=2)
            custom = self.names[cluster] != cluster_name(cluster, self.keywords.get(cluster, []))
            base = self.names[cluster] if custom else default.split(": ", 1)[-1]
            name = re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or f"cluster_{cluster}"
        labels = self._data["cluster"].to_numpy()
        picks = examples(labels, self._data["membership"].to_numpy(), self._points, n=n_examples)
        ids = self._data["trace_id"]
        example_ids = [ids[i] for i in picks[cluster]["representative"]]
        size = int((labels == cluster).sum())
        definition = (f"Traces whose {self.settings.text_label} is about: {', '.join(words[:6])} "
                      f"(cluster {cluster}, {size} traces).")
        return {"name": name, "definition": definition, "examples": example_ids}

    def add_to_taxonomy(self, taxonomy: Any, cluster: int, *, name: str | None = None) -> Any:
        """Add ``cluster`` as a category of a :class:`workbench.review.taxonomy.Taxonomy`."""
        proposal = self.category_proposal(cluster, name=name)
        return taxonomy.add(proposal["name"], definition=proposal["definition"], examples=proposal["examples"])

    # -- new traces -------------------------------------------------------------------------------
    def assign(self, new_traces: Any, *, labels: Any = None, outcome: str | pl.Expr | None = None,
               progress: bool | ProgressCallback = True) -> FailureClusters:
        """Place new traces on this clustering (UMAP transform + HDBSCAN approximate prediction).

        Clusters never change: next week's cohort is measured on this week's failure modes.
        Use :meth:`recluster` to find new ones.
        """
        from workbench.cluster.pipeline import _embed, _prepare, assign_points

        report = Progress(progress)
        settings = self.settings
        outcome = outcome if outcome is not None else settings.outcome
        rows, frame, skipped = _prepare(new_traces, text=settings.text, labels=labels, outcome=outcome,
                                        embedder=self.model.embedder)
        with report.step("embed new traces", detail=f"{len(rows):,}"):
            vectors = _embed(self.model.embedder, rows, frame, fit=False)
        points, flat, cluster, membership = assign_points(self.model, vectors, progress=report)
        data = rows.with_columns(
            pl.Series("cluster", cluster, dtype=pl.Int64), pl.Series("membership", membership, dtype=pl.Float64),
            pl.Series("x", flat[:, 0].astype(np.float64)), pl.Series("y", flat[:, 1].astype(np.float64)),
            pl.Series("fitted", np.zeros(len(rows), dtype=bool)),
        )
        return self._replace(data=data, points=points, vectors=vectors, kind="assigned", skipped=skipped,
                             frame=frame, labels=labels, timings=dict(report.timings), new_clusters=frozenset())

    def recluster(self, traces: Any = None, *, labels: Any = None, outcome: str | pl.Expr | None = None,
                  min_cluster_size: int | None = None, seed: int | None = None,
                  progress: bool | ProgressCallback = True) -> FailureClusters:
        """Cluster again (new traces, another seed or ``min_cluster_size``) and flag new clusters.

        Without ``traces`` and ``seed`` only HDBSCAN runs again on the existing layout
        (about a second). Clusters of the result whose best overlap with this
        clustering's clusters is below 0.6 (Jaccard over shared traces) are marked new.
        """
        from workbench.cluster.pipeline import Model, cluster_traces
        from workbench.cluster.stability import UNSTABLE_BELOW

        labels = labels if labels is not None else (self._labels if traces is None else None)
        outcome = outcome if outcome is not None else self.settings.outcome
        clusterer = self.model.clusterer.unfitted_copy()
        if min_cluster_size is not None:
            clusterer.min_cluster_size = min_cluster_size
        if traces is None and seed is None and self.kind == "fit":
            report = Progress(progress)
            fitted = self._data["fitted"].to_numpy()
            with report.step("HDBSCAN", detail=f"min_cluster_size {clusterer.resolved_min_cluster_size(int(fitted.sum()))}"):
                clusterer.fit(self._points[fitted])
            model = Model(self.model.embedder, self.model.neighbors, self.model.reducer, self.model.mapper, clusterer)
            cluster = np.full(len(fitted), NOISE, dtype=np.int64)
            membership = np.zeros(len(fitted))
            cluster[fitted], membership[fitted] = clusterer.labels_, clusterer.probabilities_
            if not fitted.all():
                with report.step("HDBSCAN approximate_predict"):
                    cluster[~fitted], membership[~fitted] = clusterer.predict(self._points[~fitted])
            rows = self._data.select("trace_id", "text", "failed", "categories")
            result = FailureClusters.from_fit(
                rows=rows, frame=self._frame, labels=self._labels, vectors=self._vectors, points=self._points,
                flat=self._data.select("x", "y").to_numpy().astype(np.float32), cluster=cluster,
                membership=membership, fitted=fitted, model=model, settings=self.settings, skipped=self.skipped,
                progress=report)
        else:
            source = traces if traces is not None else self._frame
            result = cluster_traces(
                source, text=self.settings.text, labels=labels, outcome=outcome,
                seed=self.settings.seed if seed is None else seed, embedder=_fresh_embedder(self.model.embedder, seed),
                clusterer=clusterer, fit_size=self.settings.fit_size, stability_runs=self.settings.stability_runs,
                progress=progress)
        matches = match_clusters(self._data["trace_id"].to_list(), self._data["cluster"].to_numpy(),
                                 result._data["trace_id"].to_list(), result._data["cluster"].to_numpy())
        new = frozenset(c for c, (_, score) in matches.items() if score < UNSTABLE_BELOW)
        return result._replace(new_clusters=new)

    # -- map ----------------------------------------------------------------------------------------
    def map(self, *, color: str = "cluster", traces: Any = None, max_points: int = 50_000) -> Any:
        """A :class:`~workbench.cluster.map.ClusterMap` (plotly scatter of the 2-D layout).

        ``color``: ``"cluster"``, ``"verdict"``, ``"category"``, or a column of ``traces``
        (e.g. ``"prompt_version"`` for cohorts).
        """
        from workbench.cluster.map import ClusterMap

        return ClusterMap(self, color=color, traces=traces, max_points=max_points)


def _fresh_embedder(embedder: Any, seed: int | None) -> Any:
    """An unfitted embedder like ``embedder`` (TF-IDF is refitted on the new traces)."""
    from workbench.cluster.embed import TfidfSvdEmbedder

    if isinstance(embedder, TfidfSvdEmbedder):
        return TfidfSvdEmbedder(dims=embedder.dims, seed=embedder.seed if seed is None else seed,
                                min_df=embedder.min_df, max_df=embedder.max_df, ngram_range=embedder.ngram_range)
    return embedder
