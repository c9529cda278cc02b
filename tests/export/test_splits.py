"""Group-aware stratified splits and the leakage check."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from workbench.export.splits import assign_splits, check_leakage, group_ids


def _items(n: int = 3000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    session = rng.integers(0, n // 3, n)
    return pl.DataFrame(
        {
            "item_id": [f"i{k:05d}" for k in range(n)],
            "session_id": [f"s{s}" for s in session],
            "user_id": [f"u{s // 4}" if s % 7 else None for s in session],
            "task_id": [f"task{s // 8}" if k % 10 == 0 else None for k, s in enumerate(session)],
            "stratum": rng.choice(["pass", "fail:a", "fail:b", "fail:c"], n, p=[0.6, 0.2, 0.15, 0.05]),
        }
    )


def test_groups_link_transitively():
    items = pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d", "e"],
            "session_id": ["s1", "s1", "s2", "s3", None],
            "user_id": [None, "u1", "u1", None, None],
        }
    )
    ids = group_ids(items, ["session_id", "user_id"])
    assert ids[0] == ids[1] == ids[2]  # a-b via session, b-c via user
    assert len({ids[0], ids[3], ids[4]}) == 3  # nulls never link


def test_no_group_in_two_splits_and_stratified():
    items = _items()
    split = assign_splits(items, ratios={"train": 0.2, "dev": 0.4, "test": 0.4}, seed=1)
    frame = items.with_columns(split=split)
    report = check_leakage(frame, group_columns=["session_id", "user_id", "task_id"])
    assert report.ok, report.to_dict()
    shares = frame.group_by("split").len().with_columns(pl.col("len") / frame.height)
    share = dict(shares.iter_rows())
    assert share["train"] == pytest.approx(0.2, abs=0.03) and share["test"] == pytest.approx(0.4, abs=0.03)
    by_stratum = frame.group_by("stratum", "split").len().pivot("split", index="stratum", values="len")
    for row in by_stratum.iter_rows(named=True):
        total = row["train"] + row["dev"] + row["test"]
        assert row["train"] / total == pytest.approx(0.2, abs=0.05), row


def test_same_seed_same_splits_independent_of_row_order():
    items = _items()
    first = assign_splits(items, seed=3)
    again = assign_splits(items, seed=3)
    shuffled = items.with_row_index("pos").sample(fraction=1.0, shuffle=True, seed=9)
    reordered = assign_splits(shuffled.drop("pos"), seed=3)
    back = pl.DataFrame({"pos": shuffled["pos"], "split": reordered}).sort("pos")["split"]
    assert first.to_list() == again.to_list() == back.to_list()
    assert assign_splits(items, seed=4).to_list() != first.to_list()


def test_fixed_assignments_are_kept():
    items = _items(600)
    first = assign_splits(items, seed=0)
    fixed = dict(zip(items["item_id"].to_list()[:300], first.to_list()[:300], strict=True))
    grown = pl.concat(
        [
            items,
            _items(300, seed=5).with_columns(
                pl.col(c) + "new" for c in ("item_id", "session_id", "user_id", "task_id")
            ),
        ]
    )
    second = assign_splits(grown, seed=99, fixed=fixed)
    assert second.to_list()[:300] == first.to_list()[:300]
    assert check_leakage(
        grown.with_columns(split=second), group_columns=["session_id", "user_id", "task_id"]
    ).ok


def test_leakage_check_finds_planted_leak():
    items = pl.DataFrame(
        {"item_id": ["a", "b", "c"], "session_id": ["s", "s", "t"], "split": ["dev", "test", "test"]}
    )
    report = check_leakage(items, group_columns=["session_id"], text=pl.Series(["x", "y", "X "]))
    assert not report.ok
    assert report.shared_groups["session_id"] == ["s"]
    assert report.shared_texts == 1


def test_bad_ratios():
    with pytest.raises(ValueError, match=">= 0"):
        assign_splits(_items(10), ratios={"a": -1, "b": 2})
    with pytest.raises(ValueError, match="empty"):
        assign_splits(_items(10), ratios={})
