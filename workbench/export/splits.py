"""Group-aware, stratified, seeded splits, and a leakage check.

Items that share a session, a user or a task (any of the ``group_columns``) are
linked; linked items form one group (connected components), and a group goes to
exactly one split. Groups are assigned greedily, largest first (ties in a seeded
random order), each to the split where it most reduces the squared gap between
the per-stratum counts and the target shares. The result depends only on the
items and the seed, not on the row order.

Examples
--------
>>> import polars as pl
>>> items = pl.DataFrame({"item_id": [f"i{k}" for k in range(8)],
...                       "session_id": ["a", "a", "b", "b", "c", "d", "e", "f"],
...                       "verdict": ["fail", "fail", "pass", "pass", "fail", "pass", "fail", "pass"]})
>>> split = assign_splits(items, ratios={"dev": 0.5, "test": 0.5}, stratify_by="verdict", seed=0)
>>> check_leakage(items.with_columns(split=split), group_columns=["session_id"]).ok
True
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

DEFAULT_RATIOS = {"train": 0.2, "dev": 0.4, "test": 0.4}
DEFAULT_GROUP_COLUMNS = ("session_id", "user_id", "task_id")


def _check_ratios(ratios: Mapping[str, float]) -> dict[str, float]:
    if not ratios:
        raise ValueError("split ratios are empty")
    if any(r < 0 for r in ratios.values()):
        raise ValueError(f"split ratios must be >= 0, got {dict(ratios)}")
    total = float(sum(ratios.values()))
    if total <= 0:
        raise ValueError(f"split ratios must sum to more than 0, got {dict(ratios)}")
    return {str(k): float(v) / total for k, v in ratios.items()}


def group_ids(items: pl.DataFrame, group_columns: Sequence[str]) -> np.ndarray:
    """Connected-component id per item: items sharing any non-null group value are linked."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = items.height
    present = [c for c in group_columns if c in items.columns]
    rows, cols = [np.arange(n)], [np.arange(n)]
    offset = n
    for column in present:
        codes = items.select(pl.col(column).cast(pl.String)).to_series()
        known = codes.is_not_null().to_numpy()
        if not known.any():
            continue
        ids = (codes.rank("dense").fill_null(1) - 1).to_numpy().astype(np.int64)
        rows.append(np.flatnonzero(known))
        cols.append(offset + ids[known])
        offset += int(ids[known].max()) + 1
    r, c = np.concatenate(rows), np.concatenate(cols)
    graph = coo_matrix((np.ones(len(r), dtype=np.int8), (r, c)), shape=(offset, offset))
    return connected_components(graph, directed=False)[1][:n]


def assign_splits(
    items: pl.DataFrame,
    *,
    ratios: Mapping[str, float] = DEFAULT_RATIOS,
    group_columns: Sequence[str] = DEFAULT_GROUP_COLUMNS,
    stratify_by: str | None = "stratum",
    seed: int = 0,
    fixed: Mapping[str, str] | None = None,
) -> pl.Series:
    """The split name of every item (a ``split`` Series in the items' order).

    Parameters
    ----------
    items
        Needs ``item_id``; group and stratum columns are used when present.
    ratios
        Split name -> share (normalised to sum to 1).
    group_columns
        Items sharing a value in any of these columns stay in one split.
    stratify_by
        Column whose values should be spread in proportion (e.g. the verdict plus
        the first failure category). Missing column: no stratification.
    seed
        Same items + same seed -> same splits.
    fixed
        ``item_id -> split`` to keep (e.g. from the previous version of the same
        dataset, so that items never move between splits across versions). A group
        holding fixed items goes to their most common split; the other groups are
        assigned around them.
    """
    shares = _check_ratios(ratios)
    names = list(shares)
    n = items.height
    if n == 0:
        return pl.Series("split", [], dtype=pl.String)
    component = group_ids(items, group_columns)
    if stratify_by and stratify_by in items.columns:
        strata = items.get_column(stratify_by).cast(pl.String).fill_null("∅")
    else:
        strata = pl.Series([""] * n, dtype=pl.String)
    stratum_codes = (strata.rank("dense") - 1).to_numpy().astype(np.int64)
    n_strata = int(stratum_codes.max()) + 1
    # canonical group order (by smallest item id) so that row order does not matter
    ids = items.get_column("item_id").cast(pl.String).to_numpy()
    frame = pl.DataFrame({"g": component, "s": stratum_codes, "id": ids})
    groups = frame.group_by("g").agg(pl.col("id").min().alias("key"), pl.len().alias("size")).sort("key")
    counts = np.zeros((groups.height, n_strata))
    position = {g: i for i, g in enumerate(groups.get_column("g").to_list())}
    np.add.at(counts, (np.array([position[g] for g in component]), stratum_codes), 1.0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(groups.height)
    order = order[np.argsort(-groups.get_column("size").to_numpy()[order], kind="stable")]

    target = np.outer(np.array([shares[s] for s in names]), counts.sum(axis=0))  # (splits, strata)
    target_size = np.array([shares[s] for s in names]) * n
    allocated = np.zeros_like(target)
    sizes = np.zeros(len(names))
    choice = np.full(groups.height, -1, dtype=np.int64)
    pinned = _pinned_groups(ids, component, position, fixed or {}, names)
    for g, best in pinned.items():
        choice[g] = best
        allocated[best] += counts[g]
        sizes[best] += counts[g].sum()
    for g in order:
        if choice[g] >= 0:
            continue
        vec = counts[g]
        # reduction in squared error per split if this group is added there
        gain = ((allocated + vec - target) ** 2 - (allocated - target) ** 2).sum(axis=1)
        gain += ((sizes + vec.sum() - target_size) ** 2 - (sizes - target_size) ** 2) / max(n_strata, 1)
        best = int(np.argmin(gain))
        choice[g] = best
        allocated[best] += vec
        sizes[best] += vec.sum()
    per_item = choice[np.array([position[g] for g in component])]
    return pl.Series("split", [names[i] for i in per_item], dtype=pl.String)


def _pinned_groups(
    ids: np.ndarray,
    component: np.ndarray,
    position: Mapping[int, int],
    fixed: Mapping[str, str],
    names: list[str],
) -> dict[int, int]:
    """Group index -> split index for groups that hold items with a fixed split."""
    if not fixed:
        return {}
    index = {name: i for i, name in enumerate(names)}
    votes: dict[int, list[int]] = {}
    for item_id, comp in zip(ids.tolist(), component.tolist(), strict=True):
        split = fixed.get(item_id)
        if split in index:
            votes.setdefault(position[comp], []).append(index[split])
    return {g: int(np.bincount(v).argmax()) for g, v in votes.items()}


@dataclass(frozen=True)
class LeakageReport:
    """Groups and texts found in more than one split."""

    shared_groups: dict[str, list[str]] = field(default_factory=dict)  # column -> values in 2+ splits
    shared_texts: int = 0  # normalised texts present in 2+ splits

    @property
    def ok(self) -> bool:
        return not any(self.shared_groups.values()) and self.shared_texts == 0

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "shared_groups": {k: {"count": len(v), "examples": v[:5]} for k, v in self.shared_groups.items()},
            "shared_texts": self.shared_texts,
        }


def check_leakage(
    items: pl.DataFrame,
    *,
    split_column: str = "split",
    group_columns: Sequence[str] = DEFAULT_GROUP_COLUMNS,
    text: pl.Series | None = None,
) -> LeakageReport:
    """Find group values and (normalised) texts that appear in more than one split."""
    from workbench.export.dedup import normalise

    shared: dict[str, list[str]] = {}
    for column in group_columns:
        if column not in items.columns:
            continue
        spread = (
            items.filter(pl.col(column).is_not_null())
            .group_by(column)
            .agg(pl.col(split_column).n_unique().alias("n"))
            .filter(pl.col("n") > 1)
        )
        shared[column] = sorted(str(v) for v in spread.get_column(column).to_list())
    shared_texts = 0
    if text is not None:
        keyed = pl.DataFrame({"key": normalise(text), "split": items.get_column(split_column)})
        shared_texts = (
            keyed.group_by("key").agg(pl.col("split").n_unique().alias("n")).filter(pl.col("n") > 1).height
        )
    return LeakageReport(shared_groups=shared, shared_texts=shared_texts)
