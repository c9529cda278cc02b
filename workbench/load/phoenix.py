"""Reader for Arize Phoenix span exports: the spans dataframe as JSONL/JSON or Parquet, and REST span JSON.

Shapes accepted (``formats.md`` A.5.3):

* rows of ``Client().spans.get_spans_dataframe(...)`` written with
  ``to_json(orient="records", lines=True)`` (or a JSON array) or ``to_parquet``
  (also Phoenix's persisted ``TraceDataset`` parquet): columns ``context.trace_id``,
  ``context.span_id`` (or the index), ``parent_id``, ``name``, ``span_kind``,
  ``start_time``, ``end_time``, ``status_code``, ``status_message``, ``events``,
  ``attributes.<key>``;
* Phoenix REST span objects ``{"context": {"trace_id", "span_id"}, "attributes": {...}, ...}``,
  alone, per line, or in ``{"data": [...]}`` pages.

Attributes may be flattened into ``attributes.*`` columns (flattening stops at
OpenInference prefixes, so ``attributes.llm.input_messages`` is a list of
``{"message.role": ...}`` dicts) or nested under one ``attributes`` object;
both are brought back to OpenInference's flat keys and mapped by
``workbench.load._attrs``. Times may be datetimes, ISO strings or epoch
numbers (pandas writes epoch milliseconds). Inline ``annotations.*`` /
``evaluations.*`` become feedback.

Example
-------
>>> from workbench.load import phoenix
>>> result = phoenix.read("spans.parquet").conformed()  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator

from workbench.load._attrs import span_fields_from_attributes
from workbench.load._base import Problem, ReaderResult
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    REASON_TYPE_DRIFT,
    ProblemLog,
    as_dict,
    decode_json,
    duration_ms,
    feedback_frame,
    fill_missing,
    first_present,
    inline_feedback,
    json_text,
    normalize_id,
    page_items,
    parse_time,
    spans_frame,
    str_or_none,
)

FORMAT = "phoenix"
READER_VERSION = "1"  # bump when the mapping changes: invalidates cached parses
REASON_NOT_PHOENIX = "not a Phoenix span"
STATUS = {"OK": "ok", "ERROR": "error", "UNSET": "unset"}
# OpenInference keys whose values are lists of objects, re-flattened to "key.N.sub.key"
_LIST_PREFIXES = ("llm.input_messages", "llm.output_messages", "llm.tools", "retrieval.documents",
                  "reranker.input_documents", "reranker.output_documents", "embedding.embeddings",
                  "annotations", "evaluations", "trace.annotations", "session.annotations")
# nested attribute objects that are values, not namespaces
_LEAF_OBJECTS = frozenset({"metadata", "llm.invocation_parameters", "llm.prompt_template.variables",
                           "tool.parameters"})
_COLUMNS = frozenset({"context.trace_id", "context.span_id", "context", "parent_id", "name", "span_kind",
                      "start_time", "end_time", "status_code", "status_message", "events", "attributes",
                      "span_id", "trace_id"})
_JSON_MARKERS = (b'"context.trace_id"', b'"context.span_id"')


def sniff(path: str, head: bytes) -> bool:
    """True for Phoenix span JSON/JSONL (``context.trace_id`` columns or REST spans) or a Phoenix Parquet."""
    if head.startswith(b"PAR1"):
        return _parquet_columns_look_like_phoenix(path)
    if head.lstrip()[:1] not in (b"{", b"["):
        return False
    return any(m in head for m in _JSON_MARKERS) or (b'"span_kind"' in head and b'"context"' in head)


def _parquet_columns_look_like_phoenix(path: str) -> bool:
    import pyarrow.parquet as pq

    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError):
        return False
    return "context.trace_id" in names and ("span_kind" in names or "context.span_id" in names)


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one Phoenix spans file (JSONL, JSON, Parquet; JSON may be ``.gz``) into spans and feedback."""
    problems: list[Problem] = []
    builder = _Builder(str(path), problems, strict)
    with open(path, "rb") as handle:
        is_parquet = handle.read(4) == b"PAR1"
    for line, offset, item, where in (_parquet_rows(path) if is_parquet else _json_rows(path, problems, strict)):
        builder.add_row(item, line, offset, where)
    return ReaderResult(FORMAT, spans_frame(builder.rows), feedback_frame(builder.feedback), problems)


def _json_rows(path: str, problems: list[Problem], strict: bool) -> Iterator[tuple[int, int | None, object, str]]:
    data = read_bytes(path)
    for line, offset, record in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  data=data):
        for item, where in page_items(record, not_a_page_key="context"):
            yield line, offset, item, where


def _parquet_rows(path: str) -> Iterator[tuple[int, int | None, object, str]]:
    import polars as pl

    frame = pl.read_parquet(path)
    if "context.span_id" not in frame.columns and "__index_level_0__" in frame.columns:
        frame = frame.rename({"__index_level_0__": "context.span_id"})
    for index, row in enumerate(frame.iter_rows(named=True), start=1):
        yield index, None, row, f"row {index}: "


def _flatten(prefix: str, value: object, out: dict) -> None:
    """Nested attribute objects -> dotted keys; lists of objects under OpenInference prefixes -> indexed keys."""
    if value is None:
        return
    if isinstance(value, dict) and prefix not in _LEAF_OBJECTS:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif (isinstance(value, list) and value and all(isinstance(v, dict) for v in value)
          and (prefix.startswith(_LIST_PREFIXES) or ".message." in prefix or prefix.endswith(".contents"))):
        for index, item in enumerate(value):
            _flatten(f"{prefix}.{index}", item, out)
    else:
        out[prefix] = value


def attributes_of(row: dict) -> dict:
    """The span's OpenInference attributes in flat form, from ``attributes.*`` columns and/or an object."""
    flat: dict = {}
    nested = decode_json(row.get("attributes"))
    if isinstance(nested, dict):
        _flatten("", nested, flat)
    for key, value in row.items():
        if key.startswith("attributes."):
            _flatten(key[len("attributes."):], value, flat)
    return flat


def span_row(row: dict) -> tuple[dict, dict]:
    """One span row from a Phoenix dataframe row or REST span; returns ``(row, extras)``.

    Raises
    ------
    KeyError
        Naming ``context.trace_id`` or ``context.span_id`` when missing.
    """
    context = as_dict(row.get("context"))
    trace_id = normalize_id(first_present(row.get("context.trace_id"), context.get("trace_id"), row.get("trace_id")))
    span_id = normalize_id(first_present(row.get("context.span_id"), context.get("span_id"), row.get("span_id")))
    if trace_id is None:
        raise KeyError("context.trace_id")
    if span_id is None:
        raise KeyError("context.span_id")
    attrs = attributes_of(row)
    if row.get("span_kind") and "openinference.span.kind" not in attrs:
        attrs["openinference.span.kind"] = row["span_kind"]
    name = str_or_none(row.get("name"))
    fields = span_fields_from_attributes(attrs, name=name)
    bad: list[tuple[str, str]] = []
    times = {}
    for key in ("start_time", "end_time"):
        try:
            times[key] = parse_time(row.get(key))
        except ValueError as exc:
            bad.append((key, str(exc)))
            times[key] = None
    status = STATUS.get(str(row.get("status_code") or "UNSET").upper().replace("STATUS_CODE_", ""), "unset")
    message = str_or_none(row.get("status_message"))
    events = [e for e in decode_json(row.get("events")) or [] if isinstance(e, dict)]
    error_type = error_message = None
    for event in events:
        if event.get("name") == "exception":
            event_attrs = as_dict(event.get("attributes"))
            error_type = error_type or str_or_none(event_attrs.get("exception.type"))
            error_message = error_message or str_or_none(event_attrs.get("exception.message"))
    leftover = dict(fields["attributes"])
    extra_columns = {k: v for k, v in row.items()
                     if k not in _COLUMNS and not k.startswith("attributes.") and v is not None}
    if extra_columns:
        leftover["phoenix.columns"] = extra_columns
    if events:
        leftover["events"] = events
    if message and status != "error":
        leftover["status_message"] = message
    for key, _ in bad:
        leftover[key] = row.get(key)
    out = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": normalize_id(row.get("parent_id")),
        "name": name,
        "kind": fields["kind"],
        "start_time": times["start_time"],
        "end_time": times["end_time"],
        "duration_ms": duration_ms(times["start_time"], times["end_time"]),
        "status": status,
        "error_type": error_type,
        "error_message": first_present(message if status == "error" else None, error_message),
        "tags": [],
    }
    fill_missing(out, fields)
    out["attributes"] = json_text(leftover) if leftover else None
    return out, {"feedback": fields["feedback"], "drift": fields["drift"], "bad": bad}


class _Builder(ProblemLog):
    """Span and feedback rows of one Phoenix file."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.rows: list[dict] = []
        self.feedback: list[dict] = []

    def add_row(self, item: object, line: int, offset: int | None, where: str) -> None:
        if not isinstance(item, dict):
            self.problem(line, offset, REASON_NOT_PHOENIX, None, where + f"a JSON {type(item).__name__}")
            return
        try:
            row, extras = span_row(item)
        except KeyError as exc:
            self.problem(line, offset, REASON_MISSING_FIELD, exc.args[0], where + f"span without {exc.args[0]}", item)
            return
        for field, reason in extras["bad"]:
            self.problem(line, offset, REASON_BAD_VALUE, field, where + f"span {row['span_id']}: {reason} "
                         "(kept in attributes)")
        for key, detail in extras["drift"]:
            self.problem(line, offset, REASON_TYPE_DRIFT, key, where + f"span {row['span_id']}: {detail}")
        row.update(source_format=FORMAT, source_file=self.source, source_line=line)
        self.rows.append(row)
        feedback, homeless = inline_feedback(extras["feedback"], row)
        for name in homeless:
            self.problem(line, offset, REASON_MISSING_FIELD, "session.id",
                         where + f"session annotation {name!r} on a span without session.id")
        self.feedback.extend({**entry, "source_format": FORMAT, "source_file": self.source} for entry in feedback)
