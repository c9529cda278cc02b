"""A trace's spans as the reviewer reads them: the conversation, the span tree, a summary.

Pure functions on the spans of ONE trace (``schema.SPANS`` rows).

- :func:`conversation` rebuilds the dialogue in time order: user and assistant turns,
  tool calls with their arguments, tool results, retrieved documents. It reads
  LLM spans' message JSON (OpenAI, OpenTelemetry GenAI, OpenInference, Anthropic,
  Gemini, LangChain shapes), tool and retriever spans, and falls back to the root
  span's plain input/output when that is all there is. Messages that later LLM
  calls repeat as history are shown once.
- :func:`span_tree` orders spans depth-first for display. It always terminates:
  duplicate ids, orphans (shown at top level), self-loops and cycles (each member
  shown once, flagged) are handled explicitly.
- :func:`metadata_summary` gathers the facts a reviewer wants beside the trace.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import chain
from typing import Any

import orjson
import polars as pl

from workbench._frames import as_polars
from workbench.review._messages import (
    Document,
    Message,
    ToolCall,
    as_text,
    load_json,
    parse_messages,
    unflatten_indexed,
)

__all__ = ["Document", "Message", "ToolCall", "TreeRow", "conversation", "metadata_summary", "span_tree"]

_COLUMNS = (
    "span_id",
    "parent_span_id",
    "name",
    "kind",
    "start_time",
    "end_time",
    "duration_ms",
    "status",
    "error_type",
    "error_message",
    "input",
    "output",
    "attributes",
)


@dataclass(frozen=True, slots=True)
class TreeRow:
    """One line of the span tree.

    ``flags`` names anomalies: ``orphan`` (parent not in the trace), ``cycle``
    (on a parent-pointer cycle; shown once), ``self-loop``, ``duplicate`` (span id
    seen more than once), ``ends-before-start``.
    """

    depth: int
    span_id: str | None
    name: str
    kind: str
    start_offset_ms: float | None
    duration_ms: float | None
    status: str
    error: str | None
    flags: tuple[str, ...] = ()


def _rows(spans: Any) -> list[dict[str, Any]]:
    frame = as_polars(spans, name="spans")
    present = [c for c in _COLUMNS if c in frame.columns]
    rows = frame.select(present).to_dicts() if present else [{} for _ in range(len(frame))]
    extra_flags = [c for c in ("is_duplicate", "is_orphan", "in_cycle") if c in frame.columns]
    if extra_flags:
        for row, flags in zip(rows, frame.select(extra_flags).iter_rows(named=True), strict=True):
            row.update(flags)
    return rows


def _start_order(rows: list[dict[str, Any]]) -> list[int]:
    def key(i: int) -> tuple[bool, Any, int]:
        start = rows[i].get("start_time")
        return (start is None, start if start is not None else 0, i)

    return sorted(range(len(rows)), key=key)


def _micros(value: datetime | None) -> int | None:
    if value is None:
        return None
    return int(value.timestamp() * 1_000_000)


# -- conversation ----------------------------------------------------------------------------------


def conversation(spans: Any) -> list[Message]:
    """The dialogue of one trace, in time order.

    Parameters
    ----------
    spans
        The spans of a single trace (polars or pandas, ``schema.SPANS`` columns;
        missing columns are treated as empty).

    Returns
    -------
    list[Message]
        ``role`` is ``system``, ``user``, ``assistant`` (possibly with
        ``tool_calls``), ``tool`` (a tool result), ``retrieval`` or ``reasoning``.

    Examples
    --------
    >>> import polars as pl
    >>> spans = pl.DataFrame({"span_id": ["a"], "parent_span_id": [None], "kind": ["agent"],
    ...                       "input": ["Where is my refund?"], "output": ["It was sent today."]})
    >>> [(m.role, m.content) for m in conversation(spans)]
    [('user', 'Where is my refund?'), ('assistant', 'It was sent today.')]
    """
    rows = _rows(spans)
    order = _start_order(rows)
    cache: dict[bytes, Any] = {}  # message fingerprint -> parsed messages (history repeats)
    keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # message -> dedupe key

    def key_of(msg: Message) -> tuple[Any, ...]:
        raw = (msg.role, msg.content, msg.tool_calls)
        found = keys.get(raw)
        if found is None:
            found = keys[raw] = _key(msg)
        return found

    history = _History(cache)
    # (sort key, message, occurrence among identical messages of its list or None, marker, span, time)
    events: list[tuple[tuple[int, int, int, int], Message, int | None, str, Any, Any]] = []
    last_time = 0
    for seq, index in enumerate(order):
        row = rows[index]
        start = _micros(row.get("start_time"))
        start = last_time if start is None else start
        last_time = start
        end = _micros(row.get("end_time"))
        end = start if end is None or end < start else end
        kind = (row.get("kind") or "other").lower()
        span_id = row.get("span_id")
        if kind == "llm":
            seen: Counter[tuple[Any, ...]] = Counter()
            tail = history.read(row.get("input"), seen, key_of)
            if tail is None:  # not a list of message dicts: parse the whole value
                tail = _llm_messages(row, "input", default_role="user", cache=cache)
            for j, msg in enumerate(tail):
                key = key_of(msg)
                events.append(((start, seq, 0, j), msg, seen[key], "msg", span_id, row.get("start_time")))
                seen[key] += 1
            for j, msg in enumerate(_llm_messages(row, "output", default_role="assistant", cache=cache)):
                key = key_of(msg)  # new relative to this call's own input
                events.append(((end, seq, 1, j), msg, seen[key], "msg", span_id, row.get("end_time")))
                seen[key] += 1
        elif kind in ("tool", "retriever"):
            name = row.get("name") or kind
            call = Message("assistant", tool_calls=(ToolCall(name, as_text(load_json(row.get("input")))),),
                           span_id=span_id, time=row.get("start_time"))
            marker = "call" if kind == "tool" else "retrieval-call"
            events.append(((start, seq, 0, 0), call, None, marker, span_id, None))
            result = _tool_result(row) if kind == "tool" else _retrieval(row)
            events.append(((end, seq, 1, 0), result, None, "result", span_id, None))
    events.sort(key=lambda event: event[0])

    out: list[Message] = []
    emitted: Counter[tuple[Any, ...]] = Counter()
    pending: list[tuple[str, str | None]] = []  # calls announced by the model, not yet run
    span_call: dict[Any, str] = {}  # tool/retriever span -> the call id it answered
    answered: dict[str, int] = {}  # call id -> index in ``out`` of the span's result
    retrievals: dict[frozenset[str], int] = {}  # document ids -> index of the retrieval message
    for _, msg, occurrence, marker, span_id, time in events:
        if marker in ("call", "retrieval-call"):
            match = _matching_call(pending, msg.tool_calls[0].name)
            if match is not None:
                _, call_id = pending.pop(match)
                if call_id:
                    span_call[span_id] = call_id
            elif marker == "call":
                out.append(msg)
            continue
        key = key_of(msg)
        if occurrence is not None and occurrence < emitted[key]:
            continue  # history repeated by a later call
        if marker == "msg" and msg.role == "tool":
            target = answered.get(msg.call_id) if msg.call_id else None
            if target is None:
                target = retrievals.get(_document_ids(msg.content) or frozenset({""}))
            if target is not None:  # the span already showed this result: merge what it lacked
                out[target] = _merge_result(out[target], msg)
                emitted[key] += 1
                continue
        emitted[key] += 1
        out.append(_stamp(msg, span_id, time) if marker == "msg" else msg)
        if marker == "result" and span_id in span_call:
            answered[span_call[span_id]] = len(out) - 1
        if msg.role == "retrieval" and msg.documents and all(d.doc_id for d in msg.documents):
            retrievals[frozenset(str(d.doc_id) for d in msg.documents)] = len(out) - 1
        pending.extend((c.name, c.call_id) for c in msg.tool_calls)
    return _with_root_fallback(out, rows, order, emitted)


class _History:
    """The previous LLM call's input, so the history it shares with the next call is not re-read.

    Agent loops send each call the previous input plus a few new messages. Items of the
    shared prefix (compared as parsed dicts, in C) were already walked, so every copy of
    them is a repeat: only their keys are counted, no events are made for them.
    """

    def __init__(self, cache: dict[bytes, Any]) -> None:
        self.cache = cache
        self.items: list[dict[str, Any]] = []
        self.messages: list[list[Message]] = []
        self.keys: list[list[tuple[Any, ...]]] = []

    def read(self, value: Any, seen: Counter[tuple[Any, ...]], key_of: Any) -> list[Message] | None:
        """Messages of the new part of ``value``; counts the shared prefix into ``seen``."""
        items = load_json(value)
        if isinstance(items, dict) and isinstance(items.get("messages"), list) and "role" not in items:
            items = items["messages"]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            self.items, self.messages, self.keys = [], [], []
            return None
        shared = 0
        limit = min(len(items), len(self.items))
        while shared < limit and items[shared] == self.items[shared]:
            shared += 1
        messages, keys = self.messages[:shared], self.keys[:shared]
        for item in items[shared:]:
            parsed = parse_messages([item], self.cache)
            if parsed is None:
                self.items, self.messages, self.keys = [], [], []
                return None
            messages.append(parsed)
            keys.append([key_of(m) for m in parsed])
        seen.update(chain.from_iterable(keys[:shared]))
        self.items, self.messages, self.keys = items, messages, keys
        return [m for group in messages[shared:] for m in group]


def _document_ids(text: str) -> frozenset[str] | None:
    docs = _documents(load_json(text))
    if not docs or not all(d.doc_id for d in docs):
        return None
    return frozenset(str(d.doc_id) for d in docs)


def _merge_result(target: Message, msg: Message) -> Message:
    """Fill what a tool/retriever span's result lacks from the same result seen as a tool message."""
    if target.role == "retrieval":
        docs = _documents(load_json(msg.content))
        if not docs:
            return target
        if not target.documents:
            return replace(target, documents=docs)
        text = {d.doc_id: d.content for d in docs if d.doc_id}
        merged = tuple(d if d.content or d.doc_id not in text else replace(d, content=text[d.doc_id])
                       for d in target.documents)
        return replace(target, documents=merged)
    if not target.content.strip() and msg.content:
        return replace(target, content=msg.content)
    return target


def _stamp(msg: Message, span_id: str | None, time: datetime | None) -> Message:
    return Message(msg.role, msg.content, msg.tool_calls, msg.name, msg.call_id, msg.documents,
                   span_id, time, msg.is_error)


def _llm_messages(row: dict[str, Any], field: str, *, default_role: str,
                  cache: dict[bytes, Any] | None = None) -> list[Message]:
    value = row.get(field)
    if value is None or value == "":
        attrs = _attributes(row)
        flat = unflatten_indexed(attrs, f"llm.{field}_messages") if attrs else []
        parsed = parse_messages(flat) if flat else None
        if parsed is None and attrs:
            parsed = parse_messages(attrs.get("gen_ai." + field + ".messages"))
        return parsed or []
    parsed = parse_messages(value, cache)
    if parsed is not None:
        return parsed
    text = _plain_text(value)
    return [Message(default_role, text)] if text and text not in ("None", "null") else []


def _plain_text(value: Any) -> str:
    parsed = load_json(value)
    if isinstance(parsed, dict) and isinstance(parsed.get("args"), list) and len(parsed) <= 2:
        parsed = parsed["args"][0] if len(parsed["args"]) == 1 else parsed
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, dict):
        for key in ("input", "query", "question", "prompt", "output", "answer", "response", "text", "content"):
            if isinstance(parsed.get(key), str) and len(parsed) <= 3:
                return parsed[key]
    return as_text(value if isinstance(value, str) else parsed)


def _attributes(row: dict[str, Any]) -> dict[str, Any]:
    raw = row.get("attributes")
    if not raw:
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool_result(row: dict[str, Any]) -> Message:
    output = row.get("output")
    text = _unwrap_tool_output(output)
    failed = (row.get("status") or "").lower() == "error"
    if failed:
        error = _error_text(row)
        if error:
            text = f"{text}\n{error}" if text else error
    return Message("tool", text, name=row.get("name"), span_id=row.get("span_id"),
                   time=row.get("end_time"), is_error=failed)


def _error_text(row: dict[str, Any]) -> str:
    kind, message = row.get("error_type"), row.get("error_message")
    if kind and message and str(message).startswith(str(kind)):
        return str(message)
    return ": ".join(str(x) for x in (kind, message) if x)


def _unwrap_tool_output(value: Any) -> str:
    if value is None:
        return ""
    parsed = load_json(value)
    if isinstance(parsed, str):
        return parsed
    if isinstance(parsed, dict):
        messages = parse_messages(parsed)
        if messages and len(messages) == 1 and messages[0].role == "tool":
            return messages[0].content
        content = parsed.get("content")
        if isinstance(content, list) and all(isinstance(c, dict) and "text" in c for c in content):
            return "\n".join(str(c["text"]) for c in content)
    return value if isinstance(value, str) else as_text(parsed)


def _retrieval(row: dict[str, Any]) -> Message:
    docs = _documents(load_json(row.get("output")))
    if not docs:
        attrs = _attributes(row)
        docs = tuple(
            Document(as_text(d.get("document.content")), _opt_str(d.get("document.id")), _opt_float(d.get("document.score")))
            for d in unflatten_indexed(attrs, "retrieval.documents")
        ) if attrs else ()
    query = _plain_text(row.get("input")) if row.get("input") else ""
    parsed = load_json(row.get("output"))
    empty = parsed in (None, "", [], {}) or (
        isinstance(parsed, dict) and any(isinstance(parsed.get(k), list) and not parsed[k] for k in _DOC_KEYS))
    content = query if docs or empty else "\n".join(x for x in (query, as_text(row.get("output"))) if x)
    failed = (row.get("status") or "").lower() == "error"
    return Message("retrieval", content, name=row.get("name"), documents=docs,
                   span_id=row.get("span_id"), time=row.get("end_time"), is_error=failed)


_DOC_KEYS = ("documents", "results", "docs", "retrieval.documents")


def _documents(value: Any) -> tuple[Document, ...]:
    if isinstance(value, dict):
        for key in _DOC_KEYS:
            if isinstance(value.get(key), list):
                return _documents(value[key])
        return ()
    if not isinstance(value, list) or not value:
        return ()
    docs = []
    for item in value:
        if isinstance(item, str):
            docs.append(Document(item))
        elif isinstance(item, dict):
            item = item.get("document", item) if isinstance(item.get("document"), dict) else item
            body = next((item[k] for k in ("content", "page_content", "text", "document.content", "snippet")
                         if k in item), None)
            doc_id = next((item[k] for k in ("id", "doc_id", "document.id", "url", "source") if k in item), None)
            if body is None and doc_id is None:
                return ()
            score = next((item[k] for k in ("score", "document.score", "relevance") if k in item), None)
            docs.append(Document("" if body is None else as_text(body), _opt_str(doc_id), _opt_float(score)))
        else:
            return ()
    return tuple(docs)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_float(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _matching_call(pending: list[tuple[str, str | None]], span_name: str) -> int | None:
    for i, (name, _call_id) in enumerate(pending):
        if name == span_name or span_name.endswith(name) or name.endswith(span_name):
            return i
    return None


def _norm(text: str) -> str:
    parsed = load_json(text)
    if isinstance(parsed, (dict, list)):
        messages = parse_messages(parsed)
        if messages and len(messages) == 1:
            text = messages[0].content
        else:
            content = parsed.get("content") if isinstance(parsed, dict) else None
            wrapped = _wrapped_result(parsed)
            if isinstance(content, list) and all(isinstance(c, dict) and "text" in c for c in content):
                text = "\n".join(str(c["text"]) for c in content)
            elif wrapped is not None:
                text = wrapped
            else:
                text = orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS, default=str).decode()
    elif isinstance(parsed, str):
        text = parsed
    return " ".join(text.split())


_RESULT_KEYS = ("result", "output", "response", "content", "text")
_ENVELOPE_KEYS = {"type", "call_id", "id", "name", "status", "tool_call_id", "is_error"}


def _wrapped_result(value: Any) -> str | None:
    """The text inside a result envelope such as ``{"type": "function_result", "result": "..."}``."""
    if not isinstance(value, dict):
        return None
    found = [k for k in _RESULT_KEYS if isinstance(value.get(k), str)]
    if len(found) == 1 and set(value) - {found[0]} <= _ENVELOPE_KEYS:
        return value[found[0]]
    return None


def _key(msg: Message) -> tuple[Any, ...]:
    calls = tuple((c.name, _norm(c.arguments)) for c in msg.tool_calls)
    return (msg.role, _norm(msg.content), calls)


def _with_root_fallback(
    out: list[Message], rows: list[dict[str, Any]], order: list[int], emitted: Counter[tuple[Any, ...]]
) -> list[Message]:
    """Use the root span's input/output when the LLM spans gave no user turn or no final answer."""
    ids = {r.get("span_id") for r in rows}
    roots = [i for i in order if not rows[i].get("parent_span_id") or rows[i]["parent_span_id"] not in ids]
    if not roots:
        roots = order[:1]
    if not roots:
        return out
    root = rows[roots[0]]
    if (root.get("kind") or "").lower() in ("llm", "tool", "retriever"):
        return out  # its content is already in the conversation
    if not any(m.role == "user" for m in out) and root.get("input") not in (None, ""):
        head = parse_messages(root["input"])
        if head is None:
            head = [Message("user", _plain_text(root["input"]))]
        head = [_stamp(m, root.get("span_id"), root.get("start_time")) for m in head if emitted[_key(m)] == 0]
        for m in head:
            emitted[_key(m)] += 1
        out = head + out
    last_user = max((i for i, m in enumerate(out) if m.role == "user"), default=-1)
    answered = any(m.role == "assistant" and m.content for m in out[last_user + 1:])
    if not answered and root.get("output") not in (None, ""):
        tail = parse_messages(root["output"])
        if tail is None:
            tail = [Message("assistant", _plain_text(root["output"]))]
        out = out + [_stamp(m, root.get("span_id"), root.get("end_time")) for m in tail if emitted[_key(m)] == 0]
    return out


# -- span tree -------------------------------------------------------------------------------------


def span_tree(spans: Any) -> list[TreeRow]:
    """Spans in depth-first display order with depth, timing, status and anomaly flags.

    Always terminates: each row is visited exactly once. Orphans (parent id not in
    the trace) appear at top level; a span whose parent is itself is a top-level
    ``self-loop``; spans on a parent cycle are entered once (at the earliest
    member) and flagged ``cycle``; duplicated span ids are all shown, flagged.

    Examples
    --------
    >>> import polars as pl
    >>> spans = pl.DataFrame({"span_id": ["a", "b"], "parent_span_id": ["b", "a"], "name": ["x", "y"]})
    >>> [(r.name, r.depth, r.flags) for r in span_tree(spans)]
    [('x', 0, ('cycle',)), ('y', 1, ('cycle',))]
    """
    rows = _rows(spans)
    n = len(rows)
    first_index: dict[Any, int] = {}
    id_counts: Counter[Any] = Counter()
    for i, row in enumerate(rows):
        first_index.setdefault(row.get("span_id"), i)
        id_counts[row.get("span_id")] += 1
    parent_of = [-1] * n
    flags: list[list[str]] = [[] for _ in range(n)]
    for i, row in enumerate(rows):
        pid = row.get("parent_span_id")
        if pid in (None, ""):
            continue
        if pid == row.get("span_id"):
            flags[i].extend(("self-loop", "cycle"))
        elif pid not in first_index:
            flags[i].append("orphan")
        else:
            parent_of[i] = first_index[pid]
    in_cycle = _cycle_members(parent_of)
    for i, row in enumerate(rows):
        if in_cycle[i] or row.get("in_cycle"):
            flags[i].append("cycle")
        if id_counts[row.get("span_id")] > 1 or row.get("is_duplicate"):
            flags[i].append("duplicate")
        if row.get("is_orphan") and "orphan" not in flags[i]:
            flags[i].append("orphan")
        start, end = row.get("start_time"), row.get("end_time")
        if start is not None and end is not None and end < start:
            flags[i].append("ends-before-start")

    order = _start_order(rows)
    rank = {index: r for r, index in enumerate(order)}
    children: list[list[int]] = [[] for _ in range(n)]
    for i in order:
        if parent_of[i] >= 0:
            children[parent_of[i]].append(i)
    starts = [_micros(r.get("start_time")) for r in rows]
    trace_start = min((s for s in starts if s is not None), default=None)

    visited = [False] * n
    result: list[TreeRow] = []

    def walk(root: int) -> None:
        stack = [(root, 0)]
        while stack:
            node, depth = stack.pop()
            if visited[node]:
                continue
            visited[node] = True
            result.append(_tree_row(rows[node], depth, starts[node], trace_start, flags[node]))
            for child in sorted(children[node], key=rank.__getitem__, reverse=True):
                if not visited[child]:
                    stack.append((child, depth + 1))

    for i in order:
        if parent_of[i] < 0:
            walk(i)
    for i in order:  # spans only reachable through a cycle
        if not visited[i]:
            walk(i)
    return result


def _cycle_members(parent_of: list[int]) -> list[bool]:
    """True for rows on a parent-pointer cycle (iterative colouring, O(n))."""
    n = len(parent_of)
    state = [0] * n  # 0 new, 1 on current path, 2 done
    member = [False] * n
    for start in range(n):
        path = []
        node = start
        while node >= 0 and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = parent_of[node]
        if node >= 0 and state[node] == 1:
            cycle_start = path.index(node)
            for k in path[cycle_start:]:
                member[k] = True
        for k in path:
            state[k] = 2
    return member


def _tree_row(row: dict[str, Any], depth: int, start: int | None, trace_start: int | None,
              flags: list[str]) -> TreeRow:
    duration = row.get("duration_ms")
    if duration is None and row.get("start_time") is not None and row.get("end_time") is not None:
        duration = (row["end_time"] - row["start_time"]).total_seconds() * 1000
    error = None
    status = (row.get("status") or "unset").lower()
    if status == "error" or row.get("error_message") or row.get("error_type"):
        error = _error_text(row) or "error"
    offset = (start - trace_start) / 1000 if start is not None and trace_start is not None else None
    return TreeRow(depth, row.get("span_id"), row.get("name") or "(unnamed)", row.get("kind") or "other",
                   offset, duration, status, error, tuple(dict.fromkeys(flags)))


# -- metadata --------------------------------------------------------------------------------------


def metadata_summary(spans: Any, trace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts about one trace for display beside it (ids, times, counts, models, cost, outcome).

    ``trace`` is the trace's row of the traces table (a dict), when available; its
    outcome columns (``passed``, ``user_feedback``, ``reward``) are included.

    Examples
    --------
    >>> import polars as pl
    >>> metadata_summary(pl.DataFrame({"trace_id": ["t1"], "kind": ["llm"], "model": ["m"]}))["llm calls"]
    1
    """
    frame = as_polars(spans, name="spans")
    trace = dict(trace or {})

    def first(column: str) -> Any:
        if trace.get(column) is not None:
            return trace[column]
        if column not in frame.columns:
            return None
        values = frame.get_column(column).drop_nulls()
        return values[0] if len(values) else None

    def distinct(column: str) -> list[Any]:
        if column not in frame.columns:
            return []
        return frame.get_column(column).drop_nulls().unique(maintain_order=True).to_list()

    def total(column: str) -> Any:
        if trace.get(column) is not None:
            return trace[column]
        if column not in frame.columns or frame.get_column(column).null_count() == len(frame):
            return None
        if column.startswith("tokens") and "kind" in frame.columns:
            llm = frame.filter(pl.col("kind") == "llm").get_column(column)
            if llm.null_count() < len(llm):
                return llm.sum()
        return frame.get_column(column).sum()

    kinds = frame.get_column("kind").to_list() if "kind" in frame.columns else []
    starts = distinct("start_time")
    ends = distinct("end_time")
    duration = trace.get("duration_ms")
    if duration is None and starts and ends:
        duration = (max(ends) - min(starts)).total_seconds() * 1000
    statuses = frame.get_column("status").to_list() if "status" in frame.columns else []
    summary: dict[str, Any] = {
        "trace id": first("trace_id"),
        "session": first("session_id"),
        "user": first("user_id"),
        "started": min(starts) if starts else None,
        "duration ms": round(duration, 1) if duration is not None else None,
        "spans": len(frame),
        "llm calls": kinds.count("llm"),
        "tool calls": kinds.count("tool"),
        "errors": sum(1 for s in statuses if s == "error"),
        "models": ", ".join(map(str, distinct("model"))) or None,
        "prompt version": first("prompt_version"),
        "app version": first("app_version"),
        "tokens in": total("tokens_in"),
        "tokens out": total("tokens_out"),
        "cost usd": total("cost_usd"),
        "tags": ", ".join(sorted({t for ts in distinct("tags") for t in (ts or [])})) or None,
        "source": first("source_format"),
    }
    for column in ("passed", "user_feedback", "reward"):
        if trace.get(column) is not None:
            summary[column.replace("_", " ")] = trace[column]
    return {k: v for k, v in summary.items() if v is not None}
