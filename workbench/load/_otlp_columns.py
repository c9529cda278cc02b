"""The attribute mapping of :mod:`workbench.load._attrs`, applied to Arrow arrays of OTLP spans.

Used by :mod:`workbench.load._otlp_fast`. Every decision mirrors the
reference (line-by-line) reader; a row whose mapping would need anything the
reference does beyond plain typed values is marked *complex* and re-read by
the reference reader, so the two paths agree row for row.
"""

from __future__ import annotations

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from workbench import schema
from workbench.load import _attrs
from workbench.load._otlp_fast import (
    _COMPLEX_KEY,
    _EXTRA_INT_FIELDS,
    _INT_TEXT,
    _NOT_CONSUMED,
    _PLAN,
    _flat,
    _join_rows,
    _json_strings,
    value_flags,
    value_json,
)

_NANOS = r"^([0-9]{1,18}|[1-8][0-9]{18})$"


def _np_bool(array) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def span_columns(spans: pa.StructArray, resource: dict) -> tuple[pl.DataFrame, np.ndarray]:
    """Span columns for every span, and the rows that need the reference reader."""
    n = len(spans)
    field = {spans.type.field(i).name: spans.field(i) for i in range(spans.type.num_fields)}
    complex_rows = _np_bool(pc.is_null(spans)) if spans.null_count else np.zeros(n, dtype=bool)
    if "complex" in resource:
        complex_rows |= resource["complex"]
    for name in ("traceId", "spanId"):
        complex_rows |= ~_np_bool(pc.greater(pc.utf8_length(field[name]), 0))
    for name in ("startTimeUnixNano", "endTimeUnixNano"):
        text = field[name]
        ok = _np_bool(pc.match_substring_regex(text, _NANOS)) | _np_bool(pc.is_null(text)) | _np_bool(
            pc.equal(text, ""))
        complex_rows |= ~ok
    for name in ("events", "links"):
        complex_rows |= _np_bool(pc.greater(pc.list_value_length(field[name]), 0))
    status = field["status"]
    code = pc.fill_null(status.field("code"), 0)
    complex_rows |= ~_np_bool(pc.is_in(code, pa.array([0, 1, 2], pa.int64())))
    status_message = status.field("message")
    if status.null_count:
        code = pc.if_else(pc.is_null(status), 0, code)
        status_message = pc.if_else(pc.is_null(status), pa.scalar(None, pa.string()), status_message)

    # attributes: one row per element, keys dictionary-encoded
    elements, rows = _flat(field["attributes"])
    keys = elements.field("key")
    encoded = keys.dictionary_encode()
    key_index = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64)
    distinct = encoded.dictionary.to_pylist()
    values = elements.field("value")
    el_complex = value_flags(values) | (key_index < 0)
    complex_key = np.array([bool(_COMPLEX_KEY.match(k)) for k in distinct] + [False], dtype=bool)
    el_complex |= complex_key[key_index]
    sv, iv, dv = values.field("stringValue"), values.field("intValue"), values.field("doubleValue")
    sv_ok, iv_ok = _np_bool(pc.is_valid(sv)), _np_bool(pc.match_substring_regex(iv, _INT_TEXT))
    sv_int = _np_bool(pc.match_substring_regex(sv, _INT_TEXT))
    dv_ok = _np_bool(pc.is_valid(dv))

    winners: dict[str, np.ndarray] = {}
    consumed = np.zeros(len(rows), dtype=bool)
    for column, (kind, column_keys) in _PLAN.items():
        pos = np.full(n, -1, dtype=np.int64)
        for key in reversed(column_keys):  # highest priority written last
            if key not in distinct:
                continue
            at = np.flatnonzero(key_index == distinct.index(key))
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
    complex_rows[rows[el_complex]] = True

    def take(column: str, array: pa.Array) -> pa.Array:
        pos = winners[column]
        return array.take(pa.array(pos, mask=pos < 0))

    out: dict[str, pa.Array | pl.Series] = {}
    for column, (kind, _) in _PLAN.items():
        if kind == "str":
            out[column] = take(column, sv)
        elif kind == "int":
            out[column] = pc.cast(pc.coalesce(take(column, iv), take(column, sv)), pa.int64())
        else:
            out[column] = pc.coalesce(take(column, dv), pc.cast(take(column, iv), pa.float64()))
    # cost parts summed by the reference reader when there is no total
    complex_rows |= _np_bool(pc.and_(pc.is_null(out["cost_usd"]), pc.is_valid(out["_cost_part"])))

    frame = pl.DataFrame({
        "trace_id": pl.from_arrow(pc.utf8_lower(field["traceId"])),
        "span_id": pl.from_arrow(pc.utf8_lower(field["spanId"])),
        "parent_span_id": pl.from_arrow(pc.utf8_lower(field["parentSpanId"])),
        "name": pl.from_arrow(field["name"]),
        "start_raw": pl.from_arrow(field["startTimeUnixNano"]),
        "end_raw": pl.from_arrow(field["endTimeUnixNano"]),
        "code": pl.from_arrow(code),
        "status_message": pl.from_arrow(status_message),
        **{c: pl.from_arrow(a) for c, a in out.items()},
        "resource_version": pl.from_arrow(resource["service_version"]) if resource else pl.repeat(
            None, n, dtype=pl.String, eager=True),
    })
    frame = _derive(frame)
    complex_rows |= frame["_complex"].fill_null(False).to_numpy().astype(bool)

    # openinference.span.kind is consumed when it decided the kind
    oi_pos = winners["_oi_kind"]
    decided = frame["_oi_decided"].fill_null(False).to_numpy().astype(bool) & (oi_pos >= 0)
    consumed[oi_pos[decided]] = True

    left = ~consumed & ~el_complex
    key_literals = pa.array([orjson.dumps(k).decode() for k in distinct], pa.string())
    left_keys = key_literals.take(pa.array(key_index[left]))
    pairs = pc.binary_join_element_wise(left_keys, value_json(values.filter(pa.array(left))), ":")
    leftover = _join_rows(pairs, rows[left], n)
    attributes = _attributes_json(frame, field, leftover, resource)
    frame = frame.with_columns(attributes.alias("attributes"))
    return frame.select(_OUTPUT_COLUMNS + ["attributes"]).with_columns(
        pl.lit("otlp").alias("source_format")), complex_rows


_KIND_UPPER = dict(_attrs.OPENINFERENCE_KINDS)
_OUTPUT_COLUMNS = ["trace_id", "span_id", "parent_span_id", "session_id", "user_id", "name", "kind", "start_time",
                   "end_time", "duration_ms", "status", "error_type", "error_message", "input", "output", "model",
                   "provider", "prompt_name", "prompt_version", "app_version", "tokens_in", "tokens_out",
                   "tokens_total", "cost_usd", "tags"]


def _derive(frame: pl.DataFrame) -> pl.DataFrame:
    """Kind, times, status, derived tokens, metadata fallbacks (mirrors ``_attrs`` / ``otlp``)."""
    oi = pl.col("_oi_kind").str.to_uppercase().replace_strict(_KIND_UPPER, default=None, return_dtype=pl.String)
    op = pl.col("_op").str.to_lowercase().replace_strict(_attrs.GENAI_OPERATIONS, default=None,
                                                         return_dtype=pl.String)
    lowered = pl.col("name").str.to_lowercase()
    by_name = pl.lit("other")
    for prefix, kind in reversed(_attrs._NAME_PREFIXES):
        by_name = pl.when(lowered.str.starts_with(prefix)).then(pl.lit(kind)).otherwise(by_name)
    start_us = pl.col("start_raw").cast(pl.Int64, strict=False) // 1000  # odd values: complex rows, dropped
    end_us = pl.col("end_raw").cast(pl.Int64, strict=False) // 1000
    is_error = pl.col("code") == 2
    meta_ok = pl.col("_metadata").str.starts_with("{")
    meta = {c: pl.when(meta_ok).then(pl.col("_metadata").str.json_path_match(f"$.{c}")) for c in
            ("prompt_version", "app_version")}
    odd_meta = pl.lit(False)
    for column, value in meta.items():
        odd_meta = odd_meta | (pl.col(column).is_null() & (value.str.contains(r"^[\[{]") | (value == "null")))
    return frame.with_columns(
        pl.coalesce(oi, op, by_name).alias("kind"),
        (oi.is_not_null() & (oi != "other")).alias("_oi_decided"),
        start_us.cast(schema.UTC_TIME).alias("start_time"),
        end_us.cast(schema.UTC_TIME).alias("end_time"),
        ((end_us - start_us) / 1000.0).alias("duration_ms"),
        pl.col("code").replace_strict({0: "unset", 1: "ok", 2: "error"}, return_dtype=pl.String).alias("status"),
        pl.coalesce("error_message", pl.when(is_error & (pl.col("status_message") != ""))
                    .then(pl.col("status_message"))).alias("error_message"),
        pl.when(pl.col("status_message").is_not_null() & (pl.col("status_message") != "")
                & ~(is_error & pl.col("error_message").is_null()))
        .then(pl.col("status_message")).alias("_status_left"),
        pl.coalesce("tokens_total", pl.col("tokens_in") + pl.col("tokens_out")).alias("tokens_total"),
        pl.coalesce("prompt_version", meta["prompt_version"]).alias("prompt_version"),
        pl.coalesce("app_version", meta["app_version"], "resource_version").alias("app_version"),
        pl.when(pl.col("parent_span_id") != "").then(pl.col("parent_span_id")).alias("parent_span_id"),
        pl.lit(None, dtype=schema.STR_LIST).alias("tags"),
        odd_meta.alias("_complex"),
    )


def _attributes_json(frame: pl.DataFrame, field: dict, leftover: pa.Array, resource: dict) -> pl.Expr:
    """Leftover attributes plus the ``otel.*`` keys, as one JSON object per row (null when empty)."""
    parts = [leftover]
    status_left = frame["_status_left"].to_arrow()
    parts.append(_keyed('"otel.status.message":', _json_strings(status_left)))
    trace_state = field["traceState"]
    trace_state = pc.if_else(pc.equal(trace_state, ""), pa.scalar(None, pa.string()), trace_state)
    parts.append(_keyed('"otel.traceState":', _json_strings(trace_state)))
    for name in _EXTRA_INT_FIELDS:
        value = field[name]
        value = pc.if_else(pc.equal(value, 0), pa.scalar(None, pa.int64()), value)
        parts.append(_keyed(f'"otel.{name}":', pc.cast(value, pa.string())))
    if resource:
        parts.append(_keyed('"otel.resource":', resource["json"]))
        parts.append(_keyed('"otel.scope":', resource["scope_json"]))
    # joined in polars: pyarrow's variadic join mis-sizes its output when one input holds a huge value
    columns = [pl.from_arrow(part).alias(f"p{i}") for i, part in enumerate(parts)]
    body = pl.DataFrame(columns).select(pl.concat_str(pl.all(), separator=",", ignore_nulls=True)).to_series()
    return pl.when(body != "").then(pl.lit("{") + body + pl.lit("}"))


def _keyed(prefix: str, values: pa.Array) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return pc.binary_join_element_wise(prefix, values, "")
