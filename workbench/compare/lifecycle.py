"""Failure-mode lifecycle: when each category was first and last seen, and where it stopped.

Cohorts are taken in order (baseline first, then the candidates). A category that is
absent from every cohort after the last one where it appeared "stopped" in the next
cohort; ``p_absent_by_chance`` is the probability of seeing it zero times in those
later traces if its rate had stayed what it was (``(1 - rate)^n``), so a category that
merely went unobserved in a small cohort is not called fixed.

Examples
--------
>>> import polars as pl
>>> from datetime import datetime, UTC
>>> t = [datetime(2025, 1, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
>>> frame = pl.DataFrame({"trace_id": list("abcd"), "_cohort": ["v1", "v1", "v2", "v2"],
...                       "start_time": t, "category: x": [1.0, 0.0, 0.0, 0.0]})
>>> failure_lifecycle(frame, ["category: x"], order=["v1", "v2"])["stopped_in"].to_list()
['v2']
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from workbench.compare.cohorts import COHORT
from workbench.compare.metrics import CATEGORY_PREFIX

SCHEMA = {
    "category": pl.String, "n_traces": pl.Int64, "first_seen": pl.Datetime("us", "UTC"),
    "last_seen": pl.Datetime("us", "UTC"), "first_cohort": pl.String, "last_cohort": pl.String,
    "stopped_in": pl.String, "fixed_at": pl.Datetime("us", "UTC"), "time_to_fix": pl.Duration("us"),
    "p_absent_by_chance": pl.Float64, "status": pl.String,
}


def failure_lifecycle(
    assigned: pl.DataFrame, columns: Sequence[str], *, order: Sequence[str], alpha: float = 0.05
) -> pl.DataFrame:
    """One row per category column (0/1 per trace, null = unlabelled) with its lifecycle."""
    if not columns:
        return pl.DataFrame(schema=SCHEMA)
    has_time = "start_time" in assigned.columns
    time = pl.col("start_time").cast(pl.Datetime("us", "UTC")) if has_time else pl.lit(None, dtype=SCHEMA["first_seen"])
    starts = dict(assigned.group_by(COHORT).agg(time.min()).iter_rows())
    rank = {name: i for i, name in enumerate(order)}
    rows = []
    for column in columns:
        per_cohort = {
            name: (n, x)
            for name, n, x in assigned.group_by(COHORT)
            .agg(pl.col(column).count().alias("n"), pl.col(column).sum().alias("x"))
            .iter_rows()
        }
        seen = [c for c in order if per_cohort.get(c, (0, 0))[1] > 0]
        if not seen:
            continue
        hits = assigned.filter(pl.col(column) == 1)
        first_seen, last_seen = hits.select(time.min()).item(), hits.select(time.max()).item()
        last = seen[-1]
        later = [c for c in order if rank[c] > rank[last] and per_cohort.get(c, (0, 0))[0] > 0]
        row = {
            "category": column.removeprefix(CATEGORY_PREFIX), "n_traces": hits.height,
            "first_seen": first_seen, "last_seen": last_seen, "first_cohort": seen[0], "last_cohort": last,
            "stopped_in": None, "fixed_at": None, "time_to_fix": None, "p_absent_by_chance": None,
        }
        if not later:
            row["status"] = "active" if seen[0] == order[0] else f"introduced in {seen[0]}"
        else:
            n_last, x_last = per_cohort[last]
            n_after = sum(per_cohort[c][0] for c in later)
            p_absent = (1 - x_last / n_last) ** n_after
            fixed_at = starts.get(later[0])
            row.update(
                stopped_in=later[0], fixed_at=fixed_at, p_absent_by_chance=p_absent,
                time_to_fix=(fixed_at - first_seen) if fixed_at is not None and first_seen is not None else None,
                status="fixed" if p_absent < alpha else "not seen since (could be chance)",
            )
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA) if rows else pl.DataFrame(schema=SCHEMA)
