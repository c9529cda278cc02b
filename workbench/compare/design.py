"""Choose the analysis from the data: paired, clustered or independent.

- **paired**: the same task keys appear in both cohorts, one run per task and cohort:
  McNemar exact test and Newcombe's paired interval on the tasks present in both.
- **paired-repeated**: the same tasks in both cohorts with several runs: the task is
  the cluster of a cluster-robust difference (its cross terms are the pairing).
- **clustered**: a task or session has several traces within a cohort but tasks are
  not shared: cluster-robust standard errors (Miller 2024).
- **independent**: one trace per unit: Wilson / Newcombe, two-proportion or Fisher.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"_cohort": ["a", "a", "b", "b"], "task": ["t1", "t2", "t1", "t2"]})
>>> detect_design(frame, baseline="a", candidate="b", task_key="task").kind
'paired'
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from workbench.compare.cohorts import COHORT

PAIRED = "paired"
PAIRED_REPEATED = "paired-repeated"
CLUSTERED = "clustered"
INDEPENDENT = "independent"
UNIT = "_unit"


@dataclass(frozen=True)
class Design:
    """The chosen analysis for one baseline/candidate pair.

    Attributes
    ----------
    kind
        ``paired``, ``paired-repeated``, ``clustered`` or ``independent``.
    unit_key
        Column naming the unit (task or session); ``None`` when each trace is a unit.
    description
        One sentence for the result.
    notes
        Things the reader should know (traces left out of a paired analysis...).
    max_runs
        Most runs of one unit within one cohort (for pass^k).
    """

    kind: str
    unit_key: str | None
    description: str
    notes: tuple[str, ...] = ()
    max_runs: int = 1
    min_runs: int = 1

    @property
    def paired(self) -> bool:
        return self.kind in (PAIRED, PAIRED_REPEATED)


def detect_design(
    frame: pl.DataFrame,
    *,
    baseline: str,
    candidate: str,
    task_key: str | None = None,
    session_key: str | None = "session_id",
) -> Design:
    """Inspect task keys and session ids of the two cohorts and pick the analysis.

    Parameters
    ----------
    frame
        Rows of both cohorts with a ``_cohort`` column.
    task_key
        Column identifying the task (the same task replayed by both agents).
    session_key
        Column identifying a conversation; several traces of one session are clustered.
    """
    pair = frame.filter(pl.col(COHORT).is_in([baseline, candidate]))
    if task_key is not None:
        if task_key not in pair.columns:
            raise ValueError(f"task_key {task_key!r} is not a traces column")
        runs = (
            pair.filter(pl.col(task_key).is_not_null())
            .group_by(task_key, COHORT)
            .agg(pl.len().alias("runs"))
        )
        per_task = runs.group_by(task_key).agg(pl.col(COHORT).n_unique().alias("k"), pl.col("runs").max(),
                                               pl.col("runs").min().alias("min_runs"))
        shared = per_task.filter(pl.col("k") == 2)
        if shared.height >= max(1, per_task.height / 2):
            most = int(shared["runs"].max())
            fewest = int(shared["min_runs"].min())
            notes = []
            left_out = per_task.height - shared.height
            if left_out:
                notes.append(
                    f"{left_out} of {per_task.height} tasks ran in only one cohort and are left out of the paired analysis"
                )
            if most == 1:
                return Design(PAIRED, task_key, f"paired by {task_key}: {shared.height} tasks in both cohorts",
                              tuple(notes))
            return Design(
                PAIRED_REPEATED,
                task_key,
                f"paired by {task_key} with repeated runs (up to {most} per task and cohort): "
                f"{shared.height} tasks in both cohorts, task-clustered robust errors",
                tuple(notes),
                max_runs=most,
                min_runs=fewest,
            )
        if runs.height and int(runs["runs"].max()) > 1:
            return Design(CLUSTERED, task_key, f"clustered by {task_key}: tasks have several runs",
                          max_runs=int(runs["runs"].max()), min_runs=int(runs["runs"].min()))
    if session_key is not None and session_key in pair.columns and pair[session_key].n_unique() < pair.height:
        sizes = pair.filter(pl.col(session_key).is_not_null()).group_by(session_key, COHORT).len()
        if sizes.height and int(sizes["len"].max()) > 1:
            return Design(
                CLUSTERED,
                session_key,
                f"clustered by {session_key}: {sizes.height} sessions, up to {int(sizes['len'].max())} traces each",
                max_runs=int(sizes["len"].max()),
            )
    return Design(INDEPENDENT, None, "independent traces")


def with_units(frame: pl.DataFrame, design: Design) -> pl.DataFrame:
    """Add the integer ``_unit`` column (a code of the cluster or task id; the row when independent).

    For paired designs, rows of tasks that ran in only one cohort are dropped.
    """
    if design.unit_key is None:
        return frame.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(UNIT))
    key = pl.coalesce(pl.col(design.unit_key).cast(pl.String), pl.lit("trace:") + pl.col("trace_id"))
    out = frame.with_columns(key.rank("dense").cast(pl.Int64).alias(UNIT))
    if design.paired:
        shared = out.group_by(UNIT).agg(pl.col(COHORT).n_unique().alias("_k")).filter(pl.col("_k") == 2)
        out = out.join(shared.select(UNIT), on=UNIT, how="semi")
    return out
