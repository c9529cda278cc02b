"""Column names and polars schemas of every table workbench passes around.

One module owns the shape of the data so that every stage agrees on it.
Readers build rows, then call :func:`conform` with the table's schema: it adds
missing columns as typed nulls, orders the columns, and casts *strictly* (a
value whose type drifted raises instead of silently becoming null).

Tables
------
spans     one row per span / observation / run / message, from every reader
traces    one row per trace, a pure rollup of spans (``workbench.load.rollup``)
sessions  one row per conversation
feedback  scores carried by the export, long format
problems  every bad record met while loading, with file, line and byte offset
labels    reviewer label events (``workbench.review``)
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

UTC_TIME = pl.Datetime("us", "UTC")
STR_LIST = pl.List(pl.String)

SPAN_KINDS = (
    "llm",
    "tool",
    "agent",
    "chain",
    "retriever",
    "embedding",
    "reranker",
    "guardrail",
    "evaluator",
    "prompt",
    "event",
    "other",
)
STATUSES = ("ok", "error", "unset")
ANNOTATOR_KINDS = ("human", "llm", "code", "api")
TARGET_LEVELS = ("span", "trace", "session")

SPANS: dict[str, pl.DataType] = {
    "trace_id": pl.String,
    "span_id": pl.String,
    "parent_span_id": pl.String,
    "session_id": pl.String,
    "user_id": pl.String,
    "name": pl.String,
    "kind": pl.String,
    "start_time": UTC_TIME,
    "end_time": UTC_TIME,
    "duration_ms": pl.Float64,
    "status": pl.String,
    "error_type": pl.String,
    "error_message": pl.String,
    "input": pl.String,
    "output": pl.String,
    "model": pl.String,
    "provider": pl.String,
    "prompt_name": pl.String,
    "prompt_version": pl.String,
    "app_version": pl.String,
    "tokens_in": pl.Int64,
    "tokens_out": pl.Int64,
    "tokens_total": pl.Int64,
    "cost_usd": pl.Float64,
    "tags": STR_LIST,
    "attributes": pl.String,
    "source_format": pl.String,
    "source_file": pl.String,
    "source_line": pl.Int64,
    # anomaly flags, computed by workbench.load.anomalies (never drop a row)
    "is_duplicate": pl.Boolean,
    "is_orphan": pl.Boolean,
    "in_cycle": pl.Boolean,
    "ends_before_start": pl.Boolean,
}

SPAN_ANOMALY_FLAGS = ("is_duplicate", "is_orphan", "in_cycle", "ends_before_start")

TRACES: dict[str, pl.DataType] = {
    "trace_id": pl.String,
    "session_id": pl.String,
    "user_id": pl.String,
    "root_span_id": pl.String,
    "name": pl.String,
    "start_time": UTC_TIME,
    "end_time": UTC_TIME,
    "duration_ms": pl.Float64,
    "status": pl.String,
    "input": pl.String,
    "output": pl.String,
    "n_spans": pl.Int64,
    "n_llm_calls": pl.Int64,
    "n_tool_calls": pl.Int64,
    "n_errors": pl.Int64,
    "tokens_in": pl.Int64,
    "tokens_out": pl.Int64,
    "tokens_total": pl.Int64,
    "cost_usd": pl.Float64,
    "models": STR_LIST,
    "prompt_version": pl.String,
    "app_version": pl.String,
    "tags": STR_LIST,
    # outcome carried by the export (null when absent)
    "reward": pl.Float64,
    "passed": pl.Boolean,
    "user_feedback": pl.Float64,
    "n_anomalies": pl.Int64,
    "source_format": pl.String,
    "source_file": pl.String,
}

SESSIONS: dict[str, pl.DataType] = {
    "session_id": pl.String,
    "user_id": pl.String,
    "trace_ids": STR_LIST,
    "n_turns": pl.Int64,
    "start_time": UTC_TIME,
    "end_time": UTC_TIME,
    "n_errors": pl.Int64,
    "passed": pl.Boolean,
}

FEEDBACK: dict[str, pl.DataType] = {
    "target_level": pl.String,
    "target_id": pl.String,
    "trace_id": pl.String,
    "name": pl.String,
    "value_num": pl.Float64,
    "value_label": pl.String,
    "value_text": pl.String,
    "annotator_kind": pl.String,
    "annotator_id": pl.String,
    "created_at": UTC_TIME,
    "source_format": pl.String,
    "source_file": pl.String,
}

PROBLEMS: dict[str, pl.DataType] = {
    "source_file": pl.String,
    "line": pl.Int64,
    "byte_offset": pl.Int64,
    "reason": pl.String,
    "field": pl.String,
    "detail": pl.String,
    "excerpt": pl.String,
}

LABELS: dict[str, pl.DataType] = {
    "event_id": pl.String,
    "trace_id": pl.String,
    "span_id": pl.String,
    "reviewer": pl.String,
    "action": pl.String,  # "label" or "retract"
    "verdict": pl.String,
    "categories": STR_LIST,
    "note": pl.String,
    "corrected_output": pl.String,
    "escalate": pl.Boolean,
    "taxonomy_version": pl.Int64,
    "trace_content_hash": pl.String,
    "created_at": UTC_TIME,
    "lead_time_ms": pl.Int64,
    "supersedes": pl.String,
}

TABLES: dict[str, dict[str, pl.DataType]] = {
    "spans": SPANS,
    "traces": TRACES,
    "sessions": SESSIONS,
    "feedback": FEEDBACK,
    "problems": PROBLEMS,
    "labels": LABELS,
}


class SchemaError(ValueError):
    """A frame does not match a workbench table schema."""


def empty(schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Return an empty frame with exactly ``schema``'s columns and types."""
    return pl.DataFrame(schema=dict(schema))


def conform(frame: pl.DataFrame, schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    """Bring ``frame`` to ``schema``: add missing columns as nulls, order, cast strictly.

    Extra columns are kept after the schema's columns (readers may carry more).
    A cast that would turn a present value into null raises :class:`SchemaError`
    naming the column, so drifted types are never silently dropped.

    Examples
    --------
    >>> import polars as pl
    >>> from workbench.schema import conform, PROBLEMS
    >>> conform(pl.DataFrame({"reason": ["bad json"]}), PROBLEMS).columns[:3]
    ['source_file', 'line', 'byte_offset']
    """
    if frame.width == 0:
        return empty(schema)
    exprs = []
    current = frame.schema  # the dtypes only: reading a literal column would write it out
    for name, dtype in schema.items():
        if name in current:
            if current[name] == dtype:
                exprs.append(pl.col(name))
                continue
            try:
                exprs.append(pl.col(name).cast(dtype, strict=True))
            except Exception as exc:  # pragma: no cover - re-raised with context
                raise SchemaError(f"column {name!r}: cannot cast {current[name]} to {dtype}") from exc
        else:
            exprs.append(pl.lit(None, dtype=dtype).alias(name))
    extra = [c for c in frame.columns if c not in schema]
    try:
        return frame.select(exprs + [pl.col(c) for c in extra])
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"frame does not fit the schema: {exc}") from exc


def validate(frame: pl.DataFrame, schema: Mapping[str, pl.DataType], *, table: str) -> pl.DataFrame:
    """Check that ``frame`` has every column of ``schema`` with the right type.

    Raises
    ------
    SchemaError
        Naming the table, the missing columns and the columns of the wrong type.
    """
    missing = [c for c in schema if c not in frame.columns]
    wrong = [
        f"{c} is {frame.schema[c]}, expected {t}"
        for c, t in schema.items()
        if c in frame.columns and frame.schema[c] != t
    ]
    if missing or wrong:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if wrong:
            parts.append("; ".join(wrong))
        raise SchemaError(f"{table} table: " + "; ".join(parts))
    return frame
