"""Exact and near-duplicate removal; MinHash estimates checked against exact Jaccard."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from workbench.export.dedup import deduplicate, estimated_jaccard, find_duplicates, minhash_signatures
from workbench.export.items import EVAL_ITEMS

WORDS = [f"w{i}" for i in range(3000)]


def _text(rng: random.Random, n: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _shingles(text: str, k: int = 3) -> set[tuple[str, ...]]:
    tokens = text.lower().split()
    return {tuple(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def test_exact_duplicates_ignore_case_and_whitespace():
    texts = pl.Series(["Where is my ORDER?", "where  is my order?\n", "Cancel my plan", "cancel my plan"])
    groups = find_duplicates(texts, near=False)
    assert groups["group"].to_list() == [0, 0, 2, 2]
    assert groups["kind"].to_list() == [None, "exact", None, "exact"]


def test_near_duplicates_found_and_distinct_texts_kept():
    rng = random.Random(3)
    base = [_text(rng) for _ in range(200)]
    variants = []
    for text in base[:50]:
        tokens = text.split()
        tokens[rng.randrange(len(tokens))] = "changed"  # one word of 40 changed: Jaccard ~0.86
        variants.append(" ".join(tokens))
    texts = pl.Series(base + variants)
    groups = find_duplicates(texts, threshold=0.7)
    kinds = groups["kind"].to_list()
    assert kinds[:200] == [None] * 200  # distinct random texts never merge
    assert kinds[200:].count("near") >= 48  # LSH recall near 1 at this similarity
    for i, g in enumerate(groups["group"].to_list()[200:]):
        if kinds[200 + i] == "near":
            assert g == i  # grouped with the text it was made from


def test_minhash_estimate_tracks_exact_jaccard():
    rng = random.Random(5)
    pairs = []
    for _ in range(60):
        a = _text(rng, 60).split()
        b = list(a)
        for _k in range(rng.randrange(0, 30)):
            b[rng.randrange(len(b))] = rng.choice(WORDS)
        pairs.append((" ".join(a), " ".join(b)))
    sig = minhash_signatures(pl.Series([p for pair in pairs for p in pair]), num_bins=128)
    est = estimated_jaccard(sig[0::2], sig[1::2])
    exact = np.array([len(_shingles(a) & _shingles(b)) / len(_shingles(a) | _shingles(b)) for a, b in pairs])
    assert np.abs(est - exact).mean() < 0.06
    assert np.corrcoef(est, exact)[0, 1] > 0.95


def test_short_and_empty_texts():
    groups = find_duplicates(pl.Series(["hi", "hello", "", "hi there", "", "ok"]))
    assert groups["kind"].to_list() == [None, None, None, None, "exact", None]


def _items(texts: list[str], expected: list[str | None]) -> pl.DataFrame:
    n = len(texts)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "item_id": [f"i{k}" for k in range(n)],
            "input": texts,
            "expected": expected,
            "verdict": ["fail" if k % 2 else "pass" for k in range(n)],
            "trace_start_time": [start + timedelta(minutes=k) for k in range(n)],
        }
    )
    return frame.select(
        [pl.col(c) if c in frame.columns else pl.lit(None).alias(c) for c in EVAL_ITEMS]
    ).cast(EVAL_ITEMS)


def test_deduplicate_keeps_item_with_expected_and_reports_pairs():
    items = _items(
        ["refund please", "Refund please", "other thing", "refund  please"], [None, "ok", None, None]
    )
    kept, report = deduplicate(items, text=items["input"], near=True)
    assert kept["item_id"].to_list() == ["i1", "i2"]  # i1 has an expected value
    assert kept.filter(pl.col("item_id") == "i1")["n_duplicates"].item() == 2
    assert report.n_exact_removed == 2 and report.n_near_removed == 0
    assert sorted(report.removed) == [("i0", "i1", "exact"), ("i3", "i1", "exact")]
    assert report.n_conflicting_groups == 1  # i0 pass, i1 fail, i3 fail
    assert report.to_dict()["removed"][0].keys() == {"item_id", "duplicate_of", "kind"}
