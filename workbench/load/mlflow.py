"""Reader for MLflow Trace JSON (``{"info": TraceInfo, "data": {"spans": [...]}}``).

Shapes accepted (``formats.md`` A.1 table 1, A.5.7): one trace per file or
per line (JSONL), a JSON array of traces, or ``{"traces": [...]}``. Trace ids
are kept as MLflow writes them: v3 ``tr-<hex>`` and v4
``trace:/<location>/<hex>``. Span dicts of every schema load: v4 (hex ids,
``status.code`` "OK"), v3 (base64 ids, ``STATUS_CODE_OK``) and MLflow 2.x
(``context.span_id``, ``parent_id``, ``status_code``). Span attribute values
are JSON-encoded by MLflow and are decoded once; ``mlflow.spanInputs`` /
``mlflow.spanOutputs`` become input/output, ``mlflow.chat.tokenUsage`` the
tokens, ``mlflow.llm.cost`` the cost, other OTel attributes map through
``workbench.load._attrs``. Feedback assessments become feedback rows;
expectations (ground truth) and overridden (``valid: false``) assessments
stay in the root span's attributes.

Example
-------
>>> from workbench.load import mlflow
>>> result = mlflow.read("trace.json").conformed()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import re

import orjson

from workbench.load._attrs import kind_from, span_fields_from_attributes
from workbench.load._base import Problem, ReaderResult
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    REASON_TYPE_DRIFT,
    ProblemLog,
    as_dict,
    build_feedback_row,
    duration_ms,
    feedback_frame,
    fill_missing,
    first_present,
    float_or_none,
    inline_feedback,
    int_or_none,
    json_text,
    normalize_id,
    parse_time,
    spans_frame,
    str_or_none,
    text_of,
)

FORMAT = "mlflow"
READER_VERSION = "1"  # bump when the mapping changes: invalidates cached parses
REASON_NOT_MLFLOW = "not an MLflow trace"
SPAN_TYPES = {
    "LLM": "llm", "CHAT_MODEL": "llm", "CHAIN": "chain", "PARSER": "chain", "AGENT": "agent", "TOOL": "tool",
    "RETRIEVER": "retriever", "MEMORY": "retriever", "EMBEDDING": "embedding", "RERANKER": "reranker",
    "UNKNOWN": "other",
}
STATUS = {"OK": "ok", "STATUS_CODE_OK": "ok", "1": "ok", "ERROR": "error", "STATUS_CODE_ERROR": "error",
          "2": "error", "UNSET": "unset", "STATUS_CODE_UNSET": "unset", "0": "unset"}
SOURCE_KINDS = {"HUMAN": "human", "LLM_JUDGE": "llm", "AI_JUDGE": "llm", "CODE": "code"}
_HEX = re.compile(r"[0-9a-fA-F]+")
_HEAD = re.compile(rb'^\s*\[?\s*\{\s*"(?:info|traces)"\s*:')
_MARKERS = (b'"mlflow.spanType"', b'"mlflow.traceRequestId"', b'"trace_location"', b'"request_metadata"')
_MAPPED_ATTRS = ("mlflow.spanType", "mlflow.spanInputs", "mlflow.spanOutputs", "mlflow.chat.tokenUsage",
                 "mlflow.llm.cost", "mlflow.llm.model", "mlflow.llm.provider", "mlflow.traceRequestId",
                 "mlflow.linkedPrompts")


def sniff(path: str, head: bytes) -> bool:
    """True for MLflow Trace JSON: an ``info`` object first, or MLflow's reserved attribute keys."""
    if head.lstrip()[:1] not in (b"{", b"["):
        return False
    return bool(_HEAD.match(head)) or any(marker in head for marker in _MARKERS)


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one MLflow trace file (JSON, JSONL, array; ``.gz`` too) into spans and feedback."""
    problems: list[Problem] = []
    builder = _Builder(str(path), problems, strict)
    data = read_bytes(path)
    for line, offset, record in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  data=data):
        if isinstance(record, dict) and isinstance(record.get("traces"), list) and "info" not in record:
            record = record["traces"]
        items = record if isinstance(record, list) else [record]
        for index, item in enumerate(items):
            builder.add_trace(item, line, offset, f"item {index}: " if isinstance(record, list) else "")
    return ReaderResult(FORMAT, spans_frame(builder.rows), feedback_frame(builder.feedback), problems)


def decode_span_id(value: object, n_bytes: int) -> str | None:
    """A span/trace id as lower-case hex: hex (``0x`` prefix allowed) or base64 of ``n_bytes`` bytes.

    >>> decode_span_id("AAAAAAAAAAE=", 8), decode_span_id("0x00000000000000FF", 8)
    ('0000000000000001', '00000000000000ff')
    """
    if not isinstance(value, str) or not value:
        return normalize_id(value)
    text = value[2:] if value[:2] in ("0x", "0X") else value
    if _HEX.fullmatch(text) and len(text) == 2 * n_bytes:
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return normalize_id(value)
    return raw.hex() if len(raw) == n_bytes else normalize_id(value)


def decode_attributes(attrs: object) -> dict:
    """MLflow span attributes with each JSON-encoded value decoded once (undecodable text kept)."""
    out = {}
    for key, value in as_dict(attrs).items():
        if isinstance(value, str):
            with contextlib.suppress(orjson.JSONDecodeError):
                value = orjson.loads(value)
        out[key] = value
    return out


def _linked_prompt(value: object) -> tuple[str | None, str | None]:
    prompts = value
    if isinstance(prompts, str):
        try:
            prompts = orjson.loads(prompts)
        except orjson.JSONDecodeError:
            return None, None
    if isinstance(prompts, list) and prompts and isinstance(prompts[0], dict):
        first = prompts[0]
        return str_or_none(first.get("name")), str_or_none(first.get("version"))
    return None, None


def span_row(span: dict, trace: dict) -> tuple[dict, dict]:
    """One span row from an MLflow span dict; ``trace`` holds the trace-level fields.

    Returns ``(row, extras)`` with ``feedback`` (inline OpenInference
    annotations), ``drift`` and ``bad`` as in the other readers.

    Raises
    ------
    KeyError
        Naming ``span_id`` when the span has none.
    """
    context = as_dict(span.get("context"))
    span_id = decode_span_id(first_present(span.get("span_id"), context.get("span_id")), 8)
    if span_id is None:
        raise KeyError("span_id")
    attrs = decode_attributes(span.get("attributes"))
    name = str_or_none(span.get("name"))
    span_type = str(first_present(attrs.get("mlflow.spanType"), span.get("span_type")) or "").upper()
    rest = {k: v for k, v in attrs.items() if k not in _MAPPED_ATTRS}
    fields = span_fields_from_attributes(rest, name=name)
    kind = SPAN_TYPES.get(span_type) or kind_from(rest, name)
    bad: list[tuple[str, str]] = []
    times = {}
    for column, keys in (("start", ("start_time_unix_nano", "start_time")), ("end", ("end_time_unix_nano", "end_time"))):
        raw = first_present(*(span.get(k) for k in keys))
        try:
            times[column] = parse_time(int(raw) if isinstance(raw, str) and raw.isdigit() else raw)
        except ValueError as exc:
            bad.append((keys[0], str(exc)))
            times[column] = None
    status_obj = as_dict(span.get("status"))
    code = first_present(status_obj.get("code"), span.get("status_code"))
    status = STATUS.get(str(code).upper() if code is not None else "UNSET", "unset")
    message = str_or_none(first_present(status_obj.get("message"), span.get("status_message")))
    events = [e for e in span.get("events") or [] if isinstance(e, dict)]
    error_type = error_message = None
    for event in events:
        if event.get("name") == "exception":
            event_attrs = as_dict(event.get("attributes"))
            error_type = error_type or str_or_none(event_attrs.get("exception.type"))
            error_message = error_message or str_or_none(event_attrs.get("exception.message"))
    usage = as_dict(attrs.get("mlflow.chat.tokenUsage"))
    cost = as_dict(attrs.get("mlflow.llm.cost"))
    cost_usd = float_or_none(cost.get("total_cost"))
    if cost_usd is None and cost.get("input_cost") is not None and cost.get("output_cost") is not None:
        cost_usd = (float_or_none(cost["input_cost"]) or 0.0) + (float_or_none(cost["output_cost"]) or 0.0)
    prompt_name, prompt_version = _linked_prompt(first_present(attrs.get("mlflow.linkedPrompts"),
                                                               trace["linked_prompts"]))
    tokens_in, tokens_out = int_or_none(usage.get("input_tokens")), int_or_none(usage.get("output_tokens"))
    tokens_total = int_or_none(usage.get("total_tokens"))
    if tokens_total is None and tokens_in is not None and tokens_out is not None:
        tokens_total = tokens_in + tokens_out
    leftover = dict(fields["attributes"])
    if events:
        leftover["events"] = events
    if message and status != "error":
        leftover["status_message"] = message
    for key, _ in bad:
        leftover[key] = first_present(span.get(key), span.get(key.replace("_unix_nano", "")))
    mlflow_ids = (trace["trace_id"], normalize_id(attrs.get("mlflow.traceRequestId")))
    own = span.get("trace_id")
    otel_trace = first_present(span.get("otel_trace_id"), context.get("trace_id"),
                               None if normalize_id(own) in mlflow_ids else own)
    if otel_trace is not None:
        leftover["otel_trace_id"] = decode_span_id(otel_trace, 16)
    parent = first_present(span.get("parent_span_id"), span.get("parent_id"))
    row = {
        "trace_id": trace["trace_id"] or normalize_id(attrs.get("mlflow.traceRequestId"))
        or leftover.get("otel_trace_id"),
        "span_id": span_id,
        "parent_span_id": decode_span_id(parent, 8) if parent else None,
        "session_id": trace["session_id"],
        "user_id": trace["user_id"],
        "name": name,
        "kind": kind,
        "start_time": times["start"],
        "end_time": times["end"],
        "duration_ms": duration_ms(times["start"], times["end"]),
        "status": status,
        "error_type": error_type,
        "error_message": first_present(message if status == "error" else None, error_message),
        "input": text_of(attrs.get("mlflow.spanInputs")),
        "output": text_of(attrs.get("mlflow.spanOutputs")),
        "model": str_or_none(attrs.get("mlflow.llm.model")),
        "provider": str_or_none(attrs.get("mlflow.llm.provider")),
        "prompt_name": prompt_name,
        "prompt_version": prompt_version,
        "app_version": trace["app_version"],
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_total,
        "cost_usd": cost_usd,
        "tags": [],
        "attributes": json_text(leftover) if leftover else None,
    }
    unused = fill_missing(row, fields)
    if unused:  # attribute values that lost to MLflow's own fields stay visible
        leftover["unused_attribute_values"] = unused
        row["attributes"] = json_text(leftover)
    return row, {"feedback": fields["feedback"], "drift": fields["drift"], "bad": bad}


def trace_fields(info: dict) -> dict:
    """Trace-level values every span of the trace shares (ids, session, user, version, tags)."""
    metadata = {**as_dict(info.get("request_metadata")), **as_dict(info.get("trace_metadata"))}
    tags = as_dict(info.get("tags"))
    return {
        "trace_id": normalize_id(first_present(info.get("trace_id"), info.get("request_id"))),
        "session_id": str_or_none(metadata.get("mlflow.trace.session")),
        "user_id": str_or_none(metadata.get("mlflow.trace.user")),
        "app_version": str_or_none(metadata.get("mlflow.modelId")),
        "linked_prompts": first_present(tags.get("mlflow.linkedPrompts"), metadata.get("mlflow.linkedPrompts")),
        "tags": [f"{k}={v}" for k, v in tags.items() if not k.startswith("mlflow.")],
        "state": str(first_present(info.get("state"), info.get("status")) or "").upper(),
    }


def assessment_row(item: dict, trace_id: str | None) -> dict | None:
    """One feedback row from an MLflow feedback assessment; ``None`` for expectations / overridden ones.

    Raises
    ------
    KeyError
        Naming ``assessment_name`` when the assessment has no name.
    """
    if item.get("valid") is False or item.get("feedback") is None and item.get("expectation") is not None:
        return None
    name = str_or_none(first_present(item.get("assessment_name"), item.get("name")))
    if name is None:
        raise KeyError("assessment_name")
    feedback = as_dict(item.get("feedback"))
    value = feedback.get("value")
    value_num = value_label = value_text = None
    if isinstance(value, bool):
        value_num, value_label = float(value), str(value).lower()
    elif isinstance(value, int | float):
        value_num = float(value)
    elif isinstance(value, str):
        value_label = value
    elif value is not None:
        value_text = json_text(value)
    error = as_dict(feedback.get("error")) or as_dict(item.get("error"))
    value_text = value_text or str_or_none(item.get("rationale")) or str_or_none(error.get("error_message"))
    source = as_dict(item.get("source"))
    span_id = decode_span_id(item.get("span_id"), 8) if item.get("span_id") else None
    created = item.get("create_time")
    if created is None and item.get("create_time_ms") is not None:
        created = int(item["create_time_ms"]) / 1000.0
    return build_feedback_row(
        name, target_level="span" if span_id else "trace", target_id=span_id or trace_id, trace_id=trace_id,
        value_num=value_num, value_label=value_label, value_text=value_text,
        annotator_kind=SOURCE_KINDS.get(str(source.get("source_type") or "").upper()),
        annotator_id=str_or_none(source.get("source_id")),
        created_at=parse_time(created),
        source_format=FORMAT,
    )


class _Builder(ProblemLog):
    """Span and feedback rows of the traces found in one file."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.rows: list[dict] = []
        self.feedback: list[dict] = []

    def add_trace(self, item: object, line: int, offset: int, where: str) -> None:
        if not isinstance(item, dict) or not isinstance(item.get("info"), dict):
            self.problem(line, offset, REASON_NOT_MLFLOW, "info", where + "expected {\"info\": ..., \"data\": ...}",
                         item)
            return
        info = item["info"]
        trace = trace_fields(info)
        spans = as_dict(item.get("data")).get("spans")
        if not isinstance(spans, list):
            self.problem(line, offset, REASON_MISSING_FIELD, "data.spans", where + "trace without a span list", info)
            return
        rows = []
        for index, span in enumerate(spans):
            if not isinstance(span, dict):
                self.problem(line, offset, REASON_NOT_MLFLOW, "data.spans", where + f"span {index} is not an object")
                continue
            try:
                row, extras = span_row(span, trace)
            except KeyError as exc:
                self.problem(line, offset, REASON_MISSING_FIELD, exc.args[0],
                             where + f"span {index} ({span.get('name')!r}) has no {exc.args[0]}", span)
                continue
            for field, reason in extras["bad"]:
                self.problem(line, offset, REASON_BAD_VALUE, field, where + f"span {row['span_id']}: {reason} "
                             "(kept in attributes)")
            for key, detail in extras["drift"]:
                self.problem(line, offset, REASON_TYPE_DRIFT, key, where + f"span {row['span_id']}: {detail}")
            row.update(source_format=FORMAT, source_file=self.source, source_line=line)
            rows.append(row)
            feedback, homeless = inline_feedback(extras["feedback"], row)
            for name in homeless:
                self.problem(line, offset, REASON_MISSING_FIELD, "session.id",
                             where + f"session annotation {name!r} on a span without a session")
            self.feedback.extend({**entry, "source_format": FORMAT, "source_file": self.source} for entry in feedback)
        if trace["trace_id"] is None and rows:
            trace["trace_id"] = rows[0]["trace_id"]
        self.attach_trace_info(info, trace, rows)
        self.rows.extend(rows)
        for assessment in info.get("assessments") or []:
            if not isinstance(assessment, dict):
                continue
            try:
                row = assessment_row(assessment, trace["trace_id"])
            except KeyError as exc:
                self.problem(line, offset, REASON_MISSING_FIELD, exc.args[0], where + "assessment without a name",
                             assessment)
                continue
            except ValueError as exc:
                self.problem(line, offset, REASON_BAD_VALUE, "create_time", where + str(exc), assessment)
                continue
            if row is not None:
                self.feedback.append({**row, "source_file": self.source})

    def attach_trace_info(self, info: dict, trace: dict, rows: list[dict]) -> None:
        """Root spans carry the trace's tags, its info (minus feedback) and its state."""
        kept = {k: v for k, v in info.items() if v is not None and k != "assessments"}
        others = [a for a in info.get("assessments") or []
                  if isinstance(a, dict) and (a.get("valid") is False or a.get("feedback") is None)]
        if others:
            kept["assessments_not_feedback"] = others
        for row in rows:
            if row["parent_span_id"] is not None:
                continue
            row["tags"] = trace["tags"]
            attrs = orjson.loads(row["attributes"]) if row["attributes"] else {}
            attrs["mlflow.trace_info"] = kept
            row["attributes"] = json_text(attrs)
            if row["status"] == "unset" and trace["state"] in ("OK", "ERROR"):
                row["status"] = trace["state"].lower()
