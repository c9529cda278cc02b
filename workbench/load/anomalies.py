"""Flag graph anomalies on the spans table; never drop a row.

Four flags (columns of ``schema.SPANS``):

``is_duplicate``       the (trace_id, span_id) pair appears more than once
``is_orphan``          the parent id is set but no span of the same trace has it
``in_cycle``           following parent links from this span comes back to it
``ends_before_start``  end_time is earlier than start_time

Cycle detection is vectorised pointer doubling over integer indices, so it is
linear-ish on millions of spans and, by construction, cannot loop forever.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import polars as pl

from workbench.load._interop import chunked_like, numpy_series
from workbench.load._otlp_native import span_index


class SpanGraph(NamedTuple):
    """The spans table's graph, per row, as row numbers (``-1``: none).

    Attributes
    ----------
    node
        The first row with the row's (trace_id, span_id): duplicates share it.
    parent
        The ``node`` of the row's parent: the first row whose (trace_id, span_id) is the row's
        (trace_id, parent_span_id); ``-1`` without a parent id or when no span of the trace has it.
    trace
        The first row with the row's trace_id.
    """

    node: np.ndarray
    parent: np.ndarray
    trace: np.ndarray


def flag_anomalies(spans: pl.DataFrame, graph: SpanGraph | None = None) -> pl.DataFrame:
    """Return ``spans`` with the four anomaly flag columns computed.

    ``graph`` is :func:`span_graph` of ``spans`` when the caller already has it.

    Examples
    --------
    >>> import polars as pl
    >>> spans = pl.DataFrame({"trace_id": ["t", "t"], "span_id": ["a", "b"],
    ...                       "parent_span_id": ["b", "a"]})
    >>> flag_anomalies(spans)["in_cycle"].to_list()
    [True, True]
    """
    if spans.is_empty():
        return spans.with_columns(
            pl.lit(None, dtype=pl.Boolean).alias(c)
            for c in ("is_duplicate", "is_orphan", "in_cycle", "ends_before_start")
        )
    node, parent, _ = graph if graph is not None else span_graph(spans)
    n_nodes = int(node.max()) + 1
    copies = np.bincount(node, minlength=n_nodes)
    parent_of_node = np.full(n_nodes, -1, dtype=np.int64)
    parent_of_node[node[::-1]] = parent[::-1]  # the first row of a duplicated id wins
    has_times = "start_time" in spans.columns and "end_time" in spans.columns
    like = spans.get_column("trace_id")  # the flags chunked as the frame: one column chunked otherwise rechunks all

    def flag(values: np.ndarray) -> pl.Series:
        return chunked_like(numpy_series(values), like)

    return spans.with_columns(
        is_duplicate=flag(copies[node] > 1),
        is_orphan=pl.col("parent_span_id").is_not_null() & flag(parent < 0),
        in_cycle=flag(_on_cycle(parent_of_node)[node]),
        ends_before_start=(pl.col("end_time") < pl.col("start_time")).fill_null(False)
        if has_times
        else pl.lit(False),
    )


def span_graph(spans: pl.DataFrame) -> SpanGraph:
    """The :class:`SpanGraph` of ``spans`` (columns ``trace_id``, ``span_id``, ``parent_span_id``).

    The C extension builds it with hash tables that compare the ids themselves
    (``_span_index.h``: exact, ~9 ms at 100k spans). Without it, keys are 64-bit
    hashes of the ids, sorted and searched (~20 ms); a hash collision
    (probability ~n^2/2^65) could then merge two spans or two traces.
    """
    columns = [spans.get_column(c).to_arrow(compat_level=pl.CompatLevel.newest())
               for c in ("trace_id", "span_id", "parent_span_id")]
    native = span_index(*columns)
    return SpanGraph(*native) if native is not None else _hashed_graph(spans)


def _hashed_graph(spans: pl.DataFrame) -> SpanGraph:
    """:func:`span_graph` from sorted 64-bit hashes of the ids (the same rows, but for a collision)."""
    hashes = spans.select(
        pl.struct("trace_id", "span_id").hash(7).alias("self"),
        pl.struct("trace_id", pl.col("parent_span_id").alias("span_id")).hash(7).alias("parent"),
        pl.col("trace_id").hash(7).alias("trace"),
    )
    uniq, first, inverse = np.unique(hashes["self"].to_numpy(), return_index=True, return_inverse=True)
    parent_hash = hashes["parent"].to_numpy()
    position = np.minimum(np.searchsorted(uniq, parent_hash), len(uniq) - 1)
    found = (uniq[position] == parent_hash) & spans["parent_span_id"].is_not_null().to_numpy()
    _, trace_first, trace_inverse = np.unique(hashes["trace"].to_numpy(), return_index=True, return_inverse=True)
    return SpanGraph(first[inverse].astype(np.int64), np.where(found, first[position], -1).astype(np.int64),
                     trace_first[trace_inverse].astype(np.int64))


def _on_cycle(parent: np.ndarray) -> np.ndarray:
    """Boolean per node: following parent links from it comes back to it."""
    # Pointer doubling: after enough rounds, jump[x] == -1 iff x reaches a root.
    jump = parent.copy()
    for _ in range(int(np.ceil(np.log2(len(parent) + 1))) + 1):
        nxt = np.where(jump >= 0, jump[np.maximum(jump, 0)], -1)
        if np.array_equal(nxt, jump):
            break
        jump = nxt
    stuck = np.flatnonzero(jump >= 0)  # never reach a root: on a cycle or leading into one
    on_cycle = np.zeros(len(parent), dtype=bool)
    if stuck.size:
        on_cycle[_peel_to_cycles(stuck, parent)] = True
    return on_cycle


def _peel_to_cycles(stuck: np.ndarray, parent: np.ndarray) -> list[int]:
    """Among nodes that never reach a root, keep those on a cycle (Kahn peeling; bounded)."""
    members = set(stuck.tolist())
    indegree = dict.fromkeys(members, 0)
    for node in members:
        if parent[node] in indegree:
            indegree[parent[node]] += 1
    queue = [n for n, d in indegree.items() if d == 0]
    while queue:
        node = queue.pop()
        members.discard(node)
        target = parent[node]
        if target in indegree and target in members:
            indegree[target] -= 1
            if indegree[target] == 0:
                queue.append(target)
    return sorted(members)
