"""Exact and near-duplicate detection for eval items (before splitting).

- **Exact**: items whose normalised text (lower case, whitespace collapsed) is the
  same are one group.
- **Near**: MinHash over word shingles, computed vectorised with *one permutation
  hashing* (each shingle hash goes to one of ``num_bins`` bins by its top bits and
  the minimum per bin is kept; Li, Owen & Zhang 2012; empty bins are filled from
  their neighbours, "densification"). Banded LSH proposes
  candidate pairs; a pair is kept when the estimated Jaccard similarity (equal bins
  among the bins not empty in both) reaches ``threshold``.
  Connected components of kept pairs form the groups.

Every group keeps one representative (items with an ``expected`` first, then the
earliest); the others are reported with the representative they duplicate, never
silently lost.

Examples
--------
>>> import polars as pl
>>> texts = pl.Series(["Where is my order 123?", "where is my  ORDER 123?", "Cancel my plan please now"])
>>> find_duplicates(texts).get_column("group").to_list()
[0, 0, 2]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

_MIX1 = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX3 = np.uint64(0x94D049BB133111EB)
_EMPTY = np.uint64(np.iinfo(np.uint64).max)


@dataclass(frozen=True)
class DedupReport:
    """What deduplication removed: counts and the dropped item -> kept item pairs."""

    method: str
    threshold: float
    shingle: int
    num_bins: int
    bands: int
    n_items: int
    n_exact_removed: int
    n_near_removed: int
    n_conflicting_groups: int
    removed: tuple[tuple[str, str, str], ...]  # (dropped item_id, kept item_id, "exact"|"near")

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "threshold": self.threshold,
            "shingle": self.shingle,
            "num_bins": self.num_bins,
            "bands": self.bands,
            "n_items": self.n_items,
            "n_exact_removed": self.n_exact_removed,
            "n_near_removed": self.n_near_removed,
            "n_conflicting_groups": self.n_conflicting_groups,
            "removed": [{"item_id": d, "duplicate_of": k, "kind": kind} for d, k, kind in self.removed],
        }


def normalise(texts: pl.Series) -> pl.Series:
    """Lower case, whitespace collapsed and trimmed (the key for exact duplicates)."""
    # only runs of 2+ whitespace characters or non-space whitespace need replacing (much faster than \s+)
    collapsed = texts.fill_null("").str.to_lowercase().str.replace_all(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]", " ")
    return collapsed.str.strip_chars()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads hash bits (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _MIX2
    x = x ^ (x >> np.uint64(27))
    x = x * _MIX3
    return x ^ (x >> np.uint64(31))


def minhash_signatures(
    texts: pl.Series,
    *,
    num_bins: int = 64,
    shingle: int = 3,
    max_tokens: int = 64,
    seed: int = 0,
    normalised: bool = False,
) -> np.ndarray:
    """One-permutation MinHash signatures, shape ``(len(texts), num_bins)``, dtype uint64.

    Only the last ``max_tokens`` words count: for a conversation that is the
    failing turn and the context right before it, so two turns of one session
    (which share their beginning) are not taken for duplicates. Texts with fewer
    than ``shingle`` words use their words as shingles. Empty bins hold the
    maximum uint64 value (see :func:`estimated_jaccard`). Pass ``normalised=True``
    when ``texts`` already went through :func:`normalise`.
    """
    if num_bins & (num_bins - 1):
        raise ValueError(f"num_bins must be a power of two, got {num_bins}")
    n = len(texts)
    clean = texts if normalised else normalise(texts)
    # words average well under 12 bytes: the tail keeps every one of the last max_tokens words
    tokens = clean.str.tail(12 * max_tokens).str.split(" ").list.tail(max_tokens)
    exploded = pl.DataFrame({"row": pl.int_range(0, n, eager=True, dtype=pl.Int64), "tok": tokens})
    exploded = exploded.explode("tok").filter(pl.col("tok").str.len_bytes() > 0)
    rows = exploded.get_column("row").to_numpy()
    hashes = exploded.get_column("tok").hash(seed=seed).to_numpy()
    m = len(rows) - shingle + 1
    if shingle > 1 and m > 0:
        same = np.ones(m, dtype=bool)
        combined = hashes[:m].copy()
        for k in range(1, shingle):
            same &= rows[k : m + k] == rows[:m]
            combined = combined * _MIX1 + hashes[k : m + k]
        shingle_rows, shingle_hashes = rows[:m][same], _mix(combined[same])
        has_shingle = np.zeros(n, dtype=bool)
        has_shingle[shingle_rows] = True
        short = ~has_shingle[rows]
        if short.any():  # texts shorter than one shingle: their single words
            shingle_rows = np.concatenate([shingle_rows, rows[short]])
            shingle_hashes = np.concatenate([shingle_hashes, hashes[short]])
    else:
        shingle_rows, shingle_hashes = rows, hashes
    bits = int(np.log2(num_bins))
    cell = shingle_rows * num_bins + (shingle_hashes >> np.uint64(64 - bits)).astype(np.int64)
    values = shingle_hashes & np.uint64((1 << (64 - bits)) - 1)
    signatures = np.full(n * num_bins, _EMPTY, dtype=np.uint64)
    np.minimum.at(signatures, cell, values)
    return _densify(signatures.reshape(n, num_bins))


def _densify(signatures: np.ndarray, *, passes: int = 12) -> np.ndarray:
    """Fill empty bins from the next bin to the right (circularly), salted by the distance.

    Two similar texts have empty bins in the same places, so they get the same
    filled values and every LSH band stays informative (Shrivastava & Li 2014).
    Bins still empty after ``passes`` steps (texts with almost no shingles) stay empty.
    """
    out = signatures.copy()
    for step in range(1, passes + 1):
        empty = out == _EMPTY
        if not empty.any():
            break
        shifted = np.roll(signatures, -step, axis=1)
        fill = empty & (shifted != _EMPTY)
        if fill.any():
            out[fill] = _mix(shifted[fill] ^ np.uint64(step)) >> np.uint64(1)
    return out


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Row-wise Jaccard estimate: equal bins among bins not empty in both (one-permutation hashing)."""
    both_empty = (sig_a == _EMPTY) & (sig_b == _EMPTY)
    equal = (sig_a == sig_b) & ~both_empty
    used = (~both_empty).sum(axis=1)
    return np.where(used > 0, equal.sum(axis=1) / np.maximum(used, 1), 0.0)


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def find_duplicates(
    texts: pl.Series,
    *,
    near: bool = True,
    threshold: float = 0.8,
    num_bins: int = 64,
    bands: int = 16,
    shingle: int = 3,
    seed: int = 0,
) -> pl.DataFrame:
    """Duplicate groups of ``texts``: columns ``group`` (index of the group's first member) and ``kind``.

    ``kind`` is ``"exact"`` or ``"near"`` for members that duplicate an earlier one,
    else null. Rows keep their order; the first member of each group is its
    representative (order the input by preference).
    """
    n = len(texts)
    if n == 0:
        return pl.DataFrame(schema={"group": pl.Int64, "kind": pl.String})
    keys = normalise(texts)
    exact_first = (
        pl.DataFrame({"key": keys.hash(seed=seed), "row": pl.int_range(0, n, eager=True)})
        .with_columns(pl.col("row").min().over("key").alias("first"))
        .get_column("first")
        .to_numpy()
    )
    group = exact_first.astype(np.int64)
    kind = np.where(group != np.arange(n), "exact", None).astype(object)
    if near and n > 1:
        reps = np.flatnonzero(group == np.arange(n))
        sig = minhash_signatures(
            keys.gather(reps), num_bins=num_bins, shingle=shingle, seed=seed, normalised=True
        )
        rows_per_band = num_bins // bands
        left, right = [], []
        for b in range(bands):
            band = sig[:, b * rows_per_band : (b + 1) * rows_per_band]
            key = _mix(band[:, 0])
            for j in range(1, rows_per_band):
                key = _mix(key * _MIX1 + band[:, j])
            # a band with only empty bins says nothing: give it a key no other text shares
            empty_band = (band == _EMPTY).all(axis=1)
            key = np.where(empty_band, _mix(np.arange(len(key), dtype=np.uint64) ^ _MIX3) | np.uint64(1), key)
            order = np.argsort(key, kind="stable")
            sorted_key = key[order]
            starts = np.r_[True, sorted_key[1:] != sorted_key[:-1]]
            head = order[np.maximum.accumulate(np.where(starts, np.arange(len(order)), 0))]
            pair = head != order
            left.append(head[pair])
            right.append(order[pair])
        if left:
            a, b = np.concatenate(left), np.concatenate(right)
            if a.size:
                m = np.int64(len(reps))
                pairs = np.sort(np.minimum(a, b).astype(np.int64) * m + np.maximum(a, b))
                pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
                a, b = pairs // m, pairs % m
                similarity = estimated_jaccard(sig[a], sig[b])
                keep = similarity >= threshold
                labels = _components(len(reps), a[keep], b[keep])
                first_of_component = (
                    pl.DataFrame({"c": labels, "r": reps})
                    .with_columns(pl.col("r").min().over("c").alias("f"))["f"]
                    .to_numpy()
                )
                near_group = np.empty(n, dtype=np.int64)
                near_group[reps] = first_of_component
                new_group = near_group[group]
                kind = np.where((new_group != np.arange(n)) & (kind == None), "near", kind)  # noqa: E711
                group = new_group
    return pl.DataFrame({"group": group, "kind": pl.Series(list(kind), dtype=pl.String)})


def deduplicate(
    items: pl.DataFrame,
    *,
    text: pl.Series,
    near: bool = True,
    threshold: float = 0.8,
    num_bins: int = 64,
    bands: int = 16,
    shingle: int = 3,
    seed: int = 0,
) -> tuple[pl.DataFrame, DedupReport]:
    """Drop duplicate items, keeping one representative per group.

    ``text`` (one string per item, same order) is what is compared, usually the
    conversation up to the failing turn. Representatives are chosen by: has an
    ``expected`` value, then earliest ``trace_start_time``, then ``item_id``. The
    kept item's ``n_duplicates`` counts the items it stands for.
    """
    n = items.height
    order = (
        items.with_row_index("_row")
        .sort(
            [pl.col("expected").is_null(), pl.col("trace_start_time"), pl.col("item_id")],
            nulls_last=True,
        )
        .get_column("_row")
    )
    ranked = items.gather(order)
    groups = find_duplicates(
        text.gather(order),
        near=near,
        threshold=threshold,
        num_bins=num_bins,
        bands=bands,
        shingle=shingle,
        seed=seed,
    )
    ranked = ranked.with_columns(groups["group"].alias("_group"), groups["kind"].alias("_kind"))
    ids = ranked.get_column("item_id")
    kept_mask = groups["kind"].is_null()
    removed = ranked.filter(~kept_mask)
    removed_pairs = tuple(
        zip(
            removed["item_id"].to_list(),
            ids.gather(removed["_group"]).to_list(),
            removed["_kind"].to_list(),
            strict=True,
        )
    )
    verdicts = ranked.group_by("_group").agg(pl.col("verdict").n_unique().alias("n"))
    conflicting = int((verdicts["n"] > 1).sum())
    sizes = ranked.group_by("_group").agg(pl.len().alias("_size"))
    kept = (
        ranked.filter(kept_mask)
        .join(sizes, on="_group", how="left", maintain_order="left")
        .with_columns((pl.col("_size") - 1).cast(pl.Int64).alias("n_duplicates"))
        .drop("_group", "_kind", "_size")
        .sort(["trace_start_time", "item_id"], nulls_last=True)
    )
    kinds = removed["_kind"]
    report = DedupReport(
        method="exact+minhash" if near else "exact",
        threshold=threshold,
        shingle=shingle,
        num_bins=num_bins,
        bands=bands,
        n_items=n,
        n_exact_removed=int((kinds == "exact").sum()),
        n_near_removed=int((kinds == "near").sum()),
        n_conflicting_groups=conflicting,
        removed=removed_pairs,
    )
    return kept, report
