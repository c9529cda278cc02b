"""Eval items from traces and reviewer labels: one row per labelled trace.

Each item keeps what an eval needs and where it came from:

- ``input``: the user's request; ``messages``: the conversation up to the failing
  turn (earlier turns of the same session, then this request), as
  ``list[struct{role, content}]``;
- ``expected``: the reviewer's corrected output when one was given, else the
  original output when the verdict counts as a pass, else null
  (``expected_source`` says which);
- provenance: ``trace_id``, ``span_id`` (the labelled span, else the root span),
  ``trace_start_time``, every current ``label_event_ids`` and ``reviewers``,
  ``taxonomy_version``;
- what to slice by: ``verdict``, ``categories``, ``cluster``, ``cohort``,
  ``prompt_version`` (``split`` and ``tags`` are added by the export pipeline);
- ``trace_metadata``: chosen trace columns and the trace's own ``metadata`` as JSON.

When several reviewers labelled a trace, the most recent current label decides the
verdict, categories, note and corrected output; all of their event ids and names are kept.

Examples
--------
>>> import polars as pl
>>> from workbench.review.events import events_frame, new_label
>>> traces = pl.DataFrame({"trace_id": ["t1", "t2"], "input": ["refund?", "hi"], "output": ["no", "hello"]})
>>> labels = events_frame([new_label("t1", "ana", "fail", corrected_output="Yes, within 30 days."),
...                        new_label("t2", "ana", "pass")])
>>> build_eval_items(traces, labels).select("trace_id", "expected", "expected_source").rows()
[('t1', 'Yes, within 30 days.', 'corrected'), ('t2', 'hello', 'original')]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import polars as pl

from workbench import schema
from workbench._frames import as_polars
from workbench.review.events import DEFAULT_VOCABULARY, Vocabulary, current_labels

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})

EVAL_ITEMS: dict[str, pl.DataType] = {
    "item_id": pl.String,
    "trace_id": pl.String,
    "span_id": pl.String,
    "session_id": pl.String,
    "user_id": pl.String,
    "task_id": pl.String,
    "input": pl.String,
    "messages": pl.List(MESSAGE),
    "output": pl.String,
    "expected": pl.String,
    "expected_source": pl.String,
    "verdict": pl.String,
    "categories": schema.STR_LIST,
    "note": pl.String,
    "cluster": pl.String,
    "cohort": pl.String,
    "prompt_version": pl.String,
    "split": pl.String,
    "tags": schema.STR_LIST,
    "trace_start_time": schema.UTC_TIME,
    "label_event_ids": schema.STR_LIST,
    "reviewers": schema.STR_LIST,
    "taxonomy_version": pl.Int64,
    "n_duplicates": pl.Int64,
    "trace_metadata": pl.String,
    "metadata": pl.String,
}

DEFAULT_METADATA_COLUMNS = (
    "name",
    "status",
    "models",
    "app_version",
    "n_spans",
    "n_llm_calls",
    "n_tool_calls",
    "n_errors",
    "duration_ms",
    "tokens_total",
    "cost_usd",
    "passed",
    "reward",
    "user_feedback",
    "source_format",
)


def item_ids(trace_ids: Iterable[str], span_ids: Iterable[str | None]) -> list[str]:
    """Stable item ids: the same trace and span give the same id in every export version."""
    return [
        "wb-" + hashlib.sha256(f"{t}\x1f{s or ''}".encode()).hexdigest()[:20]
        for t, s in zip(trace_ids, span_ids, strict=True)
    ]


def _deciding_labels(labels: Any) -> pl.DataFrame:
    """One row per trace: the latest current label plus all current event ids and reviewers."""
    current = current_labels(labels)
    if current.is_empty():
        return pl.DataFrame(
            schema={
                "trace_id": pl.String,
                "label_span_id": pl.String,
                "verdict": pl.String,
                "categories": schema.STR_LIST,
                "note": pl.String,
                "corrected_output": pl.String,
                "label_event_ids": schema.STR_LIST,
                "reviewers": schema.STR_LIST,
                "taxonomy_version": pl.Int64,
            }
        )
    ordered = current.with_row_index("_order").sort(["created_at", "_order"])
    return ordered.group_by("trace_id", maintain_order=True).agg(
        pl.col("span_id").last().alias("label_span_id"),
        pl.col("verdict").last(),
        pl.col("categories").last(),
        pl.col("note").last(),
        pl.col("corrected_output").last(),
        pl.col("event_id").alias("label_event_ids"),
        pl.col("reviewer").unique().sort().alias("reviewers"),
        pl.col("taxonomy_version").max(),
    )


def _as_trace_id_frame(value: Any, column: str, *, what: str) -> pl.DataFrame:
    """``trace_id, <column>`` from a frame, a mapping or an object with ``to_frame()``."""
    if isinstance(value, Mapping):
        rows: list[tuple[str, str]] = []
        for key, ids in value.items():
            if isinstance(ids, str):  # trace_id -> name
                rows.append((str(key), ids))
            else:  # name -> trace ids
                rows.extend((str(t), str(key)) for t in ids)
        return pl.DataFrame(rows, schema={"trace_id": pl.String, column: pl.String}, orient="row")
    if (
        hasattr(value, "to_frame")
        and not isinstance(value, pl.DataFrame)
        and type(value).__module__.split(".")[0] != "pandas"
    ):
        value = value.to_frame()
    frame = as_polars(value, name=what)
    if "trace_id" not in frame.columns:
        raise ValueError(f"{what} needs a trace_id column, got {frame.columns}")
    source = next((c for c in (column, f"{column}_id", "label", "_cohort") if c in frame.columns), None)
    if source is None:
        raise ValueError(f"{what} needs a {column!r} column next to trace_id, got {frame.columns}")
    values = pl.col(source).cast(pl.String)
    if column == "cluster":  # -1 is HDBSCAN's "no cluster"
        values = pl.when(values == "-1").then(None).otherwise(values)
    return frame.select(pl.col("trace_id").cast(pl.String), values.alias(column))


def _cohorts(traces: pl.DataFrame, cohort: Any) -> pl.DataFrame:
    if isinstance(cohort, str):
        if cohort not in traces.columns:
            raise ValueError(f"cohort column {cohort!r} is not in the traces table")
        return traces.select("trace_id", pl.col(cohort).cast(pl.String).alias("cohort"))
    if hasattr(cohort, "assign") and callable(cohort.assign):
        assigned = cohort.assign(traces)
        source = "_cohort" if "_cohort" in assigned.columns else "cohort"
        frame = assigned.select("trace_id", pl.col(source).cast(pl.String).alias("cohort"))
    else:
        frame = _as_trace_id_frame(cohort, "cohort", what="cohort")
    # a trace in several cohorts (filter cohorts may overlap) gets all names, sorted
    return frame.group_by("trace_id").agg(pl.col("cohort").unique().sort().str.join("+"))


def _selected_ids(select: Any) -> list[str] | None:
    """Trace ids from a list, a Series, a frame with ``trace_id``, or an object with
    ``.trace_ids`` (a review queue) or ``.selection`` (a cluster map)."""
    if select is None or isinstance(select, pl.Expr):
        return None
    if hasattr(select, "trace_ids"):
        ids = select.trace_ids() if callable(select.trace_ids) else select.trace_ids
        return _selected_ids(list(ids))
    if hasattr(select, "columns"):
        frame = as_polars(select, name="select")
        if "trace_id" not in frame.columns:
            raise ValueError(f"select: a frame needs a trace_id column, got {frame.columns}")
        return frame.get_column("trace_id").cast(pl.String).to_list()
    if hasattr(select, "selection"):
        return _selected_ids(select.selection)
    if isinstance(select, pl.Series):
        return select.cast(pl.String).to_list()
    if isinstance(select, str):
        return [select]
    return [str(i) for i in select]


def _history(traces: pl.DataFrame, keep: pl.Series, turns: int) -> pl.DataFrame:
    """``trace_id, messages``: up to ``turns`` earlier turns of the session, then this input."""
    wanted = keep.implode()
    sessions = traces.filter(pl.col("trace_id").is_in(wanted)).get_column("session_id").drop_nulls().unique()
    scope = (
        traces.filter(pl.col("trace_id").is_in(wanted) | pl.col("session_id").is_in(sessions.implode()))
        .select("trace_id", "session_id", "start_time", "input", "output")
        .sort(["session_id", "start_time", "trace_id"], nulls_last=True)
        .with_row_index("_row")
    )
    row = pl.col("_row").cast(pl.Int64)
    first = pl.when(pl.col("session_id").is_not_null()).then(row.min().over("session_id")).otherwise(row)
    targets = (
        scope.with_columns(pl.int_ranges(pl.max_horizontal(first, row - turns), row).alias("_earlier"))
        .filter(pl.col("trace_id").is_in(wanted))
        .select("trace_id", "_earlier", "input")
    )
    earlier = (
        targets.select("trace_id", "_earlier")
        .explode("_earlier")
        .drop_nulls("_earlier")
        .join(
            scope.select(pl.col("_row").cast(pl.Int64).alias("_earlier"), "input", "output"),
            on="_earlier",
            maintain_order="left",
        )
        .select(
            "trace_id",
            pl.concat_list(
                pl.struct(role=pl.lit("user"), content=pl.col("input")),
                pl.struct(role=pl.lit("assistant"), content=pl.col("output")),
            ).alias("_pair"),
        )
        .explode("_pair")
        .filter(pl.col("_pair").struct.field("content").is_not_null())
        .group_by("trace_id", maintain_order=True)
        .agg(pl.col("_pair").alias("_history"))
    )
    empty = pl.lit([], dtype=pl.List(MESSAGE))
    current = (
        pl.when(pl.col("input").is_not_null())
        .then(pl.concat_list(pl.struct(role=pl.lit("user"), content=pl.col("input"))))
        .otherwise(empty)
    )
    joined = targets.join(earlier, on="trace_id", how="left", maintain_order="left").with_columns(
        pl.concat_list(pl.col("_history").fill_null(empty), current).cast(pl.List(MESSAGE)).alias("messages")
    )
    return joined.select("trace_id", "messages")


def _trace_metadata(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Series:
    """Chosen trace columns plus the trace's own ``metadata``, as one JSON object per row."""
    present = sorted(c for c in columns if c in frame.columns and c != "metadata")
    base = frame.select(pl.struct(present).struct.json_encode().alias("j")).to_series() if present else None
    if "metadata" not in frame.columns:
        return base if base is not None else pl.Series([None] * frame.height, dtype=pl.String)
    extra = frame.get_column("metadata")
    if isinstance(extra.dtype, pl.Struct):
        encoded = extra.to_frame().select(pl.col("metadata").struct.json_encode()).to_series()
    else:
        encoded = pl.Series([_as_json(v) for v in extra.cast(pl.String).to_list()], dtype=pl.String)
    body = '"metadata":' + encoded.fill_null("null") + "}"
    return ("{" + body) if base is None else (base.str.head(-1) + "," + body)


def _as_json(value: str | None) -> str | None:
    """JSON text as it is; any other string as a JSON string."""
    if value is None:
        return None
    try:
        orjson.loads(value)
    except orjson.JSONDecodeError:
        return orjson.dumps(value).decode()
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, pl.Series):
        return value.to_list()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def build_eval_items(
    traces: Any,
    labels: Any,
    *,
    spans: Any = None,
    select: Any = None,
    cohort: Any = None,
    clusters: Any = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    history_turns: int = 5,
    metadata_columns: Sequence[str] = DEFAULT_METADATA_COLUMNS,
) -> pl.DataFrame:
    """Build eval items (:data:`EVAL_ITEMS` columns) from traces and label events.

    Parameters
    ----------
    traces
        The traces table (``schema.TRACES``; pandas or polars). Extra columns are
        allowed: ``task_id`` (used for group splits) and ``metadata`` (JSON text or
        a struct, carried into the item's ``trace_metadata``).
    labels
        Label events or current labels (``schema.LABELS``). Only labelled traces
        become items.
    spans
        Optional spans table: a label that names a span must name one of its trace.
    select
        Which traces to export: a polars expression over the trace columns joined
        with ``verdict``, ``categories``, ``cluster`` and ``cohort``; a list of trace
        ids; or any object with ``.trace_ids`` (a review queue, a cluster-map selection).
    cohort
        A traces column name, a cohort spec with ``.assign(traces)``, a frame with
        ``trace_id`` and ``cohort``, or a mapping (cohort -> trace ids).
    clusters
        A frame with ``trace_id`` and ``cluster`` (or ``cluster_id``), an object with
        ``.to_frame()``, or a mapping (trace id -> cluster).
    vocabulary
        Which verdicts count as a pass (the original output is then ``expected``).
    history_turns
        How many earlier turns of the session to put in ``messages`` (0: only the request).
    metadata_columns
        Trace columns copied into ``trace_metadata``.
    """
    frame = schema.conform(as_polars(traces, name="traces"), schema.TRACES)
    if frame.get_column("trace_id").is_null().any():
        raise ValueError("traces table: trace_id is null in some rows")
    frame = frame.unique("trace_id", keep="first", maintain_order=True)
    decided = _deciding_labels(labels)
    joined = frame.join(decided, on="trace_id", how="inner", maintain_order="left")
    joined = joined.with_columns(
        pl.lit(None, dtype=pl.String).alias("cluster"), pl.lit(None, dtype=pl.String).alias("cohort")
    )
    if clusters is not None:
        cl = _as_trace_id_frame(clusters, "cluster", what="clusters").unique("trace_id", keep="last")
        joined = joined.drop("cluster").join(cl, on="trace_id", how="left", maintain_order="left")
    if cohort is not None:
        joined = joined.drop("cohort").join(
            _cohorts(frame, cohort), on="trace_id", how="left", maintain_order="left"
        )
    if isinstance(select, pl.Expr):
        joined = joined.filter(select)
    else:
        ids = _selected_ids(select)
        if ids is not None:
            joined = joined.filter(pl.col("trace_id").is_in(pl.Series(ids, dtype=pl.String).implode()))
    if spans is not None:
        _check_span_ids(joined, as_polars(spans, name="spans"))

    if "task_id" not in joined.columns:
        joined = joined.with_columns(pl.lit(None, dtype=pl.String).alias("task_id"))
    history = _history(frame, joined.get_column("trace_id"), max(0, int(history_turns)))
    joined = joined.join(history, on="trace_id", how="left", maintain_order="left")

    passing = list(vocabulary.passing)
    expected = (
        pl.when(pl.col("corrected_output").is_not_null())
        .then(pl.col("corrected_output"))
        .when(pl.col("verdict").is_in(passing))
        .then(pl.col("output"))
    )
    source = (
        pl.when(pl.col("corrected_output").is_not_null())
        .then(pl.lit("corrected"))
        .when(pl.col("verdict").is_in(passing) & pl.col("output").is_not_null())
        .then(pl.lit("original"))
    )
    span_id = pl.coalesce("label_span_id", "root_span_id")
    items = joined.with_columns(
        span_id.alias("span_id"),
        expected.alias("expected"),
        source.alias("expected_source"),
        pl.col("start_time").alias("trace_start_time"),
        pl.col("task_id").cast(pl.String),
        pl.lit(None, dtype=pl.String).alias("split"),
        pl.lit(None, dtype=schema.STR_LIST).alias("tags"),
        pl.lit(0, dtype=pl.Int64).alias("n_duplicates"),
        pl.lit(None, dtype=pl.String).alias("metadata"),
    )
    items = items.with_columns(
        pl.Series(
            "item_id", item_ids(items["trace_id"].to_list(), items["span_id"].to_list()), dtype=pl.String
        ),
        _trace_metadata(joined, metadata_columns).rename("trace_metadata"),
    )
    return items.select([pl.col(c).cast(t) for c, t in EVAL_ITEMS.items()]).sort(
        ["trace_start_time", "item_id"], nulls_last=True
    )


def _check_span_ids(items: pl.DataFrame, spans: pl.DataFrame) -> None:
    named = items.filter(pl.col("label_span_id").is_not_null()).select(
        "trace_id", pl.col("label_span_id").alias("span_id")
    )
    missing = named.join(spans.select("trace_id", "span_id"), on=["trace_id", "span_id"], how="anti")
    if missing.height:
        trace, span = missing.row(0)
        raise ValueError(
            f"{missing.height} label(s) name a span that is not in the spans table, e.g. span {span!r} of trace {trace!r}"
        )
