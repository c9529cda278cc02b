"""The C scanner gives pyarrow's table for every block it takes, and gives up on every block pyarrow refuses.

"pyarrow" here is what the loader's pyarrow route accepts: pyarrow's parse of a block that is UTF-8
(pyarrow's reader does not check; the scanner checks every string it reads).
"""

from __future__ import annotations

import json
import random

import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.load.test_otlp_fast import _span
from workbench.load import _otlp_arrow, _otlp_native, _scanner

pytestmark = pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C scanner is not built here")
NESTED = [{"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}, {}]}}},
          {"key": "map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": True}}]}}},
          {"key": "raw", "value": {"bytesValue": "AAE="}}, {"key": "empty", "value": {}}]


@pytest.fixture(autouse=True)
def scanner_on(monkeypatch):
    monkeypatch.setattr(_otlp_native, "ENABLED", True)


def _pyarrow(data: bytes, shape: str) -> pa.Table | None:
    """pyarrow's reading of the block against the full schema (what the scanner must equal), or None.

    Like the loader, it gives pyarrow only blocks whose every line starts with ``{`` (pyarrow 26 crashes
    the process on a line that is a bare ``null``) and that are UTF-8.
    """
    if any(not line.strip().startswith(b"{") for line in _split(data)) or not _otlp_arrow.valid_utf8(
            memoryview(data)):
        return None
    try:
        return _otlp_arrow._read(pa.py_buffer(data), _otlp_arrow.FULL[shape], "error")
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None


def _split(data: bytes) -> list[bytes]:
    """The lines of a block (the last one may lack its newline)."""
    lines = data.split(b"\n")
    return lines[:-1] if lines[-1] == b"" else lines


def _agree(data: bytes, shape: str = "span") -> pa.Table | int | None:
    scanned = _otlp_native.scan_block(memoryview(data), _otlp_arrow.FULL[shape])
    expected = _pyarrow(data, shape)
    if isinstance(scanned, int):  # a line sent to the reference reader: pyarrow must refuse the block too
        # (or read another number of rows than lines, which the loader refuses as well)
        assert expected is None or expected.num_rows != len(_split(data)), "the scanner named a line pyarrow reads"
    elif scanned is not None:
        scanned.validate(full=True)  # the strings are UTF-8
        assert expected is not None, "the scanner took a block pyarrow refuses"
        assert scanned.equals(expected)
    return scanned


def _lines(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else orjson.dumps(r)) + b"\n" for r in records)


def test_random_spans_of_every_shape_are_taken_and_equal():
    rng = random.Random(3)
    spans = [_span(rng, i) for i in range(300)]  # every scalar value type, odd ids and times, status variants
    for i, span in enumerate(spans[::10]):  # events, links, nested and bytes values, dropped counts
        span["events"] = [{"timeUnixNano": str(i), "name": "exception", "attributes": NESTED[:2],
                           "droppedAttributesCount": 1}]
        span["links"] = [{"traceId": "c" * 32, "spanId": "d" * 16, "traceState": "", "attributes": NESTED,
                          "droppedAttributesCount": 0, "flags": 1}]
        span["attributes"] = span["attributes"] + NESTED
        span["droppedEventsCount"] = span["droppedLinksCount"] = i
    assert _agree(_lines(*spans)) is not None
    requests = [{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {
        "stringValue": "svc"}}]}, "schemaUrl": "u", "scopeSpans": [{"scope": {"name": "s", "version": "1"},
                                                                     "spans": spans[i:i + 7]}]}]}
                for i in range(0, 300, 7)]
    assert _agree(_lines(*requests), "request") is not None


@pytest.mark.parametrize("text", [
    "plain", "", "twelve bytes", "thirteen byte", "é東🎉", "quote \" backslash \\ slash / tab \t nl \n",
    "\u0000 nul", "\ud7ff \ue000 \uffff",
])
def test_strings_with_escapes_and_unicode_read_the_same(text):
    span = {"traceId": "a" * 32, "spanId": "b" * 16, "name": text,
            "attributes": [{"key": text, "value": {"stringValue": text}}]}
    compact, escaped = orjson.dumps(span), json.dumps(span, ensure_ascii=True).encode()  # \uXXXX, surrogate pairs
    table = _agree(_lines(compact, escaped, b' { "name" : "x" , "attributes" : [ ] } \r'))
    assert table is not None and table.column("name").to_pylist()[:2] == [text, text]


def test_strings_of_every_length_up_to_forty_keep_their_bytes_in_the_views():
    texts = ["0123456789abcdefghijklmnopqrstuvwxyzABCD"[:n] for n in range(41)]
    texts += [t[:-1] + "\n" for t in texts[1:]] + ["é" * n for n in range(1, 8)] + ["\"" * n for n in range(1, 14)]
    spans = [{"traceId": t, "spanId": t[::-1], "name": t, "attributes": [{"key": t, "value": {"stringValue": t}}]}
             for t in texts]
    table = _agree(_lines(*spans))
    assert table is not None
    assert table.column("name").to_pylist() == texts and table.column("spanId").to_pylist() == [t[::-1] for t in texts]
    values = [row[0]["value"]["stringValue"] for row in table.column("attributes").to_pylist()]
    assert values == texts


@pytest.mark.parametrize("line", [
    b'{"name": "a", "name": "b"}',  # a repeated key
    b'{"nope": 1}',  # an unknown field
    b'{"kind": "SERVER"}',  # a string for an integer
    b'{"kind": 1.0}', b'{"kind": 1e2}', b'{"kind": 9223372036854775808}', b'{"kind": 01}',
    b'{"name": 5}', b'{"attributes": {}}', b'{"status": []}',
    b'{"attributes": [{"key": "x", "value": {"boolValue": 1}}]}',
    b'{"name": "\\ud800"}', b'{"name": "\\udc00 x"}', b'{"name": "\\x"}', b'{"name": "a\tb"}',
    b'{"name": "a"} {"name": "b"}', b'{"name": "a",}', b'{"name": "a"', b'{"name": "a"} x', b'{"name": }',
])
def test_lines_pyarrow_refuses_too_are_named_for_the_reference_reader(line):
    block = _lines({"name": "ok"}, line, {"name": "after"})
    assert _agree(block) == 1  # the row of the line, 0-based


LONG = "x" * 40  # puts the bytes after it past the scanner's 16-byte steps


@pytest.mark.parametrize("raw", [
    b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80", b"\xff", b"\xc3", b"\xe2\x82",
    b"\xf0\x9f\x8e", b"\xc3(", b"\xe2(\xa1", b"\xc3\xa9\xa9",
])
@pytest.mark.parametrize("where", ["name", "value", "key"])
@pytest.mark.parametrize("pad", ["", LONG])
def test_strings_that_are_not_utf8_are_named_for_the_reference_reader(raw, where, pad):
    text = pad.encode() + raw + pad.encode()
    line = (b'{"name": "' + text + b'"}' if where == "name" else
            b'{"attributes": [{"key": "' + (text if where == "key" else b"k") + b'", "value": {"stringValue": "'
            + (text if where == "value" else b"v") + b'"}}]}')
    assert _agree(_lines({"name": "ok"}, line, {"name": "after"})) == 1


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.binary(max_size=40), st.text(max_size=20).map(lambda t: t.encode("utf-8", "surrogatepass")))
       .map(lambda b: bytes(c for c in b if c >= 0x20 and c not in b'"\\')), st.sampled_from(["", LONG]))
def test_strings_are_taken_exactly_when_python_decodes_them(raw, pad):
    try:
        raw.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    scanned = _agree(_lines({"name": "ok"}, b'{"name": "' + pad.encode() + raw + b'"}'))
    assert (scanned == 1) is not utf8 and (scanned is not None)


@pytest.mark.parametrize("text", ["\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "\U00010000",
                                  "\U0010ffff", "é" * 20, LONG + "東" + LONG, "🎉" * 9])
def test_utf8_at_the_edges_of_its_ranges_is_taken(text):
    table = _agree(_lines({"name": text}, {"name": LONG + text}, {"name": text + LONG}))
    assert table is not None and table.column("name").to_pylist() == [text, LONG + text, text + LONG]


@pytest.mark.parametrize("value", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"1e-400", b"1" + b"0" * 90])
def test_numbers_pyarrow_may_take_are_left_to_pyarrow(value):
    line = b'{"attributes": [{"key": "x", "value": {"doubleValue": ' + value + b'}}]}'
    assert _otlp_native.scan_block(memoryview(_lines({"name": "ok"}, line)), _otlp_arrow.FULL["span"]) is None


def test_numbers_and_literals_read_as_pyarrow_reads_them():
    lines = [{"kind": k, "flags": -9223372036854775808, "droppedAttributesCount": 9223372036854775807,
              "attributes": [{"key": "d", "value": {"doubleValue": d}}, {"key": "b", "value": {"boolValue": b}}]}
             for k, d, b in [(0, 0.1, True), (-0, -0.0, False), (5, 1e-300, True), (7, 12345678901234567890, False)]]
    raw = b'{"kind": -0, "attributes": [{"key": "d", "value": {"doubleValue": 2.5E+3}}], "status": null}'
    assert _agree(_lines(*lines, raw)) is not None


fields = st.dictionaries(
    st.sampled_from(["traceId", "spanId", "parentSpanId", "name", "kind", "flags", "traceState", "status",
                     "attributes", "startTimeUnixNano", "events"]),
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
              st.just([]), st.just({}), st.just({"code": 2, "message": "m"}),
              st.just([{"key": "k", "value": {"stringValue": "v"}}]),
              st.just([{"key": "k", "value": {"intValue": 3}}])),
    max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(fields, min_size=1, max_size=5))
def test_any_mix_of_fields_and_value_types_agrees_with_pyarrow(records):
    _agree(_lines(*(json.dumps(r).encode() for r in records)))


def test_fields_few_rows_have_are_nulls_elsewhere_and_fields_no_row_has_are_not_written():
    ids = {"traceId": "a" * 32, "spanId": "b" * 16}
    data = _lines(
        ids,
        {**ids, "status": None, "events": None, "attributes": [{"key": "n", "value": {"intValue": "1"}}]},
        {**ids, "attributes": [{"key": "s", "value": {"stringValue": "x"}}, *NESTED]},  # nested values: one row
        ids,
        {**ids, "events": [{"name": "e", "attributes": [{"key": "d", "value": {"doubleValue": 1.5}}]}, {"name": "f"}]},
        {**ids, "status": {"code": 2}, "attributes": [], "droppedLinksCount": 3},  # the last row's fields
    )
    table = _agree(data)
    assert isinstance(table, pa.Table) and table.num_rows == 6
    schema = _otlp_arrow.FULL["span"]
    _, buffers = _otlp_native._otlp_scan.scan(memoryview(data), _otlp_native.spec(pa.struct(list(schema))))
    start = {}
    at = 1  # the root's validity comes first
    for field in schema:
        start[field.name] = (at, at + _otlp_native._buffer_count(field.type))
        at = start[field.name][1]
    assert at == len(buffers)
    written = {name: [buffers[i] is not None for i in range(*span)] for name, span in start.items()}
    assert not any(written["links"]) and not any(written["traceState"])  # no row has them
    assert written["events"][0] and written["status"][0] and written["droppedLinksCount"] == [True, True]


MUTABLE = _lines(*(_span(random.Random(5), i) for i in range(6)), *(
    {"traceId": "e" * 32, "spanId": "f" * 16, "name": "with events", "events": [{"name": "x", "attributes": NESTED}],
     "attributes": NESTED} for _ in range(2)))
edit = st.tuples(st.sampled_from(["replace", "insert", "delete"]), st.integers(0, len(MUTABLE) - 1),
                 st.sampled_from([b'"', b"\\", b"\\u", b"\\ud800", b"{", b"}", b"[", b"]", b",", b":", b"null",
                                  b"1e999", b"NaN", b"-", b"\x00", b"\xff", b" ", b"\n", b"0", b"true", b"\t"])
                 | st.binary(min_size=1, max_size=3))


@settings(max_examples=400, deadline=None)
@given(st.lists(edit, min_size=1, max_size=5))
def test_byte_mutations_of_real_lines_agree_with_pyarrow(edits):
    data = bytearray(MUTABLE)
    for kind, at, chunk in edits:
        at %= len(data)
        if kind == "replace":
            data[at:at + len(chunk)] = chunk
        elif kind == "insert":
            data[at:at] = chunk
        else:
            del data[at:at + len(chunk)]
    _agree(bytes(data))


def _big_block(seed: int) -> bytes:
    """~10 MB of spans: several of the scanner's buffers pass 2 MiB, where they become mappings that grow."""
    rng = random.Random(seed)
    spans = [_span(rng, i) for i in range(1500)]
    for i, span in enumerate(spans):
        span["attributes"] = span["attributes"] + [
            {"key": "input.value", "value": {"stringValue": f"{i} " + "é漢 words " * rng.randint(250, 600)}}]
    return _lines(*spans)


@pytest.mark.parametrize("hint", ["none", "small", "exact", "big", "short tuple"])
def test_buffers_that_grow_or_start_at_a_hinted_size_give_the_same_table(hint):
    data = _big_block(5)
    spec = _scanner.SHAPES["span"]
    _scanner._LAST_SIZES.pop(spec, None)
    assert _agree(data) is not None  # grown without hints: pyarrow's table
    _, buffers = _otlp_native._otlp_scan.scan(memoryview(data), spec)
    sizes = [0 if b is None else memoryview(b).nbytes for b in buffers]
    assert max(sizes) > 4 << 20  # one buffer grew through several sizes past 2 MiB
    hints = {"none": None, "small": tuple(s // 7 for s in sizes), "exact": tuple(sizes),
             "big": tuple(3 * s + 12345 for s in sizes), "short tuple": tuple(sizes[:5])}[hint]
    rows, again = _otlp_native._otlp_scan.scan(memoryview(data), spec, hints)
    assert [b and bytes(b) for b in again] == [b and bytes(b) for b in buffers]
    assert rows == len(_split(data))


def test_each_block_starts_from_the_last_blocks_sizes_and_reads_the_same():
    spec = _scanner.SHAPES["span"]
    _scanner._LAST_SIZES.pop(spec, None)
    first = _agree(_big_block(6))
    assert _scanner.hints(spec, 1000) is not None  # the next scan starts from these sizes
    second = _agree(_big_block(7)[: 3 << 20].rsplit(b"\n", 1)[0] + b"\n")  # smaller: scaled-down hints
    assert first.num_rows == 1500 and 0 < second.num_rows < 1500
    with pytest.raises(TypeError, match="hints"):
        _otlp_native._otlp_scan.scan(memoryview(_lines(_span(random.Random(1), 0))), spec, [1, 2])


def test_a_first_block_starts_from_the_sizes_of_a_sample_of_its_lines(monkeypatch):
    spec = _scanner.SHAPES["span"]
    _scanner._LAST_SIZES.pop(spec, None)
    real, calls = _scanner._otlp_scan, []

    class Spy:  # the C module, its scans recorded
        def __getattr__(self, name):
            return getattr(real, name)

        def scan(self, data, spec, hints=None):
            calls.append((len(data), hints))
            return real.scan(data, spec, hints)

    monkeypatch.setattr(_scanner, "_otlp_scan", Spy())
    data = _big_block(8)
    assert _agree(data).num_rows == 1500  # the same table
    (sample, no_hints), (whole, hints) = calls
    assert no_hints is None and whole == len(data)
    assert _scanner.SAMPLE_BYTES < sample < _scanner.SAMPLE_BYTES + 20_000 and data[sample - 1] == ord("\n")
    sizes = _scanner._LAST_SIZES[spec][1]  # now the whole block's
    big = max(range(len(sizes)), key=sizes.__getitem__)
    assert sizes[big] > 4 << 20 and 0.8 * sizes[big] < hints[big] < 2 * sizes[big]  # its text: about its size
    calls.clear()
    _scanner._LAST_SIZES.pop(spec, None)
    _agree(data[:sample])  # a block under four samples long is not sampled
    assert [hints for _, hints in calls] == [None]


_TEXTS = st.one_of(
    st.none(),
    st.from_regex(r"[+-]?[0-9]{0,20}", fullmatch=True),
    st.sampled_from(["", "+", "-", "9" * 18, "9" * 19, "8" * 19, "0" + "1" * 18, "1" * 19, "1" * 20, "12\n",
                     " 12", "１２", "1767261600010000000", "AbC", "abc", "é", "a" * 13 + "Z", "x" * 40]),
    st.text(max_size=24),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TEXTS, max_size=40), st.integers(0, 3))
def test_text_checks_agree_with_the_regular_expressions_they_replace(texts, start):
    import numpy as np
    import polars as pl

    from workbench.load import _otlp_columns

    array = pa.array(texts, pa.string_view()).slice(min(start, len(texts)))
    series = pl.Series(array.to_pylist(), dtype=pl.String)
    ints = series.str.contains(_otlp_columns.INT_TEXT).fill_null(False)
    nanos = (series.str.contains(_otlp_columns._NANOS) | (series == "")).fill_null(True)
    assert _otlp_native.text_checks(array, "int_texts").tolist() == ints.to_list()
    assert _otlp_native.text_checks(array, "nanos_texts").tolist() == nanos.to_list()
    only = np.arange(len(array)) % 2 == 0  # the others are not read: null
    assert _otlp_native.text_checks(array, "int_texts", only).tolist() == (ints & pl.Series(only)).to_list()
    upper = bool(series.str.contains(r"[A-Z]|[^\x00-\x7F]").any())
    assert _otlp_native.has_upper(array) is upper


@pytest.mark.parametrize("shape", ["span", "request"])
def test_the_scanners_shapes_and_the_arrow_schemas_describe_the_same_types(shape):
    """The shapes are written once, in the scanner's description (no pyarrow: a load's head start scans with
    them while pyarrow is imported); the Arrow schemas are built from them and describe them back exactly."""
    schema = _otlp_arrow.FULL[shape]
    assert _otlp_native.spec(pa.struct(list(schema))) == _scanner.SHAPES[shape]
    assert _otlp_native.arrow_type(_scanner.SHAPES[shape]) == pa.struct(list(schema))
    assert schema.field("resourceSpans" if shape == "request" else "attributes").type.value_type.num_fields > 1
