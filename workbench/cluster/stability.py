"""Cluster stability: does a cluster survive resampling (or another seed)?

Hennig's ``clusterboot`` idea: recluster subsamples and, for each original cluster,
take the best Jaccard overlap ``|C ∩ C'| / |C ∪ C'|`` with any new cluster, averaged
over runs. Bands used in practice: below 0.60 unstable, 0.60-0.75 doubtful,
0.75-0.85 stable, above 0.85 highly stable. An unstable cluster is never presented as a
failure mode without a warning.

Examples
--------
>>> import numpy as np
>>> best_jaccard(np.array([0, 0, 1, 1, -1]), np.array([5, 5, 5, 7, -1]))
{0: 0.6666666666666666, 1: 0.5}
"""

from __future__ import annotations

import numpy as np

from workbench.cluster.clusterer import NOISE, HdbscanClusterer

UNSTABLE_BELOW = 0.60
DOUBTFUL_BELOW = 0.75
STABLE_BELOW = 0.85


def stability_band(score: float) -> str:
    """``unstable`` / ``doubtful`` / ``stable`` / ``highly stable`` (``unknown`` for NaN)."""
    if score != score:
        return "unknown"
    if score < UNSTABLE_BELOW:
        return "unstable"
    if score < DOUBTFUL_BELOW:
        return "doubtful"
    if score < STABLE_BELOW:
        return "stable"
    return "highly stable"


def best_jaccard(reference: np.ndarray, other: np.ndarray) -> dict[int, float]:
    """For each cluster of ``reference``, its best Jaccard overlap with a cluster of ``other``.

    Both arrays label the same points; noise (-1) in ``other`` is never a match.
    """
    reference = np.asarray(reference)
    other = np.asarray(other)
    result: dict[int, float] = {}
    ref_ids = [c for c in np.unique(reference) if c != NOISE]
    other_ids = np.unique(other[other != NOISE])
    if not ref_ids:
        return result
    if other_ids.size == 0:
        return {int(c): 0.0 for c in ref_ids}
    ref_pos = {c: i for i, c in enumerate(ref_ids)}
    both = (reference != NOISE) & (other != NOISE)
    r = np.array([ref_pos[c] for c in reference[both]], dtype=np.int64)
    o = np.searchsorted(other_ids, other[both])
    table = np.zeros((len(ref_ids), other_ids.size), dtype=np.int64)
    np.add.at(table, (r, o), 1)
    ref_sizes = np.array([(reference == c).sum() for c in ref_ids])[:, None]
    other_sizes = np.array([(other == c).sum() for c in other_ids])[None, :]
    union = ref_sizes + other_sizes - table
    jaccard = np.divide(table, union, out=np.zeros(table.shape, dtype=np.float64), where=union > 0)
    for c, i in ref_pos.items():
        result[int(c)] = float(jaccard[i].max())
    return result


def bootstrap_stability(
    points: np.ndarray,
    labels: np.ndarray,
    clusterer: HdbscanClusterer,
    *,
    runs: int = 5,
    fraction: float = 0.8,
    seed: int = 0,
) -> dict[int, float]:
    """Mean best-Jaccard of each cluster over ``runs`` reclusterings of random subsets.

    Each run draws ``fraction`` of the points without replacement (duplicated points
    would distort HDBSCAN's densities), reclusters them with the same parameters and
    ``min_cluster_size`` as the original fit, and compares on the drawn points.
    """
    labels = np.asarray(labels)
    clusters = [int(c) for c in np.unique(labels) if c != NOISE]
    if runs <= 0 or not clusters:
        return {c: float("nan") for c in clusters}
    size = getattr(clusterer, "min_cluster_size_", None) or clusterer.resolved_min_cluster_size(len(points))
    rng = np.random.default_rng(seed)
    scores: dict[int, list[float]] = {c: [] for c in clusters}
    n_draw = max(2, int(round(fraction * len(points))))
    for _ in range(runs):
        drawn = np.sort(rng.choice(len(points), size=n_draw, replace=False))
        if n_draw <= size:
            refit_labels = np.full(n_draw, NOISE)
        else:
            refit_labels = clusterer.unfitted_copy().fit(points[drawn], min_cluster_size=size).labels_
        overlap = best_jaccard(labels[drawn], refit_labels)
        for c in clusters:
            scores[c].append(overlap.get(c, 0.0))
    return {c: float(np.mean(v)) for c, v in scores.items()}


def seed_agreement(reference: np.ndarray, others: list[np.ndarray]) -> dict[int, float]:
    """Mean best-Jaccard of each reference cluster against clusterings from other seeds."""
    reference = np.asarray(reference)
    clusters = [int(c) for c in np.unique(reference) if c != NOISE]
    if not others:
        return {c: float("nan") for c in clusters}
    scores = {c: [] for c in clusters}
    for labels in others:
        overlap = best_jaccard(reference, labels)
        for c in clusters:
            scores[c].append(overlap.get(c, 0.0))
    return {c: float(np.mean(v)) for c, v in scores.items()}


def match_clusters(
    old_ids: list[str], old_labels: np.ndarray, new_ids: list[str], new_labels: np.ndarray
) -> dict[int, tuple[int | None, float]]:
    """For each new cluster, the old cluster it overlaps most (Jaccard on shared trace ids).

    A new cluster whose best match is below :data:`UNSTABLE_BELOW` is a new failure mode
    (or one the old clustering did not separate).
    """
    old = dict(zip(old_ids, np.asarray(old_labels).tolist(), strict=True))
    shared = [i for i, t in enumerate(new_ids) if t in old]
    new_arr = np.asarray(new_labels)
    result: dict[int, tuple[int | None, float]] = {}
    if not shared:
        return {int(c): (None, 0.0) for c in np.unique(new_arr) if c != NOISE}
    sub_new = new_arr[shared]
    sub_old = np.array([old[new_ids[i]] for i in shared])
    overlap_new = best_jaccard(sub_new, sub_old)
    for c in np.unique(new_arr):
        if c == NOISE:
            continue
        members = sub_old[sub_new == c]
        members = members[members != NOISE]
        best = int(np.bincount(members).argmax()) if members.size else None
        result[int(c)] = (best, overlap_new.get(int(c), 0.0))
    return result
