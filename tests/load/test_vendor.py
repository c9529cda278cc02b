"""Value helpers shared by the vendor readers (``workbench.load._vendor``)."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from workbench import schema
from workbench.load import langsmith
from workbench.load._vendor import (
    decode_json,
    feedback_frame,
    fill_missing,
    inline_feedback,
    int_or_none,
    normalize_id,
    parse_time,
    spans_frame,
    text_of,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def test_decode_json_decodes_at_most_twice():
    once = json.dumps({"a": 1})
    assert decode_json(once) == {"a": 1}
    assert decode_json(json.dumps(once)) == {"a": 1}
    assert decode_json(json.dumps(json.dumps(once))) == once  # a third layer stays text
    assert decode_json("plain text") == "plain text" and decode_json("{not json") == "{not json"
    assert decode_json("42") == "42"  # only objects, arrays and string literals are decoded


def test_text_of_keeps_json_as_compact_text():
    assert text_of(json.dumps(json.dumps([{"role": "user"}]))) == '[{"role":"user"}]'
    assert text_of({"é": "ü"}) == '{"é":"ü"}'
    assert text_of('"hello"') == "hello"
    assert text_of({}) is None and text_of("") is None and text_of(None) is None


@pytest.mark.parametrize(("raw", "expected"), [
    ("0AF7651916CD43DD8448EB211C80319C", "0af7651916cd43dd8448eb211c80319c"),
    ("D0D84D31-923D-4CB5-94A8-40A0A0087578", "d0d84d31-923d-4cb5-94a8-40a0a0087578"),
    ("trace_0A1B2C3D4E5F60718293A4B5C6D7E8F9", "trace_0a1b2c3d4e5f60718293a4b5c6d7e8f9"),
    ("tr-ABCDEF0123456789", "tr-abcdef0123456789"),
    ("trace:/Catalog.Schema/ABCDEF0123456789", "trace:/Catalog.Schema/abcdef0123456789"),
    ("Run-ABC", "Run-ABC"),  # short or not hex: left as it is
    ("  obs-1 ", "obs-1"),
    (12345, "12345"),
    ("", None),
    (None, None),
])
def test_normalize_id(raw, expected):
    assert normalize_id(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("2025-06-11T09:00:00.250Z", datetime(2025, 6, 11, 9, 0, 0, 250000, tzinfo=UTC)),
    ("2025-06-11T11:00:00+02:00", datetime(2025, 6, 11, 9, 0, tzinfo=UTC)),
    ("2025-06-11T09:00:00", datetime(2025, 6, 11, 9, 0, tzinfo=UTC)),  # naive = UTC
    ("2025-06-11T09:00:00.123456789Z", datetime(2025, 6, 11, 9, 0, 0, 123456, tzinfo=UTC)),  # ns truncated
    (1749632400, datetime(2025, 6, 11, 9, 0, tzinfo=UTC)),  # seconds
    (1749632400.5, datetime(2025, 6, 11, 9, 0, 0, 500000, tzinfo=UTC)),
    (1749632400250, datetime(2025, 6, 11, 9, 0, 0, 250000, tzinfo=UTC)),  # milliseconds
    (1749632400250001, datetime(2025, 6, 11, 9, 0, 0, 250001, tzinfo=UTC)),  # microseconds
    ("1749632400250001999", datetime(2025, 6, 11, 9, 0, 0, 250001, tzinfo=UTC)),  # ns as decimal text
    (datetime(2025, 6, 11, 11, 0, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 6, 11, 9, 0, tzinfo=UTC)),
    (None, None),
    ("", None),
])
def test_parse_time(raw, expected):
    assert parse_time(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", True, float("nan"), [2025]])
def test_parse_time_rejects_non_times(raw):
    with pytest.raises(ValueError):
        parse_time(raw)


def test_int_or_none():
    assert [int_or_none(v) for v in (3, 3.0, "12", "12.0", True, "x", None, float("inf"))] == [
        3, 3, 12, 12, None, None, None, None]


def test_fill_missing_returns_the_values_that_lost():
    row = {"model": "gpt-4o", "session_id": None, "tags": []}
    unused = fill_missing(row, {"model": "gpt-4o-2024", "session_id": "s1", "tags": ["x"], "kind": "llm"})
    assert row == {"model": "gpt-4o", "session_id": "s1", "tags": ["x"]}
    assert unused == {"model": "gpt-4o-2024"}


def test_inline_feedback_routes_root_span_annotations_to_the_trace():
    root = {"trace_id": "t", "span_id": "r", "parent_span_id": None, "session_id": None, "end_time": None}
    child = {**root, "span_id": "c", "parent_span_id": "r"}
    entries = [{"target_level": "span", "name": "a"}, {"target_level": "session", "name": "b"}]
    rows, homeless = inline_feedback(entries, root)
    assert [(r["target_level"], r["target_id"]) for r in rows] == [("trace", "t")] and homeless == ["b"]
    rows, _ = inline_feedback(entries[:1], child)
    assert [(r["target_level"], r["target_id"], r["trace_id"]) for r in rows] == [("span", "c", "t")]


def test_frames_have_the_table_types():
    spans = spans_frame([{"trace_id": "t", "span_id": "s", "tags": ["a"], "start_time": parse_time(0)}])
    assert all(spans.schema[c] == schema.SPANS[c] for c in spans.columns)
    assert spans_frame([]).height == 0 and feedback_frame([]).schema == schema.FEEDBACK


def test_gzipped_export_reads_like_the_plain_one(tmp_path):
    plain = FIXTURES / "langsmith" / "runs_list.json"
    packed = tmp_path / "runs_list.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a = langsmith.read(str(plain)).conformed().spans.drop("source_file")
    b = langsmith.read(str(packed)).conformed().spans.drop("source_file")
    assert a.equals(b) and a.height == 2
