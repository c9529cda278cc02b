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

import polars as pl

from workbench import schema

OUTCOME_NAMES = ("passed", "pass", "success", "resolved", "task_success", "outcome", "correct")
PASS_LABELS = ("pass", "passed", "true", "yes", "success", "resolved", "correct", "ok")


def build_traces(spans: pl.DataFrame, feedback: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per trace (``schema.TRACES``), derived from spans and feedback.

    Examples
    --------
    >>> from workbench.load import read_traces
    >>> result = read_traces("data/support_agent.otlp.jsonl")  # doctest: +SKIP
    >>> build_traces(result.spans, result.feedback).height     # doctest: +SKIP
    2000
    """
    if spans.is_empty():
        return schema.empty(schema.TRACES)
    has_parent_in_trace = ~pl.col("is_orphan").fill_null(False) & pl.col("parent_span_id").is_not_null()
    ordered = spans.with_columns(
        _is_root=~has_parent_in_trace,
        _is_llm=pl.col("kind") == "llm",
    ).sort(["trace_id", "_is_root", "start_time"], descending=[False, True, False], nulls_last=True)

    llm_parents = ordered.filter(pl.col("_is_llm")).select("trace_id", pl.col("parent_span_id").alias("span_id"))
    leaf_llm = (
        ordered.filter(pl.col("_is_llm"))
        .join(llm_parents.unique(), on=["trace_id", "span_id"], how="anti")
        .group_by("trace_id")
        .agg(
            pl.col("tokens_in").sum().alias("_llm_in"),
            pl.col("tokens_out").sum().alias("_llm_out"),
            pl.col("tokens_total").sum().alias("_llm_total"),
            pl.col("tokens_total").is_not_null().any().alias("_has_total"),
            pl.col("tokens_in").is_not_null().any().alias("_has_tokens"),
            pl.col("cost_usd").sum().alias("_llm_cost"),
            pl.col("cost_usd").is_not_null().any().alias("_has_cost"),
        )
    )

    def first(col: str) -> pl.Expr:
        return pl.col(col).drop_nulls().first().alias(col)

    root = pl.col("_is_root")
    traces = ordered.group_by("trace_id", maintain_order=True).agg(
        first("session_id"),
        first("user_id"),
        pl.col("span_id").first().alias("root_span_id"),
        pl.col("name").first().alias("name"),
        pl.col("start_time").min().alias("start_time"),
        pl.col("end_time").max().alias("end_time"),
        pl.col("status").first().alias("_root_status"),
        (pl.col("status") == "error").sum().cast(pl.Int64).alias("n_errors"),
        pl.col("input").first().alias("_root_input"),
        pl.col("output").first().alias("_root_output"),
        pl.col("input").filter(pl.col("_is_llm")).drop_nulls().first().alias("_llm_input"),
        pl.col("output").filter(pl.col("_is_llm")).drop_nulls().last().alias("_llm_output"),
        pl.len().cast(pl.Int64).alias("n_spans"),
        pl.col("_is_llm").sum().cast(pl.Int64).alias("n_llm_calls"),
        (pl.col("kind") == "tool").sum().cast(pl.Int64).alias("n_tool_calls"),
        pl.col("tokens_in").filter(root).first().alias("_root_in"),
        pl.col("tokens_out").filter(root).first().alias("_root_out"),
        pl.col("tokens_total").filter(root).first().alias("_root_total"),
        pl.col("cost_usd").filter(root).first().alias("_root_cost"),
        pl.col("model").filter(pl.col("_is_llm")).drop_nulls().unique(maintain_order=True).alias("models"),
        first("prompt_version"),
        first("app_version"),
        pl.col("tags").list.explode(keep_nulls=False, empty_as_null=False).drop_nulls().unique(maintain_order=True).alias("tags"),
        (
            pl.col("is_duplicate").fill_null(False).cast(pl.Int64)
            + pl.col("is_orphan").fill_null(False).cast(pl.Int64)
            + pl.col("in_cycle").fill_null(False).cast(pl.Int64)
            + pl.col("ends_before_start").fill_null(False).cast(pl.Int64)
        )
        .sum()
        .alias("n_anomalies"),
        first("source_format"),
        first("source_file"),
    )
    traces = traces.join(leaf_llm, on="trace_id", how="left").with_columns(
        duration_ms=(pl.col("end_time") - pl.col("start_time")).dt.total_microseconds() / 1000.0,
        status=pl.when(pl.col("_root_status").is_in(["ok", "error"]))
        .then(pl.col("_root_status"))
        .when(pl.col("n_errors") > 0)
        .then(pl.lit("error"))
        .otherwise(pl.col("_root_status")),
        input=pl.coalesce("_root_input", "_llm_input"),
        output=pl.coalesce("_root_output", "_llm_output"),
        tokens_in=pl.when(pl.col("_has_tokens")).then("_llm_in").otherwise("_root_in"),
        tokens_out=pl.when(pl.col("_has_tokens")).then("_llm_out").otherwise("_root_out"),
        tokens_total=pl.when(pl.col("_has_total"))
        .then("_llm_total")
        .when(pl.col("_has_tokens"))
        .then(pl.col("_llm_in").fill_null(0) + pl.col("_llm_out").fill_null(0))
        .otherwise("_root_total"),
        cost_usd=pl.when(pl.col("_has_cost")).then("_llm_cost").otherwise("_root_cost"),
    )
    traces = traces.join(_outcomes(feedback), on="trace_id", how="left")
    return schema.conform(traces, schema.TRACES).select(list(schema.TRACES)).sort(
        "start_time", "trace_id", nulls_last=True
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
