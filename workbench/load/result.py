"""The result of a load: the five tables plus a report that shows itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from workbench import _html, schema
from workbench.load._base import PER_FILE_COLUMNS, Problem, ReaderResult, problems_frame
from workbench.load._interop import stacked
from workbench.load.anomalies import flag_anomalies, span_graph
from workbench.load.langfuse import attach_to_trace_roots
from workbench.load.rollup import build_sessions, build_traces

FILES: dict[str, pl.DataType] = {
    "path": pl.String,
    "format": pl.String,
    "detected": pl.Boolean,
    "n_spans": pl.Int64,
    "n_feedback": pl.Int64,
    "n_problems": pl.Int64,
    "bytes": pl.Int64,
    "seconds": pl.Float64,
    "cached": pl.Boolean,
}


@dataclass(frozen=True)
class LoadResult:
    """Tables from one or more trace exports, and what happened while loading them.

    Attributes
    ----------
    spans, traces, sessions, feedback, problems
        polars frames with the schemas in :mod:`workbench.schema`.
    files
        One row per file: path, format (and whether it was auto-detected), rows,
        problems, size, seconds, whether it came from the cache.
    """

    spans: pl.DataFrame
    traces: pl.DataFrame
    sessions: pl.DataFrame
    feedback: pl.DataFrame
    problems: pl.DataFrame
    files: pl.DataFrame

    # -- summaries ---------------------------------------------------------
    def rows(self) -> dict[str, int]:
        """Rows per table."""
        return {name: getattr(self, name).height for name in ("spans", "traces", "sessions", "feedback", "problems")}

    def problems_by_reason(self) -> dict[str, int]:
        """How many bad records were quarantined, per reason."""
        if self.problems.is_empty():
            return {}
        counts = self.problems.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))

    def anomalies(self) -> dict[str, int]:
        """How many spans carry each anomaly flag (flagged, never dropped)."""
        return {
            flag: int(self.spans[flag].fill_null(False).sum()) if flag in self.spans.columns else 0
            for flag in schema.SPAN_ANOMALY_FLAGS
        }

    def time_range(self) -> tuple[Any, Any]:
        """Earliest start and latest end over all traces (``None`` when unknown)."""
        if self.traces.is_empty():
            return (None, None)
        return (self.traces["start_time"].min(), self.traces["end_time"].max())

    def formats(self) -> dict[str, str]:
        """Format per file path."""
        return dict(zip(self.files["path"].to_list(), self.files["format"].to_list(), strict=True))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``workbench inspect --json`` prints)."""
        start, end = self.time_range()
        return {
            "rows": self.rows(),
            "files": self.files.with_columns(pl.col("seconds").round(4)).to_dicts(),
            "formats": self.formats(),
            "problems_by_reason": self.problems_by_reason(),
            "anomalies": self.anomalies(),
            "time_range": [start.isoformat() if start else None, end.isoformat() if end else None],
        }

    # -- display -----------------------------------------------------------
    def __repr__(self) -> str:
        return self.report_text()

    def report_text(self) -> str:
        """The load report as plain text (for terminals and logs)."""
        start, end = self.time_range()
        lines = ["workbench load report"]
        for row in self.files.iter_rows(named=True):
            how = "detected" if row["detected"] else "given"
            cached = ", cached" if row["cached"] else ""
            lines.append(
                f"  {row['path']}: {row['format']} ({how}{cached}), {row['n_spans']:,} spans, "
                f"{row['n_problems']:,} problems, {row['seconds']:.2f} s"
            )
        lines.append("  rows: " + ", ".join(f"{k} {v:,}" for k, v in self.rows().items()))
        if start is not None:
            lines.append(f"  time range: {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
        problems = self.problems_by_reason()
        lines.append("  problems: " + (", ".join(f"{k} {v:,}" for k, v in problems.items()) or "none"))
        flagged = {k: v for k, v in self.anomalies().items() if v}
        lines.append("  anomalies: " + (", ".join(f"{k} {v:,}" for k, v in flagged.items()) or "none"))
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        start, end = self.time_range()
        rows = self.rows()
        overview = _html.key_values(
            [
                ("files", f"{self.files.height:,}"),
                ("spans", f"{rows['spans']:,}"),
                ("traces", f"{rows['traces']:,}"),
                ("sessions", f"{rows['sessions']:,}"),
                ("feedback", f"{rows['feedback']:,}"),
                ("time range", f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC" if start else "unknown"),
            ]
        )
        files = _html.frame_table(
            self.files.select(
                "path", "format", "detected", "n_spans", "n_feedback", "n_problems", pl.col("seconds").round(3), "cached"
            )
        )
        problems = self.problems_by_reason()
        problem_part = (
            _html.table([{"reason": k, "records": v} for k, v in problems.items()], ["reason", "records"])
            if problems
            else _html.badge("no problems", tone="good")
        )
        if problems:
            problem_part = _html.join(
                [problem_part, _html.frame_table(self.problems.select("source_file", "line", "reason", "field", "detail"), max_rows=10)]
            )
        flagged = {k: v for k, v in self.anomalies().items() if v}
        anomaly_part = (
            _html.table([{"flag": k, "spans": v} for k, v in flagged.items()], ["flag", "spans"])
            if flagged
            else _html.badge("no anomalies", tone="good")
        )
        return _html.report(
            "Load report",
            [
                overview,
                _html.section("Files", files),
                _html.section("Problems (quarantined, good records still loaded)", problem_part),
                _html.section("Anomalies (flagged on the rows, never dropped)", anomaly_part),
            ],
        )


def assemble(parts: Sequence[tuple[ReaderResult, dict[str, Any]]], *, extra_problems: Sequence[Problem] = ()) -> LoadResult:
    """Combine per-file reader results into a :class:`LoadResult`.

    Parameters
    ----------
    parts
        One ``(ReaderResult, info)`` per file; ``info`` has the ``FILES`` columns
        that the reader result cannot know: ``path``, ``detected``, ``bytes``,
        ``seconds``, ``cached``.
    extra_problems
        Problems that belong to no reader (an unreadable file, an unknown format).
    """
    conformed = [result.conformed() for result, _ in parts]
    # one file's values are one literal; several files' are a chunk each, to cut like the rest
    spans = (stacked([c.spans for c in conformed], PER_FILE_COLUMNS if len(conformed) == 1 else ())
             if conformed else schema.empty(schema.SPANS))
    feedback = (
        pl.concat([c.feedback for c in conformed], how="vertical") if conformed else schema.empty(schema.FEEDBACK)
    )
    all_problems = [p for c in conformed for p in c.problems] + list(extra_problems)
    spans = attach_to_trace_roots(spans)
    graph = span_graph(spans) if spans.height else None
    spans = flag_anomalies(spans, graph)
    traces = build_traces(spans, feedback, graph)
    file_rows = [
        {
            "path": info["path"],
            "format": c.format,
            "detected": info.get("detected", False),
            "n_spans": c.spans.height,
            "n_feedback": c.feedback.height,
            "n_problems": len(c.problems),
            "bytes": info.get("bytes"),
            "seconds": info.get("seconds"),
            "cached": info.get("cached", False),
        }
        for c, (_, info) in zip(conformed, parts, strict=True)
    ]
    return LoadResult(
        spans=spans,
        traces=traces,
        sessions=build_sessions(traces),
        feedback=feedback,
        problems=problems_frame(all_problems),
        files=pl.DataFrame(file_rows, schema=FILES),
    )
