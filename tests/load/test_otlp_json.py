"""The JSON text the columnar OTLP path writes equals orjson's, character for character."""

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pytest

from workbench.load import _otlp_native
from workbench.load._otlp_json import json_objects, json_string, values_json

EVERY_BMP_START = [chr(i) for i in range(0x3000)]  # all control characters, ASCII, Latin, CJK start
ODD = ["", "\U0001F600", "a\u2028b", "\ue000", "\uffff", "\U0010ffff", "\\/", "</script>", 'say "hi"\n']


def test_json_string_escapes_exactly_as_orjson():
    values = EVERY_BMP_START + ODD + ["".join(EVERY_BMP_START[:64])]
    got = pl.DataFrame({"s": values}).select(json_string(pl.col("s"))).to_series().to_list()
    assert got == [orjson.dumps(v).decode() for v in values]


def test_json_string_keeps_nulls_null():
    got = pl.DataFrame({"s": ["a", None]}).select(json_string(pl.col("s"))).to_series().to_list()
    assert got == ['"a"', None]


def test_values_json_per_value_type():
    elements = pl.DataFrame({"sv": ["x\x01", None, None, None], "iv": [None, "+0042", None, None],
                             "dv": [None, None, 0.5, None], "bv": [None, None, None, False]})
    assert values_json(elements).to_list() == ['"x\\u0001"', "42", "0.5", "false"]


def _literals(values: list) -> list:
    return [None if v is None else orjson.dumps(v).decode() for v in values]


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
def test_the_c_literals_escape_exactly_as_orjson_around_the_inline_limit():
    # literals of 12 bytes stay inside their view, longer ones go to the data buffer: escapes move strings across
    around = ["a" * n for n in range(9, 15)] + ["\n" * n for n in range(3, 8)] + ["\x01" * n for n in range(1, 4)]
    values = [*EVERY_BMP_START, *ODD, "".join(EVERY_BMP_START[:64]), *around, None, "x" * 100_000, None]
    got = _otlp_native.json_literals(pa.array(values, pa.string_view()))
    assert got.type == pa.string_view()
    assert got.to_pylist() == _literals(values)
    assert got.null_count == 2


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
def test_the_c_literals_of_a_sliced_polars_column_over_several_buffers():
    # polars keeps the text of concatenated columns in several data buffers, and a slice starts mid-array
    values = ["first value, long enough", None, 'tab\there "q"'] * 50 + ["é" * 40, "short"] * 50
    parts = [pl.Series("sv", values[:120]), pl.Series("sv", values[120:])]
    column = pl.concat(parts, rechunk=False).rechunk().slice(7, 200)
    array = column.to_arrow(compat_level=pl.CompatLevel.newest())
    assert array.offset or len(array.buffers()) > 3  # the case under test
    assert _otlp_native.json_literals(array).to_pylist() == _literals(column.to_list())


def test_values_json_is_the_same_with_and_without_the_c_literals(monkeypatch):
    elements = pl.DataFrame({"sv": ['say "hi"\n', None, "東京" * 9, None], "iv": [None, "7", None, None],
                             "dv": [None, None, None, None], "bv": [None, None, None, True]},
                            schema={"sv": pl.String, "iv": pl.String, "dv": pl.Float64, "bv": pl.Boolean})
    with_c = values_json(elements).to_list()
    monkeypatch.setattr("workbench.load._otlp_json.json_literals", lambda array: None)
    assert values_json(elements).to_list() == with_c == ['"say \\"hi\\"\\n"', "7", orjson.dumps("東京" * 9).decode(), "true"]


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
@pytest.mark.parametrize("name", ["encode", "json_strings", "int_texts", "nanos_texts", "has_upper"])
def test_the_c_functions_over_views_check_every_view(name):
    import struct

    from workbench.load import _otlp_scan

    function = getattr(_otlp_scan, name)
    outside = struct.pack("<iiii", 20, 0, 0, 100)  # 20 bytes at offset 100 of a 10-byte buffer
    with pytest.raises(ValueError, match="outside its data buffer"):
        function(outside, 1, (b"x" * 10,), None)
    with pytest.raises(ValueError, match="shorter than n"):
        function(outside, 2, (b"x" * 10,), None)
    with pytest.raises(ValueError, match="negative length"):
        function(struct.pack("<iiii", -1, 0, 0, 0), 1, (), None)


def _objects(rows, key_ids, keys, values, n_rows, tail=()) -> list:
    return json_objects(np.array(rows, dtype=np.int64), np.array(key_ids, dtype=np.int64),
                        [orjson.dumps(k).decode() for k in keys], pl.Series(values, dtype=pl.String), n_rows,
                        tail=[pl.Series(t, dtype=pl.String) for t in tail]).to_list()


def test_json_objects_hold_each_rows_keys_once_with_their_last_value_then_the_tail(monkeypatch):
    keys = ["a", "b", "long.key.name", "c"]
    rows, key_ids = [0, 0, 0, 2, 2, 2, 2, 4], [1, 0, 1, 2, 3, 2, 0, 3]
    values = ['"x"', "1", '"y"', '"' + "v" * 30 + '"', "true", "2.5", None, '"é"']
    tail = [[None, '"otel.kind":3', '"otel.kind":1', None, None], ['"t":"z"', None, None, None, None]]
    got = _objects(rows, key_ids, keys, values, 5, tail)
    assert got[1] == '{"otel.kind":3}' and got[3] is None  # a row with only a tail piece; one with nothing
    parsed = [None if text is None else orjson.loads(text) for text in got]
    assert parsed == [{"b": "y", "a": 1, "t": "z"}, {"otel.kind": 3}, {"long.key.name": 2.5, "c": True, "otel.kind": 1},
                      None, {"c": "é"}]  # a null value leaves its key out
    if _otlp_native.AVAILABLE:  # the C objects keep each row's own key order, as a dict does
        assert got[0] == '{"b":"y","a":1,"t":"z"}'
    monkeypatch.setattr("workbench.load._otlp_json.native_json_objects", lambda *args: None)
    assert [None if t is None else orjson.loads(t) for t in _objects(rows, key_ids, keys, values, 5, tail)] == parsed


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
def test_json_objects_in_c_keep_short_objects_in_their_view_and_long_ones_in_the_buffer():
    # {"k":1} is 7 bytes, {"k":12345} 11, {"k":1234567} 13: inline below and at 12 bytes, in the buffer above
    values = ["1", "12345", "123456", "1234567", '"' + "w" * 5000 + '"']
    got = _objects(range(5), [0] * 5, ["k"], values, 6)
    assert got == ['{"k":' + v + "}" for v in values] + [None]


@pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built")
def test_json_objects_in_c_refuse_what_does_not_fit():
    from workbench.load import _otlp_scan

    empty = (b"", 0, (), None)
    one = (b"\x01\x00\x00\x001" + b"\x00" * 11, 1, (), None)  # one inline view: "1"
    rows, key = np.array([0], dtype=np.int64), np.array([0], dtype=np.int64)
    with pytest.raises(ValueError, match="out of order"):
        _otlp_scan.json_objects(np.array([1, 0], dtype=np.int64), np.array([0, 0], dtype=np.int64), (b'"k":',),
                                (one[0] * 2, 2, (), None), (), 2)
    with pytest.raises(ValueError, match="out of range"):
        _otlp_scan.json_objects(rows, np.array([3], dtype=np.int64), (b'"k":',), one, (), 1)
    with pytest.raises(ValueError, match="out of range"):
        _otlp_scan.json_objects(rows, key, (b'"k":',), one, (), 0)  # row 0 of no rows
    with pytest.raises(ValueError, match="differ in length"):
        _otlp_scan.json_objects(rows, key, (b'"k":',), empty, (), 1)
    with pytest.raises(ValueError, match="not n_rows long"):
        _otlp_scan.json_objects(rows, key, (b'"k":',), one, (empty,), 1)
    with pytest.raises(ValueError, match="outside its data buffer"):
        _otlp_scan.json_objects(rows, key, (b'"k":',), (b"\x14" + b"\x00" * 15, 1, (b"x",), None), (), 1)
    with pytest.raises(ValueError, match="negative length"):  # in a tail piece
        _otlp_scan.json_objects(rows, key, (b'"k":',), one, ((b"\xff" * 16, 1, (), None),), 1)
