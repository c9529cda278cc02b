"""The attribute mapping of :mod:`workbench.load._attrs`, applied to Arrow arrays of OTLP spans.

Used by :mod:`workbench.load._otlp_fast`. Every decision mirrors the
reference (line-by-line) reader; a row whose mapping would need anything the
reference does beyond plain typed values is marked *complex* and re-read by
the reference reader, so the two paths agree row for row.

How it stays cheap: the attribute lists are flattened once (zero-copy) into
one polars frame of elements; per-key decisions are integer work in numpy
(keys are dictionary-encoded); the span columns are then one polars
``select`` of gathers, which copy 16-byte string views, never the text.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from workbench import schema
from workbench.load import _attrs
from workbench.load._interop import (
    concatenated,
    list_lengths,
    list_rows,
    list_values,
    numpy_array,
    numpy_series,
    polars_frame,
    polars_series,
    valid_mask,
)
from workbench.load._otlp_arrow import SCALAR_TYPES
from workbench.load._otlp_json import (
    EXTRA_INT_FIELDS,
    gather_index,
    json_objects,
    json_string,
    values_json,
)
from workbench.load._otlp_messages import message_columns
from workbench.load._otlp_native import dictionary_encode, has_upper, text_checks
from workbench.load._spill import TextSpill

# attribute keys the line-by-line reader must see (structured or feedback-bearing)
COMPLEX_KEY = re.compile(
    r"^(annotations\.|evaluations\.|trace\.annotations\.|"
    r"session\.annotations\.|retrieval\.documents\.|tag\.tags$)"
)
INT_TEXT = r"^[+-]?[0-9]{1,18}$"
_NANOS = r"^([0-9]{1,18}|[1-8][0-9]{18})$"
_SCALARS = ("stringValue", "intValue", "doubleValue", "boolValue")
_SHORT = {"stringValue": "sv", "intValue": "iv", "doubleValue": "dv", "boolValue": "bv"}


def _column_plan() -> dict[str, tuple[str, list[str]]]:
    """column -> (value type, keys by priority)."""
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
    return plan


PLAN = _column_plan()
_PLAN_BY_KIND = {kind: [column for column, (of, _) in PLAN.items() if of == kind] for kind in ("str", "int", "float")}
# a value of each type from the element columns (an int may be written as text; a double as an int)
_TYPED = {
    "str": lambda index: pl.col("sv").gather(index),
    "int": lambda index: pl.coalesce(pl.col("iv").gather(index), pl.col("sv").gather(index)).cast(pl.Int64,
                                                                                                  strict=False),
    "float": lambda index: pl.coalesce(pl.col("dv").gather(index),
                                       pl.col("iv").gather(index).cast(pl.Float64, strict=False)),
}
# values a load never reads again once mapped: a spill may hold them (``*``: any message index)
TEXT_KEYS = (*_attrs.INPUT_KEYS, *_attrs.OUTPUT_KEYS, "llm.input_messages.*.message.content",
             "llm.output_messages.*.message.content")
_INT_KEYS = {key for kind, keys in PLAN.values() if kind == "int" for key in keys}
# mapped keys that stay in ``attributes`` even when present (read, not consumed)
_NOT_CONSUMED = {"gen_ai.operation.name", _attrs.METADATA_KEY, "llm.cost.prompt", "llm.cost.completion"}
_KIND_UPPER = dict(_attrs.OPENINFERENCE_KINDS)
# leftmost-first alternation: the first listed prefix that matches wins, as in ``_attrs.kind_from``
_NAME_PREFIX = "^(?:" + "|".join(re.escape(prefix) for prefix, _ in _attrs._NAME_PREFIXES) + ")"
_KIND_BY_PREFIX: dict[str, str] = {}
for _prefix, _kind in _attrs._NAME_PREFIXES:
    _KIND_BY_PREFIX.setdefault(_prefix, _kind)
OUTPUT_COLUMNS = ["trace_id", "span_id", "parent_span_id", "session_id", "user_id", "name", "kind", "start_time",
                  "end_time", "duration_ms", "status", "error_type", "error_message", "input", "output", "model",
                  "provider", "prompt_name", "prompt_version", "app_version", "tokens_in", "tokens_out",
                  "tokens_total", "cost_usd", "tags", "attributes", "source_format"]
_OUTPUT = pl.col(OUTPUT_COLUMNS)


def _chunks(array: pa.Array | pa.ChunkedArray | list[pa.Array]) -> list[pa.Array]:
    if isinstance(array, list):
        return array
    return list(array.chunks) if isinstance(array, pa.ChunkedArray) else [array]


def _field(chunks: list[pa.Array], name: str) -> pa.ChunkedArray:
    return pa.chunked_array([c.field(name) for c in chunks])


def attribute_elements(kv_chunks: list[pa.Array], spill: TextSpill | None = None,
                       ) -> tuple[pl.DataFrame, np.ndarray, list[str]]:
    """Flatten ``list<{key, value}>`` chunks into elements.

    Returns the elements frame (``row``, ``sv``, ``iv``, ``dv``, ``bv``,
    ``bad``: a value this path cannot take: nested, bytes, empty, several
    fields set, an odd int text or a non-finite double), the key id of each
    element (``-1`` for a null key) and the distinct keys. With a ``spill``,
    input and output text is moved to its memory-mapped file.
    """
    rows, keys, scalars, nested = [], [], {name: [] for name in _SCALARS}, []
    start = 0
    for kv in kv_chunks:
        elements = list_values(kv)
        rows.append(list_rows(kv) + start)
        start += len(kv)
        keys.append(elements.field("key"))
        value = elements.field("value")
        for name in _SCALARS:
            scalars[name].append(value.field(name))
        nested.append(valid_mask(value.field("bytesValue")) | valid_mask(value.field("arrayValue"))
                      | valid_mask(value.field("kvlistValue")) | ~valid_mask(value))
    if spill is not None:
        scalars["stringValue"] = spill.move(scalars["stringValue"], keys)
    key_id, distinct = dictionary_encode(concatenated(keys)) if keys else (np.empty(0, np.int64), [])
    # only a key mapped to an integer column may hold its number as a string: test just those
    int_key = np.array([key in _INT_KEYS for key in distinct] + [False], dtype=bool)[key_id]
    columns = {
        "row": numpy_array(np.concatenate(rows) if rows else np.empty(0, np.int64)),
        **{_SHORT[name]: pa.chunked_array(arrays, SCALAR_TYPES[name]) for name, arrays in scalars.items()},
        "nested": numpy_array(np.concatenate(nested) if nested else np.empty(0, bool)),
    }
    iv_ok, sv_int = _checked(scalars["intValue"], "int_texts"), _checked(scalars["stringValue"], "int_texts", int_key)
    checked = iv_ok is not None and sv_int is not None
    if checked:
        columns |= {"iv_ok": numpy_array(iv_ok), "sv_int": numpy_array(sv_int)}
    else:  # without the C extension: polars' regular expressions
        columns["int_key"] = numpy_array(int_key)
    # one chunk each: polars gathers a one-chunk string column by copying views; across chunks it copies the text
    frame = polars_frame(pa.table(columns)).rechunk()
    if not checked:
        frame = frame.with_columns(_IV_OK, _SV_INT).drop("int_key")
    return frame.with_columns(_BAD).drop("nested"), key_id, distinct


def _checked(arrays: list[pa.Array], check: str, only: np.ndarray | None = None) -> np.ndarray | None:
    """:func:`workbench.load._otlp_native.text_checks` over string arrays taken as one (``None`` without the
    C extension)."""
    parts, start = [], 0
    for array in arrays:
        part = text_checks(array, check, None if only is None else only[start:start + len(array)])
        if part is None:
            return None
        parts.append(part)
        start += len(array)
    return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)


_IV_OK = pl.col("iv").str.contains(INT_TEXT).fill_null(False).alias("iv_ok")
_SV_INT = pl.when(pl.col("int_key")).then(pl.col("sv")).str.contains(INT_TEXT).fill_null(False).alias("sv_int")
_BAD = (pl.col("nested") | (pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.Int8) for c in ("sv", "iv", "dv", "bv")) != 1)
        | (pl.col("iv").is_not_null() & ~pl.col("iv_ok")) | ~pl.col("dv").is_finite().fill_null(True)).alias("bad")


def _winners(frame: pl.DataFrame, key_id: np.ndarray, distinct: list[str], n: int, el_complex: np.ndarray):
    """Per plan column, the element index that fills it (``-1``: none), and which elements are consumed."""
    rows = frame["row"].to_numpy()
    sv_ok = frame["sv"].is_not_null().to_numpy()
    iv_ok, sv_int = frame["iv_ok"].to_numpy(), frame["sv_int"].to_numpy()
    dv_ok = frame["dv"].is_not_null().to_numpy()
    lookup = {key: i for i, key in enumerate(distinct)}
    # a stable sort of narrow integers is a radix sort in numpy: 2-3x faster than sorting int64
    order = np.argsort(key_id.astype(np.int16) if len(distinct) < np.iinfo(np.int16).max else key_id, kind="stable")
    bounds = np.searchsorted(key_id[order], np.arange(len(distinct) + 1))
    winners: dict[str, np.ndarray] = {}
    consumed = np.zeros(len(rows), dtype=bool)
    for column, (kind, column_keys) in PLAN.items():
        pos = np.full(n, -1, dtype=np.int64)
        for key in reversed(column_keys):  # highest priority written last
            if key not in lookup:
                continue
            at = order[bounds[lookup[key]]: bounds[lookup[key] + 1]]
            if kind == "str":
                bad = ~sv_ok[at]
            elif kind == "int":
                bad = ~(iv_ok[at] | sv_int[at])
            else:
                bad = ~(dv_ok[at] | iv_ok[at])
            el_complex[at[bad]] = True
            good = at[~bad]
            pos[rows[good]] = good
        winners[column] = pos
        if column_keys[0] not in _NOT_CONSUMED and column != "_oi_kind":
            consumed[pos[pos >= 0]] = True
    return winners, consumed


def _with_plan_columns(base: pl.DataFrame, elements: pl.DataFrame, winners: dict[str, np.ndarray],
                       ) -> tuple[pl.DataFrame, frozenset[str]]:
    """``base`` with the plan's columns, each element's value gathered to its span by the winner positions
    (``-1``: null); and the plan columns no span of the block fills.

    One gather per value type over all its columns at once, then cut in
    columns: building a polars expression per column held the GIL longer
    than the gathers take, and the workers map blocks side by side. A column
    no span of the block fills (on the benchmark ``error_type``,
    ``prompt_name``, ``cost_usd``, the gen_ai operation and the cost parts)
    is a null literal instead: a polars scalar column holds no value per row
    (a gathered one holds 16 bytes per row for text), and blocks that all
    lack it concatenate to one scalar again.
    """
    n = base.height
    filled = {name for name, pos in winners.items() if (pos >= 0).any()}
    columns: list[pl.Series] = []
    for kind, names in _PLAN_BY_KIND.items():
        names = [name for name in names if name in filled]
        if names:
            index = gather_index(np.concatenate([winners[name] for name in names]))
            values = elements.select(_TYPED[kind](index)).to_series()
            columns += [values.slice(k * n, n).alias(name) for k, name in enumerate(names)]
    absent = frozenset(PLAN) - filled
    return base.hstack(columns).with_columns(_ABSENT[name] for name in PLAN if name in absent), absent


_ABSENT = {name: pl.lit(None, dtype={"str": pl.String, "int": pl.Int64, "float": pl.Float64}[kind]).alias(name)
           for name, (kind, _) in PLAN.items()}


def span_columns(spans: pa.Array | pa.ChunkedArray | list[pa.Array], resource: dict,
                 spill: TextSpill | None = None) -> tuple[pl.DataFrame, np.ndarray]:
    """Span columns (``OUTPUT_COLUMNS``) for every span, and the rows that need the reference reader.

    With a ``spill``, input and output text lives in its memory-mapped file (:mod:`workbench.load._spill`).
    """
    chunks = _chunks(spans)
    n = sum(len(c) for c in chunks)
    status = _field(chunks, "status")
    base = polars_frame(pa.table({
        "trace_id": _field(chunks, "traceId"), "span_id": _field(chunks, "spanId"),
        "parent_span_id": _field(chunks, "parentSpanId"), "name": _field(chunks, "name"),
        "start_raw": _field(chunks, "startTimeUnixNano"), "end_raw": _field(chunks, "endTimeUnixNano"),
        **_times_checked(chunks),
        "code_raw": pa.chunked_array([s.field("code") for s in status.chunks], pa.int64()),
        "message_raw": pa.chunked_array([s.field("message") for s in status.chunks], pa.string_view()),
        "status_null": numpy_array(~np.concatenate([valid_mask(s) for s in status.chunks])),
        "span_null": numpy_array(~np.concatenate([valid_mask(c) for c in chunks])),
        "n_events": numpy_array(np.concatenate([list_lengths(c.field("events")) for c in chunks])),
        "n_links": numpy_array(np.concatenate([list_lengths(c.field("links")) for c in chunks])),
        "traceState": _field(chunks, "traceState"),
        **{f"raw_{name}": _field(chunks, name) for name in EXTRA_INT_FIELDS},
        **({"_resource_version": resource["service_version"].to_arrow(compat_level=pl.CompatLevel.newest())}
           if "service_version" in resource else {}),
    }))
    elements, key_id, distinct = attribute_elements([c.field("attributes") for c in chunks], spill)
    el_complex = elements["bad"].to_numpy() | (key_id < 0)
    complex_key = np.array([bool(COMPLEX_KEY.match(k)) for k in distinct] + [False], dtype=bool)
    el_complex |= complex_key[key_id]
    messages, is_message = message_columns(elements, key_id, distinct, n, el_complex)
    winners, consumed = _winners(elements, key_id, distinct, n, el_complex)
    consumed |= is_message
    for side, text in messages.items():  # with messages, input.value / output.value stay in attributes
        kept = winners[side][text.is_not_null().to_numpy()]
        consumed[kept[kept >= 0]] = False
    frame = _derive(*_with_plan_columns(base, elements, winners))
    if messages:
        if spill is not None:  # built text, like the input/output it stands for: to the file
            messages = {side: polars_series(spill.move_all(text.to_arrow(compat_level=pl.CompatLevel.newest())))
                        for side, text in messages.items()}
        frame = frame.with_columns(pl.coalesce(text, pl.col(side)).alias(side) for side, text in messages.items())
    complex_rows = np.array(frame["_complex"].to_numpy(), dtype=bool)  # a writable copy
    if "complex" in resource:
        complex_rows = complex_rows | resource["complex"]
    rows = elements["row"].to_numpy()
    complex_rows[rows[el_complex]] = True
    oi_pos = winners["_oi_kind"]
    decided = frame["_oi_decided"].to_numpy() & (oi_pos >= 0)
    consumed[oi_pos[decided]] = True
    left = ~consumed & ~el_complex
    leftover = elements.filter(numpy_series(left))
    literals = [orjson.dumps(k).decode() for k in distinct]
    attributes = json_objects(leftover["row"].to_numpy(), key_id[left], literals, values_json(leftover), n,
                              tail=_otel_parts(frame, resource))
    frame = frame.with_columns(attributes.alias("attributes"), pl.lit("otlp").alias("source_format"))
    return frame.select(_OUTPUT), complex_rows


def _times_checked(chunks: list[pa.Array]) -> dict[str, pa.Array]:
    """``start_ok`` / ``end_ok``: the timestamp text is empty, null or nanoseconds the reference reader takes
    (checked by the C extension; without it, :func:`_derive` runs ``_NANOS`` in polars)."""
    checked = {f"{side}_ok": _checked([c.field(f"{side}TimeUnixNano") for c in chunks], "nanos_texts")
               for side in ("start", "end")}
    return {name: numpy_array(flags) for name, flags in checked.items() if flags is not None}


def _derive(frame: pl.DataFrame, absent: frozenset[str]) -> pl.DataFrame:
    """Kind, times, status, derived tokens, metadata fallbacks (mirrors ``_attrs`` / ``otlp``).

    The expressions are built once per variant (resource version or not, ids
    to lowercase or not, which of the attributes they read no span of the
    block has): building them costs more GIL time than running them, and an
    absent column's part is left out instead of run over its nulls (the
    benchmark, without gen_ai operations or cost parts: 6.75 -> 5.09 ms a
    block of 10k spans).
    """
    has_metadata, has_op, has_cost_part = (name not in absent for name in ("_metadata", "_op", "_cost_part"))
    derived = _derived("_resource_version" in frame.columns, has_metadata, has_op, has_cost_part)
    if "start_ok" not in frame.columns:
        frame = frame.with_columns(_TIMES_OK)
    return (frame.with_columns(_shared(has_metadata)).with_columns(*derived, *_lowercase_ids(frame))
            .drop(_SHARED_NAMES))


_TIMES_OK = [(pl.col(f"{side}_raw").str.contains(_NANOS) | (pl.col(f"{side}_raw") == "")).fill_null(True)
             .alias(f"{side}_ok") for side in ("start", "end")]


def _metadata_value(key: str) -> pl.Expr:
    """``key`` of the metadata JSON object; JSON is parsed only where the key may be (spelled out, or escaped
    with \\u): nulls are skipped."""
    may_hold = (pl.col("_metadata").str.contains(f'"{key}"', literal=True)
                | pl.col("_metadata").str.contains("\\u", literal=True))
    return pl.when(pl.col("_metadata").str.starts_with("{") & may_hold).then(pl.col("_metadata")).str.json_path_match(
        f"$.{key}")


# values several derived columns read: computed once, in a first step (eager expressions share nothing)
@functools.cache
def _shared(has_metadata: bool) -> tuple[pl.Expr, ...]:
    meta = (_metadata_value(key) if has_metadata else pl.lit(None, dtype=pl.String) for key in _META_KEYS)
    return (
        pl.col("_oi_kind").str.to_uppercase().replace_strict(_KIND_UPPER, default=None, return_dtype=pl.String)
        .alias("_oi"),
        *(value.alias(f"_meta_{key}") for key, value in zip(_META_KEYS, meta, strict=True)),
        pl.when(pl.col("status_null")).then(0).otherwise(pl.col("code_raw").fill_null(0)).alias("_code"),
        pl.when(pl.col("status_null")).then(None).otherwise(pl.col("message_raw")).alias("_message"),
    )


_META_KEYS = ("prompt_version", "app_version")
_SHARED_NAMES = [e.meta.output_name() for e in _shared(True)]


@functools.cache
def _derived(has_resource_version: bool, has_metadata: bool, has_op: bool, has_cost_part: bool,
             ) -> tuple[pl.Expr, ...]:
    oi = pl.col("_oi")
    op = (pl.col("_op").str.to_lowercase().replace_strict(_attrs.GENAI_OPERATIONS, default=None,
                                                          return_dtype=pl.String)
          if has_op else pl.lit(None, dtype=pl.String))
    # the name decides only when neither attribute does; other rows are nulled first (cheap to skip)
    by_name = (pl.when(oi.is_null() & op.is_null()).then(pl.col("name")).str.to_lowercase()
               .str.extract(_NAME_PREFIX, 0).replace_strict(_KIND_BY_PREFIX, default="other", return_dtype=pl.String))
    start_us = pl.col("start_raw").cast(pl.Int64, strict=False) // 1000  # odd values: complex rows, dropped
    end_us = pl.col("end_raw").cast(pl.Int64, strict=False) // 1000
    code, message = pl.col("_code"), pl.col("_message")
    is_error = code == 2
    meta = {c: pl.col(f"_meta_{c}") for c in ("prompt_version", "app_version")}
    odd = (pl.col("span_null") | code.is_in([0, 1, 2]).not_() | (pl.col("n_events") > 0).fill_null(False)
           | (pl.col("n_links") > 0).fill_null(False))
    for name in ("trace_id", "span_id"):
        odd = odd | (pl.col(name).str.len_bytes() > 0).not_().fill_null(True)
    odd = odd | ~pl.col("start_ok") | ~pl.col("end_ok")
    for column, value in meta.items() if has_metadata else ():
        odd = odd | (pl.col(column).is_null() & (value.str.contains(r"^[\[{]") | (value == "null"))).fill_null(False)
    if has_cost_part:  # cost parts summed by the reference reader when there is no total
        odd = odd | (pl.col("cost_usd").is_null() & pl.col("_cost_part").is_not_null())
    version = pl.col("_resource_version") if has_resource_version else pl.lit(None, dtype=pl.String)
    status_message = pl.when(message.is_not_null() & (message != "") & ~(is_error & pl.col("error_message").is_null()))
    return (
        pl.coalesce(oi, op, by_name).alias("kind"),
        (oi.is_not_null() & (oi != "other")).fill_null(False).alias("_oi_decided"),
        start_us.cast(schema.UTC_TIME).alias("start_time"),
        end_us.cast(schema.UTC_TIME).alias("end_time"),
        ((end_us - start_us) / 1000.0).alias("duration_ms"),
        code.replace_strict({0: "unset", 1: "ok", 2: "error"}, default=None, return_dtype=pl.String).alias("status"),
        pl.coalesce("error_message", pl.when(is_error & (message != "")).then(message)).alias("error_message"),
        status_message.then(message).alias("_status_left"),
        pl.coalesce("tokens_total", pl.col("tokens_in") + pl.col("tokens_out")).alias("tokens_total"),
        pl.coalesce("prompt_version", meta["prompt_version"]).alias("prompt_version"),
        pl.coalesce("app_version", meta["app_version"], version).alias("app_version"),
        pl.lit(None, dtype=schema.STR_LIST).alias("tags"),
        odd.fill_null(True).alias("_complex"),
    )


def _lowercase_ids(frame: pl.DataFrame) -> tuple[pl.Expr, ...]:
    """The id columns lowercased, and ``""`` parents as null.

    Ids are nearly always lowercase hex already: a column with no upper-case
    ASCII letter and nothing beyond ASCII (which ``str.lower`` might change) is
    kept as parsed (its text stays in the parser's buffer, uncopied).
    """
    upper = tuple(has_upper(frame[c].to_arrow(compat_level=pl.CompatLevel.newest())) for c in _IDS)
    return _id_exprs(upper if None not in upper else frame.select(_HAS_UPPER).row(0))


_IDS = ("trace_id", "span_id", "parent_span_id")
_HAS_UPPER = [pl.col(c).str.contains(r"[A-Z]|[^\x00-\x7F]").any() for c in _IDS]  # without the C extension


@functools.cache
def _id_exprs(upper: tuple[bool, bool, bool]) -> tuple[pl.Expr, ...]:
    lowered = {c: pl.col(c).str.to_lowercase() if has_upper else pl.col(c) for c, has_upper in zip(_IDS, upper, strict=True)}
    return (lowered["trace_id"], lowered["span_id"],
            pl.when(pl.col("parent_span_id") != "").then(lowered["parent_span_id"]).alias("parent_span_id"))


def _otel_parts(frame: pl.DataFrame, resource: dict) -> list[pl.Series]:
    """``"otel.*": value`` pieces per span (null where absent), in the reference reader's order."""
    series = list(frame.select(_OTEL_PARTS).iter_columns())
    if resource:
        series.append(resource["otel_json"])
    return series


_OTEL_PARTS = [
    (pl.lit('"otel.status.message":') + json_string(pl.col("_status_left"))).alias("status_message"),
    pl.when(pl.col("traceState") != "").then(pl.lit('"otel.traceState":') + json_string(pl.col("traceState")))
    .alias("trace_state"),
    *(pl.when(pl.col(f"raw_{name}") != 0).then(pl.lit(f'"otel.{name}":') + pl.col(f"raw_{name}").cast(pl.String))
      .alias(name) for name in EXTRA_INT_FIELDS),
]
