"""Recognise chat messages inside span input/output values (pure, no frames).

Trace exports carry messages in many shapes. This module turns any of them
into :class:`Message` objects, or says "not messages" (``None``):

- OpenAI chat (``role``/``content``/``tool_calls``/``tool_call_id``), legacy
  ``function_call``, request bodies ``{"messages": [...]}``, responses
  ``{"choices": [{"message": ...}]}``;
- OpenAI Responses items (``message``, ``function_call``, ``function_call_output``);
- OpenTelemetry GenAI ``{role, parts: [text | tool_call | tool_call_response | reasoning]}``;
- Anthropic content blocks (``text``, ``tool_use``, ``tool_result``, ``thinking``);
- Gemini ``{role: "model", parts: [{text} | {function_call} | {function_response}]}``;
- LangChain serialised messages (``{"lc": 1, "id": [..., "AIMessage"], "kwargs": ...}``
  and ``{"type": "human", "content": ...}``);
- OpenInference ``message.role`` / ``message.content`` / ``message.tool_calls``
  (nested or flattened dotted keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

_ROLES = {
    "user": "user",
    "human": "user",
    "humanmessage": "user",
    "assistant": "assistant",
    "ai": "assistant",
    "aimessage": "assistant",
    "aimessagechunk": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
    "developer": "system",
    "systemmessage": "system",
    "tool": "tool",
    "toolmessage": "tool",
    "function": "tool",
    "functionmessage": "tool",
    "ipython": "tool",
}

_LANGCHAIN_TYPES = ("human", "ai", "system", "tool", "AIMessageChunk")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool (function) call requested by the model."""

    name: str
    arguments: str
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Document:
    """A retrieved document."""

    content: str
    doc_id: str | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One turn of the conversation as the reviewer reads it.

    ``role`` is one of ``system, user, assistant, tool, retrieval, reasoning``.
    A tool result has ``role="tool"``, ``name`` (the tool) and ``call_id``.
    """

    role: str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    name: str | None = None
    call_id: str | None = None
    documents: tuple[Document, ...] = ()
    span_id: str | None = None
    time: datetime | None = None
    is_error: bool = False


def load_json(value: Any) -> Any:
    """Parse JSON text (unwrapping one level of double encoding); other values unchanged."""
    if not isinstance(value, str):
        return value
    stripped = value.lstrip()
    if not stripped or stripped[0] not in '[{"':
        return value
    try:
        parsed = orjson.loads(stripped)
    except orjson.JSONDecodeError:
        return value
    if isinstance(parsed, str):
        inner = parsed.lstrip()
        if inner[:1] in ("[", "{"):
            try:
                return orjson.loads(inner)
            except orjson.JSONDecodeError:
                return parsed
    return parsed


def as_text(value: Any) -> str:
    """Text of any value: strings as they are, everything else as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:
        return str(value)


def normalise_role(role: Any) -> str | None:
    """Map a provider's role name to ``system/user/assistant/tool``; ``None`` if unknown."""
    if not isinstance(role, str):
        return None
    return _ROLES.get(role.strip().lower())


_MISSING = object()


def parse_messages(value: Any, cache: dict[bytes, Any] | None = None) -> list[Message] | None:
    """Messages held by ``value`` (parsed JSON or text), or ``None`` when it holds none.

    Examples
    --------
    >>> [m.role for m in parse_messages('[{"role": "user", "content": "hi"}]')]
    ['user']
    >>> parse_messages("just text") is None
    True
    """
    value = load_json(value)
    if isinstance(value, list):
        return _from_list(value, cache)
    if isinstance(value, dict):
        if isinstance(value.get("messages"), list) and _one_message(value) is None:
            return _from_list(value["messages"], cache)
        return _from_dict(value)
    return None


def _from_list(items: list[Any], cache: dict[bytes, Any] | None = None) -> list[Message] | None:
    """Messages of a list of message dicts; ``cache`` (fingerprint -> messages) skips repeated history."""
    dicts = [item for item in items if isinstance(item, dict)]
    if not dicts or len(dicts) != len(items):
        return None
    out: list[Message] = []
    for item in dicts:
        parsed: Any = _MISSING
        fingerprint = None
        if cache is not None:
            try:
                fingerprint = orjson.dumps(item, option=orjson.OPT_SORT_KEYS)
                parsed = cache.get(fingerprint, _MISSING)
            except (TypeError, orjson.JSONEncodeError):
                fingerprint = None
        if parsed is _MISSING:
            parsed = _one_message(item)
            if fingerprint is not None:
                cache[fingerprint] = parsed
        if parsed is None:
            return None
        out.extend(parsed)
    return out


def _from_dict(value: dict[str, Any]) -> list[Message] | None:
    single = _one_message(value)
    if single is not None:
        return single
    for key in ("messages", "input_messages", "llm.input_messages", "output_messages", "llm.output_messages"):
        if isinstance(value.get(key), list):
            return _from_list(value[key])
    if isinstance(value.get("choices"), list):
        messages = [c.get("message") or c.get("delta") for c in value["choices"] if isinstance(c, dict)]
        return _from_list([m for m in messages if isinstance(m, dict)]) or None
    if isinstance(value.get("candidates"), list):
        contents = [c.get("content") for c in value["candidates"] if isinstance(c, dict)]
        return _from_list([c for c in contents if isinstance(c, dict)]) or None
    if isinstance(value.get("message"), dict):
        return _from_dict(value["message"])
    if isinstance(value.get("content"), dict) and "parts" in value["content"]:
        return _from_dict(value["content"])
    if isinstance(value.get("output"), list) and any(
        isinstance(i, dict) and i.get("type") in ("message", "function_call") for i in value["output"]
    ):
        items = [i for i in value["output"] if isinstance(i, dict) and i.get("type") != "reasoning"]
        return _from_list(items)
    if isinstance(value.get("new_message"), dict):
        return _from_dict(value["new_message"])
    if isinstance(value.get("contents"), str):
        return [Message("user", value["contents"])]
    if isinstance(value.get("contents"), list):
        return _from_list(value["contents"])
    return None


def _one_message(item: dict[str, Any]) -> list[Message] | None:
    """Messages from one message-like dict, or ``None`` if it is not one."""
    if item.get("lc") == 1 and isinstance(item.get("id"), list) and isinstance(item.get("kwargs"), dict):
        role = normalise_role(str(item["id"][-1]))
        if role is None:
            return None
        kwargs = dict(item["kwargs"])
        kwargs["role"] = role
        return _one_message(kwargs)
    if "message.role" in item or "message.content" in item:
        return _openinference(item)
    if isinstance(item.get("message"), dict) and ("message.role" in item["message"] or "role" in item["message"]):
        inner = item["message"]
        return _openinference(inner) if "message.role" in inner else _one_message(inner)
    kind = item.get("type")
    if kind == "function_call" and "name" in item:
        call = ToolCall(str(item["name"]), as_text(item.get("arguments")), _str(item.get("call_id")))
        return [Message("assistant", tool_calls=(call,))]
    if kind == "function_call_output":
        return [Message("tool", _content_text(item.get("output")), call_id=_str(item.get("call_id")))]
    role = normalise_role(item.get("role"))
    if role is None and kind in _LANGCHAIN_TYPES and "content" in item:
        role = normalise_role(kind)
    if role is None:
        return None
    return _with_role(item, role)


def _with_role(item: dict[str, Any], role: str) -> list[Message]:
    content = item.get("content")
    parts = item.get("parts")
    blocks = parts if isinstance(parts, list) else content if isinstance(content, list) else None
    texts: list[str] = []
    reasoning: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    if blocks is None:
        texts.append(_content_text(content))
    else:
        for block in blocks:
            _read_block(block, texts, reasoning, calls, results)
    calls.extend(_tool_calls(item))
    name = _str(item.get("name"))
    call_id = _str(item.get("tool_call_id") or item.get("tool_use_id"))
    text = "\n".join(t for t in texts if t)
    out: list[Message] = [Message("reasoning", r) for r in reasoning if r]
    if role == "tool" and not results:
        out.append(Message("tool", text, name=name, call_id=call_id, is_error=item.get("status") == "error"))
        return out
    if text or calls or not results:
        out.append(Message(role, text, tool_calls=tuple(calls), name=name if role != "tool" else None))
    out.extend(results)
    return out


def _read_block(
    block: Any, texts: list[str], reasoning: list[str], calls: list[ToolCall], results: list[Message]
) -> None:
    if isinstance(block, str):
        texts.append(block)
        return
    if not isinstance(block, dict):
        texts.append(as_text(block))
        return
    kind = block.get("type")
    if kind in ("tool_call", "tool_use", "function_call") or "function_call" in block:
        fc = block.get("function_call") if isinstance(block.get("function_call"), dict) else block
        args = fc.get("arguments", fc.get("input", fc.get("args")))
        calls.append(ToolCall(str(fc.get("name", "?")), as_text(args), _str(fc.get("id") or block.get("id"))))
    elif kind in ("tool_call_response", "tool_result") or "function_response" in block:
        fr = block.get("function_response") if isinstance(block.get("function_response"), dict) else block
        body = fr.get("response", fr.get("content", fr.get("result")))
        results.append(
            Message(
                "tool",
                _content_text(body),
                name=_str(fr.get("name")),
                call_id=_str(fr.get("id") or fr.get("tool_use_id")),
                is_error=bool(fr.get("is_error")),
            )
        )
    elif kind in ("reasoning", "thinking"):
        reasoning.append(str(block.get("content") or block.get("thinking") or block.get("text") or ""))
    elif "text" in block or kind in ("text", "output_text", "input_text"):
        texts.append(_content_text(block.get("text", block.get("content"))))
    elif "message_content.text" in block:
        texts.append(str(block["message_content.text"]))
    elif kind in ("image", "image_url", "input_image", "file", "blob", "uri"):
        texts.append(f"[{kind}]")
    else:
        texts.append(as_text(block))


def _tool_calls(item: dict[str, Any]) -> list[ToolCall]:
    raw = item.get("tool_calls")
    extra = item.get("additional_kwargs")
    if not raw and isinstance(extra, dict):
        raw = extra.get("tool_calls")
    calls = []
    for call in raw if isinstance(raw, list) else []:
        if not isinstance(call, dict):
            continue
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        args = fn.get("arguments", fn.get("args", fn.get("input")))
        calls.append(ToolCall(str(fn.get("name", "?")), as_text(args), _str(call.get("id"))))
    legacy = item.get("function_call")
    if isinstance(legacy, dict) and "name" in legacy:
        calls.append(ToolCall(str(legacy["name"]), as_text(legacy.get("arguments"))))
    return calls


def _openinference(item: dict[str, Any]) -> list[Message] | None:
    role = normalise_role(item.get("message.role"))
    if role is None:
        return None
    content = item.get("message.content")
    if content is None and isinstance(item.get("message.contents"), list):
        content = [c.get("message_content", c) if isinstance(c, dict) else c for c in item["message.contents"]]
    calls = []
    for call in item.get("message.tool_calls") or []:
        if not isinstance(call, dict):
            continue
        flat = _flatten(call)
        calls.append(
            ToolCall(
                str(flat.get("tool_call.function.name", "?")),
                as_text(flat.get("tool_call.function.arguments")),
                _str(flat.get("tool_call.id")),
            )
        )
    if role == "tool":
        return [Message("tool", _content_text(content), name=_str(item.get("message.name")),
                        call_id=_str(item.get("message.tool_call_id")))]
    return [Message(role, _content_text(content), tool_calls=tuple(calls))]


def unflatten_indexed(attributes: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Collect ``prefix.N.rest`` dotted keys into a list of dicts ``{rest: value}``, ordered by N.

    Examples
    --------
    >>> unflatten_indexed({"a.1.x": 2, "a.0.x": 1}, "a")
    [{'x': 1}, {'x': 2}]
    """
    nested = attributes.get(prefix)
    if isinstance(nested, list):
        return [_flatten(n) if isinstance(n, dict) else {"value": n} for n in nested]
    groups: dict[int, dict[str, Any]] = {}
    start = prefix + "."
    for key, value in attributes.items():
        if not key.startswith(start):
            continue
        index, _, rest = key[len(start):].partition(".")
        if index.isdigit() and rest:
            groups.setdefault(int(index), {})[rest] = value
    result = []
    for index in sorted(groups):
        group = groups[index]
        for list_key in ("message.tool_calls", "message.contents"):
            if any(k.startswith(list_key + ".") for k in group):
                group[list_key] = unflatten_indexed(group, list_key)
        result.append(group)
    return result


def _flatten(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        full = f"{prefix}{key}"
        if isinstance(item, dict):
            flat.update(_flatten(item, full + "."))
        else:
            flat[full] = item
    return flat


def _content_text(content: Any) -> str:
    content = load_json(content) if isinstance(content, str) and content[:1] == '"' else content
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        reasoning: list[str] = []
        calls: list[ToolCall] = []
        results: list[Message] = []
        for block in content:
            _read_block(block, texts, reasoning, calls, results)
        texts.extend(r.content for r in results)
        texts.extend(f"{c.name}({c.arguments})" for c in calls)
        return "\n".join(t for t in texts if t)
    if isinstance(content, dict):
        if isinstance(content.get("text"), str) and len(content) <= 2:
            return content["text"]
        if isinstance(content.get("content"), (str, list)) and len(content) <= 2:
            return _content_text(content["content"])
    return as_text(content)


def _str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)
