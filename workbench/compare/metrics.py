"""Per-trace metric columns for a comparison, from traces, labels and clusters.

Every metric is one column of a per-trace frame: proportions hold 0/1 (null where the
trace has no value, e.g. an unlabelled trace for a label-based rate), continuous
metrics hold numbers. :data:`BASE_METRICS` describes the fixed ones; category and
cluster prevalences are added per value found.

Label reduction: each trace's current labels (one per reviewer) are consolidated by
majority: a trace failed when at least half of its reviewers said a failing verdict;
it carries a category when at least half of its reviewers named it; likewise for
corrections and escalations.

Examples
--------
>>> import polars as pl
>>> traces = pl.DataFrame({"trace_id": ["a", "b"], "passed": [True, False]})
>>> frame, metrics = trace_metrics(traces)
>>> frame["failure_rate"].to_list(), metrics[0].source
([0.0, 1.0], "export outcome 'passed'")
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from workbench._frames import as_polars
from workbench.schema import LABELS, conform

PROPORTION = "proportion"
CONTINUOUS = "continuous"
MEAN = "mean"
CATEGORY_PREFIX = "category: "


@dataclass(frozen=True)
class Metric:
    """One compared quantity.

    Attributes
    ----------
    name
        Column name in the per-trace frame and the row label in the result.
    kind
        ``"proportion"`` (0/1 per trace), ``"continuous"`` (skewed: medians) or ``"mean"``
        (small counts).
    better
        ``"lower"``, ``"higher"`` or ``None`` (a mix share: no direction is better).
    unit
        Display unit for continuous metrics (``"ms"``, ``"USD"``...).
    source
        Where the values come from (shown in the result's method notes).
    """

    name: str
    kind: str
    better: str | None
    unit: str = ""
    source: str = ""


BASE_METRICS: tuple[Metric, ...] = (
    Metric("failure_rate", PROPORTION, "lower"),
    Metric("correction_rate", PROPORTION, "lower", source="labels with a corrected output"),
    Metric("override_rate", PROPORTION, "lower", source="labels whose verdict disagrees with 'passed'"),
    Metric("escalation_rate", PROPORTION, "lower", source="labels marked escalate"),
    Metric("error_rate", PROPORTION, "lower", source="traces with status error or an error span"),
    Metric("completion_rate", PROPORTION, "higher", source="traces with a final output and no error status"),
    Metric("latency_ms", CONTINUOUS, "lower", unit="ms", source="duration_ms"),
    Metric("tokens", CONTINUOUS, "lower", unit="tokens", source="tokens_total"),
    Metric("cost_usd", CONTINUOUS, "lower", unit="USD", source="cost_usd"),
    Metric("tool_calls", MEAN, "lower", unit="calls", source="n_tool_calls"),
)


def consolidate_labels(labels: Any, *, vocabulary: Any = None) -> pl.DataFrame:
    """One row per labelled trace: ``failed, corrected, escalated, categories, n_reviewers``.

    Accepts label events or current labels (schema :data:`workbench.schema.LABELS`);
    events are reduced with :func:`workbench.review.events.current_labels`.
    """
    from workbench.review.events import DEFAULT_VOCABULARY, current_labels

    vocab = vocabulary or DEFAULT_VOCABULARY
    current = current_labels(conform(as_polars(labels, name="labels"), LABELS))
    if current.is_empty():
        return pl.DataFrame(
            schema={"trace_id": pl.String, "failed": pl.Float64, "corrected": pl.Float64,
                    "escalated": pl.Float64, "categories": pl.List(pl.String), "n_reviewers": pl.UInt32}
        )
    current = current.with_columns(vocab.failed_expr().cast(pl.Float64).alias("_failed"))
    per_trace = current.group_by("trace_id").agg(
        (pl.col("_failed").mean() >= 0.5).cast(pl.Float64).alias("failed"),
        (pl.col("corrected_output").is_not_null().mean() >= 0.5).cast(pl.Float64).alias("corrected"),
        (pl.col("escalate").fill_null(False).mean() >= 0.5).cast(pl.Float64).alias("escalated"),
        pl.len().alias("n_reviewers"),
    )
    named = (
        current.select("trace_id", pl.col("categories").fill_null([]))
        .explode("categories")
        .drop_nulls("categories")
        .group_by("trace_id", "categories")
        .agg(pl.len().alias("_votes"))
        .join(per_trace.select("trace_id", "n_reviewers"), on="trace_id")
        .filter(pl.col("_votes") >= pl.col("n_reviewers") / 2)
        .group_by("trace_id")
        .agg(pl.col("categories").sort())
    )
    return per_trace.join(named, on="trace_id", how="left").with_columns(
        pl.col("categories").fill_null(pl.lit([], dtype=pl.List(pl.String)))
    )


def trace_metrics(
    traces: Any,
    *,
    labels: Any = None,
    clusters: Any = None,
    clusters_better: str | None = None,
    vocabulary: Any = None,
) -> tuple[pl.DataFrame, list[Metric]]:
    """Add one column per metric to ``traces``; return the frame and the metrics present.

    Parameters
    ----------
    traces
        Traces table (extra columns such as ``_cohort`` are kept).
    labels
        Label events or current labels; the failure rate comes from them when any
        trace is labelled, else from the export outcome ``passed`` (False = failure).
    clusters
        A frame ``(trace_id, <cluster or intent column>)`` or the name of a traces
        column; adds the prevalence of each value.
    clusters_better
        ``"lower"`` when the clusters are failure modes (a smaller share is better),
        ``None`` (default) when they are intents: changes are then only "increased" or
        "decreased".
    vocabulary
        :class:`workbench.review.events.Vocabulary` deciding which verdicts fail.

    Metrics whose column is entirely null (no labels, no cost...) are left out.
    """
    frame = as_polars(traces, name="traces")
    if "trace_id" not in frame.columns:
        raise ValueError("traces table has no trace_id column")
    frame = _with_defaults(frame)
    columns: list[pl.Expr] = [
        ((pl.col("status") == "error") | (pl.col("n_errors").fill_null(0) > 0)).cast(pl.Float64).alias("error_rate"),
        (
            pl.col("output").is_not_null()
            & (pl.col("output").str.strip_chars() != "")
            & (pl.col("status").fill_null("") != "error")
        ).cast(pl.Float64).alias("completion_rate"),
        pl.col("duration_ms").cast(pl.Float64).alias("latency_ms"),
        pl.col("tokens_total").cast(pl.Float64).alias("tokens"),
        pl.col("cost_usd").cast(pl.Float64).alias("cost_usd_"),
        pl.col("n_tool_calls").cast(pl.Float64).alias("tool_calls"),
    ]
    frame = frame.with_columns(columns).drop("cost_usd").rename({"cost_usd_": "cost_usd"})
    passed_failure = (~pl.col("passed")).cast(pl.Float64)
    metrics = {m.name: m for m in BASE_METRICS}
    category_metrics: list[Metric] = []
    consolidated = None if labels is None else consolidate_labels(labels, vocabulary=vocabulary)
    labelled = consolidated is not None and not consolidated.join(
        frame.select("trace_id"), on="trace_id", how="semi"
    ).is_empty()
    if labelled:
        frame = frame.join(consolidated, on="trace_id", how="left", maintain_order="left")
        frame = frame.with_columns(
            pl.col("failed").alias("failure_rate"),
            pl.col("corrected").alias("correction_rate"),
            pl.when(pl.col("failed").is_not_null() & pl.col("passed").is_not_null())
            .then((pl.col("failed") != passed_failure).cast(pl.Float64))
            .alias("override_rate"),
            pl.col("escalated").alias("escalation_rate"),
        )
        metrics["failure_rate"] = replace(metrics["failure_rate"], source="reviewer labels (majority verdict)")
        names = sorted(set(consolidated["categories"].explode().drop_nulls().to_list()))
        cat_cols = [
            pl.when(pl.col("failed").is_not_null())
            .then(pl.col("categories").fill_null([]).list.contains(name).cast(pl.Float64))
            .alias(CATEGORY_PREFIX + name)
            for name in names
        ]
        frame = frame.with_columns(cat_cols).drop("failed", "corrected", "escalated", "categories", "n_reviewers")
        category_metrics = [
            Metric(CATEGORY_PREFIX + n, PROPORTION, "lower", source="share of labelled traces with this category")
            for n in names
        ]
    else:
        frame = frame.with_columns(
            passed_failure.alias("failure_rate"),
            *[pl.lit(None, dtype=pl.Float64).alias(n) for n in ("correction_rate", "override_rate", "escalation_rate")],
        )
        metrics["failure_rate"] = replace(metrics["failure_rate"], source="export outcome 'passed'")
    if clusters_better not in (None, "lower", "higher"):
        raise ValueError(f"clusters_better must be 'lower', 'higher' or None, got {clusters_better!r}")
    frame, cluster_metrics = _with_clusters(frame, clusters, better=clusters_better)
    unused = {"correction_rate", "escalation_rate"}  # reviewers who never correct / escalate
    present = [
        m for m in [*metrics.values(), *category_metrics, *cluster_metrics]
        if frame[m.name].null_count() < frame.height and not (m.name in unused and not frame[m.name].sum())
    ]
    return frame, present


def _with_defaults(frame: pl.DataFrame) -> pl.DataFrame:
    defaults = {
        "status": pl.String, "n_errors": pl.Int64, "output": pl.String, "duration_ms": pl.Float64,
        "tokens_total": pl.Int64, "cost_usd": pl.Float64, "n_tool_calls": pl.Int64, "passed": pl.Boolean,
    }
    missing = [pl.lit(None, dtype=t).alias(c) for c, t in defaults.items() if c not in frame.columns]
    return frame.with_columns(missing) if missing else frame


def _with_clusters(frame: pl.DataFrame, clusters: Any, *, better: str | None) -> tuple[pl.DataFrame, list[Metric]]:
    if clusters is None:
        return frame, []
    if isinstance(clusters, str):
        if clusters not in frame.columns:
            raise ValueError(f"clusters column {clusters!r} is not in the traces table")
        column = clusters
    else:
        table = as_polars(clusters, name="clusters")
        others = [c for c in table.columns if c != "trace_id"]
        if "trace_id" not in table.columns or len(others) != 1:
            raise ValueError(
                "clusters must be a traces column name or a frame with trace_id and one cluster/intent "
                f"column; got columns {table.columns}"
            )
        column = others[0]
        frame = frame.drop(column, strict=False).join(
            table.unique("trace_id", keep="last").with_columns(pl.col(column).cast(pl.String)),
            on="trace_id",
            how="left",
        )
    values = frame[column].cast(pl.String)
    names = sorted(values.drop_nulls().unique().to_list())
    value_col = pl.col(column).cast(pl.String)
    frame = frame.with_columns(
        # a trace without a value (e.g. a passed trace when only failures were clustered)
        # counts as "not in this cluster": prevalences are shares of all traces in the cohort
        [(value_col == n).fill_null(False).cast(pl.Float64).alias(f"{column}: {n}") for n in names]
    )
    return frame, [Metric(f"{column}: {n}", PROPORTION, better, source=f"share of traces with {column} = {n}")
                   for n in names]
