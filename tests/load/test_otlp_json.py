"""The JSON text the columnar OTLP path writes equals orjson's, character for character."""

import orjson
import polars as pl
import pyarrow as pa
import pytest

from workbench.load import _otlp_native
from workbench.load._otlp_json import json_string, values_json

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
@pytest.mark.parametrize("name", ["encode", "json_strings"])
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
