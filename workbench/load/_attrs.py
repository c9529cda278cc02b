"""OTel attribute dicts (OpenInference and GenAI, old and new names) -> span columns.

Every reader whose spans carry OTel-style attributes (OTLP, Phoenix, MLflow,
Langfuse's OTel-ingested metadata) maps them here, so that one table of
priorities decides ``kind``, ``model``, tokens and the rest (``formats.md``
A.1, A.2, A.4). Each mapped key is *consumed*; every other key stays in the
returned ``attributes`` dict, which readers store as JSON text, so nothing is
lost. A value whose type drifted (tokens as ``"12"`` are converted; tokens as
a dict are not) is never nulled silently: it stays in ``attributes`` and is
listed in ``drift``.

Example
-------
>>> fields = span_fields_from_attributes({"openinference.span.kind": "LLM",
...     "llm.model_name": "gpt-4o", "llm.token_count.prompt": "12", "foo": 1})
>>> fields["kind"], fields["model"], fields["tokens_in"], fields["attributes"]
('llm', 'gpt-4o', 12, {'foo': 1})
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import orjson

from workbench.schema import SPAN_KINDS

OPENINFERENCE_KINDS = {
    "LLM": "llm", "TOOL": "tool", "AGENT": "agent", "CHAIN": "chain", "RETRIEVER": "retriever",
    "EMBEDDING": "embedding", "RERANKER": "reranker", "GUARDRAIL": "guardrail",
    "EVALUATOR": "evaluator", "PROMPT": "prompt", "UNKNOWN": "other",
}
GENAI_OPERATIONS = {
    "chat": "llm", "text_completion": "llm", "generate_content": "llm", "completion": "llm",
    "execute_tool": "tool", "invoke_agent": "agent", "create_agent": "agent",
    "invoke_workflow": "chain", "plan": "chain", "retrieval": "retriever", "search_memory": "retriever",
    "embeddings": "embedding",
}
# (name prefix, kind): GenAI span names are "{operation} {target}"
_NAME_PREFIXES = tuple((op + " ", kind) for op, kind in GENAI_OPERATIONS.items()) + (
    ("chatcompletion", "llm"), ("openai.chat", "llm"), ("llm", "llm"), ("tool", "tool"),
    ("retriev", "retriever"), ("embedding", "embedding"), ("rerank", "reranker"),
    ("guardrail", "guardrail"), ("agent", "agent"),
)

# column -> attribute keys, first present wins
STRING_KEYS: dict[str, tuple[str, ...]] = {
    "session_id": ("gen_ai.conversation.id", "session.id"),
    "user_id": ("user.id", "enduser.id"),
    "model": ("llm.model_name", "gen_ai.response.model", "llm.response.model_name",
              "gen_ai.request.model", "llm.request.model_name"),
    "provider": ("llm.provider", "gen_ai.provider.name", "gen_ai.system", "llm.system"),
    "prompt_name": ("gen_ai.prompt.name", "llm.prompt_template.name", "prompt.id"),
    "prompt_version": ("llm.prompt_template.version", "gen_ai.prompt.version"),
    "app_version": ("app.version", "service.version"),
    "error_type": ("exception.type", "error.type"),
    "error_message": ("exception.message",),
}
INT_KEYS: dict[str, tuple[str, ...]] = {
    "tokens_in": ("llm.token_count.prompt", "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens"),
    "tokens_out": ("llm.token_count.completion", "gen_ai.usage.output_tokens",
                   "gen_ai.usage.completion_tokens"),
    "tokens_total": ("llm.token_count.total", "gen_ai.usage.total_tokens"),
}
FLOAT_KEYS: dict[str, tuple[str, ...]] = {"cost_usd": ("llm.cost.total", "gen_ai.usage.cost")}
INPUT_KEYS = ("input.value", "gen_ai.input.messages", "gen_ai.prompt")
OUTPUT_KEYS = ("output.value", "gen_ai.output.messages", "gen_ai.completion")
TAG_KEYS = ("tag.tags",)
METADATA_KEY = "metadata"

_INPUT_MESSAGES = "llm.input_messages."
_OUTPUT_MESSAGES = "llm.output_messages."
_FEEDBACK_PREFIXES = (
    ("trace.annotations.", "trace"), ("session.annotations.", "session"),
    ("annotations.", "span"), ("evaluations.", "span"),
)
_FEEDBACK_FIELDS = ("name", "score", "label", "explanation", "annotator_kind")
# "annotations.0.annotation.score" -> index 0, field "score"
_FEEDBACK_KEY = re.compile(r"^(\d+)\.(?:annotation|evaluation)\.(\w+)$")
_WRAPPERS = frozenset({"message", "tool_call", "message_content", "document", "tool", "embedding"})
_INT_TEXT = re.compile(r"^[+-]?\d+$")


def otlp_attributes_to_dict(key_values: Iterable[Mapping] | None) -> dict:
    """Decode an OTLP ``[{"key": ..., "value": AnyValue}]`` list into a plain dict.

    ``intValue`` (a decimal string in OTLP JSON, a number in some writers)
    becomes an int; ``arrayValue`` a list, ``kvlistValue`` a dict, ``bytesValue``
    stays base64 text. A repeated key keeps the last value (OTLP semantics).

    >>> otlp_attributes_to_dict([{"key": "n", "value": {"intValue": "3"}}])
    {'n': 3}
    """
    out: dict = {}
    for item in key_values or ():
        if isinstance(item, Mapping) and "key" in item:
            out[str(item["key"])] = any_value(item.get("value"))
    return out


def any_value(value: object) -> object:
    """One OTLP ``AnyValue`` as a Python value (``None`` for an empty one)."""
    if not isinstance(value, Mapping):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        raw = value["intValue"]
        if isinstance(raw, str) and _INT_TEXT.match(raw):
            number = int(raw)
            return number if -(2**63) <= number < 2**63 else raw
        return raw
    if "doubleValue" in value:
        raw = value["doubleValue"]
        if isinstance(raw, str):  # proto3 JSON may write "NaN", "Infinity", "1.5"
            try:
                number = float(raw)
            except ValueError:
                return raw
            return number if number == number and abs(number) != float("inf") else raw
        return raw
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        values = (value["arrayValue"] or {}).get("values") or []
        return [any_value(v) for v in values]
    if "kvlistValue" in value:
        return otlp_attributes_to_dict((value["kvlistValue"] or {}).get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def kind_from(attrs: Mapping, name: str | None = None, *, vendor_kind: str | None = None) -> str:
    """The common span kind: OpenInference kind > GenAI operation > vendor kind > name > ``other``.

    >>> kind_from({"gen_ai.operation.name": "execute_tool"})
    'tool'
    """
    oi = attrs.get("openinference.span.kind")
    if isinstance(oi, str) and oi.upper() in OPENINFERENCE_KINDS:
        return OPENINFERENCE_KINDS[oi.upper()]
    op = attrs.get("gen_ai.operation.name")
    if isinstance(op, str) and op.lower() in GENAI_OPERATIONS:
        return GENAI_OPERATIONS[op.lower()]
    if vendor_kind in SPAN_KINDS:
        return vendor_kind
    lowered = (name or "").lower()
    for prefix, kind in _NAME_PREFIXES:
        if lowered.startswith(prefix):
            return kind
    return "other"


def span_fields_from_attributes(attrs: Mapping, *, name: str | None = None) -> dict:
    """Map an attribute dict to span columns; unmapped keys stay in ``attributes``.

    Returns a dict with the span columns that were found (``kind`` always;
    ``session_id, user_id, input, output, model, provider, prompt_name,
    prompt_version, app_version, tokens_in, tokens_out, tokens_total, cost_usd,
    tags, error_type, error_message`` when present), plus ``attributes`` (the
    leftover dict), ``feedback`` (rows from inline OpenInference annotations,
    each with a ``target_level`` of span / trace / session) and ``drift``
    (``(attribute_key, description)`` for values whose type did not fit).
    """
    rest = dict(attrs)
    drift: list[tuple[str, str]] = []
    fields: dict = {"kind": kind_from(attrs, name)}
    oi_kind = rest.get("openinference.span.kind")
    if isinstance(oi_kind, str) and OPENINFERENCE_KINDS.get(oi_kind.upper()) == fields["kind"] != "other":
        del rest["openinference.span.kind"]  # fully represented by ``kind``
    for column, keys in STRING_KEYS.items():
        _take(fields, column, rest, keys, _as_text, drift)
    for column, keys in INT_KEYS.items():
        _take(fields, column, rest, keys, _as_int, drift)
    for column, keys in FLOAT_KEYS.items():
        _take(fields, column, rest, keys, _as_float, drift)
    if "cost_usd" not in fields:
        parts = [rest.get("llm.cost.prompt"), rest.get("llm.cost.completion")]
        numbers = [_as_float(p) for p in parts]
        if all(n is not _MISSING for n in numbers) and all(p is not None for p in parts):
            fields["cost_usd"] = numbers[0] + numbers[1]
    if "tokens_total" not in fields and "tokens_in" in fields and "tokens_out" in fields:
        fields["tokens_total"] = fields["tokens_in"] + fields["tokens_out"]
    _take(fields, "tags", rest, TAG_KEYS, _as_tags, drift)
    _take_messages(fields, "input", rest, _INPUT_MESSAGES, INPUT_KEYS)
    _take_messages(fields, "output", rest, _OUTPUT_MESSAGES, OUTPUT_KEYS)
    if "output" not in fields and any(k.startswith("retrieval.documents.") for k in rest):
        fields["output"] = _dumps(_unflatten_list(rest, "retrieval.documents.", consume=False))
    if "prompt_version" not in fields or "app_version" not in fields:
        metadata = _as_mapping(rest.get(METADATA_KEY))
        for column in ("prompt_version", "app_version"):
            value = _as_text(metadata.get(column)) if metadata else _MISSING
            if column not in fields and value is not _MISSING and value is not None:
                fields[column] = value
    fields["feedback"] = _take_feedback(rest)
    fields["attributes"] = rest
    fields["drift"] = drift
    return fields


_MISSING = object()


def _take(fields: dict, column: str, rest: dict, keys: tuple[str, ...], convert, drift: list) -> None:
    for key in keys:
        if key not in rest or rest[key] is None:
            continue
        value = convert(rest[key])
        if value is _MISSING:
            drift.append((key, f"{column} expected, got {type(rest[key]).__name__} {_short(rest[key])}"))
            continue  # keep the raw value in attributes, try the next key
        fields[column] = value
        del rest[key]
        return


def _short(value: object) -> str:
    return _dumps(value)[:80]


def _as_text(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return _MISSING


def _as_int(value: object) -> object:
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.match(text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            return _MISSING
        return int(number) if number.is_integer() else _MISSING
    return _MISSING


def _as_float(value: object) -> object:
    if isinstance(value, bool):
        return _MISSING
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return _MISSING
        return number if number == number else _MISSING
    return _MISSING


def _as_tags(value: object) -> object:
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return _MISSING


def _as_mapping(value: object) -> Mapping | None:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.startswith("{"):
        try:
            decoded = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
        return decoded if isinstance(decoded, dict) else None
    return None


def _dumps(value: object) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _take_messages(fields: dict, column: str, rest: dict, prefix: str, value_keys: tuple[str, ...]) -> None:
    """Flattened OpenInference messages first (structured), then the plain value keys."""
    if any(k.startswith(prefix) for k in rest):
        fields[column] = _dumps(_unflatten_list(rest, prefix, consume=True))
        return
    for key in value_keys:
        if rest.get(key) is not None:
            fields[column] = _dumps(rest.pop(key))
            return


def _unflatten_list(rest: dict, prefix: str, *, consume: bool) -> list:
    """``prefix.N.message.role`` style keys back into ``[{"role": ...}, ...]``."""
    root: dict = {}
    for key in [k for k in rest if k.startswith(prefix)]:
        value = rest.pop(key) if consume else rest[key]
        _insert(root, key[len(prefix):].split("."), value)
    return _listify(root)


def _insert(node: dict, parts: list[str], value: object) -> None:
    i = 0
    while i < len(parts) - 1:
        part = parts[i]
        if part.isdigit() and parts[i + 1] in _WRAPPERS and i + 2 < len(parts):
            node = node.setdefault(part, {})
            i += 2  # drop the "message" / "tool_call" wrapper after an index
            continue
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
        i += 1
    node[parts[-1]] = value


def _listify(node: object) -> object:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


def _take_feedback(rest: dict) -> list[dict]:
    """Inline OpenInference annotations / evaluations -> feedback rows (consumed)."""
    found: dict[tuple[str, str, str], dict] = {}
    for key in list(rest):
        for prefix, level in _FEEDBACK_PREFIXES:
            if not key.startswith(prefix):
                continue
            match = _FEEDBACK_KEY.match(key[len(prefix):])
            if match and match.group(2) in _FEEDBACK_FIELDS:
                found.setdefault((prefix, match.group(1), level), {})[match.group(2)] = rest.pop(key)
            break
    rows = []
    for (_, _, level), item in sorted(found.items(), key=lambda kv: (kv[0][0], int(kv[0][1]))):
        score = _as_float(item.get("score")) if item.get("score") is not None else None
        kind = item.get("annotator_kind")
        rows.append({
            "target_level": level,
            "name": _as_text(item.get("name")) if item.get("name") is not None else None,
            "value_num": None if score is _MISSING else score,
            "value_label": None if item.get("label") is None else _dumps(item["label"]),
            "value_text": None if item.get("explanation") is None else _dumps(item["explanation"]),
            "annotator_kind": _annotator_kind(kind),
        })
        if score is _MISSING:  # keep a non-numeric score as the label
            rows[-1]["value_label"] = rows[-1]["value_label"] or _dumps(item["score"])
    return rows


def _annotator_kind(kind: object) -> str | None:
    if not isinstance(kind, str):
        return None
    lowered = kind.lower()
    return lowered if lowered in ("human", "llm", "code") else "api"
