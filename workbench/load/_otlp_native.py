"""The optional C scanner (:mod:`workbench.load._otlp_scan`), its output assembled into Arrow tables.

The scanner reads a block of OTLP JSON Lines against a fixed Arrow schema
and fills that schema's buffers itself, at ~1.4 GB/s per core (UTF-8 text
checked) where pyarrow's JSON reader parses ~0.35 GB/s. It takes only what pyarrow's reader
with the same explicit schema would read identically. A line it cannot read
(not JSON, an unknown or repeated key, a value of another type, an escaped
lone surrogate, ...) is one pyarrow would refuse too: :func:`scan_block`
names its row, and the caller reads that line with the reference reader.
For what pyarrow may still read (NaN, doubles that under- or overflow), it
returns ``None`` and the caller parses the block with pyarrow. The scanner is
built when the package is installed with a C compiler at hand; without one,
or with ``WORKBENCH_NO_SCANNER=1`` set, every block goes to pyarrow. Results
are the same either way (``tests/load/test_otlp_native.py``).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from workbench.load._interop import int64s, null_array, valid_mask
from workbench.load._scanner import (
    AVAILABLE,
    BOOL,
    ENABLED,
    FLOAT64,
    INT64,
    LIST,
    STRING,
    STRUCT,
    _otlp_scan,  # the C module, or None: its helpers below (the scan itself: _scanner)
)
from workbench.load._scanner import scan as raw_scan

_LEAVES = {pa.string_view(): STRING, pa.int64(): INT64, pa.float64(): FLOAT64, pa.bool_(): BOOL}
_SPECS: dict[pa.Schema, tuple] = {}
NOT_SCANNED = object()  # a block nothing has scanned yet (``None`` is a scan's answer: pyarrow must read it)


def spec(dtype: pa.DataType) -> tuple:
    """The scanner's description of ``dtype`` (nested tuples; see ``_otlp_scan.c``)."""
    if pa.types.is_struct(dtype):
        return (STRUCT, tuple((dtype.field(i).name.encode(), spec(dtype.field(i).type))
                               for i in range(dtype.num_fields)))
    if pa.types.is_list(dtype):
        return (LIST, spec(dtype.value_type))
    if dtype not in _LEAVES:
        raise ValueError(f"the scanner does not build {dtype}")
    return (_LEAVES[dtype],)


def scan_block(data: memoryview, schema: pa.Schema, scanned=NOT_SCANNED) -> pa.Table | int | None:
    """The lines in ``data`` as a table of ``schema``; or the 0-based row of a line pyarrow would refuse
    too (not JSON, or not of ``schema``: only the reference reader reads it); or ``None`` where pyarrow
    must parse the block (the scanner is off, or met what pyarrow may take: NaN, extreme numbers).
    ``scanned`` is what :func:`workbench.load._scanner.scan` returned for ``data`` when it already ran (a
    load's head start)."""
    if not ENABLED:
        return None
    if schema not in _SPECS:
        _SPECS[schema] = spec(pa.struct(list(schema)))
    if scanned is NOT_SCANNED:
        scanned = raw_scan(data, _SPECS[schema])
    if scanned is None or isinstance(scanned, int):
        return scanned
    rows, buffers = scanned
    array = _assemble(pa.struct(list(schema)), rows, iter(buffers))
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(array)], schema=schema)


def arrow_type(node: tuple) -> pa.DataType:
    """The Arrow type of a node of the scanner's description (the inverse of :func:`spec`)."""
    if node[0] == STRUCT:
        return pa.struct([(name.decode(), arrow_type(child)) for name, child in node[1]])
    if node[0] == LIST:
        return pa.list_(arrow_type(node[1]))
    return next(dtype for dtype, kind in _LEAVES.items() if kind == node[0])


def dictionary_encode(array: pa.Array) -> tuple[np.ndarray, list[str]]:
    """The code of each string (int64: its index in the distinct strings, in the order they first appear;
    ``-1`` for null) and the distinct strings, as ``array.dictionary_encode()`` gives them.

    A ``string_view`` array is encoded by the C extension from its views:
    pyarrow's own encoding needs ``pyarrow.compute``, whose first import
    (~30 ms) would fall inside a load.
    """
    if not len(array):
        return np.empty(0, dtype=np.int64), []
    if not AVAILABLE or array.type != pa.string_view():
        encoded = array.dictionary_encode()
        return int64s(encoded.indices), encoded.dictionary.to_pylist()
    codes, distinct = _otlp_scan.encode(*_view_args(array))
    return np.frombuffer(codes, dtype=np.int64), [text.decode() for text in distinct]


def json_literals(array: pa.Array) -> pa.Array | None:
    """The strings of a ``string_view`` array as JSON string literals, escaped as orjson escapes them
    (null stays null); ``None`` without the C extension, or for another type or over 2 GiB of text."""
    if not AVAILABLE or array.type != pa.string_view() or not len(array):
        return None
    args = _view_args(array)
    try:
        views, data = _otlp_scan.json_strings(*args)
    except ValueError:  # over 2 GiB of literals: a view's offset is 32 bits
        return None
    valid = args[3]
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if valid is not None else None
    return pa.Array.from_buffers(pa.string_view(), len(array), [bitmap, pa.py_buffer(views), pa.py_buffer(data)],
                                 null_count=array.null_count)


def json_objects(rows: np.ndarray, key_ids: np.ndarray, prefixes: list[bytes], values: pa.Array,
                 tails: list[pa.Array], n_rows: int) -> pa.Array | None:
    """One JSON object per row, written by the C extension (``_json_objects.h``): element ``i`` is the
    piece ``prefixes[key_ids[i]] + values[i]`` of row ``rows[i]`` (ascending); each row's keys come in the
    order they first appear in it, each once with its last value, then the row's ``tails`` pieces (null:
    none). A row with no piece is null. ``None`` without the extension, for another type than
    ``string_view``, or past 2 GiB of text."""
    arrays = [values, *tails]
    if not AVAILABLE or any(a.type != pa.string_view() for a in arrays):
        return None
    try:
        views, data, bitmap, nulls = _otlp_scan.json_objects(
            np.ascontiguousarray(rows, dtype=np.int64), np.ascontiguousarray(key_ids, dtype=np.int64),
            tuple(prefixes), _view_args(values), tuple(_view_args(t) for t in tails), n_rows)
    except ValueError:  # over 2 GiB of text: a view's offset is 32 bits
        return None
    return pa.Array.from_buffers(pa.string_view(), n_rows, [pa.py_buffer(bitmap) if nulls else None,
                                                            pa.py_buffer(views), pa.py_buffer(data)], null_count=nulls)


def span_index(trace: pa.Array, span: pa.Array, parent: pa.Array) -> tuple[np.ndarray, ...] | None:
    """Per row of three ``string_view`` columns, by the C extension (``_span_index.h``): the first row
    with the same (trace, span) pair, the first row whose pair is (trace, parent) (``-1``: no parent or
    none found), and the first row with the same trace, as int64 arrays. Strings are compared, not only
    hashed; a null equals a null. ``None`` without the extension or for another type."""
    columns = (trace, span, parent)
    if not AVAILABLE or any(c.type != pa.string_view() for c in columns):
        return None
    return tuple(np.frombuffer(rows, dtype=np.int64) for rows in _otlp_scan.span_index(*map(_view_args, columns)))


def newlines(data: memoryview) -> np.ndarray | None:
    """The offsets of the newlines in ``data`` (int64), found by the C extension's ``memchr`` loop without
    the GIL; ``None`` without the extension."""
    if not AVAILABLE:
        return None
    return np.frombuffer(_otlp_scan.newlines(data), dtype=np.int64)


def populate(data: memoryview) -> bool | None:
    """Map in the pages under ``data`` (which starts on a page) without holding the GIL
    (``MADV_POPULATE_READ``); whether the kernel did, or ``None`` without the extension."""
    if not AVAILABLE:
        return None
    return _otlp_scan.populate(data)


def unmap(data: memoryview) -> bool | None:
    """Drop the process's mapping of the pages under ``data`` (whole pages) without holding the GIL
    (``MADV_DONTNEED``; a file's pages stay in the page cache); whether the kernel did, or ``None`` without
    the extension."""
    if not AVAILABLE:
        return None
    return _otlp_scan.unmap(data)


def text_checks(array: pa.Array, check: str, only: np.ndarray | None = None) -> np.ndarray | None:
    """``check`` of each string of a ``string_view`` array, by the C extension (``_text_checks.h``):
    ``"int_texts"`` (an integer as text; null: False) or ``"nanos_texts"`` (a nanosecond timestamp as
    text, or empty; null: True). ``only`` marks the strings to read: the others count as null. ``None``
    without the extension or for another type."""
    if not AVAILABLE or array.type != pa.string_view():
        return None
    views, n, data, valid = _view_args(array)
    if only is not None:
        valid = only if valid is None else valid & only
    flags = getattr(_otlp_scan, check)(views, n, data, None if valid is None else np.ascontiguousarray(valid))
    return np.frombuffer(flags, dtype=bool)


def has_upper(array: pa.Array) -> bool | None:
    """Whether a string of a ``string_view`` array holds an ASCII capital or a byte beyond ASCII (C
    extension); ``None`` without it or for another type."""
    if not AVAILABLE or array.type != pa.string_view():
        return None
    return _otlp_scan.has_upper(*_view_args(array))


def _view_args(array: pa.Array) -> tuple:
    """A ``string_view`` array as the C functions over views take it: ``(views, n, data buffers, valid)``."""
    if not len(array):
        return b"", 0, (), None
    buffers = array.buffers()
    return (memoryview(buffers[1])[array.offset * 16:], len(array), tuple(b for b in buffers[2:] if b is not None),
            valid_mask(array) if array.null_count else None)


def release() -> None:
    """Free the scanner's buffers kept for reuse (at the end of a load)."""
    if AVAILABLE:
        _otlp_scan.release()


def _assemble(dtype: pa.DataType, length: int, buffers) -> pa.Array:
    """One node's array from the scanner's buffers (in its depth-first order), children first consumed;
    all nulls where the scanner wrote nothing (``None`` buffers: a field no row of the block has)."""
    first = next(buffers)
    if first is None:
        for _ in range(_buffer_count(dtype) - 1):
            next(buffers)
        return null_array(length, dtype)
    valid = np.frombuffer(first, dtype=np.uint8)
    nulls = length - int(np.count_nonzero(valid))
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    if pa.types.is_struct(dtype):
        children = [_assemble(dtype.field(i).type, length, buffers) for i in range(dtype.num_fields)]
        return pa.Array.from_buffers(dtype, length, [bitmap], null_count=nulls, children=children)
    values = next(buffers)
    if pa.types.is_list(dtype):
        child_length = int(np.frombuffer(values, dtype=np.int32)[-1])
        child = _assemble(dtype.value_type, child_length, buffers)
        return pa.Array.from_buffers(dtype, length, [bitmap, pa.py_buffer(values)], null_count=nulls,
                                     children=[child])
    if dtype == pa.string_view():
        return pa.Array.from_buffers(dtype, length, [bitmap, pa.py_buffer(values), pa.py_buffer(next(buffers))],
                                     null_count=nulls)
    if dtype == pa.bool_():
        packed = np.packbits(np.frombuffer(values, dtype=np.uint8), bitorder="little")
        return pa.Array.from_buffers(dtype, length, [bitmap, pa.py_buffer(packed)], null_count=nulls)
    return pa.Array.from_buffers(dtype, length, [bitmap, pa.py_buffer(values)], null_count=nulls)


def _buffer_count(dtype: pa.DataType) -> int:
    """How many buffers the scanner hands back for a node of ``dtype`` and the nodes under it."""
    if pa.types.is_struct(dtype):
        return 1 + sum(_buffer_count(dtype.field(i).type) for i in range(dtype.num_fields))
    if pa.types.is_list(dtype):
        return 2 + _buffer_count(dtype.value_type)
    return 3 if dtype == pa.string_view() else 2
