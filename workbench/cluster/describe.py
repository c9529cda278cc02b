"""Describe clusters: c-TF-IDF keywords, representative and boundary examples, failure rates.

Pure functions of arrays and frames; :mod:`workbench.cluster.summary` renders them.

c-TF-IDF (BERTopic) treats each cluster as one document::

    W[x, c] = tf[x, c] / sum_x tf[x, c]  *  log(1 + A / f[x])

with ``A`` the average number of words per cluster and ``f[x]`` the frequency of word
``x`` over all clusters (the unclustered group included), so words common to every
cluster score low.

Examples
--------
>>> import numpy as np
>>> texts = ["refund policy missing", "no refund policy", "reset password", "password link"]
>>> keywords = ctfidf_keywords(texts, np.array([0, 0, 1, 1]), top_n=2, min_df=1)
>>> [word for word, _ in keywords[0]]
['policy', 'refund']
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench.cluster.clusterer import NOISE

KEYWORD_DOCS_PER_CLUSTER = 300
"""Texts sampled per cluster for its keywords (keeps the summary fast at 100k traces)."""


def _keyword_sample(labels: np.ndarray, *, cap: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = []
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if members.size > cap:
            members = np.sort(rng.choice(members, size=cap, replace=False))
        keep.append(members)
    return np.sort(np.concatenate(keep)) if keep else np.empty(0, dtype=np.int64)


def ctfidf_keywords(
    texts: Sequence[str],
    labels: np.ndarray,
    *,
    top_n: int = 10,
    ngram_range: tuple[int, int] = (1, 2),
    min_df: int = 2,
    cap: int = KEYWORD_DOCS_PER_CLUSTER,
    seed: int = 0,
) -> dict[int, list[tuple[str, float]]]:
    """Top ``top_n`` c-TF-IDF keywords (word, weight) per cluster label (noise included).

    At most ``cap`` texts per cluster are read (seeded sample).
    """
    from sklearn.feature_extraction.text import CountVectorizer

    labels = np.asarray(labels)
    rows = _keyword_sample(labels, cap=cap, seed=seed)
    docs = [texts[i] or "" for i in rows]
    sub = labels[rows]
    classes = np.unique(sub)
    if len(docs) == 0:
        return {}
    counts = None
    for df in (min(min_df, len(docs)), 1):
        try:
            vectorizer = CountVectorizer(stop_words="english", ngram_range=ngram_range, min_df=df,
                                         token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z0-9_'-]+\b")
            counts = vectorizer.fit_transform(docs)
            break
        except ValueError:
            continue
    if counts is None:
        return {int(c): [] for c in classes}
    import scipy.sparse as sp

    position = np.searchsorted(classes, sub)
    indicator = sp.csr_matrix((np.ones(len(docs)), (position, np.arange(len(docs)))),
                              shape=(len(classes), len(docs)))
    per_class = np.asarray((indicator @ counts).todense(), dtype=np.float64)
    totals = per_class.sum(axis=1, keepdims=True)
    tf = np.divide(per_class, totals, out=np.zeros_like(per_class), where=totals > 0)
    frequency = per_class.sum(axis=0)
    average = per_class.sum() / len(classes)
    idf = np.log1p(average / np.maximum(frequency, 1e-12))
    weights = tf * idf
    vocabulary = np.asarray(vectorizer.get_feature_names_out())
    result: dict[int, list[tuple[str, float]]] = {}
    for row, cluster in enumerate(classes):
        order = np.argsort(-weights[row], kind="stable")[:top_n]
        result[int(cluster)] = [(str(vocabulary[i]), float(weights[row, i])) for i in order if weights[row, i] > 0]
    return result


def cluster_name(cluster: int, keywords: Sequence[tuple[str, float]], *, words: int = 3) -> str:
    """A default name: ``"3: refund policy, money"`` (``"unclustered"`` for noise)."""
    if cluster == NOISE:
        return "unclustered"
    chosen: list[str] = []
    for word, _ in keywords:
        if any(word in other or other in word for other in chosen):
            continue  # skip 'refund' after 'refund policy'
        chosen.append(word)
        if len(chosen) == words:
            break
    return f"{cluster}: " + ", ".join(chosen) if chosen else str(cluster)


def examples(
    labels: np.ndarray, membership: np.ndarray, points: np.ndarray, *, n: int = 3
) -> dict[int, dict[str, list[int]]]:
    """Row indices of representative and boundary members of each cluster.

    Representatives are the members nearest the cluster's centroid in the reduced space
    (ties broken by membership); boundary examples are the members with the weakest
    membership. For the unclustered group: the points farthest from every centroid first.
    """
    labels = np.asarray(labels)
    out: dict[int, dict[str, list[int]]] = {}
    for cluster in np.unique(labels):
        members = np.flatnonzero(labels == cluster)
        if cluster == NOISE:
            out[int(cluster)] = {"representative": members[:n].tolist(), "boundary": []}
            continue
        centroid = points[members].mean(axis=0)
        distance = np.linalg.norm(points[members] - centroid, axis=1)
        central = members[np.lexsort((-membership[members], distance))][:n]
        weakest = members[np.lexsort((distance, membership[members]))]
        boundary = [int(i) for i in weakest if i not in set(central.tolist())][:n]
        out[int(cluster)] = {"representative": central.tolist(), "boundary": boundary}
    return out


def failure_stats(labels: np.ndarray, failed: Sequence[bool | None], *, confidence: float = 0.95) -> pl.DataFrame:
    """Per cluster: ``n_labelled, n_failed, failure_rate, rate_low, rate_high, lift, failure_share``.

    ``failure_rate`` is among traces with a known outcome, with a Wilson interval;
    ``lift`` divides it by the base rate over all traces with a known outcome;
    ``failure_share`` is the cluster's part of all failures.
    """
    from workbench.stats import wilson_interval

    labels = np.asarray(labels)
    known = np.array([f is not None for f in failed], dtype=bool)
    fail = np.array([bool(f) if f is not None else False for f in failed], dtype=bool)
    total_known = int(known.sum())
    total_failed = int(fail.sum())
    base = total_failed / total_known if total_known else float("nan")
    rows: list[dict[str, Any]] = []
    for cluster in np.unique(labels):
        mask = labels == cluster
        n_known = int((known & mask).sum())
        n_fail = int((fail & mask).sum())
        low, high = wilson_interval(n_fail, n_known, confidence=confidence)
        rate = n_fail / n_known if n_known else float("nan")
        rows.append({
            "cluster": int(cluster),
            "n_labelled": n_known,
            "n_failed": n_fail,
            "failure_rate": rate,
            "rate_low": low,
            "rate_high": high,
            "lift": rate / base if n_known and base > 0 else float("nan"),
            "failure_share": n_fail / total_failed if total_failed else float("nan"),
        })
    schema = {"cluster": pl.Int64, "n_labelled": pl.Int64, "n_failed": pl.Int64, "failure_rate": pl.Float64,
              "rate_low": pl.Float64, "rate_high": pl.Float64, "lift": pl.Float64, "failure_share": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def category_mix(labels: np.ndarray, categories: Sequence[Sequence[str] | None], *, top: int = 5) -> dict[int, list[tuple[str, int]]]:
    """Per cluster, the most frequent taxonomy categories among its labelled traces."""
    labels = np.asarray(labels)
    mix: dict[int, dict[str, int]] = {}
    for cluster, cats in zip(labels.tolist(), categories, strict=True):
        if not cats:
            continue
        bucket = mix.setdefault(int(cluster), {})
        for category in cats:
            bucket[category] = bucket.get(category, 0) + 1
    return {c: sorted(b.items(), key=lambda kv: (-kv[1], kv[0]))[:top] for c, b in mix.items()}
