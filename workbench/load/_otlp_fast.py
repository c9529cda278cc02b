"""Columnar fast path for OTLP JSON Lines (one span, or one Collector request, per line).

The file is read in blocks of whole lines (32 MiB). Each block is parsed by
``pyarrow.json`` against an explicit OTLP schema; the attribute mapping of
:mod:`workbench.load._attrs` is then applied with array kernels (keys are
dictionary-encoded, so per-key decisions are made once per distinct key).

Anything this path cannot take exactly goes to the line-by-line reader
(:func:`workbench.load.otlp.read_python_pieces`), which is the reference:

* a block that fails to parse, has blank or non-``{`` lines, invalid UTF-8, a
  NaN token, duplicate JSON keys or unknown fields is halved until the bad part
  is small, and that part is read line by line (so bad lines cost little);
* a line holding a span with events, links, flattened OpenInference messages,
  annotations, retrieval documents, tags, array / kvlist / bytes values, a
  mapped attribute of an unexpected type, or an odd id / timestamp is read
  line by line too.

Both paths give the same rows (``tests/load/test_otlp_fast.py``).
"""

from __future__ import annotations

import gzip
import io
import re
from dataclasses import dataclass

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from workbench import schema
from workbench.load import _attrs
from workbench.load._base import Problem, ReaderResult

BLOCK_BYTES = 32 << 20
MIN_SPLIT_BYTES = 256 << 10
_GZIP_MAGIC = b"\x1f\x8b"

_SCALAR = [("stringValue", pa.string()), ("intValue", pa.string()), ("doubleValue", pa.float64()),
           ("boolValue", pa.bool_()), ("bytesValue", pa.string())]
_ANY1 = pa.struct(_SCALAR)
_ANY = pa.struct(_SCALAR + [
    ("arrayValue", pa.struct([("values", pa.list_(_ANY1))])),
    ("kvlistValue", pa.struct([("values", pa.list_(pa.struct([("key", pa.string()), ("value", _ANY1)])))])),
])
_KV = pa.list_(pa.struct([("key", pa.string()), ("value", _ANY)]))
_EVENT = pa.struct([("timeUnixNano", pa.string()), ("name", pa.string()), ("attributes", _KV),
                    ("droppedAttributesCount", pa.int64())])
_LINK = pa.struct([("traceId", pa.string()), ("spanId", pa.string()), ("traceState", pa.string()),
                   ("attributes", _KV), ("droppedAttributesCount", pa.int64()), ("flags", pa.int64())])
_SPAN_FIELDS = [
    ("traceId", pa.string()), ("spanId", pa.string()), ("parentSpanId", pa.string()), ("traceState", pa.string()),
    ("flags", pa.int64()), ("name", pa.string()), ("kind", pa.int64()), ("startTimeUnixNano", pa.string()),
    ("endTimeUnixNano", pa.string()), ("attributes", _KV), ("droppedAttributesCount", pa.int64()),
    ("events", pa.list_(_EVENT)), ("droppedEventsCount", pa.int64()), ("links", pa.list_(_LINK)),
    ("droppedLinksCount", pa.int64()), ("status", pa.struct([("code", pa.int64()), ("message", pa.string())])),
]
SPAN_SCHEMA = pa.schema(_SPAN_FIELDS)
REQUEST_SCHEMA = pa.schema([("resourceSpans", pa.list_(pa.struct([
    ("resource", pa.struct([("attributes", _KV), ("droppedAttributesCount", pa.int64())])),
    ("schemaUrl", pa.string()),
    ("scopeSpans", pa.list_(pa.struct([
        ("scope", pa.struct([("name", pa.string()), ("version", pa.string())])),
        ("schemaUrl", pa.string()),
        ("spans", pa.list_(pa.struct(_SPAN_FIELDS))),
    ]))),
])))])

# attribute keys the line-by-line reader must see (structured or feedback-bearing)
_COMPLEX_KEY = re.compile(
    r"^(llm\.(input|output)_messages\.|annotations\.|evaluations\.|trace\.annotations\.|"
    r"session\.annotations\.|retrieval\.documents\.|tag\.tags$)"
)
_INT_TEXT = r"^[+-]?[0-9]{1,18}$"
_DIGITS = r"^[0-9]{1,19}$"
_STATUS_TEXT = np.array(["unset", "ok", "error"], dtype=object)
PYARROW_BLOCK_BYTES = 1 << 20  # small parse blocks were fastest here; longer lines fall back
_EXTRA_INT_FIELDS = ("flags", "kind", "droppedAttributesCount", "droppedEventsCount", "droppedLinksCount")


@dataclass
class FastStats:
    """How the rows of one file were read (for tests and benchmarks)."""

    rows_columnar: int = 0
    lines_line_by_line: int = 0
    blocks_failed: int = 0


def _column_plan() -> tuple[dict[str, tuple[str, list[str]]], dict[str, tuple[str, int]]]:
    """column -> (value type, keys by priority); key -> (column, priority)."""
    plan: dict[str, tuple[str, list[str]]] = {}
    for column, keys in _attrs.STRING_KEYS.items():
        plan[column] = ("str", list(keys))
    for column, keys in _attrs.INT_KEYS.items():
        plan[column] = ("int", list(keys))
    for column, keys in _attrs.FLOAT_KEYS.items():
        plan[column] = ("float", list(keys))
    plan["input"] = ("str", list(_attrs.INPUT_KEYS))
    plan["output"] = ("str", list(_attrs.OUTPUT_KEYS))
    plan["_oi_kind"] = ("str", ["openinference.span.kind"])
    plan["_op"] = ("str", ["gen_ai.operation.name"])
    plan["_metadata"] = ("str", [_attrs.METADATA_KEY])
    plan["_cost_part"] = ("float", ["llm.cost.prompt", "llm.cost.completion"])
    owner = {key: (column, i) for column, (_, keys) in plan.items() for i, key in enumerate(keys)}
    return plan, owner


_PLAN, _OWNER = _column_plan()
# mapped keys that stay in ``attributes`` even when present (read, not consumed)
_NOT_CONSUMED = {"gen_ai.operation.name", _attrs.METADATA_KEY, "llm.cost.prompt", "llm.cost.completion"}


def read_bytes_fast(source: str, data: bytes | None = None, *, strict: bool = False,
                    stats: FastStats | None = None) -> ReaderResult:
    """Read an OTLP file (or its bytes) with the columnar path and line-by-line fallback."""
    from workbench.load import otlp

    stats = stats if stats is not None else FastStats()
    blocks = _iter_blocks(source, data)
    first = next(blocks, None)
    if first is None:
        return otlp.read_python_pieces(source, [], strict=strict)
    first_line_bytes = first[2][: first[2].find(b"\n")] if b"\n" in first[2] else first[2]
    if not _is_object_line(first_line_bytes):
        # a (pretty-printed) single document, an array, or a bad first line: the reference reader
        whole = first[2] + b"".join(block for _, _, block in blocks)
        return otlp.read_python(source, whole, strict=strict)
    shape = "request" if b'"resourceSpans"' in first_line_bytes[:4096] else "span"
    frames: list[pl.DataFrame] = []
    feedback: list[pl.DataFrame] = []
    problems: list[Problem] = []
    for first_line, offset, block in _chain(first, blocks):
        for part in _read_block(source, block, first_line, offset, shape, strict, stats):
            frames.append(part.spans)
            feedback.append(part.feedback)
            problems.extend(part.problems)
    spans = pl.concat(frames, how="vertical") if frames else schema.empty(schema.SPANS)
    fb = pl.concat([f for f in feedback if f.height], how="vertical") if any(f.height for f in feedback) else (
        schema.empty(schema.FEEDBACK))
    return ReaderResult("otlp", spans, fb, problems)


def _chain(first, rest):
    yield first
    yield from rest


def _is_object_line(line: bytes) -> bool:
    stripped = line.strip()
    if stripped.startswith(b"\xef\xbb\xbf"):
        return False
    try:
        return isinstance(orjson.loads(stripped), dict)
    except orjson.JSONDecodeError:
        return False


def _iter_blocks(source: str, data: bytes | None):
    """``(first_line, byte_offset, block)`` of whole lines, ~BLOCK_BYTES each."""
    if data is not None:
        handle = io.BytesIO(data)
    else:
        raw = open(source, "rb")  # noqa: SIM115 - closed below
        handle = gzip.GzipFile(fileobj=raw) if raw.read(2) == _GZIP_MAGIC else raw
        raw.seek(0)
    try:
        line, offset, carry = 1, 0, b""
        while True:
            chunk = handle.read(BLOCK_BYTES)
            if not chunk:
                if carry:
                    yield line, offset, carry
                return
            chunk = carry + chunk
            cut = chunk.rfind(b"\n")
            if cut == -1:
                carry = chunk
                continue
            block, carry = chunk[: cut + 1], chunk[cut + 1:]
            yield line, offset, block
            line += block.count(b"\n")
            offset += len(block)
    finally:
        handle.close()


def _read_block(source, block, first_line, offset, shape, strict, stats) -> list[ReaderResult]:
    """One block through the fast path, or halves of it, or line by line."""
    from workbench.load import otlp

    n_lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    table = _parse_block(block, n_lines, shape)
    if table is not None:
        return [_flatten_block(source, block, first_line, offset, table, shape, strict, stats)]
    stats.blocks_failed += 1
    if len(block) <= MIN_SPLIT_BYTES or n_lines <= 1:
        stats.lines_line_by_line += n_lines
        return [otlp.read_python_pieces(source, [(first_line, offset, block)], strict=strict)]
    middle = block.find(b"\n", len(block) // 2)
    if middle == -1 or middle == len(block) - 1:
        middle = block.rfind(b"\n", 0, len(block) - 1)
    left, right = block[: middle + 1], block[middle + 1:]
    left_lines = left.count(b"\n")
    return (_read_block(source, left, first_line, offset, shape, strict, stats)
            + _read_block(source, right, first_line + left_lines, offset + len(left), shape, strict, stats))


def _parse_block(block: bytes, n_lines: int, shape: str) -> pa.Table | None:
    """The block as an Arrow table, or ``None`` when it needs a closer look."""
    if not block.startswith(b"{") or block.count(b"\n{") != n_lines - 1:
        return None  # blank lines, leading spaces, a BOM, or records spanning lines
    options = pj.ParseOptions(explicit_schema=SPAN_SCHEMA if shape == "span" else REQUEST_SCHEMA,
                              unexpected_field_behavior="error")
    try:
        table = pj.read_json(pa.py_buffer(block), read_options=pj.ReadOptions(block_size=PYARROW_BLOCK_BYTES),
                             parse_options=options)
        if table.num_rows != n_lines:
            return None
        table.validate(full=True)  # strict UTF-8 in every string
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return table


def _flatten_block(source, block, first_line, offset, table, shape, strict, stats) -> ReaderResult:
    from workbench.load import otlp

    frames, lines, complex_parts, rows_before = [], [], [], 0
    for batch in table.combine_chunks().to_batches():  # one batch: per-batch overhead beats the copy
        spans, line_idx, resource = _span_rows(batch, shape)
        frame, complex_rows = _map_spans(spans, resource)
        frames.append(frame)
        lines.append(line_idx + rows_before)
        complex_parts.append(complex_rows)
        rows_before += batch.num_rows
    frame = pl.concat(frames, how="vertical") if frames else None
    line_idx = np.concatenate(lines) if lines else np.empty(0, dtype=np.int64)
    complex_rows = np.concatenate(complex_parts) if complex_parts else np.empty(0, dtype=bool)
    bad_lines = np.unique(line_idx[complex_rows]) if complex_rows.any() else np.empty(0, dtype=np.int64)
    keep = ~np.isin(line_idx, bad_lines) if len(bad_lines) else np.ones(len(line_idx), dtype=bool)
    fast = frame.filter(pl.Series(keep)).with_columns(
        (pl.Series("source_line", line_idx[keep]) + first_line).alias("source_line"),
        pl.lit(source).alias("source_file"),
    ).select(otlp.SPAN_COLUMNS) if frame is not None else schema.empty(schema.SPANS).select(otlp.SPAN_COLUMNS)
    stats.rows_columnar += fast.height
    if not len(bad_lines):
        return ReaderResult("otlp", fast)
    stats.lines_line_by_line += len(bad_lines)
    pieces = _line_pieces(block, bad_lines, first_line, offset)
    slow = otlp.read_python_pieces(source, pieces, strict=strict)
    merged = pl.concat([fast, slow.spans], how="vertical").sort("source_line", maintain_order=True)
    return ReaderResult("otlp", merged, slow.feedback, slow.problems)


def _line_pieces(block: bytes, lines: np.ndarray, first_line: int, offset: int) -> list[tuple[int, int, bytes]]:
    wanted = set(int(i) for i in lines)
    pieces, pos, index, last = [], 0, 0, max(wanted)
    while index <= last:
        end = block.find(b"\n", pos)
        end = len(block) if end == -1 else end
        if index in wanted:
            pieces.append((first_line + index, offset + pos, block[pos: end + 1]))
        pos, index = end + 1, index + 1
    return pieces


def _flat(list_array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Elements of a list array and the index of the row each came from."""
    return list_array.flatten(), np.asarray(list_array.value_parent_indices(), dtype=np.int64)


def _span_rows(batch: pa.RecordBatch, shape: str) -> tuple[pa.StructArray, np.ndarray, dict]:
    """All spans of a parsed batch as one struct array, their line index, and per-span resource info."""
    if shape == "span":
        spans = batch.to_struct_array()
        return spans, np.arange(len(spans), dtype=np.int64), {}
    requests = batch.column("resourceSpans")
    resources, res_line = _flat(requests)
    scopes, scope_res = _flat(resources.field("scopeSpans"))
    spans, span_scope = _flat(scopes.field("spans"))
    span_res = scope_res[span_scope]
    res_json, res_version, res_complex = _resource_info(resources.field("resource"))
    scope_json = _scope_json(scopes.field("scope"))
    resource = {
        "json": pc.take(res_json, pa.array(span_res)),
        "service_version": pc.take(res_version, pa.array(span_res)),
        "complex": res_complex[span_res],
        "scope_json": pc.take(scope_json, pa.array(span_scope)),
    }
    return spans, res_line[span_res], resource


def _resource_info(resource: pa.StructArray) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Per resource: attributes as JSON text, service.version, whether it needs the slow path."""
    n = len(resource)
    attrs = resource.field("attributes")
    elements, rows = _flat(attrs)
    keys = elements.field("key")
    complex_el = value_flags(elements.field("value"))
    safe = pa.array(~complex_el)
    pairs = pc.binary_join_element_wise(_json_strings(keys.filter(safe)),
                                        value_json(elements.field("value").filter(safe)), ":")
    json_text = _join_rows(pairs, rows[~complex_el], n)
    json_text = pc.if_else(pc.is_null(json_text), pa.scalar(None, pa.string()),
                           pc.binary_join_element_wise("{", json_text, "}", ""))
    is_version = pc.fill_null(pc.equal(keys, "service.version"), False).to_numpy(zero_copy_only=False)
    sv = elements.field("value").field("stringValue")
    version = np.full(n, None, dtype=object)
    picks = np.flatnonzero(is_version)
    version[rows[picks]] = np.asarray(sv.take(pa.array(picks)).to_pylist(), dtype=object)
    complex_rows = np.zeros(n, dtype=bool)
    complex_rows[rows[complex_el]] = True
    return json_text, pa.array(version, pa.string()), complex_rows


def _scope_json(scope: pa.StructArray) -> pa.Array:
    values = scope.to_pylist()
    out = []
    for item in values:
        kept = {k: item[k] for k in ("name", "version") if item and item.get(k)}
        out.append(orjson.dumps(kept).decode() if kept else None)
    return pa.array(out, pa.string())


def _json_strings(strings: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (distinct values encoded once)."""
    encoded = strings.dictionary_encode()
    literals = pa.array([orjson.dumps(s).decode() for s in encoded.dictionary.to_pylist()], pa.string())
    return literals.take(encoded.indices)


def value_flags(value: pa.StructArray) -> np.ndarray:
    """Which AnyValues the columnar path cannot take (nested, bytes, empty, odd ints, NaN)."""
    valid = {name: pc.is_valid(value.field(name)).to_numpy(zero_copy_only=False)
             for name in ("stringValue", "intValue", "doubleValue", "boolValue")}
    nested = np.zeros(len(value), dtype=bool)
    for name in ("bytesValue", "arrayValue", "kvlistValue"):
        nested |= pc.is_valid(value.field(name)).to_numpy(zero_copy_only=False)
    int_ok = pc.fill_null(pc.match_substring_regex(value.field("intValue"), _INT_TEXT), False).to_numpy(
        zero_copy_only=False)
    finite = pc.fill_null(pc.is_finite(value.field("doubleValue")), True).to_numpy(zero_copy_only=False)
    empty = ~(valid["stringValue"] | valid["intValue"] | valid["doubleValue"] | valid["boolValue"])
    return nested | empty | (valid["intValue"] & ~int_ok) | ~finite


def value_json(value: pa.StructArray) -> pa.Array:
    """AnyValues (already screened by :func:`value_flags`) as the JSON the reference reader writes."""
    ints = value.field("intValue")
    return pc.coalesce(
        _json_strings(value.field("stringValue")),
        pc.cast(pc.cast(ints, pa.int64(), safe=False), pa.string()),
        pc.cast(value.field("doubleValue"), pa.string()),
        pc.if_else(value.field("boolValue"), "true", "false"),
    )


def _join_rows(pairs: pa.Array, rows: np.ndarray, n_rows: int) -> pa.Array:
    """Join ``pairs`` (belonging to ascending ``rows``) per row with commas (null for a row with none)."""
    counts = np.bincount(rows, minlength=n_rows)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), pairs)
    joined = pc.binary_join(lists, ",")
    return pc.if_else(pa.array(counts > 0), joined, pa.scalar(None, pa.string()))


def _map_spans(spans: pa.StructArray, resource: dict) -> tuple[pl.DataFrame, np.ndarray]:
    """Span columns for every span, and which rows need the slow path (NaN, drift, events...)."""
    from workbench.load._otlp_columns import span_columns

    return span_columns(spans, resource)
