"""Reader for OTLP JSON trace exports (OpenInference or GenAI attributes).

Shapes accepted (``formats.md`` A.5.1):

* the Collector ``file`` exporter: one ``ExportTraceServiceRequest``
  (``{"resourceSpans": [...]}``) per line, a trace possibly split across lines;
* one such request as a single JSON document (pretty-printed or not), or a
  JSON array of requests;
* one OTLP span object per line.

Large clean files go through a columnar fast path (``_otlp_fast``: pyarrow
parses 64 MiB blocks against an explicit schema, polars maps attributes);
any block the fast path cannot take (bad lines, type drift, unknown fields,
events, OpenInference messages or annotations) is halved until the bad part
is small and parsed here, line by line, with the same mapping rules. Both
paths give the same rows (``tests/load/test_otlp.py`` checks this).

Example
-------
>>> from workbench.load import otlp
>>> result = otlp.read("traces.jsonl")          # doctest: +SKIP
>>> result.spans.select("trace_id", "kind", "model")  # doctest: +SKIP
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

import orjson
import polars as pl

from workbench import schema
from workbench.load._attrs import otlp_attributes_to_dict, span_fields_from_attributes
from workbench.load._base import Problem, ReaderResult, raise_or_collect
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._scanner import OTLP_READER_VERSION

FORMAT = "otlp"
READER_VERSION = OTLP_READER_VERSION
REASON_MISSING_FIELD = "missing required field"
REASON_BAD_VALUE = "bad field value"
REASON_TYPE_DRIFT = "type drift"
REASON_NOT_OTLP = "not an OTLP record"

_STATUS = {0: "unset", 1: "ok", 2: "error", "STATUS_CODE_UNSET": "unset", "STATUS_CODE_OK": "ok",
           "STATUS_CODE_ERROR": "error", "UNSET": "unset", "OK": "ok", "ERROR": "error",
           "0": "unset", "1": "ok", "2": "error"}
SPAN_COLUMNS = [c for c in schema.SPANS if c not in schema.SPAN_ANOMALY_FLAGS]
_EXTRA_SPAN_KEYS = ("traceState", "flags", "kind", "droppedAttributesCount", "droppedEventsCount",
                    "droppedLinksCount")


def sniff(path: str, head: bytes) -> bool:
    """True for OTLP JSON: a ``resourceSpans`` envelope or bare OTLP span objects."""
    return b'"resourceSpans"' in head or (b'"spanId"' in head and b'"traceId"' in head
                                          and b'UnixNano"' in head)


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one OTLP JSON / JSONL file (``.gz`` too) into spans and feedback.

    Bad lines and bad fields become problems (or raise with ``strict``);
    every good span still loads.
    """
    from workbench.load import _otlp_fast

    return _otlp_fast.read_bytes_fast(str(path), None, strict=strict)


def read_python(path: str, data: bytes | None = None, *, strict: bool = False) -> ReaderResult:
    """The line-by-line reference path over a whole file (or its bytes)."""
    data = read_bytes(path) if data is None else data
    return _read_pieces(str(path), [(1, 0, data)], strict=strict, allow_document=True)


def read_python_pieces(source: str, pieces: list[tuple[int, int, bytes]], *, strict: bool = False) -> ReaderResult:
    """The line-by-line path over slices of a file: ``(first_line, byte_offset, bytes)`` each."""
    return _read_pieces(source, pieces, strict=strict, allow_document=False)


def _read_pieces(source: str, pieces, *, strict: bool, allow_document: bool) -> ReaderResult:
    problems: list[Problem] = []
    builder = _Builder(source, problems, strict)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for first_line, base_offset, data in pieces:
            for line, offset, record in iter_json_records(
                source, strict=strict, problems=problems, data=data, objects_only=True,
                allow_document=allow_document, first_line=first_line, base_offset=base_offset,
            ):
                builder.add_record(record, line, offset)
    finally:
        if gc_was_enabled:
            gc.enable()
    return ReaderResult(FORMAT, builder.spans_frame(), builder.feedback_frame(), problems)


class _Builder:
    """Accumulates span rows and feedback rows from decoded OTLP records."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        self.source = source
        self.problems = problems
        self.strict = strict
        self.rows: list[dict] = []
        self.feedback: list[dict] = []

    def problem(self, line: int, offset: int, reason: str, field: str | None, detail: str) -> None:
        raise_or_collect(self.problems, Problem(self.source, line, offset, reason, field=field,
                                                detail=detail), strict=self.strict)

    def add_record(self, record: object, line: int, offset: int) -> None:
        if isinstance(record, list):
            for item in record:
                self.add_record(item, line, offset)
        elif isinstance(record, dict) and "resourceSpans" in record:
            self.add_request(record, line, offset)
        elif isinstance(record, dict) and ("spanId" in record or "traceId" in record):
            self.add_span(record, {}, None, line, offset)
        else:
            self.problem(line, offset, REASON_NOT_OTLP, None,
                         "expected {\"resourceSpans\": [...]} or an OTLP span object")

    def add_request(self, request: dict, line: int, offset: int) -> None:
        for resource_spans in _as_list(request.get("resourceSpans")):
            if not isinstance(resource_spans, dict):
                continue
            resource = resource_spans.get("resource") or {}
            resource_attrs = otlp_attributes_to_dict(resource.get("attributes"))
            scopes = resource_spans.get("scopeSpans") or resource_spans.get("instrumentationLibrarySpans")
            for scope_spans in _as_list(scopes):
                if not isinstance(scope_spans, dict):
                    continue
                scope = scope_spans.get("scope") or scope_spans.get("instrumentationLibrary")
                for span in _as_list(scope_spans.get("spans")):
                    self.add_span(span, resource_attrs, scope, line, offset)

    def add_span(self, span: object, resource_attrs: dict, scope: object, line: int, offset: int) -> None:
        if not isinstance(span, dict):
            self.problem(line, offset, REASON_NOT_OTLP, "spans", "a span is not an object")
            return
        trace_id, span_id = span.get("traceId"), span.get("spanId")
        for key, value in (("traceId", trace_id), ("spanId", span_id)):
            if not isinstance(value, str) or not value:
                self.problem(line, offset, REASON_MISSING_FIELD, key, f"span {span.get('name')!r} has no {key}")
                return
        name = span.get("name")
        attrs = otlp_attributes_to_dict(span.get("attributes"))
        fields = span_fields_from_attributes(attrs, name=name if isinstance(name, str) else None)
        leftover: dict = fields.pop("attributes")
        for key, detail in fields.pop("drift"):
            self.problem(line, offset, REASON_TYPE_DRIFT, key, detail + " (kept in attributes)")
        feedback = fields.pop("feedback")
        parent = span.get("parentSpanId") or None
        start = self.nanos_to_micros(span, "startTimeUnixNano", leftover, line, offset)
        end = self.nanos_to_micros(span, "endTimeUnixNano", leftover, line, offset)
        events = self.take_events(span, fields, feedback, leftover)
        if events:
            leftover["otel.events"] = events
        status = span.get("status") if isinstance(span.get("status"), dict) else {}
        code = status.get("code") or 0
        status_text = _STATUS.get(code)
        if status_text is None:
            self.problem(line, offset, REASON_BAD_VALUE, "status.code", f"unknown status code {code!r}")
            leftover["otel.status.code"] = code
            status_text = "unset"
        if status.get("message"):
            if status_text == "error" and "error_message" not in fields:
                fields["error_message"] = status["message"]
            else:
                leftover["otel.status.message"] = status["message"]
        for key in _EXTRA_SPAN_KEYS:
            if span.get(key) not in (None, "", 0):
                leftover["otel." + key] = span[key]
        if span.get("links"):
            leftover["otel.links"] = [_decoded_link(link) for link in _as_list(span["links"])]
        if resource_attrs:
            leftover["otel.resource"] = resource_attrs
            if "app_version" not in fields and isinstance(resource_attrs.get("service.version"), str):
                fields["app_version"] = resource_attrs["service.version"]
        if isinstance(scope, dict):
            kept = {k: scope[k] for k in ("name", "version") if scope.get(k)}
            scope_attrs = otlp_attributes_to_dict(scope.get("attributes"))
            if scope_attrs:
                kept["attributes"] = scope_attrs
            if kept:
                leftover["otel.scope"] = kept
        trace_id, span_id = trace_id.lower(), span_id.lower()
        row = {
            **fields,
            "trace_id": trace_id,
            "span_id": span_id,
            "parent_span_id": parent.lower() if isinstance(parent, str) else None,
            "name": name if isinstance(name, str) else None,
            "start_time": start,
            "end_time": end,
            "duration_ms": (end - start) / 1000.0 if start is not None and end is not None else None,
            "status": status_text,
            "attributes": orjson.dumps(leftover, default=str).decode() if leftover else None,
            "source_line": line,
        }
        self.rows.append(row)
        self.add_feedback(feedback, row)

    def nanos_to_micros(self, span: dict, key: str, leftover: dict, line: int, offset: int) -> int | None:
        raw = span.get(key)
        if raw is None or raw == "":
            return None
        try:
            return int(raw) // 1000
        except (TypeError, ValueError):
            self.problem(line, offset, REASON_BAD_VALUE, key, f"not integer nanoseconds: {raw!r} (kept in attributes)")
            leftover["otel." + key] = raw
            return None

    def take_events(self, span: dict, fields: dict, feedback: list, leftover: dict) -> list:
        """Exception events fill the error columns; evaluation events become feedback."""
        kept = []
        for event in _as_list(span.get("events")):
            if not isinstance(event, dict):
                continue
            attrs = otlp_attributes_to_dict(event.get("attributes"))
            name = event.get("name")
            when = event.get("timeUnixNano")
            if name == "gen_ai.evaluation.result":
                score = attrs.get("gen_ai.evaluation.score.value")
                feedback.append({
                    "target_level": "span",
                    "name": attrs.get("gen_ai.evaluation.name"),
                    "value_num": float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
                    "value_label": attrs.get("gen_ai.evaluation.score.label"),
                    "value_text": attrs.get("gen_ai.evaluation.explanation"),
                    "annotator_kind": None,
                    "created_at": _micros_or_none(when),
                })
                continue
            if name == "exception":
                fields.setdefault("error_type", attrs.get("exception.type"))
                if attrs.get("exception.message") is not None:
                    fields.setdefault("error_message", attrs.get("exception.message"))
            kept.append({"name": name, "timeUnixNano": when, "attributes": attrs})
        return kept

    def add_feedback(self, feedback: list[dict], row: dict) -> None:
        for item in feedback:
            level = item["target_level"]
            if level == "span" and row["parent_span_id"] is None:
                level = "trace"  # annotations on the root span describe the whole trace
            target = {"span": row["span_id"], "trace": row["trace_id"], "session": row.get("session_id")}[level]
            if target is None:
                self.problem(row["source_line"], None, REASON_MISSING_FIELD, "session.id",
                             f"session annotation {item.get('name')!r} on a span without session.id")
                continue
            self.feedback.append({
                **item,
                "target_level": level,
                "target_id": target,
                "trace_id": row["trace_id"],
                "created_at": item.get("created_at", row["end_time"]),
            })

    def spans_frame(self) -> pl.DataFrame:
        return spans_from_rows(self.rows, self.source)

    def feedback_frame(self) -> pl.DataFrame:
        return feedback_from_rows(self.feedback, self.source)


def spans_from_rows(rows: list[dict], source: str) -> pl.DataFrame:
    """The spans frame (reader columns only) from row dicts."""
    columns = {c: [row.get(c) for row in rows] for c in SPAN_COLUMNS if c not in ("source_format", "source_file")}
    dtypes = {c: schema.SPANS[c] for c in columns}
    for key in ("start_time", "end_time"):
        dtypes[key] = pl.Int64
    frame = pl.DataFrame(columns, schema=dtypes)
    return frame.with_columns(
        pl.col("start_time").cast(schema.UTC_TIME),
        pl.col("end_time").cast(schema.UTC_TIME),
        pl.lit(FORMAT).alias("source_format"),
        pl.lit(source).alias("source_file"),
    ).select(SPAN_COLUMNS)


def feedback_from_rows(rows: list[dict], source: str) -> pl.DataFrame:
    if not rows:
        return schema.empty(schema.FEEDBACK)
    names = [c for c in schema.FEEDBACK if c not in ("source_format", "source_file", "created_at", "annotator_id")]
    frame = pl.DataFrame({c: [r.get(c) for r in rows] for c in names},
                         schema={c: schema.FEEDBACK[c] for c in names})
    return frame.with_columns(
        pl.Series("created_at", [r.get("created_at") for r in rows], dtype=pl.Int64).cast(schema.UTC_TIME),
        pl.lit(None, dtype=pl.String).alias("annotator_id"),
        pl.lit(FORMAT).alias("source_format"),
        pl.lit(source).alias("source_file"),
    ).select(list(schema.FEEDBACK))


def _as_list(value: object) -> Iterable:
    return value if isinstance(value, list) else ()


def _micros_or_none(value: object) -> int | None:
    try:
        return int(value) // 1000 if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _decoded_link(link: object) -> object:
    if not isinstance(link, dict):
        return link
    return {**link, "attributes": otlp_attributes_to_dict(link.get("attributes"))} if "attributes" in link else link

