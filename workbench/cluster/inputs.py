"""What is clustered and what counts as a failure: pure functions on the traces table.

- :func:`select_text` picks the text embedded per trace: the user's request
  (``"input"``, to find intents), the final answer (``"output"``), the reviewer's note
  (``"note"``, from labels), an error message (``"error"``), another column, or any
  polars expression over the traces.
- :func:`failure_flags` gives one nullable boolean per trace: from reviewer labels
  (current label per reviewer, majority over reviewers, ties undecided) and/or an
  outcome column carried by the export (``passed`` False = failure).
- :func:`categories_per_trace` gives the taxonomy categories reviewers attached.

Examples
--------
>>> import polars as pl
>>> traces = pl.DataFrame({"trace_id": ["a", "b"], "input": ["refund?", "hi"], "passed": [False, True]})
>>> select_text(traces, "input").to_list()
['refund?', 'hi']
>>> failure_flags(traces, outcome="passed").to_list()
[True, False]
"""

from __future__ import annotations

from typing import Any

import polars as pl

from workbench._frames import as_polars

TEXT_CHOICES = ("input", "output", "note", "error")


def _current(labels: Any) -> pl.DataFrame:
    from workbench.review.events import current_labels

    frame = as_polars(labels, name="labels")
    for column in ("trace_id", "verdict"):
        if column not in frame.columns:
            raise ValueError(f"labels need a {column!r} column (schema.LABELS); they have {frame.columns}")
    if "action" in frame.columns and "event_id" in frame.columns:
        return current_labels(frame)
    return frame  # already a current-labels frame without event bookkeeping


def error_messages(spans: Any) -> pl.DataFrame:
    """``trace_id, error_message``: each trace's distinct span errors, ``type: message``, joined.

    Join it to the traces table to cluster by error (``text="error"``).
    """
    frame = as_polars(spans, name="spans")
    for column in ("trace_id", "error_message"):
        if column not in frame.columns:
            raise ValueError(f"spans need a {column!r} column; they have {frame.columns}")
    kind = pl.col("error_type") if "error_type" in frame.columns else pl.lit(None, dtype=pl.String)
    text = (
        pl.when(kind.is_not_null())
        .then(pl.concat_str([kind, pl.lit(": "), pl.col("error_message")]))
        .otherwise(pl.col("error_message"))
    )
    return (
        frame.filter(pl.col("error_message").is_not_null() & (pl.col("error_message") != ""))
        .select("trace_id", text.alias("error_message"))
        .unique(maintain_order=True)
        .group_by("trace_id", maintain_order=True)
        .agg(pl.col("error_message").str.join(" | "))
    )


def notes_per_trace(labels: Any) -> pl.DataFrame:
    """``trace_id, note``: the current notes of every reviewer of a trace, joined."""
    current = _current(labels)
    if "note" not in current.columns:
        raise ValueError("labels have no 'note' column to cluster by")
    return (
        current.filter(pl.col("note").is_not_null() & (pl.col("note").str.strip_chars() != ""))
        .group_by("trace_id", maintain_order=True)
        .agg(pl.col("note").str.join(" | "))
    )


def select_text(traces: Any, text: str | pl.Expr, *, labels: Any = None) -> pl.Series:
    """The text to embed, one string per trace (null where there is none).

    Parameters
    ----------
    traces
        The traces table (needs ``trace_id``).
    text
        ``"input"``, ``"output"``, ``"note"`` (needs ``labels``), ``"error"`` (needs an
        ``error_message`` column: join :func:`error_messages` of the spans), any other
        column name, or a polars expression evaluated over the traces.
    labels
        Label events or current labels (for ``"note"``).
    """
    frame = as_polars(traces, name="traces")
    if isinstance(text, pl.Expr):
        series = frame.select(text.cast(pl.String)).to_series()
        return series.alias("text")
    if not isinstance(text, str):
        raise TypeError(f"text must be a column name or a polars expression, not {type(text).__name__}")
    if text == "note":
        if labels is None:
            raise ValueError("text='note' clusters reviewer notes: pass labels=<label events>")
        notes = notes_per_trace(labels)
        joined = frame.select("trace_id").join(notes, on="trace_id", how="left", maintain_order="left")
        return joined["note"].alias("text")
    if text == "error":
        for column in ("error_message", "error"):
            if column in frame.columns:
                return frame[column].cast(pl.String).alias("text")
        raise ValueError(
            "text='error' needs an error_message column in the traces; add it with "
            "traces.join(workbench.cluster.error_messages(spans), on='trace_id', how='left')"
        )
    if text not in frame.columns and text in TEXT_CHOICES:
        raise ValueError(f"text={text!r}: the traces have no {text!r} column (columns: {frame.columns})")
    if text not in frame.columns:
        raise ValueError(
            f"text={text!r} is not one of {list(TEXT_CHOICES)} nor a column of the traces "
            f"(columns: {frame.columns}); pass a polars expression for anything else"
        )
    return frame[text].cast(pl.String).alias("text")


def failure_flags(traces: Any, *, labels: Any = None, outcome: str | pl.Expr | None = None) -> pl.Series:
    """One nullable boolean per trace: True = failed, False = passed, null = unknown.

    Labels come first: a trace's current labels (one per reviewer) vote, a strict majority
    of failing verdicts makes it a failure, a tie leaves it unknown. Traces without a
    label fall back to ``outcome``: a boolean column or expression that is True when the
    trace *passed* (e.g. ``"passed"``, the export's outcome).
    """
    frame = as_polars(traces, name="traces")
    flags = pl.Series("failed", [None] * len(frame), dtype=pl.Boolean)
    if outcome is not None:
        if isinstance(outcome, str):
            if outcome not in frame.columns:
                raise ValueError(f"outcome column {outcome!r} is not in the traces; columns are {frame.columns}")
            passed = frame[outcome]
        else:
            passed = frame.select(outcome).to_series()
        if passed.dtype != pl.Boolean:
            raise ValueError(f"outcome must be boolean (True = passed), got {passed.dtype}")
        flags = (~passed).alias("failed")
    if labels is not None:
        from workbench.review.events import DEFAULT_VOCABULARY

        current = _current(labels).filter(pl.col("verdict").is_not_null())
        votes = (
            current.with_columns(DEFAULT_VOCABULARY.failed_expr().alias("_failed"))
            .filter(pl.col("_failed").is_not_null())
            .group_by("trace_id")
            .agg(pl.col("_failed").sum().alias("_fail"), pl.len().alias("_n"))
            .with_columns(
                pl.when(pl.col("_fail") * 2 > pl.col("_n")).then(True)
                .when(pl.col("_fail") * 2 < pl.col("_n")).then(False)
                .otherwise(None)
                .alias("_vote"),
                pl.lit(True).alias("_labelled"),
            )
        )
        joined = frame.select("trace_id").join(votes, on="trace_id", how="left", maintain_order="left")
        labelled = joined["_labelled"].fill_null(False)
        flags = pl.select(
            pl.when(labelled).then(joined["_vote"]).otherwise(flags).alias("failed")
        ).to_series()
    return flags


def categories_per_trace(labels: Any) -> pl.DataFrame:
    """``trace_id, categories``: the distinct taxonomy categories of a trace's current labels."""
    current = _current(labels)
    if "categories" not in current.columns:
        return pl.DataFrame(schema={"trace_id": pl.String, "categories": pl.List(pl.String)})
    return (
        current.select("trace_id", pl.col("categories"))
        .explode("categories")
        .filter(pl.col("categories").is_not_null())
        .group_by("trace_id", maintain_order=True)
        .agg(pl.col("categories").unique(maintain_order=True))
    )
