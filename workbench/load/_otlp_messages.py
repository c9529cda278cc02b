"""OpenInference's flattened messages (``llm.input_messages.N.message.role`` ...) in the columnar OTLP path.

The reference reader (``_attrs._take_messages``) turns a span's message keys
into its ``input`` / ``output``: a JSON list of message objects ordered by
index, each object's keys in the order they first appear, e.g.
``[{"role":"system","content":"..."},{"role":"user","content":"..."}]``;
the message keys leave ``attributes`` and ``input.value`` / ``output.value``
stay there. This module builds the same JSON with polars kernels for *simple*
messages: every key ``llm.<side>_messages.N.message.FIELD`` (one level below
the message, ``N`` without leading zeros) at most once per span, with a
string, integer or boolean value. A span with any other message key (tool
calls, multimodal contents), a repeated one or a double value is marked
complex and read by the reference reader.
"""

from __future__ import annotations

import re

import numpy as np
import orjson
import polars as pl

from workbench.load._otlp_json import value_json

SIDES = ("input", "output")
_PREFIXES = ("llm.input_messages.", "llm.output_messages.")
_SIMPLE = re.compile(r"^llm\.(?:input|output)_messages\.(0|[1-9][0-9]{0,8})\.message\.([A-Za-z0-9_]+)$")


def message_columns(elements: pl.DataFrame, key_id: np.ndarray, distinct: list[str], n: int,
                    el_complex: np.ndarray) -> tuple[dict[str, pl.Series], np.ndarray]:
    """Per side (``input``, ``output``) each span's messages JSON (null where it has none), and the message elements.

    ``elements``, ``key_id`` and ``distinct`` are those of
    :func:`workbench.load._otlp_columns.attribute_elements`; elements of
    messages this cannot build exactly are marked in ``el_complex``.
    """
    side = np.zeros(len(distinct) + 1, dtype=np.int8)  # 1 input, 2 output (the extra slot: a null key)
    simple = np.zeros(len(distinct) + 1, dtype=bool)
    index = np.zeros(len(distinct) + 1, dtype=np.int64)
    field = [""] * (len(distinct) + 1)
    for i, key in enumerate(distinct):
        if key.startswith(_PREFIXES):
            side[i] = 1 if key.startswith(_PREFIXES[0]) else 2
            match = _SIMPLE.match(key)
            if match:
                simple[i], index[i], field[i] = True, int(match[1]), orjson.dumps(match[2]).decode() + ":"
    is_message = side[key_id] > 0
    if not is_message.any():
        return {}, is_message
    rows = elements["row"].to_numpy()
    typed = elements.select(pl.col("sv").is_not_null() | pl.col("iv").is_not_null() | pl.col("bv").is_not_null()
                            ).to_series().to_numpy()
    unsupported = is_message & ~(simple[key_id] & typed & ~el_complex)
    chosen = np.flatnonzero(is_message)
    pairs = rows[chosen] * (len(distinct) + 1) + key_id[chosen]
    unique, counts = np.unique(pairs, return_counts=True)
    if (counts > 1).any():  # a key repeated in one span: the reference keeps its last value at its first place
        unsupported[chosen[np.isin(pairs, unique[counts > 1])]] = True
    el_complex |= unsupported
    built = elements[chosen].select(
        pl.Series("row", rows[chosen]), pl.Series("side", side[key_id[chosen]]),
        pl.Series("index", index[key_id[chosen]]), pl.Series("element", chosen),
        (pl.Series([field[k] for k in key_id[chosen]], dtype=pl.String) + value_json()).alias("pair"),
    ).sort("row", "side", "index", "element")
    objects = built.group_by("row", "side", "index", maintain_order=True).agg(
        (pl.lit("{") + pl.col("pair").str.join(",") + pl.lit("}")).alias("object"))
    lists = objects.group_by("row", "side", maintain_order=True).agg(
        (pl.lit("[") + pl.col("object").str.join(",") + pl.lit("]")).alias("json"))
    out = {}
    for number, name in enumerate(SIDES, start=1):
        of_side = lists.filter(pl.col("side") == number)
        if of_side.height:
            at = np.full(n, -1, dtype=np.int64)
            at[of_side["row"].to_numpy()] = np.arange(of_side.height)
            position = pl.Series(at)
            out[name] = of_side.select(
                pl.col("json").gather(pl.select(pl.when(position >= 0).then(position)).to_series())).to_series()
    return out, is_message
