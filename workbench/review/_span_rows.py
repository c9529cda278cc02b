"""Rows of one trace's spans as plain dicts, and the small facts every view of them needs.

Shared by :mod:`workbench.review.conversation` and :mod:`workbench.review.tree`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workbench._frames import as_polars

_COLUMNS = (
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "error_type",
    "error_message",
    "input",
    "output",
    "attributes",
)


def span_rows(spans: Any) -> list[dict[str, Any]]:
    """The display columns of ``spans`` (plus the loader's anomaly flags) as one dict per row."""
    frame = as_polars(spans, name="spans")
    present = [c for c in _COLUMNS if c in frame.columns]
    rows = frame.select(present).to_dicts() if present else [{} for _ in range(len(frame))]
    extra_flags = [c for c in ("is_duplicate", "is_orphan", "in_cycle") if c in frame.columns]
    if extra_flags:
        for row, flags in zip(rows, frame.select(extra_flags).iter_rows(named=True), strict=True):
            row.update(flags)
    return rows


def start_order(rows: list[dict[str, Any]]) -> list[int]:
    """Row indices by start time (rows without one last), ties kept in input order."""

    def key(i: int) -> tuple[bool, Any, int]:
        start = rows[i].get("start_time")
        return (start is None, start if start is not None else 0, i)

    return sorted(range(len(rows)), key=key)


def micros(value: datetime | None) -> int | None:
    """Microseconds since the epoch, or ``None``."""
    if value is None:
        return None
    return int(value.timestamp() * 1_000_000)


def error_text(row: dict[str, Any]) -> str:
    """``"<type>: <message>"`` of a failed span (the type once, when the message already starts with it)."""
    kind, message = row.get("error_type"), row.get("error_message")
    if kind and message and str(message).startswith(str(kind)):
        return str(message)
    return ": ".join(str(x) for x in (kind, message) if x)
