"""The JSON text the columnar OTLP path writes equals orjson's, character for character."""

import orjson
import polars as pl

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
