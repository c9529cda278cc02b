"""Reader for OpenAI Agents SDK traces and spans (``trace_...`` / ``span_...`` objects).

Shapes accepted (``formats.md`` A.5.6): the objects a ``TracingProcessor``
exports, one per line (JSONL), as a JSON array, or batched as
``{"data": [...]}`` (the ingest payload). A trace object is
``{"object": "trace", "id": "trace_<hex>", "workflow_name", "group_id", "metadata"}``;
a span is ``{"object": "trace.span", "id": "span_<hex>", "trace_id", "parent_id",
"started_at", "ended_at", "span_data": {"type": ...}, "error"}``.

Each trace object becomes a root span (``span_id`` = the trace id, name = the
workflow name) that adopts the spans without a parent, so a trace has one
root; ``group_id`` is the session of every span of the trace. Token usage is
counted once: a ``response`` span that repeats the usage of a sibling
``generation`` span (same parent, same counts) keeps its raw usage in
``attributes`` only.

Example
-------
>>> from workbench.load import openai_agents
>>> result = openai_agents.read("agents_trace.jsonl").conformed()  # doctest: +SKIP
"""

from __future__ import annotations

import re

from workbench.load._base import Problem, ReaderResult
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    ProblemLog,
    as_dict,
    duration_ms,
    feedback_frame,
    first_present,
    int_or_none,
    json_text,
    normalize_id,
    page_items,
    parse_time,
    spans_frame,
    str_or_none,
    text_of,
)

FORMAT = "openai_agents"
READER_VERSION = "1"  # bump when the mapping changes: invalidates cached parses
REASON_NOT_AGENTS = "not an OpenAI Agents trace or span"
SPAN_KINDS = {
    "generation": "llm", "response": "llm", "transcription": "llm", "speech": "llm",
    "function": "tool", "mcp_tools": "tool", "agent": "agent", "handoff": "agent",
    "custom": "chain", "task": "chain", "turn": "chain", "guardrail": "guardrail", "speech_group": "other",
}
_OBJECT = re.compile(rb'"object"\s*:\s*"trace(?:\.span)?"')
_SPAN_KEYS = frozenset({"object", "id", "trace_id", "parent_id", "started_at", "ended_at", "span_data", "error"})
_DATA_COLUMNS = frozenset({"type", "name", "input", "output", "model", "usage"})


def sniff(path: str, head: bytes) -> bool:
    """True for Agents SDK exports: ``"object": "trace(.span)"``, ``span_data`` or ``workflow_name``."""
    if head.lstrip()[:1] not in (b"{", b"["):
        return False
    return bool(_OBJECT.search(head)) or b'"span_data"' in head or b'"workflow_name"' in head


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one Agents SDK export (JSONL, JSON array or ``{"data": [...]}``; ``.gz`` too)."""
    problems: list[Problem] = []
    collector = _Collector(str(path), problems, strict)
    data = read_bytes(path)
    for line, offset, record in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  data=data):
        collector.add_record(record, line, offset)
    return ReaderResult(FORMAT, spans_frame(collector.rows()), feedback_frame([]), problems)


def _usage(usage: dict) -> tuple[int | None, int | None, int | None]:
    tokens_in = int_or_none(first_present(usage.get("input_tokens"), usage.get("prompt_tokens")))
    tokens_out = int_or_none(first_present(usage.get("output_tokens"), usage.get("completion_tokens")))
    tokens_total = int_or_none(usage.get("total_tokens"))
    if tokens_total is None and tokens_in is not None and tokens_out is not None:
        tokens_total = tokens_in + tokens_out
    return tokens_in, tokens_out, tokens_total


def _name(data: dict, span_type: str) -> str:
    if data.get("name"):
        return str(data["name"])
    if span_type == "handoff":
        return f"handoff {data.get('from_agent')} -> {data.get('to_agent')}"
    if span_type == "mcp_tools" and data.get("server"):
        return f"mcp_tools {data['server']}"
    return span_type or "span"


def span_row(span: dict) -> tuple[dict, list[tuple[str, str]]]:
    """One span row from an exported Agents SDK span; returns ``(row, bad)``.

    Raises
    ------
    KeyError
        Naming the missing ``id`` or ``trace_id``.
    """
    span_id, trace_id = normalize_id(span.get("id")), normalize_id(span.get("trace_id"))
    if span_id is None:
        raise KeyError("id")
    if trace_id is None:
        raise KeyError("trace_id")
    data = as_dict(span.get("span_data"))
    span_type = str(data.get("type") or "").lower()
    if span_type == "custom" and isinstance(data.get("data"), dict) and data["data"].get("sdk_span_type"):
        span_type_for_kind = str(data["data"]["sdk_span_type"]).lower()
    else:
        span_type_for_kind = span_type
    bad: list[tuple[str, str]] = []
    times = {}
    for key in ("started_at", "ended_at"):
        try:
            times[key] = parse_time(span.get(key))
        except ValueError as exc:
            bad.append((key, str(exc)))
            times[key] = None
    error = span.get("error")
    error_message = None
    if isinstance(error, dict):
        error_message = str_or_none(error.get("message")) or "error"
    elif error:
        error_message = str(error)
    output = data.get("output")
    if span_type == "mcp_tools":
        output = data.get("result")
    tokens_in, tokens_out, tokens_total = _usage(as_dict(data.get("usage")))
    kept = {k: v for k, v in span.items() if k not in _SPAN_KEYS and v is not None}
    data_kept = {k: v for k, v in data.items() if k not in _DATA_COLUMNS and v is not None
                 and not (span_type == "mcp_tools" and k == "result")}
    if data.get("usage"):
        data_kept["usage"] = data["usage"]
    if isinstance(error, dict) and error.get("data") is not None:
        kept["error_data"] = error["data"]
    if data_kept:
        kept["span_data"] = data_kept
    for key, _ in bad:
        kept[key] = span.get(key)
    row = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": normalize_id(span.get("parent_id")),
        "name": _name(data, span_type),
        "kind": SPAN_KINDS.get(span_type_for_kind, "other"),
        "start_time": times["started_at"],
        "end_time": times["ended_at"],
        "duration_ms": duration_ms(times["started_at"], times["ended_at"]),
        "status": "error" if error_message else ("ok" if times["ended_at"] is not None else "unset"),
        "error_message": error_message,
        "input": text_of(data.get("input")),
        "output": text_of(output),
        "model": str_or_none(data.get("model")),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_total,
        "tags": [],
        "attributes": json_text(kept) if kept else None,
        "_type": span_type,  # internal: read by count_tokens_once, not a column
    }
    return row, bad


def trace_row(trace: dict, children: list[dict]) -> dict:
    """The root span standing for a trace object, spanning its children's times.

    Raises
    ------
    KeyError
        When the trace has no ``id``.
    """
    trace_id = normalize_id(trace.get("id"))
    if trace_id is None:
        raise KeyError("id")
    metadata = as_dict(trace.get("metadata"))
    starts = [c["start_time"] for c in children if c["start_time"] is not None]
    ends = [c["end_time"] for c in children if c["end_time"] is not None]
    start, end = (min(starts) if starts else None), (max(ends) if ends else None)
    kept = {k: v for k, v in trace.items() if k not in ("object", "id", "workflow_name", "group_id") and v is not None}
    kept["synthetic"] = "root span standing for the Agents SDK trace object"
    return {
        "trace_id": trace_id,
        "span_id": trace_id,
        "parent_span_id": None,
        "session_id": str_or_none(trace.get("group_id")),
        "user_id": str_or_none(first_present(metadata.get("user_id"), metadata.get("user"))),
        "name": str_or_none(trace.get("workflow_name")) or "trace",
        "kind": "chain",
        "start_time": start,
        "end_time": end,
        "duration_ms": duration_ms(start, end),
        "status": "unset",  # the SDK records no trace status; the rollup derives it from the spans
        "prompt_version": str_or_none(metadata.get("prompt_version")),
        "app_version": str_or_none(first_present(metadata.get("app_version"), metadata.get("version"))),
        "tags": [],
        "attributes": json_text(kept),
    }


def count_tokens_once(rows: list[dict]) -> None:
    """Null the token columns of a ``response`` span repeating a sibling ``generation``'s usage (in place)."""
    generations = {}
    for row in rows:
        if row.get("_type") == "generation" and row["tokens_in"] is not None:
            generations[(row["trace_id"], row["parent_span_id"], row["tokens_in"], row["tokens_out"])] = row
    for row in rows:
        if row.get("_type") != "response" or row["tokens_in"] is None:
            continue
        twin = generations.get((row["trace_id"], row["parent_span_id"], row["tokens_in"], row["tokens_out"]))
        if twin is not None:
            row["tokens_in"] = row["tokens_out"] = row["tokens_total"] = None
            note = json_text({"tokens_counted_on": twin["span_id"]})
            row["attributes"] = note if row["attributes"] is None else row["attributes"][:-1] + "," + note[1:]


class _Collector(ProblemLog):
    """Trace objects and spans found in one file."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.traces: dict[str, tuple[dict, int]] = {}
        self.spans: list[dict] = []

    def add_record(self, record: object, line: int, offset: int) -> None:
        for item, where in page_items(record, not_a_page_key="object"):
            self.add_item(item, line, offset, where)

    def add_item(self, item: object, line: int, offset: int, where: str) -> None:
        if not isinstance(item, dict):
            self.problem(line, offset, REASON_NOT_AGENTS, None, where + f"a JSON {type(item).__name__}")
            return
        kind = item.get("object")
        if kind == "trace.span" or (kind is None and "span_data" in item):
            try:
                row, bad = span_row(item)
            except KeyError as exc:
                self.problem(line, offset, REASON_MISSING_FIELD, exc.args[0], where + f"span without {exc.args[0]}",
                             item)
                return
            for field, reason in bad:
                self.problem(line, offset, REASON_BAD_VALUE, field, where + f"span {row['span_id']}: {reason} "
                             "(kept in attributes)")
            row.update(source_format=FORMAT, source_file=self.source, source_line=line)
            self.spans.append(row)
        elif kind == "trace" or (kind is None and "workflow_name" in item):
            trace_id = normalize_id(item.get("id"))
            if trace_id is None:
                self.problem(line, offset, REASON_MISSING_FIELD, "id", where + "trace without an id", item)
            else:
                self.traces.setdefault(trace_id, (item, line))
        else:
            self.problem(line, offset, REASON_NOT_AGENTS, "object", where + f"object {kind!r}", item)

    def rows(self) -> list[dict]:
        rows = list(self.spans)
        count_tokens_once(rows)
        by_trace: dict[str, list[dict]] = {}
        for row in rows:
            by_trace.setdefault(row["trace_id"], []).append(row)
        for trace_id, (trace, line) in self.traces.items():
            children = by_trace.get(trace_id, [])
            root = trace_row(trace, children)
            root.update(source_format=FORMAT, source_file=self.source, source_line=line)
            for child in children:
                if child["parent_span_id"] is None:
                    child["parent_span_id"] = trace_id
                child["session_id"] = child.get("session_id") or root["session_id"]
            rows.append(root)
        return rows
