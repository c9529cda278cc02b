"""Columns between numpy, Arrow and polars, without the imports the convenient routes pull in.

The obvious conversions each import a module on first use, and a load pays
that inside its timed work, holding the GIL the worker threads share:

* ``pl.Series(ndarray)`` checks for a masked array and imports ``numpy.ma``
  (~35 ms);
* ``pl.from_arrow`` and pyarrow's ``flatten``, ``is_null``, ``is_valid``
  and ``dictionary_encode`` import ``pyarrow.compute`` (~30 ms, most of
  it writing docstrings);
* ``pa.array(ndarray)`` imports pandas (~0.2 s);
* ``np.unique(ndarray)`` (no ``return_*`` flag) checks for a masked array
  too (:func:`unique`).

Here Arrow reaches polars through the Arrow PyCapsule interface (zero-copy,
as ``pl.from_arrow``), numpy reaches Arrow around its own memory, and
validity and list lengths are read from the Arrow buffers with numpy.
"""

from __future__ import annotations

import mmap
from collections.abc import Collection

import numpy as np
import polars as pl
import pyarrow as pa

_ZEROS: list[pa.Buffer] = []  # the read-only zeros behind all-null arrays (:func:`null_array`)
_ARROW_TYPES = {np.dtype(np.int64): pa.int64(), np.dtype(np.int32): pa.int32(), np.dtype(np.float64): pa.float64()}


class _Stream:
    """An Arrow chunked array offered to polars as an Arrow C stream (its chunks kept)."""

    __slots__ = ("_data",)

    def __init__(self, data: pa.ChunkedArray) -> None:
        self._data = data

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        return self._data.__arrow_c_stream__(requested_schema)


class _Array:
    """An Arrow array offered to polars through the Arrow C data interface."""

    __slots__ = ("_data",)

    def __init__(self, data: pa.Array) -> None:
        self._data = data

    def __arrow_c_array__(self, requested_schema: object | None = None) -> object:
        return self._data.__arrow_c_array__(requested_schema)


def polars_series(array: pa.Array | pa.ChunkedArray, name: str = "") -> pl.Series:
    """An Arrow array as a polars Series (zero-copy, like ``pl.from_arrow``)."""
    wrapped = _Stream(array) if isinstance(array, pa.ChunkedArray) else _Array(array)
    return pl.Series(wrapped).alias(name)  # the C interface route takes no name


def polars_frame(table: pa.Table) -> pl.DataFrame:
    """An Arrow table as a polars DataFrame (zero-copy, chunks kept, like ``pl.from_arrow(rechunk=False)``).

    Column by column: polars takes a whole table's stream as one struct column and unnests it, and
    that raised a 1M-span load's peak from 0.75x to ~1.0x the file (what it copies was not pinned down;
    the text is shared either way, ``tests/load/test_interop.py``).
    """
    return pl.DataFrame([polars_series(column, name) for name, column in zip(table.column_names, table.columns,
                                                                            strict=True)])


def numpy_array(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """An int64, int32, float64 or bool numpy array as Arrow around the same memory (bools packed into
    bits); ``valid`` marks the non-null positions."""
    bitmap = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    if values.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(values), [bitmap, pa.py_buffer(np.packbits(values, bitorder="little"))])
    if values.dtype not in _ARROW_TYPES:
        values = values.astype(np.int64)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(_ARROW_TYPES[values.dtype], len(values), [bitmap, pa.py_buffer(values)])


def numpy_series(values: np.ndarray, name: str = "", valid: np.ndarray | None = None) -> pl.Series:
    """A numpy array (int, float64 or bool) as a polars Series; ``valid`` marks the non-null positions."""
    return polars_series(numpy_array(values, valid), name)


def null_array(length: int, dtype: pa.DataType) -> pa.Array:
    """``pa.nulls(length, dtype)`` for the struct, list, ``string_view`` and fixed-width types the parsers
    build, over one shared buffer of zeros (``tests/load/test_interop.py``).

    ``pa.nulls`` writes fresh zeros for every array. A block of 10k spans
    has ~12 fields no row carries (events, links, four attribute value
    types over ~110k attributes), and those zeros were ~19 ms of a block's
    page faults, with the GIL held. The shared buffer is an anonymous
    read-only mapping: its pages are the kernel's zero page, never written.
    """
    bitmap = _zeros((length + 7) // 8)
    if pa.types.is_struct(dtype):
        children = [null_array(length, dtype.field(i).type) for i in range(dtype.num_fields)]
        return pa.Array.from_buffers(dtype, length, [bitmap], null_count=length, children=children)
    if pa.types.is_list(dtype):
        return pa.Array.from_buffers(dtype, length, [bitmap, _zeros(4 * (length + 1))], null_count=length,
                                     children=[null_array(0, dtype.value_type)])
    width = 16 * length if dtype == pa.string_view() else (length * dtype.bit_width + 7) // 8
    return pa.Array.from_buffers(dtype, length, [bitmap, _zeros(width)], null_count=length)


def _zeros(size: int) -> pa.Buffer:
    zeros = _ZEROS[0] if _ZEROS else None
    if zeros is None or zeros.size < size:  # a race between threads only maps one more
        mapped = max(size, 1 << 20, 2 * zeros.size if zeros is not None else 0)
        try:
            zeros = pa.py_buffer(mmap.mmap(-1, mapped, prot=mmap.PROT_READ))
        except (AttributeError, OSError, ValueError):  # no ``prot`` (Windows): plain zeros
            zeros = pa.py_buffer(np.zeros(mapped, dtype=np.uint8))
        _ZEROS[:] = [zeros]
    return zeros.slice(0, size)


def chunked_like(series: pl.Series, like: pl.Series) -> pl.Series:
    """``series`` cut into chunks of the lengths of ``like``'s (zero-copy slices).

    A frame whose columns are chunked alike is worked on chunk by chunk.
    One column chunked otherwise makes polars rechunk every column before any
    ``select``, ``filter`` or ``with_columns``: at 100k spans in ten blocks
    that copied 27 MiB of string views and took 15-70 ms, on every operation
    on the frame (``tests/load/test_interop.py``).
    """
    lengths = like.chunk_lengths()
    if len(lengths) <= 1 or series.chunk_lengths() == lengths:
        return series
    ends = np.cumsum(lengths)
    return pl.concat([series.slice(int(end - length), int(length)) for end, length in zip(ends, lengths, strict=True)],
                     rechunk=False)


def aligned(frame: pl.DataFrame, literals: Collection[str] = ()) -> pl.DataFrame:
    """``frame`` with each column of several chunks cut as its first column is (:func:`chunked_like`).

    Frames of several files, concatenated, hold the columns that were one
    value per file (``source_file``) in a chunk per file, the others in a
    chunk per block. A column of one chunk is left alone: a column of one
    value (``pl.lit``) shows as one chunk and costs polars nothing, so a
    column built from numpy is cut where it is made (:mod:`workbench.load.anomalies`).
    The columns named in ``literals`` are known to be such a value and are
    not looked at: looking writes them out (at 100k spans 1.6 MB and ~400
    page faults a column).
    """
    if not frame.width:
        return frame
    like = frame.to_series(0)
    lengths = like.chunk_lengths()
    uneven = [name for name in frame.columns[1:] if name not in literals and frame[name].n_chunks() > 1
              and frame[name].chunk_lengths() != lengths]
    return frame.with_columns(chunked_like(frame[name].rechunk(), like) for name in uneven) if uneven else frame


def stacked(frames: list[pl.DataFrame], literals: Collection[str] = ()) -> pl.DataFrame:
    """``frames`` one under another, without a copy, their columns cut alike (:func:`aligned`): the blocks
    of a file, or the files of a load. ``literals`` name the columns that are one value (``pl.lit``) in
    every frame: polars keeps them one value after the concat, and nothing is left to cut."""
    return aligned(pl.concat(frames, how="vertical", rechunk=False), literals)


def concatenated(arrays: list[pa.Array]) -> pa.Array:
    """``arrays`` as one array; a single one as it is (``pa.concat_arrays`` copies even one: a block's
    attribute keys, 1.8 MB of views at 10k spans)."""
    return arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays)


def valid_mask(array: pa.Array) -> np.ndarray:
    """Which entries of ``array`` are not null (read from its validity bitmap)."""
    n = len(array)
    if not array.null_count:
        return np.ones(n, dtype=bool)
    bitmap = array.buffers()[0]
    if array.null_count == n or bitmap is None:
        return np.zeros(n, dtype=bool)
    bits = np.unpackbits(np.frombuffer(bitmap, dtype=np.uint8), count=array.offset + n, bitorder="little")
    return bits[array.offset:].astype(bool)


def _offsets(array: pa.ListArray) -> np.ndarray:
    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)


def list_lengths(array: pa.ListArray) -> np.ndarray:
    """The number of elements in each list of ``array`` (0 for a null list)."""
    lengths = np.diff(_offsets(array)).astype(np.int64)
    if array.null_count:
        lengths[~valid_mask(array)] = 0
    return lengths


def list_values(array: pa.ListArray) -> pa.Array:
    """The elements of the lists of ``array`` in order, as ``array.flatten()`` (a zero-copy slice)."""
    offsets = _offsets(array)
    if array.null_count and np.diff(offsets)[~valid_mask(array)].any():
        return array.flatten()  # a null list over elements (the parsers here never write one): pyarrow skips them
    return array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def list_rows(array: pa.ListArray) -> np.ndarray:
    """For each element of :func:`list_values`, the index of the row (list) it came from.

    Read from the offsets with numpy: ``value_parent_indices`` plus a
    conversion costs ~0.2 ms per call, paid per chunk and nesting level.
    """
    return np.repeat(np.arange(len(array), dtype=np.int64), list_lengths(array))


def int64s(array: pa.Array, null: int = -1) -> np.ndarray:
    """An integer array as int64 numpy, ``null`` for nulls."""
    if not len(array):
        return np.empty(0, dtype=np.int64)
    if pa.types.is_integer(array.type):
        kind = "i" if pa.types.is_signed_integer(array.type) else "u"
        values = np.frombuffer(array.buffers()[1], dtype=f"{kind}{array.type.bit_width // 8}",
                               count=len(array) + array.offset)[array.offset:].astype(np.int64)
        if array.null_count:
            values[~valid_mask(array)] = null
        return values
    return polars_series(array).cast(pl.Int64).fill_null(null).to_numpy()


def unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-D integer array, as ``np.unique`` (which imports ``numpy.ma``)."""
    ordered = np.sort(values)
    return ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))] if len(ordered) else ordered
