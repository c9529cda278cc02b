"""Read exported files back into item frames (round trips and downstream use).

:func:`read_export` returns the item columns a format carries:

- ``jsonl``, ``parquet``, ``csv``, ``huggingface``: every item column
  (:data:`~workbench.export.writers.EXPORT_COLUMNS`);
- ``inspect``, ``langfuse``, ``promptfoo``, ``phoenix``: ``item_id`` (from the
  item's metadata), ``input``, ``messages``, ``expected``, ``output`` (the original
  output, kept in the format's metadata), ``metadata`` and what the format keeps besides (``trace_id``/``span_id`` for Langfuse, ``split`` for Phoenix);
- ``openai_evals``, ``openai_chat``: ``messages`` and ``expected``, in file order.

Examples
--------
>>> import tempfile
>>> from workbench.export.writers import write_format
>>> read_export.__name__
'read_export'
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from workbench.export.items import EVAL_ITEMS, MESSAGE
from workbench.export.writers import _LIST_COLUMNS, CSV_TIME_FORMAT, EXPORT_COLUMNS, FORMATS, check_formats

_ITEM_SCHEMA = {c: EVAL_ITEMS[c] for c in EXPORT_COLUMNS}
_MESSAGES = pl.List(MESSAGE)


def _lines(path: Path) -> list[dict[str, Any]]:
    out = []
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                out.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not valid JSON ({exc})") from exc
    return out


def _meta_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _messages_of(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return [{"role": m.get("role"), "content": m.get("content")} for m in value or []]


def _last_user(messages: list[dict[str, Any]]) -> str | None:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pl.DataFrame:
    schema = {c: _ITEM_SCHEMA[c] for c in columns}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def _read_jsonl(path: Path) -> pl.DataFrame:
    rows = []
    for record in _lines(path):
        record["metadata"] = _meta_text(record.get("metadata"))
        record["trace_start_time"] = _time(record.get("trace_start_time"))
        rows.append({c: record.get(c) for c in EXPORT_COLUMNS})
    return _frame(rows, list(EXPORT_COLUMNS))


def _read_csv(path: Path) -> pl.DataFrame:
    raw = pl.read_csv(path, schema={c: pl.String for c in EXPORT_COLUMNS})
    nulls_as_empty = [c for c in EXPORT_COLUMNS if c not in _LIST_COLUMNS]
    return raw.with_columns(
        [pl.col(c).str.json_decode(_ITEM_SCHEMA[c]) for c in _LIST_COLUMNS]
        + [pl.col("trace_start_time").str.to_datetime(CSV_TIME_FORMAT, time_zone="UTC", time_unit="us")]
        + [pl.col(c).cast(_ITEM_SCHEMA[c]) for c in nulls_as_empty if c != "trace_start_time"]
    ).select(EXPORT_COLUMNS)


def _read_huggingface(path: Path) -> pl.DataFrame:
    files = sorted((path / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no parquet files under {path / 'data'}")
    return pl.concat([pl.read_parquet(f) for f in files]).select(EXPORT_COLUMNS)


def _from_item_records(records: list[dict[str, Any]], extra: dict[str, str]) -> pl.DataFrame:
    """Rows of ``item_id, input, messages, expected, metadata`` (+ ``extra`` columns)."""
    rows = []
    for r in records:
        meta = dict(r["metadata"] or {})
        output = meta.pop("output", None)  # the writers add the original output to the metadata
        row = {
            "item_id": meta.get("item_id"),
            "input": r["input"],
            "messages": r["messages"],
            "expected": r["expected"],
            "output": output,
            "metadata": _meta_text(meta),
        }
        row.update({c: r.get(c) for c in extra})
        rows.append(row)
    return _frame(rows, ["item_id", "input", "messages", "expected", "output", "metadata", *extra])


def _conversation_record(record: dict[str, Any], expected: Any) -> dict[str, Any]:
    """An item record from a line whose ``input`` is the conversation (Inspect, Langfuse)."""
    messages = _messages_of(record.get("input"))
    return {
        "input": _last_user(messages),
        "messages": messages,
        "expected": expected,
        "metadata": record.get("metadata") or {},
    }


def _read_inspect(path: Path) -> pl.DataFrame:
    records = [_conversation_record(r, r.get("target") or None) for r in _lines(path)]
    return _from_item_records(records, {})


def _read_langfuse(path: Path) -> pl.DataFrame:
    records = [
        _conversation_record(r, r.get("expectedOutput"))
        | {"trace_id": r.get("sourceTraceId"), "span_id": r.get("sourceObservationId")}
        for r in _lines(path)
    ]
    return _from_item_records(records, {"trace_id": "trace_id", "span_id": "span_id"})


def _read_promptfoo(path: Path) -> pl.DataFrame:
    records = []
    for r in _lines(path):
        assertions = r.get("assert") or []
        variables = r.get("vars") or {}
        records.append(
            {
                "input": variables.get("input"),
                "messages": _messages_of(variables.get("messages")),
                "expected": assertions[0].get("value") if assertions else None,
                "metadata": r.get("metadata"),
            }
        )
    return _from_item_records(records, {})


def _read_phoenix(path: Path) -> pl.DataFrame:
    body = orjson.loads(path.read_bytes())
    records = [
        {
            "input": i.get("input"),
            "messages": _messages_of(i.get("messages")),
            "expected": o.get("expected"),
            "metadata": m,
            "split": s,
        }
        for i, o, m, s in zip(body["inputs"], body["outputs"], body["metadata"], body["splits"], strict=True)
    ]
    return _from_item_records(records, {"split": "split"})


def _read_openai(path: Path, *, chat: bool) -> pl.DataFrame:
    rows = []
    for r in _lines(path):
        messages = r["messages"] if chat else r["input"]
        expected = messages[-1]["content"] if chat else r.get("ideal")
        if chat:
            messages = messages[:-1]
        messages = [m for m in _messages_of(messages) if m["role"] != "system"]
        rows.append({"messages": messages, "expected": expected})
    return _frame(rows, ["messages", "expected"])


_READERS = {
    "jsonl": _read_jsonl,
    "parquet": lambda p: pl.read_parquet(p).select(EXPORT_COLUMNS),
    "csv": _read_csv,
    "huggingface": _read_huggingface,
    "inspect": _read_inspect,
    "langfuse": _read_langfuse,
    "promptfoo": _read_promptfoo,
    "phoenix": _read_phoenix,
    "openai_evals": lambda p: _read_openai(p, chat=False),
    "openai_chat": lambda p: _read_openai(p, chat=True),
}


def read_export(path: str | os.PathLike[str], *, format: str | None = None) -> pl.DataFrame:
    """Read one exported file (or a version directory plus ``format``) back into items.

    Parameters
    ----------
    path
        The written file, the ``hf`` folder, or an export version directory (then
        ``format`` picks the file inside it).
    format
        One of :data:`~workbench.export.writers.FORMATS`; guessed from the file name
        when omitted.
    """
    target = Path(path)
    if format is None:
        format = next((f for f, (name, _w) in FORMATS.items() if target.name == name), None)
        if format is None:
            raise ValueError(f"cannot tell the export format of {target}; pass format=")
    check_formats([format])
    if target.is_dir() and target.name != FORMATS[format][0]:
        target = target / FORMATS[format][0]
    if not target.exists():
        raise FileNotFoundError(f"no {format} export at {target}")
    return _READERS[format](target)
