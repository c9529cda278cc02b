"""numpy / Arrow / polars conversions that avoid pandas, numpy.ma and pyarrow.compute give what pyarrow gives."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.load.test_otlp_fast import _write
from workbench.load import _interop, _otlp_native

ROOT = Path(__file__).resolve().parents[2]

lists = st.lists(st.one_of(st.none(), st.lists(st.one_of(st.none(), st.integers(-5, 5)), max_size=4)), max_size=12)


@settings(max_examples=200, deadline=None)
@given(lists, st.integers(0, 3), st.integers(0, 3))
def test_list_helpers_agree_with_pyarrow(rows, start, stop):
    array = pa.array(rows, pa.list_(pa.int64()))
    array = array.slice(min(start, len(array)), max(0, len(array) - start - stop))
    assert _interop.list_values(array).to_pylist() == array.flatten().to_pylist()
    assert _interop.list_lengths(array).tolist() == pc.list_value_length(array).fill_null(0).to_pylist()
    assert _interop.valid_mask(array).tolist() == array.is_valid().to_pylist()
    parents = pc.list_parent_indices(array).to_pylist() if len(array) else []
    assert _interop.list_rows(array).tolist() == parents


def test_a_null_list_over_elements_is_skipped_like_pyarrow():
    offsets = pa.array([0, 2, 3], pa.int32())
    array = pa.ListArray.from_arrays(offsets, pa.array([1, 2, 3]), mask=pa.array([True, False]))
    assert _interop.list_values(array).to_pylist() == array.flatten().to_pylist() == [3]


@pytest.mark.parametrize("values", [np.array([3, -1, 7]), np.array([True, False, True]), np.array([0.5, -2.0, 1e9]),
                                    np.array([1, 2, 3], dtype=np.int32)])
def test_numpy_series_keeps_values_and_nulls(values):
    plain = _interop.numpy_series(values, "x")
    assert plain.name == "x" and plain.to_list() == values.tolist()
    valid = np.array([True, False, True])
    assert _interop.numpy_series(values, valid=valid).to_list() == [values[0].item(), None, values[2].item()]


def test_polars_frame_and_series_are_zero_copy_views_of_arrow():
    text = pa.array(["a" * 40, None, "b"], pa.string_view())
    table = pa.table({"t": pa.chunked_array([text, text]), "n": pa.chunked_array([pa.array([1, 2, 3])] * 2)})
    frame = _interop.polars_frame(table)
    assert frame.columns == ["t", "n"] and frame["t"].n_chunks() == 2
    assert frame.to_dict(as_series=False) == {"t": ["a" * 40, None, "b"] * 2, "n": [1, 2, 3] * 2}
    assert _interop.polars_series(text, "s").to_list() == ["a" * 40, None, "b"]


def _text_over(raw: bytearray) -> pa.Array:
    """A one-string ``string_view`` array whose text is ``raw`` itself (no copy)."""
    view = np.zeros(4, dtype=np.int32)
    view[0] = len(raw)
    view[1] = int.from_bytes(raw[:4], "little", signed=True)
    return pa.Array.from_buffers(pa.string_view(), 1, [None, pa.py_buffer(view), pa.py_buffer(raw)])


def test_polars_frames_and_series_share_the_text_memory_of_arrow():
    """Spilled text is memory-mapped: a conversion that copied it would bring it back onto the heap."""
    raw = bytearray(b"x" * 40)
    array = _text_over(raw)
    frame = _interop.polars_frame(pa.table({"t": pa.chunked_array([array])}))
    series = _interop.polars_series(array)
    raw[20] = ord("y")
    assert frame["t"][0][20] == "y" and series[0][20] == "y"


def test_int64s_fills_nulls():
    assert _interop.int64s(pa.array([4, None, -2], pa.int32()).slice(1)).tolist() == [-1, -2]
    assert _interop.int64s(pa.array([4, None], pa.uint8()), null=0).tolist() == [4, 0]


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")
@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.sampled_from(["", "a", "key", "x" * 12, "x" * 13, "é" * 9, "llm.model_name"]),
                          st.text(max_size=30)), max_size=60), st.integers(0, 5))
def test_dictionary_encode_agrees_with_pyarrow(strings, start):
    array = pa.concat_arrays([pa.array(strings, pa.string_view()), pa.array(strings[::-1], pa.string_view())])
    array = array.slice(min(start, len(array)))
    codes, distinct = _otlp_native.dictionary_encode(array)
    encoded = array.dictionary_encode()
    assert codes.tolist() == pl.Series(encoded.indices).fill_null(-1).to_list()
    assert distinct == encoded.dictionary.to_pylist()


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")
def test_dictionary_encode_guesses_the_next_key_and_checks_the_guess():
    rng = random.Random(3)
    orders = [["kind", "input.value", "output.value", "llm.model_name"], ["kind", "tool.name", "input.value"],
              ["input.value", "kind"], ["a" * 13, "a" * 12 + "b", "a" * 12]]  # same prefix, same length
    keys = []
    for _ in range(3000):  # spans repeat an order, switch, drop or null a key: the guess hits, then misses
        order = rng.choice(orders)
        keys += [None if rng.random() < 0.02 else key for key in order if rng.random() < 0.95]
    array = pa.array(keys, pa.string_view())
    codes, distinct = _otlp_native.dictionary_encode(array)
    encoded = array.dictionary_encode()
    assert codes.tolist() == pl.Series(encoded.indices).fill_null(-1).to_list()
    assert distinct == encoded.dictionary.to_pylist()


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")
def test_dictionary_encode_grows_its_table():
    keys = [f"attribute.{i % 5000}" for i in range(20000)]
    codes, distinct = _otlp_native.dictionary_encode(pa.array(keys, pa.string_view()))
    assert distinct == keys[:5000] and codes.tolist() == [i % 5000 for i in range(20000)]


@pytest.mark.parametrize("shape", ["span", "request"])
def test_a_load_imports_neither_numpy_ma_nor_pyarrow_compute_nor_pandas(tmp_path, shape):
    """Their first imports cost ~35, ~30 and ~200 ms inside a load (in a fresh process: every benchmark run)."""
    path = str(_write(tmp_path, shape))
    code = ("import sys; from workbench.load import read_traces; from workbench.load import _otlp_fast; "
            f"stats = _otlp_fast.FastStats(); _otlp_fast.read_bytes_fast({path!r}, stats=stats); "
            f"assert stats.rows_columnar > 0; assert read_traces({path!r}, cache=False).traces.height; "
            "print(sorted(m for m in ('numpy.ma', 'pyarrow.compute', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


@given(st.lists(st.integers(-3, 3), max_size=20))
def test_unique_is_numpys(values):
    array = np.array(values, dtype=np.int64)
    assert _interop.unique(array).tolist() == np.unique(array).tolist()


def _chunked(values: list, lengths: list[int], name: str = "") -> pl.Series:
    ends = np.cumsum(lengths)
    return pl.concat([pl.Series(name, values[end - n:end]) for end, n in zip(ends, lengths, strict=True)],
                     rechunk=False)


@pytest.mark.parametrize("lengths", [[3, 4, 5], [12], [1, 10, 1]])
def test_chunked_like_cuts_a_series_as_another_keeping_its_values(lengths):
    like = _chunked(list(range(12)), lengths)
    values = pl.Series("flag", [i % 3 == 0 for i in range(12)])
    cut = _interop.chunked_like(values, like)
    assert cut.chunk_lengths() == lengths and cut.to_list() == values.to_list() and cut.name == "flag"


def test_aligned_cuts_columns_chunked_per_file_as_the_first_column():
    # two files' frames concatenated: ids in a chunk per block, the file name in a chunk per file
    ids = _chunked([f"s{i}" for i in range(10)], [3, 3, 2, 2], "span_id")
    files = _chunked(["a"] * 6 + ["b"] * 4, [6, 4], "source_file")
    one = pl.Series("kind", ["llm"] * 10)  # one chunk: left alone (as a literal column is)
    frame = _interop.aligned(pl.DataFrame([ids, files, one]))
    assert frame["source_file"].chunk_lengths() == [3, 3, 2, 2]
    assert frame["source_file"].to_list() == ["a"] * 6 + ["b"] * 4
    assert frame["kind"].n_chunks() == 1 and frame["span_id"].to_list() == ids.to_list()


def test_stacked_leaves_the_columns_named_literal_unread_and_cuts_the_others():
    blocks = [pl.DataFrame({"span_id": [f"s{i}" for i in range(k)]}).with_columns(
        pl.lit("a").alias("source_file"), pl.Series("kind", ["llm"] * k)) for k in (3, 3, 2)]
    frame = _interop.stacked(blocks, literals=("source_file",))
    assert frame["span_id"].chunk_lengths() == frame["kind"].chunk_lengths() == [3, 3, 2]
    assert frame["source_file"].to_list() == ["a"] * 8
    # named literal, a column is not cut even where it is chunked otherwise: the caller vouches for it
    uneven = pl.DataFrame([_chunked([f"s{i}" for i in range(4)], [2, 2], "span_id"),
                           _chunked(["a"] * 4, [1, 3], "source_file")])
    assert _interop.aligned(uneven, literals=("source_file",))["source_file"].chunk_lengths() == [1, 3]
    assert _interop.aligned(uneven)["source_file"].chunk_lengths() == [2, 2]


@pytest.mark.parametrize("n_files", [1, 2])
def test_a_load_of_many_blocks_keeps_its_columns_chunked_alike(tmp_path, monkeypatch, n_files):
    """One column chunked otherwise makes polars rechunk every column before each operation on the frame."""
    from workbench.load import _block_cuts, read_traces

    monkeypatch.setattr(_block_cuts, "BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(_block_cuts, "MIN_BLOCK_BYTES", 16 << 10)
    paths = []
    for i in range(n_files):
        (tmp_path / str(i)).mkdir()
        paths.append(str(_write(tmp_path / str(i), "span")))
    spans = read_traces(paths, format="otlp", cache=False).spans
    blocks = spans["trace_id"].chunk_lengths()
    assert len(blocks) > 4 * n_files
    uneven = {name: spans[name].chunk_lengths() for name in spans.columns
              if spans[name].n_chunks() > 1 and spans[name].chunk_lengths() != blocks}
    assert uneven == {}
    # a frame chunked alike is filtered chunk by chunk: polars rechunked nothing first
    assert spans.filter(pl.col("span_id").is_not_null())["input"].chunk_lengths() == blocks


@pytest.mark.parametrize("length", [0, 1, 9, 20_000])
def test_null_array_is_pa_nulls_for_every_type_the_parsers_build(length):
    from workbench.load._otlp_arrow import FULL

    def nodes(dtype):
        yield dtype
        for child in ([dtype.field(i).type for i in range(dtype.num_fields)] if pa.types.is_struct(dtype)
                      else [dtype.value_type] if pa.types.is_list(dtype) else []):
            yield from nodes(child)

    types = {node for schema in FULL.values() for field in schema for node in nodes(field.type)}
    assert {pa.string_view(), pa.int64(), pa.float64(), pa.bool_()} < types
    for dtype in types:
        array = _interop.null_array(length, dtype)
        array.validate(full=True)
        assert array.equals(pa.nulls(length, dtype)) and array.null_count == length
        assert _interop.polars_series(array).null_count() == length


def test_null_arrays_share_one_read_only_buffer_of_zeros():
    first, second = _interop.null_array(1000, pa.int64()), _interop.null_array(3000, pa.string_view())
    assert first.buffers()[1].address == second.buffers()[1].address == second.buffers()[0].address
    assert not any(np.frombuffer(second.buffers()[1], dtype=np.uint8))


def test_concatenated_keeps_one_array_as_it_is_and_joins_several():
    one = pa.array(["a" * 20, None, "b"], pa.string_view())
    same = _interop.concatenated([one])
    assert same is one  # not copied: pyarrow's concat copies even a single array's views
    joined = _interop.concatenated([one, one.slice(1)])
    assert joined.to_pylist() == ["a" * 20, None, "b", None, "b"]
