"""What the labels say: counts and rates with Wilson intervals, overall or per segment.

:func:`label_summary` reduces label events to current labels and reports, per group of
any traces (or labels) column such as ``prompt_version``, ``model`` or ``intent``:

``verdict``      share of labels with each verdict
``failure``      share of labels whose verdict counts as a failure (the vocabulary decides)
``category``     share of labels carrying each category
``completion``   share of labels that pass and were not escalated (the agent finished the job)
``override``     share of labels whose ``corrected_output`` differs from the trace's output
                 (without ``traces``: any non-empty correction)
``escalation``   share of labels with the escalate flag
``exceptions``   error traces among all traces of the group (needs ``traces``)
``coverage``     labelled traces among all traces of the group (needs ``traces``)

Each label (one per trace and reviewer) counts once; pass ``reviewer=`` for one voice.

Examples
--------
>>> from workbench.review.events import events_frame, new_label
>>> labels = events_frame([new_label("t1", "ana", "pass"), new_label("t2", "ana", "fail")])
>>> label_summary(labels).rate("failure")
0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from workbench import _html
from workbench._frames import as_polars
from workbench.review.events import DEFAULT_VOCABULARY, Vocabulary, current_labels
from workbench.stats import wilson_interval

MEASURES = (
    "verdict",
    "failure",
    "category",
    "completion",
    "override",
    "escalation",
    "exceptions",
    "coverage",
)


@dataclass(frozen=True, repr=False)
class LabelSummary:
    """Rates per group and measure; long format in :meth:`to_frame`."""

    rates: pl.DataFrame
    by: tuple[str, ...]
    confidence: float

    def to_frame(self) -> pl.DataFrame:
        """Columns: the ``by`` columns, ``measure, value, count, n, rate, low, high``."""
        return self.rates

    def rate(self, measure: str, value: str = "", **group: Any) -> float:
        """One rate, e.g. ``summary.rate("category", "refund_no_policy", prompt_version="v1")``."""
        rows = self.rates.filter(pl.col("measure") == measure, pl.col("value") == value)
        for column, wanted in group.items():
            rows = rows.filter(pl.col(column) == wanted)
        if len(rows) != 1:
            raise KeyError(
                f"no single rate for measure={measure!r} value={value!r} {group}: {len(rows)} rows"
            )
        return rows["rate"][0]

    def table(self) -> pl.DataFrame:
        """A wide view: one row per measure/value, one column per group, ``rate [low, high] (k/n)``."""
        cell = pl.format(
            "{}% [{}, {}] ({}/{})",
            (pl.col("rate") * 100).round(1),
            (pl.col("low") * 100).round(1),
            (pl.col("high") * 100).round(1),
            pl.col("count"),
            pl.col("n"),
        )
        shown = self.rates.with_columns(cell.alias("cell"))
        if not self.by:
            return shown.select("measure", "value", pl.col("cell").alias("all"))
        group = pl.concat_str([pl.col(c).cast(pl.String).fill_null("∅") for c in self.by], separator=" / ")
        shown = shown.with_columns(group.alias("group"))
        return shown.pivot(on="group", index=["measure", "value"], values="cell", aggregate_function="first")

    def __repr__(self) -> str:
        return self.to_markdown()

    def to_markdown(self) -> str:
        from workbench import _markdown

        wide = self.table()
        return _markdown.table(wide.columns, wide.rows())

    def _repr_html_(self) -> str:
        title = "Label summary" + (f" by {', '.join(self.by)}" if self.by else "")
        note = _html.tag(
            "div", f"Rates with {self.confidence:.0%} Wilson intervals (count/n).", cls="wb-more"
        )
        return _html.report(title, [note, _html.frame_table(self.table(), max_rows=200)])


def _differs(corrected: pl.Expr, original: pl.Expr | None) -> pl.Expr:
    given = corrected.is_not_null() & (corrected.str.strip_chars() != "")
    if original is None:
        return given
    return given & (corrected.str.strip_chars() != original.fill_null("").str.strip_chars())


def _rows(
    group: dict[str, Any], measure: str, value: str, count: int, n: int, confidence: float
) -> dict[str, Any]:
    low, high = wilson_interval(count, n, confidence=confidence)  # (nan, nan) when n == 0
    rate = count / n if n else math.nan
    return group | {
        "measure": measure,
        "value": value,
        "count": count,
        "n": n,
        "rate": rate,
        "low": low,
        "high": high,
    }


def label_summary(
    labels: Any,
    traces: Any = None,
    *,
    by: str | Sequence[str] | None = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    reviewer: str | None = None,
    confidence: float = 0.95,
) -> LabelSummary:
    """Counts and rates per verdict, category and outcome measure, with Wilson intervals.

    Parameters
    ----------
    labels
        Label events or current labels (pandas or polars); reduced to current labels.
    traces
        The traces table: needed for ``by`` columns that live there, for override against
        the trace output, and for the exception and coverage measures.
    by
        Column(s) to break down by, from ``traces`` or ``labels``. A list column (e.g.
        ``models``) is exploded, so a trace counts under each of its values.
    """
    keys = (by,) if isinstance(by, str) else tuple(by or ())
    current = current_labels(as_polars(labels, name="labels"))
    if reviewer is not None:
        current = current.filter(pl.col("reviewer") == reviewer)
    trace_frame = as_polars(traces, name="traces") if traces is not None else None
    missing = [
        k for k in keys if k not in current.columns and (trace_frame is None or k not in trace_frame.columns)
    ]
    if missing:
        raise ValueError(f"cannot break down by {missing}: not a column of labels or traces")
    joined = current
    if trace_frame is not None:
        extra = [
            c
            for c in ("output", "status", "n_errors", *keys)
            if c in trace_frame.columns and c not in current.columns
        ]
        joined = current.join(
            trace_frame.select("trace_id", *extra).unique("trace_id"), on="trace_id", how="left"
        ).rename({"output": "_trace_output"} if "output" in extra else {})
    for key in keys:
        if isinstance(joined.schema[key], pl.List):
            joined = joined.explode(key)
    original = pl.col("_trace_output") if "_trace_output" in joined.columns else None
    joined = joined.with_columns(
        vocabulary.failed_expr().alias("_failed"),
        _differs(pl.col("corrected_output"), original).alias("_override"),
        pl.col("escalate").fill_null(False).alias("_escalate"),
    )
    rows: list[dict[str, Any]] = []
    groups = joined.partition_by(list(keys), as_dict=True, maintain_order=True) if keys else {(): joined}
    for values, part in sorted(
        groups.items(), key=lambda kv: tuple("" if v is None else str(v) for v in kv[0])
    ):
        group = dict(zip(keys, values, strict=True))
        n = len(part)
        for verdict in vocabulary.verdicts:
            rows.append(
                _rows(group, "verdict", verdict, int((part["verdict"] == verdict).sum()), n, confidence)
            )
        judged = part.filter(pl.col("_failed").is_not_null())
        rows.append(_rows(group, "failure", "", int(judged["_failed"].sum()), len(judged), confidence))
        counts = (
            part.select(pl.col("categories").explode()).drop_nulls()["categories"].value_counts(sort=True)
        )
        for name, count in sorted(counts.rows(), key=lambda r: (-r[1], r[0])):
            rows.append(_rows(group, "category", name, int(count), n, confidence))
        completed = judged.filter(~pl.col("_failed") & ~pl.col("_escalate"))
        rows.append(_rows(group, "completion", "", len(completed), len(judged), confidence))
        rows.append(_rows(group, "override", "", int(part["_override"].sum()), n, confidence))
        rows.append(_rows(group, "escalation", "", int(part["_escalate"].sum()), n, confidence))
    if trace_frame is not None and all(k in trace_frame.columns for k in keys):
        rows += _trace_measures(trace_frame, current, keys, confidence)
    schema = {k: joined.schema[k] for k in keys} | {
        "measure": pl.String, "value": pl.String, "count": pl.Int64, "n": pl.Int64,
        "rate": pl.Float64, "low": pl.Float64, "high": pl.Float64,
    }  # fmt: skip
    frame = pl.DataFrame(rows, schema=schema)
    order = pl.col("measure").replace_strict({m: i for i, m in enumerate(MEASURES)}, return_dtype=pl.Int64)
    frame = frame.with_row_index("_i").sort([*keys, order, "_i"], nulls_last=True).drop("_i")
    return LabelSummary(rates=frame, by=keys, confidence=confidence)


def _trace_measures(
    traces: pl.DataFrame, current: pl.DataFrame, keys: tuple[str, ...], confidence: float
) -> list[dict[str, Any]]:
    """Exception volume and review coverage over all traces of each group."""
    frame = traces.unique("trace_id")
    error = pl.lit(False)
    if "status" in frame.columns:
        error = error | (pl.col("status").fill_null("") == "error")
    if "n_errors" in frame.columns:
        error = error | (pl.col("n_errors").fill_null(0) > 0)
    labelled = set(current["trace_id"].to_list())
    frame = frame.with_columns(
        error.alias("_error"), pl.col("trace_id").is_in(list(labelled)).alias("_labelled")
    )
    for key in keys:
        if isinstance(frame.schema[key], pl.List):
            frame = frame.explode(key)
    groups = frame.partition_by(list(keys), as_dict=True, maintain_order=True) if keys else {(): frame}
    rows = []
    for values, part in groups.items():
        group = dict(zip(keys, values, strict=True))
        rows.append(_rows(group, "exceptions", "", int(part["_error"].sum()), len(part), confidence))
        rows.append(_rows(group, "coverage", "", int(part["_labelled"].sum()), len(part), confidence))
    return rows
