"""Writers for every export format; each file is written atomically.

=================  =============================  ==============================================
format             file                           shape
=================  =============================  ==============================================
``jsonl``          ``items.jsonl``                every item column; ``metadata`` as an object
``parquet``        ``items.parquet``              every item column, typed
``csv``            ``items.csv``                  lists, messages and metadata as JSON text
``openai_evals``   ``openai_evals.jsonl``         ``{"input": [messages], "ideal": expected}``
``openai_chat``    ``openai_chat.jsonl``          ``{"messages": [..., assistant: expected]}``
``inspect``        ``inspect.jsonl``              Inspect AI samples: ``id, input, target, metadata``
``promptfoo``      ``promptfoo_tests.jsonl``      promptfoo tests: ``description, vars, assert, metadata``
``langfuse``       ``langfuse_items.jsonl``       Langfuse dataset items with ``sourceTraceId``
``phoenix``        ``phoenix_upload.json``        body of Phoenix ``POST /v1/datasets/upload``
``huggingface``    ``hf/``                        ``data/<split>-00000-of-00001.parquet`` + ``README.md``
=================  =============================  ==============================================

``openai_evals`` and ``openai_chat`` need a reference answer, so they hold only
items with an ``expected`` value (the count is in the manifest).

Examples
--------
>>> import tempfile, polars as pl
>>> from workbench.export.items import EVAL_ITEMS
>>> items = pl.DataFrame({"item_id": ["wb-1"], "input": ["hi"], "expected": ["hello"]}).select(
...     [pl.col(c) if c in ("item_id", "input", "expected") else pl.lit(None).alias(c) for c in EVAL_ITEMS]
... ).cast(EVAL_ITEMS)
>>> path = write_format(items, tempfile.mkdtemp(), format="openai_evals", name="demo")
>>> path.name
'openai_evals.jsonl'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from workbench.export.atomic import atomic_writer
from workbench.export.items import EVAL_ITEMS

EXPORT_COLUMNS = tuple(c for c in EVAL_ITEMS if c != "trace_metadata")
_LIST_COLUMNS = ("messages", "categories", "tags", "label_event_ids", "reviewers")


def item_lines(items: pl.DataFrame) -> pl.Series:
    """The generic JSONL line of every item (vectorised; ``metadata`` spliced in as an object)."""
    others = [c for c in EXPORT_COLUMNS if c != "metadata"]
    body = pl.struct([pl.col(c) for c in others]).struct.json_encode().str.head(-1)
    line = pl.concat_str([body, pl.lit(',"metadata":'), pl.col("metadata").fill_null("null"), pl.lit("}")])
    return items.select(line.alias("line")).get_column("line")


def _write_lines(path: Path, lines: Sequence[bytes] | pl.Series) -> int:
    with atomic_writer(path) as handle:
        if isinstance(lines, pl.Series):
            count = len(lines)
            if count:  # the Rust CSV writer with no quoting writes each line as it is, fast
                lines.to_frame("line").write_csv(handle, include_header=False, quote_style="never")
        else:
            count = 0
            for line in lines:
                handle.write(line)
                handle.write(b"\n")
                count += 1
    return count


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def _records(items: pl.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    return items.select(columns).to_dicts()


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    """The item's metadata plus its original ``output`` (formats without an output field)."""
    meta = orjson.loads(row["metadata"]) if row["metadata"] else {}
    meta["output"] = row["output"]
    return meta


def _chat_input(messages: list[dict[str, Any]] | None, text: str | None) -> Any:
    """Messages when there is a conversation, else the plain request."""
    if messages and len(messages) > 1:
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    return text if text is not None else (messages[0]["content"] if messages else "")


def _messages(row: dict[str, Any], system: str | None) -> list[dict[str, str]]:
    messages = [{"role": m["role"], "content": m["content"]} for m in (row["messages"] or [])]
    if not messages and row["input"] is not None:
        messages = [{"role": "user", "content": row["input"]}]
    return ([{"role": "system", "content": system}] if system else []) + messages


def write_jsonl(items: pl.DataFrame, path: Path, *, lines: pl.Series | None = None, **_: Any) -> int:
    return _write_lines(path, item_lines(items) if lines is None else lines)


def write_parquet(items: pl.DataFrame, path: Path, **_: Any) -> int:
    with atomic_writer(path) as handle:
        items.select(EXPORT_COLUMNS).write_parquet(handle, compression="zstd")
    return items.height


CSV_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"


def _json_text(column: str) -> pl.Expr:
    """A nested column as JSON text (``{"v": [...]}`` with the wrapper cut off)."""
    encoded = pl.struct(pl.col(column).alias("v")).struct.json_encode()
    return encoded.str.slice(5).str.head(-1).alias(column)


def write_csv(items: pl.DataFrame, path: Path, **_: Any) -> int:
    flat = items.select(EXPORT_COLUMNS).with_columns(
        [_json_text(c) for c in _LIST_COLUMNS] + [pl.col("trace_start_time").dt.strftime(CSV_TIME_FORMAT)]
    )
    with atomic_writer(path) as handle:
        flat.write_csv(handle)
    return items.height


def write_openai_evals(items: pl.DataFrame, path: Path, *, system_prompt: str | None = None, **_: Any) -> int:
    rows = _records(items.filter(pl.col("expected").is_not_null()), ["input", "messages", "expected"])
    return _write_lines(
        path, [_dump({"input": _messages(r, system_prompt), "ideal": r["expected"]}) for r in rows]
    )


def write_openai_chat(items: pl.DataFrame, path: Path, *, system_prompt: str | None = None, **_: Any) -> int:
    rows = _records(items.filter(pl.col("expected").is_not_null()), ["input", "messages", "expected"])
    return _write_lines(
        path,
        [
            _dump(
                {"messages": _messages(r, system_prompt) + [{"role": "assistant", "content": r["expected"]}]}
            )
            for r in rows
        ],
    )


def write_inspect(items: pl.DataFrame, path: Path, **_: Any) -> int:
    rows = _records(items, ["item_id", "input", "messages", "expected", "output", "metadata"])
    return _write_lines(
        path,
        [
            _dump(
                {
                    "id": r["item_id"],
                    "input": _chat_input(r["messages"], r["input"]),
                    "target": r["expected"] if r["expected"] is not None else "",
                    "metadata": _metadata(r),
                }
            )
            for r in rows
        ],
    )


def write_promptfoo(items: pl.DataFrame, path: Path, *, assert_type: str = "factuality", **_: Any) -> int:
    rows = _records(
        items,
        [
            "item_id",
            "trace_id",
            "verdict",
            "categories",
            "input",
            "messages",
            "expected",
            "output",
            "metadata",
        ],
    )
    out = []
    for r in rows:
        label = ", ".join(r["categories"] or []) or r["verdict"] or ""
        test: dict[str, Any] = {
            "description": f"{r['item_id']} (trace {r['trace_id']}): {label}",
            "vars": {"input": r["input"], "messages": _messages(r, None)},
            "metadata": _metadata(r),
        }
        if r["expected"] is not None:
            test["assert"] = [{"type": assert_type, "value": r["expected"]}]
        out.append(_dump(test))
    return _write_lines(path, out)


def write_langfuse(items: pl.DataFrame, path: Path, *, name: str = "workbench", **_: Any) -> int:
    rows = _records(
        items, ["item_id", "trace_id", "span_id", "input", "messages", "expected", "output", "metadata"]
    )
    return _write_lines(
        path,
        [
            _dump(
                {
                    "datasetName": name,
                    "id": f"{name}-{r['item_id']}",
                    "input": _chat_input(r["messages"], r["input"]),
                    "expectedOutput": r["expected"],
                    "metadata": _metadata(r),
                    "sourceTraceId": r["trace_id"],
                    "sourceObservationId": r["span_id"],
                    "status": "ACTIVE",
                }
            )
            for r in rows
        ],
    )


def write_phoenix(
    items: pl.DataFrame, path: Path, *, name: str = "workbench", description: str = "", **_: Any
) -> int:
    rows = _records(items, ["input", "messages", "expected", "output", "split", "metadata"])
    body = {
        "action": "create",
        "name": name,
        "description": description,
        "inputs": [{"input": r["input"], "messages": _messages(r, None)} for r in rows],
        "outputs": [{"expected": r["expected"]} if r["expected"] is not None else {} for r in rows],
        "metadata": [_metadata(r) for r in rows],
        "splits": [r["split"] for r in rows],
    }
    with atomic_writer(path) as handle:
        handle.write(_dump(body))
    return len(rows)


def write_huggingface(items: pl.DataFrame, path: Path, *, card: str = "", **_: Any) -> int:
    data = path / "data"
    data.mkdir(parents=True, exist_ok=True)
    frame = items.select(EXPORT_COLUMNS).with_columns(pl.col("split").fill_null("train"))
    splits = sorted(frame.get_column("split").unique().to_list()) or ["train"]  # an empty set: one empty file
    for split in splits:
        with atomic_writer(data / f"{split}-00000-of-00001.parquet") as handle:
            frame.filter(pl.col("split") == split).write_parquet(handle, compression="zstd")
    with atomic_writer(path / "README.md") as handle:
        handle.write(card.encode())
    return items.height


FORMATS: dict[str, tuple[str, Callable[..., int]]] = {
    "jsonl": ("items.jsonl", write_jsonl),
    "parquet": ("items.parquet", write_parquet),
    "csv": ("items.csv", write_csv),
    "openai_evals": ("openai_evals.jsonl", write_openai_evals),
    "openai_chat": ("openai_chat.jsonl", write_openai_chat),
    "inspect": ("inspect.jsonl", write_inspect),
    "promptfoo": ("promptfoo_tests.jsonl", write_promptfoo),
    "langfuse": ("langfuse_items.jsonl", write_langfuse),
    "phoenix": ("phoenix_upload.json", write_phoenix),
    "huggingface": ("hf", write_huggingface),
}


def check_formats(formats: Sequence[str] | str) -> tuple[str, ...]:
    chosen = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; choose from {sorted(FORMATS)}")
    if not chosen:
        raise ValueError("no export format given")
    return tuple(dict.fromkeys(chosen))


def write_format(
    items: pl.DataFrame,
    directory: str | os.PathLike[str],
    *,
    format: str,
    name: str = "workbench",
    **options: Any,
) -> Path:
    """Write ``items`` in one format into ``directory``; return the file (or folder) path.

    Options: ``system_prompt`` (OpenAI formats), ``assert_type`` (promptfoo, default
    ``factuality``), ``card`` (Hugging Face README), ``description`` (Phoenix).
    """
    check_formats([format])
    filename, writer = FORMATS[format]
    target = Path(directory) / filename
    writer(items, target, name=name, **options)
    return target
