"""Blocks parsed with inferred types still end in the one full OTLP schema, or are refused."""

from __future__ import annotations

import shutil

import orjson
import pyarrow as pa
import pytest

from tests.load.test_otlp_fast import _rows
from workbench.load import _otlp_arrow, _otlp_fast, _otlp_native, otlp
from workbench.load._records import read_bytes

V = pa.string_view()


@pytest.fixture(autouse=True)
def pyarrow_only(monkeypatch):
    """These tests are about pyarrow's parse: the C scanner (tested in test_otlp_native.py) stays out."""
    monkeypatch.setattr(_otlp_native, "ENABLED", False)


def _span(i: int, **extra) -> dict:
    return {"traceId": f"{i:032x}", "spanId": f"{i + 1:016x}", "name": "chat", "kind": 3,
            "startTimeUnixNano": "1767261600000000000", "endTimeUnixNano": "1767261600000001000",
            "attributes": [{"key": "input.value", "value": {"stringValue": f"question {i}"}}], **extra}


def _block(*spans: dict) -> memoryview:
    return memoryview(b"".join(orjson.dumps(s) + b"\n" for s in spans))


@pytest.mark.parametrize(("inferred", "target", "expected"), [
    (pa.int64(), pa.float64(), True),
    (pa.float64(), pa.int64(), False),
    (pa.string(), V, True),
    (pa.timestamp("s"), V, False),
    (pa.null(), pa.list_(pa.struct([("a", V)])), True),
    (pa.list_(pa.null()), pa.list_(pa.struct([("a", V)])), True),
    (pa.struct([("a", pa.string())]), pa.struct([("a", V), ("b", pa.int64())]), True),
    (pa.struct([("c", pa.string())]), pa.struct([("a", V)]), False),
    (pa.list_(pa.struct([("a", pa.bool_())])), pa.list_(pa.struct([("a", V)])), False),
])
def test_fits_only_lossless_casts_and_known_fields(inferred, target, expected):
    assert _otlp_arrow.fits(inferred, target) is expected


def test_inferred_block_is_cast_to_the_full_schema():
    double = {"key": "llm.cost.total", "value": {"doubleValue": 1}}  # inferred int64 in this block
    spans = [_span(0, status={"code": 2, "message": "boom"}),
             _span(1, attributes=[double, {"key": "n", "value": {"intValue": "5"}}])]
    table = _otlp_arrow.parse_block(_block(*spans), "span")
    assert table.schema == _otlp_arrow.SPAN_SCHEMA
    rows = table.to_pylist()
    assert rows[1]["attributes"][0]["value"]["doubleValue"] == 1.0
    assert rows[1]["attributes"][1]["value"]["intValue"] == "5"
    assert rows[0]["status"] == {"code": 2, "message": "boom"}
    assert rows[0]["events"] is None and rows[0]["flags"] is None


def test_text_that_looks_like_a_timestamp_stays_text():
    table = _otlp_arrow.parse_block(_block(_span(0, status={"code": 1, "message": "2026-01-02T03:04:05"})), "span")
    assert table.schema == _otlp_arrow.SPAN_SCHEMA
    assert table.to_pylist()[0]["status"]["message"] == "2026-01-02T03:04:05"


@pytest.mark.parametrize("odd", [
    {"unknownField": 1},                                                       # not in OTLP
    {"attributes": [{"key": "x", "value": {"doubleValue": "NaN"}}]},           # proto3 JSON's NaN spelling
    {"kind": "SPAN_KIND_CLIENT"},                                              # enum as its name
])
def test_blocks_the_full_schema_refuses_are_refused(odd):
    assert _otlp_arrow.parse_block(_block(_span(0), _span(1, **odd)), "span") is None


def test_ints_then_doubles_across_pyarrow_chunks_become_doubles(monkeypatch):
    monkeypatch.setattr(_otlp_arrow, "PYARROW_BLOCK_BYTES", 4096)  # many chunks, each inferred alone
    spans = [_span(i, attributes=[{"key": "llm.cost.total", "value": {"doubleValue": 1 if i < 200 else 1.5}}])
             for i in range(400)]
    table = _otlp_arrow.parse_block(_block(*spans), "span")
    assert table.column("attributes").num_chunks > 10
    costs = [row[0]["value"]["doubleValue"] for row in table.column("attributes").to_pylist()]
    assert costs == [1.0] * 200 + [1.5] * 200


def test_a_column_holding_two_types_is_refused():
    spans = [_span(0, status={"code": 2, "message": 5}), _span(1, status={"code": 2, "message": "five"})]
    assert _otlp_arrow.parse_block(_block(*spans), "span") is None


@pytest.mark.parametrize(("raw", "valid"), [
    (b'{"a": "plain ascii"}\n', True),
    ('{"a": "café 東京 😀"}\n'.encode(), True),
    (b'{"a": "bad \xff byte"}\n', False),
    (b'{"a": "cut \xe6\x9d"}\n', False),
    (b'{"a": "\xe6\x9d\xb1 then ascii \xc3"}\n', False),
])
def test_valid_utf8_on_raw_bytes(raw, valid):
    assert _otlp_arrow.valid_utf8(memoryview(raw)) is valid


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\udc00", b"\\ud800x"])
def test_escaped_lone_surrogates_fail_the_parse(escape):
    assert _otlp_arrow.parse_block(memoryview(b'{"name": "' + escape + b'"}\n'), "span") is None
    table = _otlp_arrow.parse_block(memoryview(b'{"name": "\\ud83d\\ude00"}\n'), "span")
    assert table.column("name").to_pylist() == ["\U0001f600"]


def test_mixed_block_gives_the_reference_rows_and_problems(tmp_path):
    lines = [orjson.dumps(_span(0)), orjson.dumps(_span(1, unknownField=True)),
             orjson.dumps(_span(2, status={"code": 1, "message": "2026-01-02T03:04:05"})),
             orjson.dumps(_span(3, attributes=[{"key": "llm.cost.total", "value": {"doubleValue": 2}}])),
             b'{"traceId": "00000000000000000000000000000004", "spanId": "0000000000000005", "name": "\\ud800"}',
             '{"traceId": "00000000000000000000000000000005", "spanId": "0000000000000006", "name": "é\x01"}'.encode(),
             b'{"traceId": "00000000000000000000000000000006", "spanId": "0000000000000007", "name": "\xff"}',
             orjson.dumps(_span(7))]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    fast = _otlp_fast.read_bytes_fast(str(path), None).conformed()
    slow = otlp.read_python(str(path), read_bytes(path)).conformed()
    assert _rows(fast.spans) == _rows(slow.spans)
    assert [(p.line, p.reason) for p in fast.problems] == [(p.line, p.reason) for p in slow.problems]
    assert 7 in [p.line for p in fast.problems]  # the invalid UTF-8 line


def test_parse_pool_is_jemalloc_where_built_else_the_default(monkeypatch):
    monkeypatch.setattr(_otlp_arrow, "_POOL", None)
    pool = _otlp_arrow.parse_pool()
    assert pool.backend_name in ("jemalloc", pa.default_memory_pool().backend_name)

    def unavailable():
        raise NotImplementedError("built without jemalloc")

    monkeypatch.setattr(_otlp_arrow, "_POOL", None)
    monkeypatch.setattr(pa, "jemalloc_memory_pool", unavailable)
    assert _otlp_arrow.parse_pool().backend_name == pa.default_memory_pool().backend_name
    table = _otlp_arrow.parse_block(memoryview(b'{"traceId":"a","spanId":"b","name":"n"}\n'), "span")
    assert table.column("name").to_pylist() == ["n"]


@pytest.mark.parametrize("shape", ["span", "request"])
def test_completing_an_inferred_block_equals_pyarrows_cast(tmp_path, shape):
    from tests.load.test_otlp_fast import _write

    path = _write(tmp_path, shape)  # varied values: doubles, bools, absent status, trace states, ...
    table = _otlp_arrow._read(pa.py_buffer(path.read_bytes()), _otlp_arrow.PINNED[shape], "infer")
    target = pa.struct(list(_otlp_arrow.FULL[shape]))
    assert table.schema != _otlp_arrow.FULL[shape]
    for batch in table.to_batches():
        struct = batch.to_struct_array()
        completed = _otlp_arrow.complete(struct, target)
        completed.validate(full=True)
        assert completed.equals(struct.cast(target))
        sliced = struct.slice(3, 10)  # an offset: cast where it cannot rebuild around the buffers
        assert _otlp_arrow.complete(sliced, target).equals(sliced.cast(target))


def test_the_c_scanner_is_built_where_a_c_compiler_is():
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler here")
    assert _otlp_native.AVAILABLE  # the install compiled it: a failed build would only show as slowness
