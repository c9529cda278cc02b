"""JSON text built with polars kernels (string literals by the C extension where it is built), for the
``attributes`` column of the columnar OTLP path.

The reference reader writes ``orjson.dumps(leftover_dict)``; these helpers
write the same JSON (strings escaped exactly as orjson escapes them; numbers
may be spelled differently, e.g. ``1e+21``, but parse to the same values)
without a Python loop per value.

Example
-------
>>> import polars as pl
>>> pl.select(json_string(pl.lit('say "hi"\\n'))).item()
'"say \\\\"hi\\\\"\\\\n"'
"""

from __future__ import annotations

import numpy as np
import orjson
import polars as pl
import pyarrow as pa

from workbench.load._interop import (
    list_lengths,
    numpy_array,
    numpy_series,
    polars_frame,
    polars_series,
    valid_mask,
)
from workbench.load._otlp_native import json_literals
from workbench.load._otlp_native import json_objects as native_json_objects

EXTRA_INT_FIELDS = ("flags", "kind", "droppedAttributesCount", "droppedEventsCount", "droppedLinksCount")
MAX_KEY_COLUMNS = 48  # more distinct leftover keys than this: join each row's pieces in a group-by


def json_string(expr: pl.Expr) -> pl.Expr:
    """A string column as JSON string literals (null stays null).

    polars' JSON encoder escapes as orjson does (``\\"``, ``\\\\``, ``\\n`` and
    friends, other control characters as ``\\u00XX``, the rest verbatim);
    ``tests/load/test_otlp_json.py`` compares them character by character.
    """
    encoded = pl.struct(expr.alias("s")).struct.json_encode()  # {"s":<literal>}
    return pl.when(expr.is_not_null()).then(encoded.str.slice(5).str.strip_suffix("}"))


def value_json(string: pl.Expr | None = None) -> pl.Expr:
    """An OTLP scalar AnyValue (columns ``sv``, ``iv``, ``dv``, ``bv``) as JSON text; ``string``: the
    ``sv`` literals when they are already built."""
    boolean = pl.when(pl.col("bv")).then(pl.lit("true")).when(pl.col("bv").not_()).then(pl.lit("false"))
    return pl.coalesce(json_string(pl.col("sv")) if string is None else string,
                       pl.col("iv").cast(pl.Int64, strict=False).cast(pl.String), pl.col("dv").cast(pl.String), boolean)


def values_json(elements: pl.DataFrame) -> pl.Series:
    """:func:`value_json` of each element; the string literals written by the C extension where it is built
    (one pass over the text instead of polars' three)."""
    literals = json_literals(elements["sv"].to_arrow(compat_level=pl.CompatLevel.newest()))
    if literals is None:
        return elements.select(_VALUE_JSON).to_series()
    return elements.with_columns(polars_series(literals, "sv")).select(_VALUE_JSON_BUILT).to_series()


_VALUE_JSON = value_json()
_VALUE_JSON_BUILT = value_json(pl.col("sv"))


def gather_index(pos: np.ndarray) -> pl.Series:
    """Gather positions with ``-1`` as null.

    Built from Arrow buffers (a validity bitmap over the positions): a polars
    ``when`` costs a query per call, and this runs for every mapped column of
    every block while holding the GIL.
    """
    valid = pos >= 0
    return numpy_series(pos, valid=None if valid.all() else valid)


def json_objects(rows: np.ndarray, key_ids: np.ndarray, literals: list[str], values: pl.Series, n_rows: int,
                 *, tail: list[pl.Series] = ()) -> pl.Series:
    """One JSON object per row from ``(row, key, value JSON)`` triples plus ready ``"key":value`` pieces.

    ``rows`` is ascending; ``literals[key_id]`` is the key as a JSON string;
    ``tail`` holds extra pieces per row (null where absent), appended in order.
    A row with nothing is null. A key repeated in one row keeps its last value.

    The C extension writes each object once, its keys in the order they
    first appear in the row (the reference reader's dict order). Without it,
    keys come in the order they first appear in the block: every
    ``"key":value`` piece is built and gathered in one go, cut into one
    column per key, and the columns are joined per row.
    """
    tail = [piece for piece in tail if piece.null_count() < len(piece)]
    arrow = [s.to_arrow(compat_level=pl.CompatLevel.newest()) for s in (values, *tail)]
    built = native_json_objects(rows, key_ids, [(literal + ":").encode() for literal in literals], arrow[0],
                                arrow[1:], n_rows)
    if built is not None:
        return polars_series(built)
    parts: list[pl.Series] = []
    if len(rows):
        distinct, first = np.unique(key_ids, return_index=True)
        distinct = distinct[np.argsort(first)]  # keys in the order they first appear
        if len(distinct) <= MAX_KEY_COLUMNS:
            slot = np.full(len(literals), -1, dtype=np.int64)
            slot[distinct] = np.arange(len(distinct))
            pos = np.full(len(distinct) * n_rows, -1, dtype=np.int64)
            pos[slot[key_ids] * n_rows + rows] = np.arange(len(rows))  # the last of a repeated key wins
            prefix = pl.Series([literal + ":" for literal in literals], dtype=pl.String)
            pairs = pl.DataFrame([numpy_series(key_ids, "k"), values.alias("v")]).select(
                (pl.lit(prefix).gather(pl.col("k")) + pl.col("v")).gather(gather_index(pos))).to_series()
            parts = [pairs.slice(k * n_rows, n_rows).alias(f"k{k}") for k in range(len(distinct))]
        else:
            parts = [_joined_per_row(rows, key_ids, literals, values, n_rows)]
    # columns with no piece at all (most of the ``otel.*`` ones) are left out: concatenating them costs as
    # much as the others
    columns = [part.alias(f"p{i}") for i, part in enumerate([*parts, *tail]) if part.null_count() < len(part)]
    if not columns:
        return pl.repeat(None, n_rows, dtype=pl.String, eager=True)
    return columns[0].to_frame().hstack(columns[1:]).select(_OBJECT).to_series()


_BODY = pl.concat_str(pl.all(), separator=",", ignore_nulls=True)
_OBJECT = pl.when(_BODY != "").then(pl.lit("{") + _BODY + pl.lit("}"))


def _joined_per_row(rows, key_ids, literals, values, n_rows) -> pl.Series:
    mapping = dict(enumerate(literals))
    pairs = pl.DataFrame([numpy_series(key_ids, "k"), values.alias("v")]).select(
        pl.col("k").replace_strict(mapping, return_dtype=pl.String) + pl.lit(":") + pl.col("v")).to_series()
    per_row = pl.DataFrame([numpy_series(rows, "row"), pairs.alias("p")]).group_by("row", maintain_order=True).agg(
        pl.col("p").str.join(",", ignore_nulls=False))
    pos = np.full(n_rows, -1, dtype=np.int64)
    pos[per_row["row"].to_numpy()] = np.arange(per_row.height)
    return per_row["p"].gather(gather_index(pos))


def resource_info(resource: pa.StructArray) -> tuple[pl.Series, pl.Series, np.ndarray]:
    """Per resource: attributes as a JSON object, ``service.version``, whether it needs the reference reader."""
    from workbench.load._otlp_columns import attribute_elements

    n = len(resource)
    elements, key_id, distinct = attribute_elements([resource.field("attributes")])
    rows = elements["row"].to_numpy()
    complex_el = elements["bad"].to_numpy() | (key_id < 0)
    complex_rows = np.zeros(n, dtype=bool)
    complex_rows[rows[complex_el]] = True
    keep = ~complex_el
    good = elements.filter(numpy_series(keep))
    literals = [orjson.dumps(k).decode() for k in distinct]
    text = json_objects(good["row"].to_numpy(), key_id[keep], literals, values_json(good), n)
    version_pos = np.full(n, -1, dtype=np.int64)
    if "service.version" in distinct:
        at = np.flatnonzero(key_id == distinct.index("service.version"))
        version_pos[rows[at]] = at
    version = elements.select(pl.col("sv").gather(gather_index(version_pos))).to_series()
    return text, version, complex_rows


def scope_json(scope: pa.StructArray) -> tuple[pl.Series, np.ndarray]:
    """Per scope: ``{"name": ..., "version": ...}`` with the non-empty ones (null when none), and odd scopes.

    A scope with attributes is odd: its spans go to the reference reader, which keeps them.
    """
    frame = polars_frame(pa.table({"name": scope.field("name"), "version": scope.field("version"),
                                   "null": numpy_array(~valid_mask(scope)),
                                   "n_attributes": numpy_array(list_lengths(scope.field("attributes")))}))
    parts = [pl.when(~pl.col("null") & (pl.col(c) != "")).then(pl.lit(f'"{c}":') + json_string(pl.col(c)))
             for c in ("name", "version")]
    body = pl.concat_str(parts, separator=",", ignore_nulls=True)
    rare = (pl.col("n_attributes") > 0).fill_null(False)  # scope attributes: the reference reader
    out = frame.select(pl.when(body != "").then(pl.lit("{") + body + pl.lit("}")).alias("json"), rare.alias("rare"))
    return out["json"], out["rare"].to_numpy()
