"""Traces and sessions as pure rollups of the spans (and feedback) tables.

Rules, chosen to be robust on real exports:

- The root is the span without a parent (the earliest if several); a trace with
  no parentless span (orphans only) uses its earliest span.
- ``input`` / ``output``: the root's; when the root has none, the earliest LLM
  input and the latest LLM output.
- Tokens and cost are summed over LLM *leaf* spans only (an LLM span with no LLM
  span below it), because parents often repeat their children's counts; when no
  LLM span carries them, the root's own counts are used.
- ``session_id``, ``user_id``, ``prompt_version``, ``app_version``: the first
  non-null value, root first, then in time order.
- Outcomes come from trace-level feedback (span-level feedback counts for its
  trace): ``reward`` from a score named ``reward``; ``passed`` from a code / API
  score named one of :data:`OUTCOME_NAMES`; ``user_feedback`` is the mean of
  human scores.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from workbench import schema
from workbench.load._base import PER_FILE_COLUMNS
from workbench.load._interop import numpy_series
from workbench.load.anomalies import SpanGraph, span_graph

OUTCOME_NAMES = ("passed", "pass", "success", "resolved", "task_success", "outcome", "correct")
PASS_LABELS = ("pass", "passed", "true", "yes", "success", "resolved", "correct", "ok")


def build_traces(spans: pl.DataFrame, feedback: pl.DataFrame | None = None,
                 graph: SpanGraph | None = None) -> pl.DataFrame:
    """One row per trace (``schema.TRACES``), derived from spans and feedback.

    "First" and "last" below mean in the order root first, then start time,
    then row. That order is computed once as a rank per span (a sort of three
    narrow keys); the group-by then takes minima of ranks and reads the text
    columns once per trace by row index, so no wide copy of the spans is made.
    ``graph`` is :func:`workbench.load.anomalies.span_graph` of ``spans`` when
    the caller already has it: it numbers the traces (the group-by key is an
    integer, the first row of each trace) and finds the LLM leaves.

    Examples
    --------
    >>> from workbench.load import read_traces
    >>> result = read_traces("data/support_agent.otlp.jsonl")  # doctest: +SKIP
    >>> build_traces(result.spans, result.feedback).height     # doctest: +SKIP
    2000
    """
    if spans.is_empty():
        return schema.empty(schema.TRACES)
    order, rank = _span_order(spans)
    keys = _keys(spans, rank, graph if graph is not None else span_graph(spans))
    rank_col, llm, leaf = pl.col("_rank"), pl.col("_is_llm"), pl.col("_is_leaf_llm")
    has_tags = "tags" in spans.columns and spans["tags"].null_count() < spans.height
    tags = (
        pl.col("tags").sort_by("_rank").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls()
        .unique(maintain_order=True)
        if has_tags
        else pl.lit([], dtype=schema.STR_LIST).first()
    )
    # conditions null the values they exclude (min, max and sum skip nulls) instead of filtering inside every
    # group: the same results, from one pass over the column and the plain group kernels (19 -> 13 ms at 100k)
    traces = keys.group_by("_trace").agg(
        rank_col.min().alias("_first"),
        pl.col("_is_root").any().alias("_has_root"),
        *(_where(pl.col(f"_has_{c}"), rank_col).min().alias(f"_first_{c}") for c in _FIRST_VALUE_COLUMNS),
        _where(llm & pl.col("_has_input"), rank_col).min().alias("_first_llm_input"),
        _where(llm & pl.col("_has_output"), rank_col).max().alias("_last_llm_output"),
        pl.col("start_time").min().alias("start_time"),
        pl.col("end_time").max().alias("end_time"),
        pl.col("_is_error").sum().cast(pl.Int64).alias("n_errors"),
        pl.len().cast(pl.Int64).alias("n_spans"),
        llm.sum().cast(pl.Int64).alias("n_llm_calls"),
        pl.col("_is_tool").sum().cast(pl.Int64).alias("n_tool_calls"),
        *(_where(leaf, pl.col(c)).sum().alias(f"_llm_{c}") for c in _NUMBERS),
        (leaf & pl.col("tokens_total").is_not_null()).any().alias("_has_total"),
        (leaf & pl.col("tokens_in").is_not_null()).any().alias("_has_tokens"),
        (leaf & pl.col("cost_usd").is_not_null()).any().alias("_has_cost"),
        tags.alias("tags"),
        pl.col("_anomalies").sum().alias("n_anomalies"),
    ).join(_models(keys), on="_trace", how="left").with_columns(pl.col("models").fill_null([]))
    first_row = _rows(traces["_first"], order)
    root_row = _rows(traces.select(pl.when("_has_root").then("_first")).to_series(), order)
    # the text columns are the wide ones: pick each trace's row first, then gather the text once
    text_rows = {column: _first_valid(spans[column].is_not_null(), first_row,
                                      _rows(traces[f"_{which}_llm_{column}"], order))
                 for column, which in (("input", "first"), ("output", "last"))}
    picks = [("trace_id", "trace_id", traces["_trace"]), ("root_span_id", "span_id", first_row),
             ("name", "name", first_row), ("_root_status", "status", first_row),
             ("input", "input", text_rows["input"]), ("output", "output", text_rows["output"]),
             *((f"_root_{c}", c, root_row) for c in _NUMBERS),
             *((c, c, _rows(traces[f"_first_{c}"], order)) for c in _FIRST_VALUE_COLUMNS)]
    # one chunk first: polars gathers a one-chunk string column by copying views (the text stays shared);
    # a file's literal (source_file) is gathered as an expression, which does not write it out per span
    picked = pl.DataFrame([spans.select(pl.col(column).gather(rows)).to_series().alias(name)
                           if column in PER_FILE_COLUMNS else spans[column].rechunk().gather(rows).alias(name)
                           for name, column, rows in picks])
    traces = pl.concat([traces, picked], how="horizontal").with_columns(
        duration_ms=(pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0,
        status=pl.when(pl.col("_root_status").is_in(["ok", "error"]))
        .then(pl.col("_root_status"))
        .when(pl.col("n_errors") > 0)
        .then(pl.lit("error"))
        .otherwise(pl.col("_root_status")),
        tokens_in=pl.when(pl.col("_has_tokens")).then("_llm_tokens_in").otherwise("_root_tokens_in"),
        tokens_out=pl.when(pl.col("_has_tokens")).then("_llm_tokens_out").otherwise("_root_tokens_out"),
        tokens_total=pl.when(pl.col("_has_total"))
        .then("_llm_tokens_total")
        .when(pl.col("_has_tokens"))
        .then(pl.col("_llm_tokens_in").fill_null(0) + pl.col("_llm_tokens_out").fill_null(0))
        .otherwise("_root_tokens_total"),
        cost_usd=pl.when(pl.col("_has_cost")).then("_llm_cost_usd").otherwise("_root_cost_usd"),
    )
    traces = traces.join(_outcomes(feedback), on="trace_id", how="left")
    return schema.conform(traces, schema.TRACES).select(list(schema.TRACES)).sort(
        "start_time", "trace_id", nulls_last=True
    )


def _where(condition: pl.Expr, value: pl.Expr) -> pl.Expr:
    """``value`` where ``condition`` holds, else null."""
    return pl.when(condition).then(value)


_FIRST_VALUE_COLUMNS = ("session_id", "user_id", "prompt_version", "app_version", "source_format", "source_file")
_NUMBERS = ("tokens_in", "tokens_out", "tokens_total", "cost_usd")
_IS_ROOT = pl.col("is_orphan").fill_null(False) | pl.col("parent_span_id").is_null()


def _models(keys: pl.DataFrame) -> pl.DataFrame:
    """Per trace with an LLM span naming its model: the distinct models, first used first.

    A group-by of the LLM spans alone, sorted by rank first (a group's rows
    keep their order): sorting every trace's spans inside the main group-by
    took two thirds of its time.
    """
    return (keys.filter(pl.col("_is_llm") & pl.col("model").is_not_null()).sort("_rank")
            .group_by("_trace", maintain_order=True).agg(pl.col("model").unique(maintain_order=True).alias("models")))


def _span_order(spans: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Rows in the order root first, then start time, then row; and each row's rank in it.

    One integer key and a stable sort: roots below ``2**60``, other spans from
    ``2**61``, a span without a start time last in its class.
    """
    start = pl.col("start_time").dt.epoch("us").fill_null(1 << 59) if "start_time" in spans.columns else pl.lit(0)
    key = pl.when(_IS_ROOT).then(pl.lit(0, dtype=pl.Int64)).otherwise(pl.lit(1 << 61, dtype=pl.Int64)) + start
    order = spans.select(pl.arg_sort_by(key, maintain_order=True)).to_series().to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return order, rank


def _rows(ranks: pl.Series, order: np.ndarray) -> pl.Series:
    """Row index for each rank (null stays null)."""
    values = ranks.fill_null(0).to_numpy()
    return numpy_series(order[values]).set(ranks.is_null(), None) if len(values) else pl.Series([], dtype=pl.Int64)


def _first_valid(valid: pl.Series, preferred: pl.Series, fallback: pl.Series) -> pl.Series:
    """Per trace the ``preferred`` row where ``valid`` holds there, else the ``fallback`` row."""
    use_preferred = valid.gather(preferred.fill_null(0)) & preferred.is_not_null()
    return pl.select(pl.when(use_preferred).then(preferred).otherwise(fallback)).to_series()


def _keys(spans: pl.DataFrame, rank: np.ndarray, graph: SpanGraph) -> pl.DataFrame:
    """Narrow per-span columns for the trace group-by."""
    is_llm = pl.col("kind") == "llm"
    llm = spans.select(is_llm.fill_null(False)).to_series().to_numpy()
    node, parent, trace = graph
    has_llm_child = np.zeros(int(node.max()) + 1 if len(node) else 0, dtype=bool)
    has_llm_child[parent[llm & (parent >= 0)]] = True
    flags = [pl.col(c).fill_null(False).cast(pl.Int64) for c in schema.SPAN_ANOMALY_FLAGS if c in spans.columns]
    has_tags = "tags" in spans.columns and spans["tags"].null_count() < spans.height
    return spans.select(
        numpy_series(trace, "_trace"),
        numpy_series(rank, "_rank"),
        _IS_ROOT.alias("_is_root"),
        "start_time",
        "end_time",
        "model",
        *_NUMBERS,
        *(["tags"] if has_tags else []),
        (pl.col("status") == "error").fill_null(False).alias("_is_error"),
        (pl.col("kind") == "tool").fill_null(False).alias("_is_tool"),
        is_llm.fill_null(False).alias("_is_llm"),
        numpy_series(llm & ~has_llm_child[node], "_is_leaf_llm"),
        (pl.sum_horizontal(flags) if flags else pl.lit(0, dtype=pl.Int64)).alias("_anomalies"),
        *(pl.col(c).is_not_null().alias(f"_has_{c}") for c in (*_FIRST_VALUE_COLUMNS, "input", "output")),
    )


def _outcomes(feedback: pl.DataFrame | None) -> pl.DataFrame:
    """Per trace: reward, passed and mean human feedback from the feedback table."""
    columns = {"trace_id": pl.String, "reward": pl.Float64, "passed": pl.Boolean, "user_feedback": pl.Float64}
    if feedback is None or feedback.is_empty():
        return pl.DataFrame(schema=columns)
    name = pl.col("name").str.to_lowercase()
    label_pass = pl.col("value_label").str.to_lowercase().is_in(PASS_LABELS)
    passed_value = pl.when(pl.col("value_num").is_not_null()).then(pl.col("value_num") >= 0.5).otherwise(label_pass)
    is_outcome = name.is_in(OUTCOME_NAMES) & ~pl.col("annotator_kind").is_in(["human", "llm"]).fill_null(False)
    return (
        feedback.filter(pl.col("trace_id").is_not_null())
        .sort("created_at", nulls_last=False)
        .group_by("trace_id")
        .agg(
            pl.col("value_num").filter(name == "reward").last().alias("reward"),
            passed_value.filter(is_outcome).last().alias("passed"),
            pl.col("value_num").filter(pl.col("annotator_kind") == "human").mean().alias("user_feedback"),
        )
        .cast(columns)
    )


def build_sessions(traces: pl.DataFrame) -> pl.DataFrame:
    """One row per session (``schema.SESSIONS``): ordered traces, turns, times, outcome."""
    with_session = traces.filter(pl.col("session_id").is_not_null())
    if with_session.is_empty():
        return schema.empty(schema.SESSIONS)
    sessions = (
        with_session.sort("start_time", nulls_last=True)
        .group_by("session_id", maintain_order=True)
        .agg(
            pl.col("user_id").drop_nulls().first(),
            pl.col("trace_id").alias("trace_ids"),
            pl.len().cast(pl.Int64).alias("n_turns"),
            pl.col("start_time").min(),
            pl.col("end_time").max(),
            (pl.col("status") == "error").sum().cast(pl.Int64).alias("n_errors"),
            pl.when(pl.col("passed").is_not_null().any()).then(pl.col("passed").drop_nulls().all()).alias("passed"),
        )
    )
    return schema.conform(sessions, schema.SESSIONS).select(list(schema.SESSIONS))
