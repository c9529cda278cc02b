"""What one span says, as conversation messages: LLM input/output, tool results, retrievals.

Pure functions on one span row (a dict of ``schema.SPANS`` columns); the dialogue
is assembled from them by :func:`workbench.review.conversation.conversation`.
"""

from __future__ import annotations

from typing import Any

import orjson

from workbench.review._messages import (
    Document,
    Message,
    as_text,
    load_json,
    parse_messages,
    unflatten_indexed,
)
from workbench.review._span_rows import error_text


def llm_messages(row: dict[str, Any], field: str, *, default_role: str,
                 cache: dict[bytes, Any] | None = None) -> list[Message]:
    """Messages of an LLM span's ``input`` or ``output`` (``field``), from the value or the attributes.

    A value that is not messages becomes one ``default_role`` message of its plain text.
    """
    value = row.get(field)
    if value is None or value == "":
        attrs = span_attributes(row)
        flat = unflatten_indexed(attrs, f"llm.{field}_messages") if attrs else []
        parsed = parse_messages(flat) if flat else None
        if parsed is None and attrs:
            parsed = parse_messages(attrs.get("gen_ai." + field + ".messages"))
        return parsed or []
    parsed = parse_messages(value, cache)
    if parsed is not None:
        return parsed
    text = plain_text(value)
    return [Message(default_role, text)] if text and text not in ("None", "null") else []


def plain_text(value: Any) -> str:
    """The text a person typed or read in ``value``: a bare string, or the one text field of a small dict."""
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


def span_attributes(row: dict[str, Any]) -> dict[str, Any]:
    """The span's ``attributes`` as a dict (``{}`` when missing or not a JSON object)."""
    raw = row.get("attributes")
    if not raw:
        return {}
    try:
        value = orjson.loads(raw) if isinstance(raw, str) else raw
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def tool_result(row: dict[str, Any]) -> Message:
    """A tool span's output as a ``tool`` message (with the error text when the span failed)."""
    output = row.get("output")
    text = _unwrap_tool_output(output)
    failed = (row.get("status") or "").lower() == "error"
    if failed:
        error = error_text(row)
        if error:
            text = f"{text}\n{error}" if text else error
    return Message("tool", text, name=row.get("name"), span_id=row.get("span_id"),
                   time=row.get("end_time"), is_error=failed)


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


def retrieval_message(row: dict[str, Any]) -> Message:
    """A retriever span as a ``retrieval`` message: the query as content, the documents found."""
    docs = parse_documents(load_json(row.get("output")))
    if not docs:
        attrs = span_attributes(row)
        docs = tuple(
            Document(as_text(d.get("document.content")), _opt_str(d.get("document.id")), _opt_float(d.get("document.score")))
            for d in unflatten_indexed(attrs, "retrieval.documents")
        ) if attrs else ()
    query = plain_text(row.get("input")) if row.get("input") else ""
    parsed = load_json(row.get("output"))
    empty = parsed in (None, "", [], {}) or (
        isinstance(parsed, dict) and any(isinstance(parsed.get(k), list) and not parsed[k] for k in _DOC_KEYS))
    content = query if docs or empty else "\n".join(x for x in (query, as_text(row.get("output"))) if x)
    failed = (row.get("status") or "").lower() == "error"
    return Message("retrieval", content, name=row.get("name"), documents=docs,
                   span_id=row.get("span_id"), time=row.get("end_time"), is_error=failed)


_DOC_KEYS = ("documents", "results", "docs", "retrieval.documents")


def parse_documents(value: Any) -> tuple[Document, ...]:
    """Documents in a parsed retriever output (a list, or a dict holding one); ``()`` if not documents."""
    if isinstance(value, dict):
        for key in _DOC_KEYS:
            if isinstance(value.get(key), list):
                return parse_documents(value[key])
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


def message_key(msg: Message) -> tuple[Any, ...]:
    """What makes two messages the same turn (whitespace and JSON layout aside): used to drop repeats."""
    calls = tuple((c.name, _norm(c.arguments)) for c in msg.tool_calls)
    return (msg.role, _norm(msg.content), calls)
