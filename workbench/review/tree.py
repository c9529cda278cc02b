"""A trace's spans in depth-first display order, with anomaly flags.

:func:`span_tree` always terminates: duplicate ids, orphans (shown at top level),
self-loops and cycles (each member shown once, flagged) are handled explicitly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from workbench.review._span_rows import error_text, micros, span_rows, start_order

__all__ = ["TreeRow", "span_tree"]


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One line of the span tree.

    ``flags`` names anomalies: ``orphan`` (parent not in the trace), ``cycle``
    (on a parent-pointer cycle; shown once), ``self-loop``, ``duplicate`` (span id
    seen more than once), ``ends-before-start``.
    """

    depth: int
    span_id: str | None
    name: str
    kind: str
    start_offset_ms: float | None
    duration_ms: float | None
    status: str
    error: str | None
    flags: tuple[str, ...] = ()


def span_tree(spans: Any) -> list[TreeRow]:
    """Spans in depth-first display order with depth, timing, status and anomaly flags.

    Always terminates: each row is visited exactly once. Orphans (parent id not in
    the trace) appear at top level; a span whose parent is itself is a top-level
    ``self-loop``; spans on a parent cycle are entered once (at the earliest
    member) and flagged ``cycle``; duplicated span ids are all shown, flagged.

    Examples
    --------
    >>> import polars as pl
    >>> spans = pl.DataFrame({"span_id": ["a", "b"], "parent_span_id": ["b", "a"], "name": ["x", "y"]})
    >>> [(r.name, r.depth, r.flags) for r in span_tree(spans)]
    [('x', 0, ('cycle',)), ('y', 1, ('cycle',))]
    """
    rows = span_rows(spans)
    n = len(rows)
    first_index: dict[Any, int] = {}
    id_counts: Counter[Any] = Counter()
    for i, row in enumerate(rows):
        first_index.setdefault(row.get("span_id"), i)
        id_counts[row.get("span_id")] += 1
    parent_of = [-1] * n
    flags: list[list[str]] = [[] for _ in range(n)]
    for i, row in enumerate(rows):
        pid = row.get("parent_span_id")
        if pid in (None, ""):
            continue
        if pid == row.get("span_id"):
            flags[i].extend(("self-loop", "cycle"))
        elif pid not in first_index:
            flags[i].append("orphan")
        else:
            parent_of[i] = first_index[pid]
    in_cycle = _cycle_members(parent_of)
    for i, row in enumerate(rows):
        if in_cycle[i] or row.get("in_cycle"):
            flags[i].append("cycle")
        if id_counts[row.get("span_id")] > 1 or row.get("is_duplicate"):
            flags[i].append("duplicate")
        if row.get("is_orphan") and "orphan" not in flags[i]:
            flags[i].append("orphan")
        start, end = row.get("start_time"), row.get("end_time")
        if start is not None and end is not None and end < start:
            flags[i].append("ends-before-start")

    order = start_order(rows)
    rank = {index: r for r, index in enumerate(order)}
    children: list[list[int]] = [[] for _ in range(n)]
    for i in order:
        if parent_of[i] >= 0:
            children[parent_of[i]].append(i)
    starts = [micros(r.get("start_time")) for r in rows]
    trace_start = min((s for s in starts if s is not None), default=None)

    visited = [False] * n
    result: list[TreeRow] = []

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if visited[node]:
                continue
            visited[node] = True
            result.append(_tree_row(rows[node], depth, starts[node], trace_start, flags[node]))
            for child in sorted(children[node], key=rank.__getitem__, reverse=True):
                if not visited[child]:
                    stack.append((child, depth + 1))

    for i in order:
        if parent_of[i] < 0:
            walk(i)
    for i in order:  # spans only reachable through a cycle
        if not visited[i]:
            walk(i)
    return result


def _cycle_members(parent_of: list[int]) -> list[bool]:
    """True for rows on a parent-pointer cycle (iterative colouring, O(n))."""
    n = len(parent_of)
    state = [0] * n  # 0 new, 1 on current path, 2 done
    member = [False] * n
    for start in range(n):
        path = []
        node = start
        while node >= 0 and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = parent_of[node]
        if node >= 0 and state[node] == 1:
            cycle_start = path.index(node)
            for k in path[cycle_start:]:
                member[k] = True
        for k in path:
            state[k] = 2
    return member


def _tree_row(row: dict[str, Any], depth: int, start: int | None, trace_start: int | None,
              flags: list[str]) -> TreeRow:
    duration = row.get("duration_ms")
    if duration is None and row.get("start_time") is not None and row.get("end_time") is not None:
        duration = (row["end_time"] - row["start_time"]).total_seconds() * 1000
    error = None
    status = (row.get("status") or "unset").lower()
    if status == "error" or row.get("error_message") or row.get("error_type"):
        error = error_text(row) or "error"
    offset = (start - trace_start) / 1000 if start is not None and trace_start is not None else None
    return TreeRow(depth, row.get("span_id"), row.get("name") or "(unnamed)", row.get("kind") or "other",
                   offset, duration, status, error, tuple(dict.fromkeys(flags)))
