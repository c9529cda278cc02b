"""OpenInference's flattened messages (``llm.input_messages.N.message.role`` ...) in the columnar OTLP path.

The reference reader (``_attrs._take_messages``) turns a span's message keys
into its ``input`` / ``output``: a JSON list of message objects ordered by
index, each object's keys in the order they first appear, e.g.
``[{"role":"system","content":"..."},{"role":"user","content":"..."}]``;
the message keys leave ``attributes`` and ``input.value`` / ``output.value``
stay there. This module builds the same JSON with polars kernels for *simple*
messages and their tool calls: keys ``llm.<side>_messages.N.message.FIELD``,
``....N.message.tool_calls.M.tool_call.FIELD`` and
``....tool_call.function.FIELD`` (indexes without leading zeros), each at
most once per span, with a string, integer or boolean value. A span with any
other message key (multimodal contents, deeper nesting), a repeated one or a
double value is marked complex and read by the reference reader.
"""

from __future__ import annotations

import re

import numpy as np
import orjson
import polars as pl

from workbench.load._interop import numpy_series
from workbench.load._otlp_json import gather_index, value_json

SIDES = ("input", "output")
_PREFIXES = ("llm.input_messages.", "llm.output_messages.")
_INDEX = r"(0|[1-9][0-9]{0,8})"
# N.message.FIELD, N.message.tool_calls.M.tool_call.FIELD, N.message.tool_calls.M.tool_call.function.FIELD
_KEY = re.compile(rf"^llm\.(?:input|output)_messages\.{_INDEX}\.message\."
                  rf"(?:tool_calls\.{_INDEX}\.tool_call\.(function\.)?)?([A-Za-z_][A-Za-z0-9_]*)$")
_GROUP = ["row", "side", "message"]


def message_columns(elements: pl.DataFrame, key_id: np.ndarray, distinct: list[str], n: int,
                    el_complex: np.ndarray) -> tuple[dict[str, pl.Series], np.ndarray]:
    """Per side (``input``, ``output``) each span's messages JSON (null where it has none), and the message elements.

    ``elements``, ``key_id`` and ``distinct`` are those of
    :func:`workbench.load._otlp_columns.attribute_elements`; elements of
    messages this cannot build exactly are marked in ``el_complex``.
    """
    slots = len(distinct) + 1  # the extra slot: a null key
    side, simple = np.zeros(slots, dtype=np.int8), np.zeros(slots, dtype=bool)
    message, call, in_function = (np.full(slots, -1, dtype=np.int64), np.full(slots, -1, dtype=np.int64),
                                  np.zeros(slots, dtype=bool))
    field = [""] * slots
    for i, key in enumerate(distinct):
        if key.startswith(_PREFIXES):
            side[i] = 1 if key.startswith(_PREFIXES[0]) else 2
            match = _KEY.match(key)
            # a member that is both a value and a structure ("tool_calls", "function") is left to the reference
            if match and not (match[2] is None and match[4] == "tool_calls") and not (
                    match[2] is not None and match[3] is None and match[4] == "function"):
                simple[i], message[i] = True, int(match[1])
                call[i] = int(match[2]) if match[2] is not None else -1
                in_function[i] = match[3] is not None
                field[i] = orjson.dumps(match[4]).decode() + ":"
    is_message = side[key_id] > 0
    if not is_message.any():
        return {}, is_message
    rows = elements["row"].to_numpy()
    typed = elements.select(pl.col("sv").is_not_null() | pl.col("iv").is_not_null() | pl.col("bv").is_not_null()
                            ).to_series().to_numpy()
    unsupported = is_message & ~(simple[key_id] & typed & ~el_complex)
    chosen = np.flatnonzero(is_message)
    pairs = rows[chosen] * slots + key_id[chosen]
    unique, counts = np.unique(pairs, return_counts=True)
    if (counts > 1).any():  # a key repeated in one span: the reference keeps its last value at its first place
        unsupported[chosen[np.isin(pairs, unique[counts > 1])]] = True
    el_complex |= unsupported
    keys = key_id[chosen]
    built = elements.gather(numpy_series(chosen)).select(
        numpy_series(rows[chosen], "row"), numpy_series(side[keys], "side"), numpy_series(message[keys], "message"),
        numpy_series(call[keys], "call"), numpy_series(in_function[keys], "function"), numpy_series(chosen, "pos"),
        (pl.Series([field[k] for k in keys], dtype=pl.String) + value_json()).alias("piece"))
    lists = _message_lists(built)
    out = {}
    for number, name in enumerate(SIDES, start=1):
        of_side = lists.filter(pl.col("side") == number)
        if of_side.height:
            at = np.full(n, -1, dtype=np.int64)
            at[of_side["row"].to_numpy()] = np.arange(of_side.height)
            out[name] = of_side.select(pl.col("json").gather(gather_index(at))).to_series()
    return out, is_message


def _joined(frame: pl.DataFrame, by: list[str], order: str, opening: str, closing: str) -> pl.DataFrame:
    """One ``opening piece,piece,... closing`` per group of ``by``, pieces ordered by ``order``; its first ``pos``."""
    return frame.sort([*by, order]).group_by(by, maintain_order=True).agg(
        pl.col("pos").min(), (pl.lit(opening) + pl.col("piece").str.join(",") + pl.lit(closing)).alias("piece"))


def _message_lists(built: pl.DataFrame) -> pl.DataFrame:
    """``(row, side, json)``: each span's message list, members in first-appearance order as the reference's dicts.

    ``built`` has one row per message element: ``row, side, message, call``
    (``-1``: a field of the message itself), ``function`` (a field of the
    call's ``function``), ``pos`` (the element's place in the span) and
    ``piece`` (``"field":value``).
    """
    calls = built.filter(pl.col("call") >= 0)
    functions = _joined(calls.filter(pl.col("function")), [*_GROUP, "call"], "pos", '"function":{', "}")
    members = pl.concat([calls.filter(~pl.col("function")).select(*_GROUP, "call", "pos", "piece"),
                         functions.select(*_GROUP, "call", "pos", "piece")])
    objects = _joined(members, [*_GROUP, "call"], "pos", "{", "}")
    tool_calls = _joined(objects, _GROUP, "call", '"tool_calls":[', "]") if objects.height else None
    own = built.filter(pl.col("call") < 0).select(*_GROUP, "pos", "piece")
    fields = pl.concat([own, tool_calls.select(*_GROUP, "pos", "piece")]) if tool_calls is not None else own
    messages = _joined(fields, _GROUP, "pos", "{", "}")
    return _joined(messages.with_columns(pl.col("message").alias("order")), ["row", "side"], "order", "[", "]"
                   ).rename({"piece": "json"})
