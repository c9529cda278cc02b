"""A trace's spans as the reviewer reads them: the conversation, the span tree, a summary.

Pure functions on the spans of ONE trace (``schema.SPANS`` rows). This module builds
the conversation; the span tree lives in :mod:`workbench.review.tree` and the summary
in :mod:`workbench.review.metadata` (both importable from here too).

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
from dataclasses import replace
from datetime import datetime
from itertools import chain
from typing import Any

from workbench.review._messages import Document, Message, ToolCall, as_text, load_json, parse_messages
from workbench.review._span_content import (
    llm_messages,
    message_key,
    parse_documents,
    plain_text,
    retrieval_message,
    tool_result,
)
from workbench.review._span_rows import micros, span_rows, start_order
from workbench.review.metadata import metadata_summary
from workbench.review.tree import TreeRow, span_tree

__all__ = ["Document", "Message", "ToolCall", "TreeRow", "conversation", "metadata_summary", "span_tree"]


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
    rows = span_rows(spans)
    order = start_order(rows)
    cache: dict[bytes, Any] = {}  # message fingerprint -> parsed messages (history repeats)
    keys: dict[tuple[Any, ...], tuple[Any, ...]] = {}  # message -> dedupe key

    def key_of(msg: Message) -> tuple[Any, ...]:
        raw = (msg.role, msg.content, msg.tool_calls)
        found = keys.get(raw)
        if found is None:
            found = keys[raw] = message_key(msg)
        return found

    history = _History(cache)
    # (sort key, message, occurrence among identical messages of its list or None, marker, span, time)
    events: list[tuple[tuple[int, int, int, int], Message, int | None, str, Any, Any]] = []
    last_time = 0
    for seq, index in enumerate(order):
        row = rows[index]
        start = micros(row.get("start_time"))
        start = last_time if start is None else start
        last_time = start
        end = micros(row.get("end_time"))
        end = start if end is None or end < start else end
        kind = (row.get("kind") or "other").lower()
        span_id = row.get("span_id")
        if kind == "llm":
            seen: Counter[tuple[Any, ...]] = Counter()
            tail = history.read(row.get("input"), seen, key_of)
            if tail is None:  # not a list of message dicts: parse the whole value
                tail = llm_messages(row, "input", default_role="user", cache=cache)
            for j, msg in enumerate(tail):
                key = key_of(msg)
                events.append(((start, seq, 0, j), msg, seen[key], "msg", span_id, row.get("start_time")))
                seen[key] += 1
            for j, msg in enumerate(llm_messages(row, "output", default_role="assistant", cache=cache)):
                key = key_of(msg)  # new relative to this call's own input
                events.append(((end, seq, 1, j), msg, seen[key], "msg", span_id, row.get("end_time")))
                seen[key] += 1
        elif kind in ("tool", "retriever"):
            name = row.get("name") or kind
            call = Message("assistant", tool_calls=(ToolCall(name, as_text(load_json(row.get("input")))),),
                           span_id=span_id, time=row.get("start_time"))
            marker = "call" if kind == "tool" else "retrieval-call"
            events.append(((start, seq, 0, 0), call, None, marker, span_id, None))
            result = tool_result(row) if kind == "tool" else retrieval_message(row)
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
    docs = parse_documents(load_json(text))
    if not docs or not all(d.doc_id for d in docs):
        return None
    return frozenset(str(d.doc_id) for d in docs)


def _merge_result(target: Message, msg: Message) -> Message:
    """Fill what a tool/retriever span's result lacks from the same result seen as a tool message."""
    if target.role == "retrieval":
        docs = parse_documents(load_json(msg.content))
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


def _matching_call(pending: list[tuple[str, str | None]], span_name: str) -> int | None:
    for i, (name, _call_id) in enumerate(pending):
        if name == span_name or span_name.endswith(name) or name.endswith(span_name):
            return i
    return None


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
            head = [Message("user", plain_text(root["input"]))]
        head = [_stamp(m, root.get("span_id"), root.get("start_time")) for m in head if emitted[message_key(m)] == 0]
        for m in head:
            emitted[message_key(m)] += 1
        out = head + out
    last_user = max((i for i, m in enumerate(out) if m.role == "user"), default=-1)
    answered = any(m.role == "assistant" and m.content for m in out[last_user + 1:])
    if not answered and root.get("output") not in (None, ""):
        tail = parse_messages(root["output"])
        if tail is None:
            tail = [Message("assistant", plain_text(root["output"]))]
        out = out + [_stamp(m, root.get("span_id"), root.get("end_time")) for m in tail if emitted[message_key(m)] == 0]
    return out
