"""Pure mapping of Langfuse objects (observation, trace, score) to span / feedback rows.

Used by :mod:`workbench.load.langfuse`, which finds the objects in a file.
Field meanings follow ``formats.md`` A.1 table 2, A.2, A.5.4 and A.6.

Examples
--------
>>> row, _ = observation_row({"id": "AB12CD34EF56AB78", "traceId": "t1", "type": "GENERATION",
...     "name": "chat", "startTime": "2025-01-01T00:00:00Z", "usageDetails": {"input": 3, "output": 4}})
>>> row["span_id"], row["kind"], row["tokens_total"]
('ab12cd34ef56ab78', 'llm', 7)
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import Any

from workbench.load._attrs import kind_from, span_fields_from_attributes
from workbench.load._vendor import (
    as_dict,
    build_feedback_row,
    decode_json,
    duration_ms,
    fill_missing,
    first_present,
    float_or_none,
    int_or_none,
    json_text,
    normalize_id,
    parse_time,
    str_or_none,
    tag_list,
    text_of,
)

TYPE_KINDS = {
    "GENERATION": "llm", "SPAN": "chain", "EVENT": "event", "AGENT": "agent", "TOOL": "tool",
    "CHAIN": "chain", "RETRIEVER": "retriever", "EVALUATOR": "evaluator", "EMBEDDING": "embedding",
    "GUARDRAIL": "guardrail",
}
SCORE_SOURCES = {"ANNOTATION": "human", "EVAL": "llm", "API": "api"}
LEVEL_STATUS = {"ERROR": "error", "WARNING": "ok", "DEFAULT": "ok", "DEBUG": "ok"}
# observation keys that become columns (everything else is kept in ``attributes``)
_OBSERVATION_COLUMNS = frozenset({
    "id", "traceId", "parentObservationId", "name", "type", "startTime", "endTime", "level", "input",
    "output", "model", "providedModelName", "promptName", "promptVersion", "sessionId", "userId", "tags",
    "traceTags",
})
# UI-export columns that hold lists but are not scores
_LIST_COLUMNS = frozenset({"tags", "traceTags", "toolCalls", "toolCallNames", "comments", "observations",
                           "scores", "corrections", "toolDefinitions"})
_SESSION_KEYS = ("session_id", "thread_id", "conversation_id")


class FieldError(ValueError):
    """A field of a record could not be read; ``field`` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _time(record: dict, key: str, bad: list[tuple[str, str]]) -> Any:
    try:
        return parse_time(record.get(key))
    except ValueError as exc:
        bad.append((key, str(exc)))
        return None


def _usage(obs: dict) -> tuple[int | None, int | None, int | None]:
    """Input, output and total tokens from ``usageDetails``, legacy ``usage`` or the export's totals."""
    details = as_dict(obs.get("usageDetails"))
    legacy = as_dict(obs.get("usage"))
    tokens_in = first_present(int_or_none(details.get("input")), int_or_none(legacy.get("input")),
                              int_or_none(legacy.get("promptTokens")))
    tokens_out = first_present(int_or_none(details.get("output")), int_or_none(legacy.get("output")),
                               int_or_none(legacy.get("completionTokens")))
    tokens_total = first_present(int_or_none(details.get("total")), int_or_none(legacy.get("total")),
                                 int_or_none(legacy.get("totalTokens")))
    if tokens_in is None and tokens_out is None and tokens_total is None:
        # the export's flat totals are 0 on every non-generation observation: only trust non-zero
        flat = [int_or_none(obs.get(k)) for k in ("inputUsage", "outputUsage", "totalUsage")]
        if any(v for v in flat if v is not None):
            tokens_in, tokens_out, tokens_total = flat
    if tokens_total is None and tokens_in is not None and tokens_out is not None:
        tokens_total = tokens_in + tokens_out
    return tokens_in, tokens_out, tokens_total


def _cost(obs: dict, kind: str) -> float | None:
    details = as_dict(obs.get("costDetails"))
    if details.get("total") is not None:
        return float_or_none(details["total"])
    if details and details.get("input") is not None and details.get("output") is not None:
        return (float_or_none(details["input"]) or 0.0) + (float_or_none(details["output"]) or 0.0)
    total = float_or_none(first_present(obs.get("totalCost"), obs.get("calculatedTotalCost")))
    if total is not None and (total > 0 or kind == "llm"):
        return total
    return None


def _otel_parts(metadata: dict) -> dict:
    """Raw OTel attributes Langfuse kept inside ``metadata`` (decoded; ``{}`` when none)."""
    return as_dict(metadata.get("attributes"))


def _metadata_fallbacks(metadata: dict, otel: dict) -> dict:
    """Session, user, model and versions from non-OTel metadata keys (LangChain / LangSmith style)."""
    found: dict = {}
    prefix = "langsmith.metadata."
    sources = [metadata, {k[len(prefix):]: v for k, v in otel.items() if k.startswith(prefix)} if otel else {}]
    for source in sources:
        if not source:
            continue
        session = first_present(*(str_or_none(source.get(k)) for k in _SESSION_KEYS))
        candidates = {
            "session_id": session,
            "user_id": str_or_none(source.get("user_id")),
            "model": str_or_none(source.get("ls_model_name")),
            "provider": str_or_none(source.get("ls_provider")),
            "prompt_version": str_or_none(source.get("prompt_version")),
            "app_version": str_or_none(first_present(source.get("app_version"), source.get("revision_id"))),
        }
        for column, value in candidates.items():
            if value is not None:
                found.setdefault(column, value)
    return found


def observation_row(obs: dict, *, trace: dict | None = None, skip: Collection[str] = (),
                    extra: dict | None = None) -> tuple[dict, dict]:
    """One span row from a Langfuse observation (API, v2, UI export or trace download).

    ``trace`` is the enclosing trace object when known (session, user, tags,
    release come from it); ``skip`` names keys mapped elsewhere (UI-export
    score columns); ``extra`` is added to ``attributes``. Returns ``(row, extras)`` where ``extras`` holds
    ``feedback`` (inline annotations found in OTel attributes), ``drift``
    (attribute values of an unexpected type) and ``bad`` (``(field, reason)``
    for values that could not be read; the raw value stays in ``attributes``).

    Raises
    ------
    FieldError
        When the observation has no ``id`` or no trace id.
    """
    trace = trace or {}
    span_id = normalize_id(obs.get("id"))
    if span_id is None:
        raise FieldError("id", "observation without an id")
    trace_id = normalize_id(first_present(obs.get("traceId"), trace.get("id")))
    if trace_id is None:
        raise FieldError("traceId", f"observation {span_id} has no traceId")
    name = str_or_none(obs.get("name"))
    metadata = as_dict(obs.get("metadata"))
    otel = _otel_parts(metadata)
    fields = span_fields_from_attributes(otel, name=name) if otel else {"feedback": [], "drift": []}
    obs_type = str(obs.get("type") or "").upper()
    if obs_type in ("", "SPAN"):
        kind = kind_from(otel, name, vendor_kind="chain")
    else:
        kind = TYPE_KINDS.get(obs_type) or kind_from(otel, name)
    bad: list[tuple[str, str]] = []
    start, end = _time(obs, "startTime", bad), _time(obs, "endTime", bad)
    level = str(obs.get("level") or "").upper()
    status = LEVEL_STATUS.get(level, "unset")
    tokens_in, tokens_out, tokens_total = _usage(obs)
    prompt_version = obs.get("promptVersion")
    row = {
        "trace_id": trace_id,
        "span_id": span_id,
        "parent_span_id": normalize_id(obs.get("parentObservationId")),
        "session_id": str_or_none(first_present(trace.get("sessionId"), obs.get("sessionId"))),
        "user_id": str_or_none(first_present(trace.get("userId"), obs.get("userId"))),
        "name": name,
        "kind": kind,
        "start_time": start,
        "end_time": end,
        "duration_ms": duration_ms(start, end),
        "status": status,
        "error_message": str_or_none(obs.get("statusMessage")) if status == "error" else None,
        "input": text_of(obs.get("input")),
        "output": text_of(obs.get("output")),
        "model": str_or_none(first_present(obs.get("model"), obs.get("providedModelName"))),
        "prompt_name": str_or_none(obs.get("promptName")),
        "prompt_version": None if prompt_version is None else str(prompt_version),
        "app_version": str_or_none(first_present(trace.get("release"), trace.get("version"),
                                                 obs.get("release"), obs.get("version"))),
        "tokens_in": tokens_in,
        "tokens_out": tokens_out,
        "tokens_total": tokens_total,
        "cost_usd": _cost(obs, kind),
        "tags": list(dict.fromkeys(tag_list(trace.get("tags")) + tag_list(obs.get("tags"))
                                   + tag_list(obs.get("traceTags")))),
    }
    if otel:
        fill_missing(row, fields)
    if metadata:
        fill_missing(row, _metadata_fallbacks(metadata, otel))
    kept = {k: decode_json(v) for k, v in obs.items()
            if k not in _OBSERVATION_COLUMNS and k not in skip and v is not None}
    if status == "error":
        kept.pop("statusMessage", None)
    if extra:
        kept.update(extra)
    if metadata:
        kept["metadata"] = {**metadata, "attributes": otel} if otel else metadata
    for key, _ in bad:
        kept[key] = obs.get(key)
    row["attributes"] = json_text(kept) if kept else None
    return row, {"feedback": fields["feedback"], "drift": fields["drift"], "bad": bad}


SYNTHETIC_ROOT = "root span standing for a Langfuse trace exported without observations"


def trace_span_row(trace: dict, *, skip: Collection[str] = ()) -> tuple[dict, list[tuple[str, str]]]:
    """A root span standing for a trace that came without observations (trace list / trace export).

    Returns ``(row, bad)``; raises :class:`FieldError` without an ``id``.
    """
    trace_id = normalize_id(trace.get("id"))
    if trace_id is None:
        raise FieldError("id", "trace without an id")
    bad: list[tuple[str, str]] = []
    start = _time(trace, "timestamp", bad)
    latency = float_or_none(trace.get("latency"))
    end = None
    if start is not None and latency is not None:
        end = start + timedelta(seconds=latency)
    metadata = as_dict(trace.get("metadata"))
    kept = {k: decode_json(v) for k, v in trace.items() if k not in ("id", "name", "input", "output", "sessionId",
                                                                      "userId", "tags", "metadata")
            and k not in skip and v is not None}
    kept["metadata"] = metadata or trace.get("metadata")
    kept["synthetic"] = SYNTHETIC_ROOT
    row = {
        "trace_id": trace_id,
        "span_id": trace_id,
        "parent_span_id": None,
        "session_id": str_or_none(trace.get("sessionId")),
        "user_id": str_or_none(trace.get("userId")),
        "name": str_or_none(trace.get("name")),
        "kind": "chain",
        "start_time": start,
        "end_time": end,
        "duration_ms": duration_ms(start, end),
        "status": "unset",
        "input": text_of(trace.get("input")),
        "output": text_of(trace.get("output")),
        "app_version": str_or_none(first_present(trace.get("release"), trace.get("version"))),
        "cost_usd": float_or_none(trace.get("totalCost")),
        "tags": tag_list(trace.get("tags")),
        "attributes": json_text({k: v for k, v in kept.items() if v is not None}),
    }
    fill_missing(row, _metadata_fallbacks(metadata, {}))
    return row, bad


def trace_extras(trace: dict) -> dict:
    """The trace object's own fields (minus observations and scores), kept on its root spans."""
    return {k: decode_json(v) for k, v in trace.items()
            if k not in ("observations", "scores", "corrections") and v is not None}


def score_row(score: dict) -> dict:
    """One feedback row from a Langfuse score (``trace.scores``, scores API, corrections).

    Target: ``observationId`` (span) > ``traceId`` (trace) > ``sessionId`` (session).

    Raises
    ------
    FieldError
        When the score has no name or no target.
    """
    name = str_or_none(score.get("name"))
    if name is None:
        raise FieldError("name", "score without a name")
    trace_id = normalize_id(score.get("traceId"))
    observation_id = normalize_id(score.get("observationId"))
    session_id = str_or_none(score.get("sessionId"))
    if observation_id is not None:
        level, target = "span", observation_id
    elif trace_id is not None:
        level, target = "trace", trace_id
    elif session_id is not None:
        level, target = "session", session_id
    else:
        raise FieldError("traceId", f"score {name!r} has no observationId, traceId or sessionId")
    data_type = str(score.get("dataType") or "").upper()
    value, string_value = score.get("value"), str_or_none(score.get("stringValue"))
    value_num = value_label = value_text = None
    if data_type in ("NUMERIC", "BOOLEAN") or (not data_type and isinstance(value, int | float)):
        value_num = float_or_none(value)
        value_label = string_value if data_type == "BOOLEAN" else None
    elif data_type == "CATEGORICAL" or (not data_type and isinstance(value, str)):
        value_label = string_value or str_or_none(value)
    else:  # TEXT, CORRECTION
        value_text = str_or_none(first_present(score.get("longStringValue"), string_value,
                                               value if isinstance(value, str) else None))
    if value_text is None:
        value_text = str_or_none(score.get("comment"))
    try:
        created = parse_time(first_present(score.get("timestamp"), score.get("createdAt")))
    except ValueError as exc:
        raise FieldError("timestamp", str(exc)) from None
    source = str(score.get("source") or "").upper()
    return build_feedback_row(
        name, target_level=level, target_id=target, trace_id=trace_id,
        value_num=value_num, value_label=value_label, value_text=value_text,
        annotator_kind=SCORE_SOURCES.get(source),
        annotator_id=str_or_none(first_present(score.get("authorUserId"), score.get("configId"))),
        created_at=created,
    )


def score_columns(record: dict) -> set[str]:
    """Keys of a UI-export row holding scores: one column per score name, each a list of values."""
    return {
        key for key, value in record.items()
        if key not in _LIST_COLUMNS and isinstance(values := decode_json(value), list) and values
        and all(isinstance(v, int | float | str) and not isinstance(v, bool) for v in values)
    }


def score_column_rows(record: dict, columns: Collection[str], *, level: str, target_id: str,
                      trace_id: str) -> list[dict]:
    """Feedback rows from a UI export's score ``columns`` (numbers -> value_num, text -> value_label)."""
    rows = []
    for key in sorted(columns):
        for item in decode_json(record[key]):
            number = item if isinstance(item, int | float) else None
            rows.append({
                "target_level": level, "target_id": target_id, "trace_id": trace_id, "name": key,
                "value_num": float(number) if number is not None else None,
                "value_label": item if isinstance(item, str) else None,
            })
    return rows
