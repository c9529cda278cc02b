"""Parsing blocks of OTLP JSON Lines into Arrow tables of one fixed shape.

Two schemas per shape (one span per line; one Collector request per line):

* the *full* schema names every OTLP field with its type. Parsing against
  it is exact (an unknown field or a value of the wrong type fails the
  parse) but slow: every absent field costs a null on every row, and an
  attribute value has nine possible fields of which one is set.
* the *pinned* schema names only the fields nearly every span carries,
  as ``string_view`` so that polars takes the text without copying it;
  the rest is inferred from the data. This parses about a third faster.

:func:`parse_block` parses against the pinned schema, checks that what was
inferred fits the full schema (:func:`fits`: known fields only, types that
cast without loss) and completes it to that schema (:func:`complete`); when it does not fit it parses again
against the full schema, so the result is always the full schema's or
``None`` (the caller then reads the block line by line).

pyarrow's parser does not check UTF-8; :func:`valid_utf8` checks the raw
bytes of a block it parsed, twice as fast as validating every parsed string.
(The C scanner checks the strings it reads itself: ``_utf8.h``.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.json as pj

from workbench.load._interop import null_array
from workbench.load._otlp_native import NOT_SCANNED, arrow_type, scan_block
from workbench.load._otlp_native import release as release_scanner_memory
from workbench.load._scanner import INT as INT_NODE
from workbench.load._scanner import SCALAR_FIELDS, SHAPES, list_of, request_fields, struct
from workbench.load._scanner import STR as STR_NODE

STR = pa.string_view()  # polars takes views without a copy; pyarrow parses them as fast
PYARROW_BLOCK_BYTES = 4 << 20  # pyarrow's parse unit; a line longer than this is read line by line
JEMALLOC_DECAY_MS = -1  # freed parse memory is kept for the next block; a load gives it back at its end
_POOL: pa.MemoryPool | None = None

SCALAR_TYPES = {name: arrow_type(node) for name, node in SCALAR_FIELDS}  # an attribute value's scalar fields


def _schema(node: tuple) -> pa.Schema:
    return pa.schema(list(arrow_type(node)))


FULL = {shape: _schema(node) for shape, node in SHAPES.items()}
SPAN_SCHEMA, REQUEST_SCHEMA = FULL["span"], FULL["request"]
_PINNED_KV = list_of(struct(("key", STR_NODE), ("value", struct(("stringValue", STR_NODE), ("intValue", STR_NODE)))))
_PINNED_SPAN = (("traceId", STR_NODE), ("spanId", STR_NODE), ("parentSpanId", STR_NODE), ("name", STR_NODE),
                ("kind", INT_NODE), ("startTimeUnixNano", STR_NODE), ("endTimeUnixNano", STR_NODE),
                ("attributes", _PINNED_KV), ("status", struct(("code", INT_NODE), ("message", STR_NODE))))
PINNED = {
    "span": _schema(struct(*_PINNED_SPAN)),
    "request": _schema(struct(*request_fields(_PINNED_SPAN, struct(("attributes", _PINNED_KV)),
                                              struct(("name", STR_NODE), ("version", STR_NODE)), ()))),
}
_TYPE_CHANGED = "changed from"  # pyarrow's message when inference meets two types in one column


def parse_block(data: memoryview, shape: str, plain: Callable[[], bool] | None = None,
                scanned=NOT_SCANNED) -> pa.Table | int | None:
    """The lines in ``data`` as a table of the full schema of ``shape``, or ``None`` when they need a closer look
    (one of them is not JSON of that shape, or not UTF-8).

    The C scanner (:mod:`workbench.load._otlp_native`) reads the block when
    it is built and the block is plain; when it names a line pyarrow would
    refuse too, that row is returned (an ``int``); pyarrow reads the rest.
    The scanner reads row ``i`` from line ``i``. pyarrow skips blank lines,
    so it reads only where ``plain()`` says that every line starts a record
    (asked only then: the loader's check reads the first byte of every line).
    ``scanned``: the scanner's raw answer for ``data``, where a load's head start already scanned it.
    """
    scanned = scan_block(data, FULL[shape], scanned)
    if scanned is not None:
        return scanned
    if (plain is not None and not plain()) or not valid_utf8(data):
        return None
    buffer = pa.py_buffer(data)
    try:
        table = _read(buffer, PINNED[shape], "infer")
    except pa.ArrowInvalid as exc:
        if _TYPE_CHANGED not in str(exc):
            return None  # malformed JSON, a duplicate key, ...: the exact schema would fail too
        table = None
    if table is not None and fits(pa.struct(list(table.schema)), pa.struct(list(FULL[shape]))):
        return _completed(table, FULL[shape])
    try:
        return _read(buffer, FULL[shape], "error")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _read(buffer: pa.Buffer, schema: pa.Schema, unexpected: str) -> pa.Table:
    return pj.read_json(buffer, read_options=pj.ReadOptions(block_size=PYARROW_BLOCK_BYTES, use_threads=False),
                        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected),
                        memory_pool=parse_pool())


def parse_pool() -> pa.MemoryPool:
    """The memory pool parsed blocks are built in: pyarrow's jemalloc where the wheel has it.

    The default (mimalloc) pool backs its arenas with transparent huge pages.
    The text a load keeps (zero-copy) then pins partly used 2 MiB pages (about
    +400 MiB at a million spans), and huge-page faults, which compact memory
    first, cost two to three times the system time on a VM. jemalloc without
    decay reuses the memory of one block's parse for the next (a one-second
    decay gave back, and faulted in again, ~10% more pages at a million
    spans); :func:`release_parse_memory` returns it when a load ends. The
    setting applies to jemalloc arenas created after the first call.
    """
    global _POOL
    if _POOL is None:
        try:
            pool = pa.jemalloc_memory_pool()
            pa.jemalloc_set_decay_ms(JEMALLOC_DECAY_MS)
        except NotImplementedError:  # a pyarrow built without jemalloc
            pool = pa.default_memory_pool()
        _POOL = pool
    return _POOL


def release_parse_memory() -> None:
    """Give the parse pool's and the C scanner's free memory back to the system (at the end of a load)."""
    if _POOL is not None:
        _POOL.release_unused()
    release_scanner_memory()


def fits(inferred: pa.DataType, target: pa.DataType) -> bool:
    """Whether values of the ``inferred`` type cast to ``target`` without loss or guesswork.

    Structs fit when every inferred field is a target field that fits (absent
    fields become nulls); lists when their items fit; otherwise only the same
    type, ``null``, ``int64`` to ``float64`` and ``string`` to ``string_view``.
    A string pyarrow took for a timestamp does not fit.
    """
    if inferred == target or pa.types.is_null(inferred):
        return True
    if pa.types.is_struct(inferred):
        if not pa.types.is_struct(target):
            return False
        names = {target.field(i).name: target.field(i).type for i in range(target.num_fields)}
        return all(field.name in names and fits(field.type, names[field.name]) for field in inferred)
    if pa.types.is_list(inferred):
        return pa.types.is_list(target) and fits(inferred.value_type, target.value_type)
    return (inferred, target) in {(pa.int64(), pa.float64()), (pa.string(), STR)}


def _completed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    target = pa.struct(list(schema))
    return pa.Table.from_batches(
        [pa.RecordBatch.from_struct_array(complete(batch.to_struct_array(), target)) for batch in table.to_batches()],
        schema=schema)


def complete(array: pa.Array, target: pa.DataType) -> pa.Array:
    """``array`` as ``target``, a type it :func:`fits`: absent struct fields added as nulls.

    Structs and lists are rebuilt around their own buffers (no copy) and
    only the leaves whose type differs are cast: 5-10x cheaper than
    pyarrow's cast of the whole nested array, which rebuilds every level.
    """
    if array.type == target:
        return array
    if array.offset == 0 and pa.types.is_struct(target) and pa.types.is_struct(array.type):
        children = []
        for i in range(target.num_fields):
            field = target.field(i)
            at = array.type.get_field_index(field.name)
            children.append(null_array(len(array), field.type) if at < 0 else complete(array.field(at), field.type))
        return pa.Array.from_buffers(target, len(array), [array.buffers()[0]], null_count=array.null_count,
                                     children=children)
    if array.offset == 0 and pa.types.is_list(target) and pa.types.is_list(array.type):
        return pa.Array.from_buffers(target, len(array), array.buffers()[:2], null_count=array.null_count,
                                     children=[complete(array.values, target.value_type)])
    return array.cast(target)


def valid_utf8(data: memoryview) -> bool:
    """Whether the bytes are valid UTF-8, checked by Arrow as one string (no copy).

    Equivalent to validating every parsed string: JSON outside strings is
    ASCII, and pyarrow's parser refuses escaped surrogates that would decode
    to invalid text (``tests/load/test_otlp_arrow.py``).
    """
    offsets = pa.py_buffer(np.array([0, len(data)], dtype=np.int64))
    whole = pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(data)])
    try:
        whole.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True
