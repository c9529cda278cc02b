"""Reader for LangSmith runs: run lists, JSONL and ``{"post": [...], "patch": [...]}`` ingest payloads.

Shapes accepted (``formats.md`` A.1 table 2, A.5.5):

* a JSON list of runs or one run per line (``Client.list_runs`` dicts), with
  nested ``child_runs`` flattened;
* the run-ingest payload ``{"post": [run...], "patch": [run...]}``: each patch
  updates the posted run with the same id (outputs, end time, error, ...);
* feedback objects (``key``, ``score``, ``run_id``) anywhere in the file.

Parents come from ``parent_run_id`` and, when it is missing, from
``dotted_order`` (``<time>Z<run id>`` segments, root first), which also gives
the trace id. The session is ``extra.metadata.session_id | thread_id |
conversation_id``, never ``Run.session_id`` (that is the LangSmith project).

Example
-------
>>> from workbench.load import langsmith
>>> result = langsmith.read("runs.jsonl").conformed()  # doctest: +SKIP
>>> result.spans.select("name", "kind", "model", "tokens_total")  # doctest: +SKIP
"""

from __future__ import annotations

import re

from workbench.load._attrs import kind_from
from workbench.load._base import Problem, ReaderResult
from workbench.load._records import iter_json_records, read_bytes
from workbench.load._vendor import (
    REASON_BAD_VALUE,
    REASON_MISSING_FIELD,
    ProblemLog,
    as_dict,
    build_feedback_row,
    duration_ms,
    feedback_frame,
    first_present,
    float_or_none,
    int_or_none,
    json_text,
    normalize_id,
    page_items,
    parse_time,
    spans_frame,
    str_or_none,
    tag_list,
    text_of,
)

FORMAT = "langsmith"
READER_VERSION = "1"  # bump when the mapping changes: invalidates cached parses
REASON_NOT_LANGSMITH = "not a LangSmith run or feedback"
RUN_TYPE_KINDS = {"llm": "llm", "chain": "chain", "tool": "tool", "retriever": "retriever",
                  "embedding": "embedding", "prompt": "prompt", "parser": "chain"}
STATUS = {"success": "ok", "error": "error", "pending": "unset"}
FEEDBACK_SOURCES = {"api": "api", "model": "llm", "app": "human", "human": "human", "code": "code"}
SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
_DOTTED_SEGMENT = re.compile(r"^(\d{8}T\d{6}\d*Z)(.+)$")
_ERROR_TYPE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Timeout))\b")
_RUN_MARKERS = (b'"run_type"', b'"dotted_order"', b'"parent_run_id"', b'"feedback_source"')
_INGEST_START = re.compile(rb'^\s*\{\s*"(?:post|patch)"\s*:\s*\[')
_RUN_COLUMNS = frozenset({"id", "name", "run_type", "start_time", "end_time", "inputs", "outputs", "error",
                          "parent_run_id", "trace_id", "tags", "status", "child_runs"})


def sniff(path: str, head: bytes) -> bool:
    """True for LangSmith run JSON/JSONL (snake_case run keys) or an ingest payload."""
    if head.lstrip()[:1] not in (b"{", b"["):
        return False
    return bool(_INGEST_START.match(head)) or any(marker in head for marker in _RUN_MARKERS)


def read(path: str, *, strict: bool = False) -> ReaderResult:
    """Read one LangSmith runs file (JSON, JSONL, ingest payload; ``.gz`` too).

    Bad records become problems naming file, line and field (``strict``
    raises instead); every good run still loads.
    """
    problems: list[Problem] = []
    collector = _Collector(str(path), problems, strict)
    data = read_bytes(path)
    for line, offset, record in iter_json_records(path, strict=strict, problems=problems, objects_only=False,
                                                  data=data):
        collector.add_record(record, line, offset)
    rows = collector.span_rows()
    feedback = collector.feedback_rows({row["span_id"]: row["trace_id"] for row in rows})
    return ReaderResult(FORMAT, spans_frame(rows), feedback_frame(feedback), problems)


def parse_dotted_order(dotted: str) -> list[tuple[str, str]]:
    """``[(time_text, run_id), ...]`` from a ``dotted_order``, root first.

    >>> parse_dotted_order("20241011T205823298773Zd0d8.20241011T205823300000Ze1f2")
    [('20241011T205823298773Z', 'd0d8'), ('20241011T205823300000Z', 'e1f2')]
    """
    parts = []
    for segment in dotted.split("."):
        match = _DOTTED_SEGMENT.match(segment)
        if not match:
            raise ValueError(f"not a dotted_order segment: {segment[:60]!r}")
        parts.append((match.group(1), match.group(2)))
    return parts


def merge_patch(post: dict, patch: dict) -> dict:
    """The posted run updated by a patch: present patch values win; ``extra.metadata`` merges."""
    merged = dict(post)
    for key, value in patch.items():
        if value is None or (value in ({}, []) and merged.get(key)):
            continue
        if key == "extra" and isinstance(value, dict) and isinstance(merged.get(key), dict):
            extra = {**merged[key], **value}
            metadata = {**as_dict(merged[key].get("metadata")), **as_dict(value.get("metadata"))}
            if metadata:
                extra["metadata"] = metadata
            merged[key] = extra
        else:
            merged[key] = value
    return merged


def _tokens(run: dict, kind: str) -> tuple[int | None, int | None, int | None]:
    outputs = as_dict(run.get("outputs"))
    usage = as_dict(outputs.get("usage_metadata"))
    if usage:
        return (int_or_none(usage.get("input_tokens")), int_or_none(usage.get("output_tokens")),
                int_or_none(usage.get("total_tokens")))
    flat = [int_or_none(run.get(k)) for k in ("prompt_tokens", "completion_tokens", "total_tokens")]
    if any(v is not None for v in flat) and (kind == "llm" or any(flat)):
        return flat[0], flat[1], flat[2]
    token_usage = as_dict(as_dict(outputs.get("llm_output")).get("token_usage"))
    if token_usage:
        return (int_or_none(token_usage.get("prompt_tokens")), int_or_none(token_usage.get("completion_tokens")),
                int_or_none(token_usage.get("total_tokens")))
    return None, None, None


def run_row(run: dict) -> tuple[dict, list[tuple[str, str]]]:
    """One span row from a LangSmith run; ``trace_id`` may still be ``None`` (resolved by the caller).

    Returns ``(row, bad)`` where ``bad`` lists ``(field, reason)`` of values
    that could not be read (they stay in ``attributes``).

    Raises
    ------
    KeyError
        When the run has no ``id`` (the message names the field).
    """
    span_id = normalize_id(run.get("id"))
    if span_id is None:
        raise KeyError("id")
    bad: list[tuple[str, str]] = []
    dotted: list[tuple[str, str]] = []
    if isinstance(run.get("dotted_order"), str) and run["dotted_order"]:
        try:
            dotted = parse_dotted_order(run["dotted_order"])
        except ValueError as exc:
            bad.append(("dotted_order", str(exc)))
    parent = normalize_id(run.get("parent_run_id"))
    if parent is None and len(dotted) > 1:
        parent = normalize_id(dotted[-2][1])
    trace_id = normalize_id(first_present(run.get("trace_id"), dotted[0][1] if dotted else None))
    if trace_id is None and parent is None:
        trace_id = span_id
    times = {}
    for key in ("start_time", "end_time"):
        try:
            times[key] = parse_time(run.get(key))
        except ValueError as exc:
            bad.append((key, str(exc)))
            times[key] = None
    if times["start_time"] is None and dotted and "start_time" not in dict(bad):
        times["start_time"] = parse_time(dotted[-1][0])
    extra = as_dict(run.get("extra"))
    metadata = {**as_dict(run.get("metadata")), **as_dict(extra.get("metadata"))}
    invocation = as_dict(extra.get("invocation_params"))
    name = str_or_none(run.get("name"))
    run_type = str(run.get("run_type") or "").lower()
    kind = RUN_TYPE_KINDS.get(run_type) or kind_from({}, name)
    error = str_or_none(run.get("error"))
    status = STATUS.get(str(run.get("status") or "").lower())
    if status is None:
        status = "error" if error else ("ok" if times["end_time"] is not None else "unset")
    tokens_in, tokens_out, tokens_total = _tokens(run, kind)
    if tokens_total is None and tokens_in is not None and tokens_out is not None:
        tokens_total = tokens_in + tokens_out
    cost = float_or_none(run.get("total_cost"))
    if cost is None and run.get("prompt_cost") is not None and run.get("completion_cost") is not None:
        cost = (float_or_none(run["prompt_cost"]) or 0.0) + (float_or_none(run["completion_cost"]) or 0.0)
    error_type = None
    if error:
        last = [line for line in error.strip().splitlines() if line.strip()][-1].strip()
        match = _ERROR_TYPE.match(last)
        error_type = match.group(1) if match else None
    kept = {k: v for k, v in run.items() if k not in _RUN_COLUMNS and v is not None}
    for key, _ in bad:
        kept[key] = run.get(key)
    row = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": parent,
        "session_id": first_present(*(str_or_none(metadata.get(k)) for k in SESSION_KEYS)),
        "user_id": str_or_none(metadata.get("user_id")),
        "name": name,
        "kind": kind,
        "start_time": times["start_time"],
        "end_time": times["end_time"],
        "duration_ms": duration_ms(times["start_time"], times["end_time"]),
        "status": status,
        "error_type": error_type,
        "error_message": error,
        "input": text_of(run.get("inputs")),
        "output": text_of(run.get("outputs")),
        "model": str_or_none(first_present(metadata.get("ls_model_name"), invocation.get("model"),
                                           invocation.get("model_name"))),
        "provider": str_or_none(metadata.get("ls_provider")),
        "prompt_name": str_or_none(metadata.get("prompt_name")),
        "prompt_version": str_or_none(metadata.get("prompt_version")),
        "app_version": str_or_none(first_present(metadata.get("revision_id"), metadata.get("app_version"))),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_total,
        "cost_usd": cost,
        "tags": tag_list(run.get("tags")),
        "attributes": json_text(kept) if kept else None,
    }
    return row, bad


def feedback_row(item: dict, run_traces: dict[str, str]) -> dict:
    """One feedback row from a LangSmith feedback object (``key``, ``score``, ``value``, ``comment``).

    A score on a root run (``run_id == trace_id``) targets the trace.

    Raises
    ------
    KeyError
        Naming the missing field (``key`` or ``run_id``).
    """
    name = str_or_none(item.get("key"))
    if name is None:
        raise KeyError("key")
    run_id = normalize_id(item.get("run_id"))
    trace_id = normalize_id(item.get("trace_id")) or (run_traces.get(run_id) if run_id else None)
    if run_id is None and trace_id is None:
        raise KeyError("run_id")
    if run_id is None or run_id == trace_id:
        level, target = "trace", trace_id
    else:
        level, target = "span", run_id
    score, value = item.get("score"), item.get("value")
    value_num = float(score) if isinstance(score, bool) else float_or_none(score)
    value_label = value_text = None
    if isinstance(value, str):
        value_label = value
    elif isinstance(value, bool | int | float) and value_num is None:
        value_num = float(value)
    elif isinstance(value, dict | list) and value:
        value_text = json_text(value)
    value_text = value_text or str_or_none(item.get("comment")) or text_of(item.get("correction"))
    source = as_dict(item.get("feedback_source"))
    return build_feedback_row(
        name, target_level=level, target_id=target, trace_id=trace_id,
        value_num=value_num, value_label=value_label, value_text=value_text,
        annotator_kind=FEEDBACK_SOURCES.get(str(source.get("type") or "").lower()),
        annotator_id=str_or_none(first_present(source.get("user_id"), source.get("user_name"))),
        created_at=parse_time(first_present(item.get("created_at"), item.get("modified_at"))),
        source_format=FORMAT,
    )


class _Collector(ProblemLog):
    """Runs (posts merged with patches) and feedback objects found in one file."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        super().__init__(source, problems, strict)
        self.runs: dict[str, tuple[dict, int, int]] = {}
        self.feedback: list[tuple[dict, int, int]] = []

    def add_record(self, record: object, line: int, offset: int) -> None:
        if isinstance(record, dict) and ("post" in record or "patch" in record) and "id" not in record:
            for index, item in enumerate(record.get("post") or []):
                self.add_item(item, line, offset, f"post[{index}]: ")
            for index, item in enumerate(record.get("patch") or []):
                self.add_item(item, line, offset, f"patch[{index}]: ", patch=True)
            return
        for item, where in page_items(record, page_key="runs", not_a_page_key="id"):
            self.add_item(item, line, offset, where)

    def add_item(self, item: object, line: int, offset: int, where: str, *, patch: bool = False) -> None:
        if not isinstance(item, dict):
            self.problem(line, offset, REASON_NOT_LANGSMITH, None, where + f"a JSON {type(item).__name__}")
            return
        feedback_keys = ("score", "value", "comment", "correction", "feedback_source")
        if ("key" in item and ("run_id" in item or any(k in item for k in feedback_keys))) or (
                "run_id" in item and "run_type" not in item and any(k in item for k in feedback_keys)):
            self.feedback.append((item, line, offset))
            return
        if not any(k in item for k in ("run_type", "dotted_order", "parent_run_id", "inputs", "outputs")):
            self.problem(line, offset, REASON_NOT_LANGSMITH, None, where + "expected a run or a feedback object",
                         item)
            return
        run_id = normalize_id(item.get("id"))
        if run_id is None:
            self.problem(line, offset, REASON_MISSING_FIELD, "id", where + "run without an id", item)
            return
        if patch and run_id in self.runs:
            post, post_line, post_offset = self.runs[run_id]
            self.runs[run_id] = (merge_patch(post, item), post_line, post_offset)
        elif run_id in self.runs and not patch:
            self.problem(line, offset, REASON_BAD_VALUE, "id", where + f"run {run_id} posted twice; the first is kept",
                         item)
        else:
            self.runs[run_id] = (item, line, offset)
        for child in item.get("child_runs") or []:
            self.add_item(child, line, offset, where + f"child of {run_id}: ")

    def span_rows(self) -> list[dict]:
        rows = []
        for run, line, offset in self.runs.values():
            row, bad = run_row(run)
            for field, reason in bad:
                self.problem(line, offset, REASON_BAD_VALUE, field, f"run {row['span_id']}: {reason} (kept in attributes)")
            row.update(source_format=FORMAT, source_file=self.source, source_line=line)
            rows.append(row)
        by_id = {row["span_id"]: row for row in rows}
        for row in rows:  # a child without trace_id: its topmost known ancestor is the root
            if row["trace_id"] is None:
                node, seen = row, set()
                while node["parent_span_id"] in by_id and node["span_id"] not in seen:
                    seen.add(node["span_id"])
                    node = by_id[node["parent_span_id"]]
                row["trace_id"] = node["trace_id"] or node["parent_span_id"] or node["span_id"]
        return rows

    def feedback_rows(self, run_traces: dict[str, str]) -> list[dict]:
        rows = []
        for item, line, offset in self.feedback:
            try:
                row = feedback_row(item, run_traces)
            except KeyError as exc:
                self.problem(line, offset, REASON_MISSING_FIELD, exc.args[0], "feedback without " + exc.args[0], item)
                continue
            except ValueError as exc:
                self.problem(line, offset, REASON_BAD_VALUE, "created_at", str(exc), item)
                continue
            row["source_file"] = self.source
            rows.append(row)
        return rows
