"""Reader for Langfuse exports: trace downloads, API pages and UI exports.

Shapes accepted (``formats.md`` A.5.4):

* the single-trace download ``{"trace": {..., "scores": [...]}, "observations": [...]}``,
  as one JSON document or one object per line (JSONL);
* public API list pages ``{"data": [...], "meta": {...}}`` of observations
  (v1 or v2), traces or scores, and bare arrays of such objects;
* the UI batch export of observations or traces as CSV, JSON or JSONL (in CSV
  every JSON value is a string; score columns hold lists of values).

``metadata``, ``input`` and ``output`` are JSON-decoded when they hold JSON
text (at most twice). OTel-ingested observations keep raw OTel attributes in
``metadata.attributes``: they fill the columns Langfuse's own fields leave
empty (session, provider, tokens, ...). Scores become feedback. A trace that
comes without observations (trace list, trace export) becomes one root span
(``span_id`` = trace id) so its input, output and cost are not lost.

Example
-------
>>> from workbench.load import langfuse
>>> result = langfuse.read("agno.trace.json").conformed()  # doctest: +SKIP
>>> result.spans.select("name", "kind", "model", "tokens_total")  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import polars as pl

from workbench.load import _langfuse_map as lf
from workbench.load._base import Problem, ReaderResult, raise_or_collect
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    REASON_TYPE_DRIFT,
    ProblemLog,
    feedback_frame,
    inline_feedback,
    normalize_id,
    page_items,
    spans_frame,
)

FORMAT = "langfuse"
READER_VERSION = "1"  # bump when the mapping changes: invalidates cached parses
REASON_NOT_LANGFUSE = "not a Langfuse object"
_JSON_MARKERS = (b'"parentObservationId"', b'"usageDetails"', b'"htmlPath"', b'"observations"',
                 b'"bookmarked"', b'"promptVersion"')
_BUNDLE_START = re.compile(rb'^\s*\{\s*"(?:trace|observations)"\s*:')
_SCORE_MARKERS = (b'"dataType"', b'"traceId"')
_CSV_MARKERS = (b"parentObservationId", b"bookmarked", b"usageDetails")


def sniff(path: str, head: bytes) -> bool:
    """True for Langfuse JSON/JSONL (camelCase Langfuse keys) or a Langfuse UI-export CSV header."""
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        if _BUNDLE_START.match(stripped) or any(m in head for m in _JSON_MARKERS):
            return True
        return all(m in head for m in _SCORE_MARKERS) and b'"source"' in head
    header = stripped.split(b"\n", 1)[0]
    return b"," in header and any(m in header for m in _CSV_MARKERS)


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one Langfuse export file (JSON, JSONL, CSV; ``.gz`` too) into spans and feedback.

    Each bad record or field becomes a problem naming file, line and field
    (``strict`` raises instead); every good record still loads.
    """
    problems: list[Problem] = []
    builder = _Builder(str(path), problems, strict)
    data = read_bytes(path)
    if data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1] in (b"{", b"["):
        records = iter_json_records(path, strict=strict, problems=problems, objects_only=False, data=data)
        for line, offset, record in records:
            builder.add_record(record, line, offset)
    else:
        for line, offset, row in iter_csv_rows(path, data, problems=problems, strict=strict):
            builder.add_item(row, line, offset, "")
    return ReaderResult(FORMAT, spans_frame(builder.rows), feedback_frame(builder.feedback), problems)


def iter_csv_rows(path: str, data: bytes, *, problems: list[Problem], strict: bool = False,
                  ) -> Iterator[tuple[int, int, dict]]:
    """Yield ``(first_line, byte_offset, row)`` for each CSV record; empty cells become ``None``.

    Quoted cells may span lines; the line and offset are those of the record's
    first line. Invalid UTF-8 stops the file with one problem at its byte.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise_or_collect(problems, Problem(path, line, exc.start, "invalid UTF-8",
                                           detail=f"byte 0x{data[exc.start]:02x}"), strict=strict)
        return
    starts: list[tuple[int, int]] = []  # (line, offset) of each physical line handed to csv

    def lines() -> Iterator[str]:
        offset = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        for number, physical in enumerate(io.StringIO(text, newline=""), start=1):
            starts.append((number, offset))
            offset += len(physical.encode("utf-8"))
            yield physical

    reader = csv.reader(lines())
    header: list[str] | None = None
    consumed = 0
    for cells in reader:
        first_line, first_offset = starts[consumed]
        consumed = len(starts)
        if not any(cell.strip() for cell in cells):
            continue
        if header is None:
            header = cells
            continue
        if len(cells) != len(header):
            raise_or_collect(problems, Problem(
                path, first_line, first_offset, "wrong number of CSV cells",
                detail=f"{len(cells)} cells, header has {len(header)}", excerpt=",".join(cells)[:200],
            ), strict=strict)
            continue
        yield first_line, first_offset, {k: (v if v != "" else None) for k, v in zip(header, cells, strict=True)}


class _Builder(ProblemLog):
    """Accumulates span and feedback rows from Langfuse records."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.rows: list[dict] = []
        self.feedback: list[dict] = []

    def add_record(self, record: object, line: int, offset: int) -> None:
        for item, where in page_items(record, not_a_page_key="trace"):
            self.add_item(item, line, offset, where)

    def add_item(self, item: object, line: int, offset: int, where: str) -> None:
        if not isinstance(item, dict):
            self.problem(line, offset, REASON_NOT_LANGFUSE, None, where + f"a JSON {type(item).__name__}")
            return
        try:
            if isinstance(item.get("trace"), dict) or isinstance(item.get("observations"), list) and (
                    "traceId" not in item):
                self.add_bundle(item, line, offset)
            elif "dataType" in item or ("source" in item and "value" in item and "startTime" not in item):
                self.add_score(item, line, offset)
            elif "traceId" in item and ("type" in item or "startTime" in item or "parentObservationId" in item):
                self.add_observation(item, None, line, offset, score_level="span")
            elif "timestamp" in item or "sessionId" in item or "bookmarked" in item:
                self.add_trace_only(item, line, offset)
            else:
                self.problem(line, offset, REASON_NOT_LANGFUSE, None,
                             where + "expected a trace download, observation, trace or score", item)
        except lf.FieldError as exc:
            self.problem(line, offset, REASON_MISSING_FIELD, exc.field, where + str(exc), item)

    def add_bundle(self, bundle: dict, line: int, offset: int) -> None:
        trace = bundle.get("trace") if isinstance(bundle.get("trace"), dict) else bundle
        observations = bundle.get("observations") if "trace" in bundle else None
        if not isinstance(observations, list):
            observations = trace.get("observations") if isinstance(trace.get("observations"), list) else []
        observations = [o for o in observations if isinstance(o, dict)]
        if observations:
            extras = lf.trace_extras(trace)
            for obs in observations:
                is_root = not obs.get("parentObservationId")
                try:
                    self.add_observation(obs, trace, line, offset,
                                         extra={"trace": extras} if is_root else None)
                except lf.FieldError as exc:
                    self.problem(line, offset, REASON_MISSING_FIELD, exc.field,
                                 f"observation of trace {trace.get('id')}: {exc}", obs)
        else:
            self.add_trace_only(trace, line, offset)
            return
        for key in ("scores", "corrections"):
            for score in trace.get(key) or []:
                if isinstance(score, dict):
                    self.add_score(score, line, offset)

    def add_observation(self, obs: dict, trace: dict | None, line: int, offset: int, *,
                        score_level: str | None = None, extra: dict | None = None) -> None:
        columns = lf.score_columns(obs) if "comments" in obs else set()
        row, found = lf.observation_row(obs, trace=trace, skip=columns, extra=extra)
        self.finish_row(row, found, line, offset)
        if columns and score_level:
            self.add_feedback_rows(lf.score_column_rows(obs, columns, level=score_level,
                                                        target_id=row["span_id"], trace_id=row["trace_id"]))

    def add_trace_only(self, trace: dict, line: int, offset: int) -> None:
        columns = lf.score_columns(trace) if "comments" in trace else set()
        scores = [s for s in trace.get("scores") or [] if isinstance(s, dict)]
        row, bad = lf.trace_span_row(trace, skip=columns | ({"scores"} if scores else set()))
        self.finish_row(row, {"feedback": [], "drift": [], "bad": bad}, line, offset)
        for score in scores:
            self.add_score(score, line, offset)
        self.add_feedback_rows(lf.score_column_rows(trace, columns, level="trace", target_id=row["trace_id"],
                                                    trace_id=row["trace_id"]))

    def finish_row(self, row: dict, found: dict, line: int, offset: int) -> None:
        for field, reason in found["bad"]:
            self.problem(line, offset, REASON_BAD_VALUE, field,
                         f"observation {row['span_id']}: {reason} (kept in attributes)")
        for key, detail in found["drift"]:
            self.problem(line, offset, REASON_TYPE_DRIFT, key,
                         f"observation {row['span_id']}: {detail} (kept in attributes)")
        row.update(source_format=FORMAT, source_file=self.source, source_line=line)
        self.rows.append(row)
        feedback, homeless = inline_feedback(found["feedback"], row)
        for name in homeless:
            self.problem(line, offset, REASON_MISSING_FIELD, "session.id",
                         f"session annotation {name!r} on a span without a session")
        self.add_feedback_rows(feedback)

    def add_score(self, score: dict, line: int, offset: int) -> None:
        try:
            self.add_feedback_rows([lf.score_row(score)])
        except lf.FieldError as exc:
            reason = REASON_BAD_VALUE if exc.field == "timestamp" else REASON_MISSING_FIELD
            self.problem(line, offset, reason, exc.field, str(exc), score)

    def add_feedback_rows(self, rows: list[dict]) -> None:
        for row in rows:
            row.update(source_format=FORMAT, source_file=self.source)
            if row.get("trace_id") is not None:
                row["trace_id"] = normalize_id(row["trace_id"])
            self.feedback.append(row)


def attach_to_trace_roots(spans: pl.DataFrame) -> pl.DataFrame:
    """Parent top-level observations to the root span a trace list gave their trace.

    A trace list (API page or UI export) gives each trace a root span of its
    own (``span_id == trace_id``); an observations file loaded beside it gives
    the trace's top-level observations with no parent. Langfuse shows them
    under the trace, so they are made children of that root instead of a
    second root. Spans of other formats are untouched.
    """
    langfuse = pl.col("source_format") == FORMAT
    # an expression, not spans["source_format"]: a file's literal column stays unwritten
    if spans.is_empty() or not spans.select(langfuse.any()).item():
        return spans
    top_level = langfuse & pl.col("parent_span_id").is_null()
    trace_root = top_level & (pl.col("span_id") == pl.col("trace_id")) & pl.col("attributes").str.contains(
        lf.SYNTHETIC_ROOT, literal=True).fill_null(False)
    with_root = spans.filter(trace_root)["trace_id"].unique()
    if with_root.is_empty():
        return spans
    adopt = top_level & ~trace_root & pl.col("trace_id").is_in(with_root.implode())
    return spans.with_columns(pl.when(adopt).then(pl.col("trace_id")).otherwise(pl.col("parent_span_id"))
                              .alias("parent_span_id"))
