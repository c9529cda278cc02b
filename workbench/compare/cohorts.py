"""Cohort definitions: which traces form the baseline and which the candidates.

A :class:`CohortSpec` is an immutable description; :meth:`CohortSpec.assign` turns a
traces frame into one row per (trace, cohort). Column and time cohorts put each trace
in at most one cohort; filter cohorts may put a trace in several (the comparison then
warns about it).

Examples
--------
>>> import polars as pl
>>> traces = pl.DataFrame({"trace_id": ["a", "b", "c"], "prompt_version": ["v1", "v2", "v3"]})
>>> spec = by_column("prompt_version", baseline="v1")
>>> spec.assign(traces)["_cohort"].to_list()
['v1', 'v2', 'v3']
>>> spec.candidates_in(spec.assign(traces))
('v2', 'v3')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import polars as pl

COHORT = "_cohort"


@dataclass(frozen=True)
class CohortSpec:
    """How traces are split into a baseline and one or more candidate cohorts.

    Build it with :func:`by_column`, :func:`by_time` or :func:`by_filter`.

    Attributes
    ----------
    baseline
        Name of the baseline cohort.
    candidates
        Candidate names in display order; empty means "every other cohort found".
    filters
        Cohort name -> polars expression selecting its traces.
    column
        Column whose values name the cohorts (``by_column``), else ``None``.
    description
        One line saying how cohorts were formed (shown in the result).
    """

    baseline: str
    candidates: tuple[str, ...] = ()
    filters: tuple[tuple[str, pl.Expr], ...] = ()
    column: str | None = None
    description: str = ""

    def assign(self, traces: pl.DataFrame) -> pl.DataFrame:
        """Return ``traces`` with a ``_cohort`` column; one row per (trace, cohort).

        Traces in no cohort are dropped. Raises ``ValueError`` naming a missing column.
        """
        if self.column is not None:
            if self.column not in traces.columns:
                raise ValueError(
                    f"cohort column {self.column!r} is not in the traces table "
                    f"(columns: {', '.join(traces.columns)})"
                )
            wanted = (self.baseline, *self.candidates) if self.candidates else None
            out = traces.with_columns(pl.col(self.column).cast(pl.String).alias(COHORT)).filter(
                pl.col(COHORT).is_not_null()
            )
            return out.filter(pl.col(COHORT).is_in(list(wanted))) if wanted else out
        parts = []
        for name, expr in self.filters:
            try:
                mask = traces.select(expr.fill_null(False).alias("_m"))["_m"]
            except pl.exceptions.ColumnNotFoundError as exc:
                raise ValueError(f"cohort {name!r}: the filter names a column that is not in traces: {exc}") from exc
            parts.append(traces.filter(mask).with_columns(pl.lit(name, dtype=pl.String).alias(COHORT)))
        return pl.concat(parts, how="vertical") if parts else traces.clear().with_columns(
            pl.lit(None, dtype=pl.String).alias(COHORT)
        )

    def candidates_in(self, assigned: pl.DataFrame) -> tuple[str, ...]:
        """Candidate cohorts present in an assigned frame (the given ones, or all but the baseline)."""
        present = assigned[COHORT].unique(maintain_order=True).to_list()
        if self.candidates:
            return tuple(c for c in self.candidates if c in present)
        found = sorted(c for c in present if c != self.baseline)
        return tuple(found)


def by_column(column: str, *, baseline: str, candidates: Sequence[str] | None = None) -> CohortSpec:
    """Cohorts named by the values of a column (prompt version, model, deployment...).

    Parameters
    ----------
    column
        Traces column, e.g. ``"prompt_version"``.
    baseline
        The value that forms the baseline cohort.
    candidates
        Values to compare against the baseline; default every other value.

    Examples
    --------
    >>> by_column("prompt_version", baseline="v1").description
    'prompt_version: v1 (baseline) vs the other values'
    """
    cands = tuple(str(c) for c in candidates or ())
    what = ", ".join(cands) if cands else "the other values"
    return CohortSpec(
        baseline=str(baseline),
        candidates=cands,
        column=column,
        description=f"{column}: {baseline} (baseline) vs {what}",
    )


def by_time(
    at: datetime | None = None,
    *,
    before: tuple[datetime | None, datetime | None] | None = None,
    after: tuple[datetime | None, datetime | None] | None = None,
    column: str = "start_time",
) -> CohortSpec:
    """Cohorts ``before`` and ``after`` a change, by a timestamp or two windows.

    Parameters
    ----------
    at
        Split time: ``before`` is ``column < at``, ``after`` is ``column >= at``.
    before, after
        Alternatively, two ``(start, end)`` windows (half-open ``[start, end)``; ``None``
        leaves a side open). Traces between the windows belong to neither cohort.
    column
        Timestamp column (default ``start_time``). Naive datetimes are taken as UTC.

    Examples
    --------
    >>> from datetime import datetime, UTC
    >>> by_time(datetime(2025, 3, 1, tzinfo=UTC)).baseline
    'before'
    """
    if at is not None and (before is not None or after is not None):
        raise ValueError("give either at=... or before=/after= windows, not both")
    if at is not None:
        before, after = (None, at), (at, None)
    if before is None or after is None:
        raise ValueError("by_time needs at=... or both before=(start, end) and after=(start, end)")

    def window(bounds: tuple[datetime | None, datetime | None]) -> pl.Expr:
        start, end = bounds
        expr = pl.lit(True)
        if start is not None:
            expr = expr & (pl.col(column) >= _utc(start))
        if end is not None:
            expr = expr & (pl.col(column) < _utc(end))
        return expr

    text = f"{column} before {at}" if at is not None else f"{column} windows {before} vs {after}"
    return CohortSpec(
        baseline="before",
        candidates=("after",),
        filters=(("before", window(before)), ("after", window(after))),
        description=text,
    )


def by_filter(
    cohorts: Mapping[str, pl.Expr], *, baseline: str, description: str | None = None
) -> CohortSpec:
    """Cohorts from any polars filters, e.g. ``{"gpt": pl.col("models").list.contains("gpt-4o")}``.

    A trace matching several filters is in several cohorts (the comparison warns).

    Examples
    --------
    >>> import polars as pl
    >>> spec = by_filter({"short": pl.col("n_spans") < 5, "long": pl.col("n_spans") >= 5}, baseline="short")
    >>> spec.candidates
    ('long',)
    """
    if baseline not in cohorts:
        raise ValueError(f"baseline {baseline!r} is not one of the cohorts {list(cohorts)}")
    for name, expr in cohorts.items():
        if not isinstance(expr, pl.Expr):
            raise TypeError(f"cohort {name!r} must be a polars expression, not {type(expr).__name__}")
    names = tuple(n for n in cohorts if n != baseline)
    return CohortSpec(
        baseline=baseline,
        candidates=names,
        filters=tuple((str(n), e) for n, e in cohorts.items()),
        description=description or f"filters: {baseline} (baseline) vs {', '.join(names)}",
    )


def _utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
