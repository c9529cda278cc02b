"""The facts a reviewer wants beside a trace: ids, times, counts, models, cost, outcome."""

from __future__ import annotations

from typing import Any

import polars as pl

from workbench._frames import as_polars

__all__ = ["metadata_summary"]


def metadata_summary(spans: Any, trace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts about one trace for display beside it (ids, times, counts, models, cost, outcome).

    ``trace`` is the trace's row of the traces table (a dict), when available; its
    outcome columns (``passed``, ``user_feedback``, ``reward``) are included.

    Examples
    --------
    >>> import polars as pl
    >>> metadata_summary(pl.DataFrame({"trace_id": ["t1"], "kind": ["llm"], "model": ["m"]}))["llm calls"]
    1
    """
    frame = as_polars(spans, name="spans")
    trace = dict(trace or {})

    def first(column: str) -> Any:
        if trace.get(column) is not None:
            return trace[column]
        if column not in frame.columns:
            return None
        values = frame.get_column(column).drop_nulls()
        return values[0] if len(values) else None

    def distinct(column: str) -> list[Any]:
        if column not in frame.columns:
            return []
        return frame.get_column(column).drop_nulls().unique(maintain_order=True).to_list()

    def total(column: str) -> Any:
        if trace.get(column) is not None:
            return trace[column]
        if column not in frame.columns or frame.get_column(column).null_count() == len(frame):
            return None
        if column.startswith("tokens") and "kind" in frame.columns:
            llm = frame.filter(pl.col("kind") == "llm").get_column(column)
            if llm.null_count() < len(llm):
                return llm.sum()
        return frame.get_column(column).sum()

    kinds = frame.get_column("kind").to_list() if "kind" in frame.columns else []
    starts = distinct("start_time")
    ends = distinct("end_time")
    duration = trace.get("duration_ms")
    if duration is None and starts and ends:
        duration = (max(ends) - min(starts)).total_seconds() * 1000
    statuses = frame.get_column("status").to_list() if "status" in frame.columns else []
    summary: dict[str, Any] = {
        "trace id": first("trace_id"),
        "session": first("session_id"),
        "user": first("user_id"),
        "started": min(starts) if starts else None,
        "duration ms": round(duration, 1) if duration is not None else None,
        "spans": len(frame),
        "llm calls": kinds.count("llm"),
        "tool calls": kinds.count("tool"),
        "errors": sum(1 for s in statuses if s == "error"),
        "models": ", ".join(map(str, distinct("model"))) or None,
        "prompt version": first("prompt_version"),
        "app version": first("app_version"),
        "tokens in": total("tokens_in"),
        "tokens out": total("tokens_out"),
        "cost usd": total("cost_usd"),
        "tags": ", ".join(sorted({t for ts in distinct("tags") for t in (ts or [])})) or None,
        "source": first("source_format"),
    }
    for column in ("passed", "user_feedback", "reward"):
        if trace.get(column) is not None:
            summary[column.replace("_", " ")] = trace[column]
    return {k: v for k, v in summary.items() if v is not None}
