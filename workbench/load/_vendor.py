"""Small value helpers shared by the vendor-format readers.

Langfuse, LangSmith, OpenAI Agents, MLflow and Phoenix exports disagree on
how they spell times, ids and nested JSON. These pure functions turn one value
at a time into what the spans table wants; :func:`spans_frame` and
:func:`feedback_frame` build the typed frames from row dicts.

Examples
--------
>>> decode_json('"{\\\\"a\\\\": 1}"')
{'a': 1}
>>> text_of({"role": "user"})
'{"role":"user"}'
>>> normalize_id("0AF7651916CD43DD8448EB211C80319C")
'0af7651916cd43dd8448eb211c80319c'
>>> parse_time("2025-06-11T09:00:00.250Z").isoformat()
'2025-06-11T09:00:00.250000+00:00'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from workbench import schema
from workbench.load._base import Problem, raise_or_collect
from workbench.load._records import excerpt

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX_TAIL = re.compile(r"(?P<prefix>[A-Za-z]+[-_])?(?P<hex>[0-9A-Fa-f]{8,}(?:-[0-9A-Fa-f]+)*)")
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
SPAN_COLUMNS = [c for c in schema.SPANS if c not in schema.SPAN_ANOMALY_FLAGS]
# columns that attribute mapping (``_attrs.span_fields_from_attributes``) may fill
ATTRIBUTE_COLUMNS = (
    "session_id", "user_id", "input", "output", "model", "provider", "prompt_name", "prompt_version",
    "app_version", "tokens_in", "tokens_out", "tokens_total", "cost_usd", "tags", "error_type",
    "error_message",
)
# problem reasons (the same words as the OTLP reader's)
REASON_MISSING_FIELD = "missing required field"
REASON_BAD_VALUE = "bad field value"
REASON_TYPE_DRIFT = "type drift"


def decode_json(value: Any, *, max_depth: int = 2) -> Any:
    """Decode JSON held inside a string, at most ``max_depth`` times.

    Only strings that look like a JSON object, array or string literal are
    decoded; anything else (plain text, numbers, dicts) comes back unchanged.
    """
    for _ in range(max_depth):
        if not isinstance(value, str):
            return value
        stripped = value.strip()
        if not stripped or stripped[0] not in '{["':
            return value
        try:
            value = orjson.loads(stripped)
        except orjson.JSONDecodeError:
            return value
    return value


def json_text(value: Any) -> str | None:
    """Compact JSON text of any value (``None`` stays ``None``); never raises."""
    if value is None:
        return None
    return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def text_of(value: Any) -> str | None:
    """The text of an input/output value: strings as they are, JSON kept as text.

    JSON-encoded strings are decoded first (at most twice), so a double-encoded
    ``"\\"{...}\\""`` becomes the object's JSON text; empty values become ``None``.
    """
    value = decode_json(value)
    if value is None:
        return None
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict | list) and not value:
        return None
    return json_text(value)


def normalize_id(value: Any) -> str | None:
    """An id as an opaque string, lower-cased where it is hex (keeps ``tr-``/``span_`` prefixes).

    For path-like ids (MLflow v4 ``trace:/<location>/<hex>``) only the last
    segment is considered, so the location keeps its case.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    if text.islower() and "/" not in text:  # already lower-case (the common case): nothing to do
        return text
    head, sep, tail = text.rpartition("/")
    match = _HEX_TAIL.fullmatch(tail)
    if match:
        tail = (match["prefix"] or "") + match["hex"].lower()
    return head + sep + tail


def _from_epoch_number(number: float) -> datetime:
    magnitude = abs(number)
    if magnitude >= 1e17:
        micros = int(number) // 1000  # nanoseconds
    elif magnitude >= 1e14:
        micros = int(number)  # microseconds
    elif magnitude >= 1e11:
        micros = round(number * 1000)  # milliseconds
    else:
        micros = round(number * 1_000_000)  # seconds
    return _EPOCH + timedelta(microseconds=micros)


def parse_time(value: Any) -> datetime | None:
    """A UTC datetime (microseconds) from ISO-8601 text, epoch numbers or datetimes.

    Epoch numbers (and decimal strings) are read as seconds, milliseconds,
    microseconds or nanoseconds by magnitude. Naive datetimes are taken as UTC.

    Raises
    ------
    ValueError
        When the value is not a time.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, bool):
        raise ValueError(f"not a time: {value!r}")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"not a time: {value!r}")
        return _from_epoch_number(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if _NUMBER.fullmatch(text):
            return _from_epoch_number(float(text) if "." in text else int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 time: {value!r}") from None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    raise ValueError(f"not a time: {value!r}")


def int_or_none(value: Any) -> int | None:
    """An integer count from ints, integral floats or numeric strings; else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return int(float(value))
    return None


def float_or_none(value: Any) -> float | None:
    """A float from numbers or numeric strings (Decimal text too); else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def str_or_none(value: Any) -> str | None:
    """A non-empty string (numbers stringified) or ``None``."""
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value)
    return text if text.strip() else None


def duration_ms(start: datetime | None, end: datetime | None) -> float | None:
    """Milliseconds between two datetimes, ``None`` if either is missing."""
    if start is None or end is None:
        return None
    return (end - start) / timedelta(milliseconds=1)


def first_present(*values: Any) -> Any:
    """The first value that is not ``None`` (or an empty string)."""
    for value in values:
        if value is not None and value != "":
            return value
    return None


def as_dict(value: Any) -> dict:
    """A dict from a dict or JSON-encoded dict; anything else gives ``{}``."""
    value = decode_json(value)
    return value if isinstance(value, dict) else {}


def tag_list(value: Any) -> list[str]:
    """A list of tag strings from a list, JSON list text or comma-free scalar."""
    value = decode_json(value)
    if value is None or value == "":
        return []
    if isinstance(value, list | tuple):
        return [str(v) for v in value if v is not None and v != ""]
    return [str(value)]


def fill_missing(row: dict, fields: Mapping[str, Any]) -> dict:
    """Copy ``fields`` (from attribute mapping) into ``row`` where the row has no value yet.

    Returns the mapped values that lost to a different value already on the
    row (``{column: value}``), so the caller can keep them in ``attributes``.
    """
    unused = {}
    for column in ATTRIBUTE_COLUMNS:
        value = fields.get(column)
        if value is None:
            continue
        if row.get(column) in (None, "", []):
            row[column] = value
        elif row[column] != value:
            unused[column] = value
    return unused


def build_feedback_row(name: str | None, *, target_level: str, target_id: str | None, trace_id: str | None,
                       value_num: float | None = None, value_label: str | None = None,
                       value_text: str | None = None, annotator_kind: str | None = None,
                       annotator_id: str | None = None, created_at: datetime | None = None,
                       source_format: str | None = None) -> dict:
    """One feedback row (the ``schema.FEEDBACK`` columns a reader knows) for feedback ``name``.

    >>> build_feedback_row("resolved", target_level="trace", target_id="t1", trace_id="t1", value_num=1.0)["value_num"]
    1.0
    """
    return {
        "target_level": target_level, "target_id": target_id, "trace_id": trace_id, "name": name,
        "value_num": value_num, "value_label": value_label, "value_text": value_text,
        "annotator_kind": annotator_kind, "annotator_id": annotator_id, "created_at": created_at,
        "source_format": source_format,
    }


def inline_feedback(entries: list[dict], row: Mapping[str, Any]) -> tuple[list[dict], list[str]]:
    """Feedback rows for inline annotations (``_attrs`` feedback entries) found on span ``row``.

    A span-level annotation on a root span describes the whole trace; a
    session annotation needs the span's ``session_id``. Returns the rows and
    the names of session annotations that had no session to attach to.
    """
    rows, homeless = [], []
    for entry in entries:
        level = entry["target_level"]
        if level == "span" and row.get("parent_span_id") is None:
            level = "trace"
        target = {"span": row.get("span_id"), "trace": row.get("trace_id"), "session": row.get("session_id")}[level]
        if target is None:
            homeless.append(str(entry.get("name")))
            continue
        rows.append({**entry, "target_level": level, "target_id": target, "trace_id": row.get("trace_id"),
                     "created_at": row.get("end_time")})
    return rows, homeless


def page_items(record: object, *, not_a_page_key: str, page_key: str = "data") -> Iterator[tuple[object, str]]:
    """The items of one record with a ``where`` prefix for problem messages.

    A JSON list gives its elements (``"item 3: "``); an API page
    ``{page_key: [...]}`` gives the page's items (``"data[3]: "``) unless it
    holds ``not_a_page_key`` (then it is one item of its own, as is anything else).

    >>> list(page_items({"data": [{"id": 1}]}, not_a_page_key="trace"))
    [({'id': 1}, 'data[0]: ')]
    >>> list(page_items([7], not_a_page_key="trace")), list(page_items({"trace": {}}, not_a_page_key="trace"))
    ([(7, 'item 0: ')], [({'trace': {}}, '')])
    """
    if isinstance(record, list):
        for index, item in enumerate(record):
            yield item, f"item {index}: "
    elif isinstance(record, dict) and isinstance(record.get(page_key), list) and not_a_page_key not in record:
        for index, item in enumerate(record[page_key]):
            yield item, f"{page_key}[{index}]: "
    else:
        yield record, ""


class ProblemLog:
    """Where a reader reports bad records of one file: collected as problems, or raised with ``strict``."""

    def __init__(self, source: str, problems: list[Problem], strict: bool):
        self.source = source
        self.problems = problems
        self.strict = strict

    def problem(self, line: int | None, offset: int | None, reason: str, field: str | None, detail: str,
                record: object = None) -> None:
        """Report one problem; ``record`` (the bad object) gives the excerpt."""
        shown = excerpt(json_text(record).encode()) if record is not None else None
        raise_or_collect(self.problems, Problem(self.source, line, offset, reason, field=field, detail=detail,
                                                excerpt=shown), strict=self.strict)


def _frame(rows: list[Mapping[str, Any]], columns: Mapping[str, pl.DataType]) -> pl.DataFrame:
    # column lists, not row dicts: polars builds list columns from row dicts one Series per row
    data = {name: [row.get(name) for row in rows] for name in columns}
    return pl.DataFrame(data, schema=dict(columns))


def spans_frame(rows: list[Mapping[str, Any]]) -> pl.DataFrame:
    """Typed spans frame (``schema.SPANS`` minus anomaly flags) from row dicts."""
    return _frame(rows, {c: schema.SPANS[c] for c in SPAN_COLUMNS})


def feedback_frame(rows: list[Mapping[str, Any]]) -> pl.DataFrame:
    """Typed feedback frame (``schema.FEEDBACK``) from row dicts."""
    return _frame(rows, schema.FEEDBACK)
