"""Record scanning: every good line loads, every bad line is a problem with file:line, offset, reason."""

from __future__ import annotations

import gzip

import pytest

from workbench.load._base import LoadError
from workbench.load._records import (
    REASON_DUPLICATE_KEY,
    REASON_INVALID_JSON,
    REASON_INVALID_UTF8,
    REASON_NAN,
    REASON_NOT_OBJECT,
    REASON_TRUNCATED,
    RecordStats,
    iter_json_records,
    read_bytes,
    read_head,
)


def scan(path, **kwargs):
    problems: list = []
    stats = RecordStats()
    records = list(iter_json_records(path, problems=problems, stats=stats, **kwargs))
    return records, problems, stats


def test_jsonl_lines_offsets_and_counts(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\r\n   \n{"a": 3}')
    records, problems, stats = scan(path)
    assert [(line, off, rec["a"]) for line, off, rec in records] == [(1, 0, 1), (3, 10, 2), (5, 24, 3)]
    assert problems == []
    assert (stats.mode, stats.total_lines, stats.parsed, stats.blank, stats.quarantined) == ("jsonl", 5, 3, 2, 0)


def test_single_document_object_and_array(tmp_path):
    obj = tmp_path / "doc.json"
    obj.write_bytes(b'{\n  "resourceSpans": [\n  ]\n}\n')
    records, problems, stats = scan(obj)
    assert records == [(1, 0, {"resourceSpans": []})] and stats.mode == "document"
    arr = tmp_path / "arr.json"
    arr.write_bytes(b'[{"a": 1},\n {"a": 2}]')
    assert scan(arr)[0] == [(1, 0, [{"a": 1}, {"a": 2}])]


def test_bad_lines_each_become_one_problem(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        b'{"a": 1}',
        b'{"a": 2, "b": }',  # malformed, line 2
        b'{"a": "caf\xe9"}',  # latin-1 byte, line 3
        b'{"a": NaN}',  # line 4
        b"[1, 2, 3]",  # line 5
        b"42",  # line 6
        b'{"a": 7}',
        b'{"a": 8, "b": "tru',  # truncated tail, line 8
    ]
    path.write_bytes(b"\n".join(lines))
    records, problems, stats = scan(path)
    assert [rec["a"] for _, _, rec in records] == [1, 7]
    got = [(p.source_file, p.line, p.reason) for p in problems]
    assert got == [
        (str(path), 2, REASON_INVALID_JSON),
        (str(path), 3, REASON_INVALID_UTF8),
        (str(path), 4, REASON_NAN),
        (str(path), 5, REASON_NOT_OBJECT),
        (str(path), 6, REASON_NOT_OBJECT),
        (str(path), 8, REASON_TRUNCATED),
    ]
    line3_start = sum(len(x) + 1 for x in lines[:2])
    assert problems[1].byte_offset == line3_start + lines[2].index(b"\xe9")
    assert problems[0].byte_offset == len(lines[0]) + 1
    assert stats.parsed + stats.quarantined + stats.blank == stats.total_lines == 8


def test_non_objects_allowed_when_asked(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b"[1]\n2\n")
    records, problems, _ = scan(path, objects_only=False)
    assert [r for _, _, r in records] == [[1], 2] and problems == []


def test_bom_crlf_and_gzip(tmp_path):
    path = tmp_path / "b.jsonl.gz"
    path.write_bytes(gzip.compress(b'\xef\xbb\xbf{"a": 1}\r\n{"a": 2}\r\n'))
    records, problems, stats = scan(path)
    assert [(line, rec) for line, _, rec in records] == [(1, {"a": 1}), (2, {"a": 2})]
    assert problems == [] and stats.total_lines == 2
    assert read_head(path, 8) == b'{"a":'  # 3 BOM bytes stripped
    assert read_bytes(path).startswith(b"\xef\xbb\xbf")


def test_duplicate_key_keeps_last_and_reports_first(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"span_id": "s0", "x": {"k": 1, "k": 2}, "span_id": "s1"}\n{"v": "\\"a\\": 1"}\n')
    records, problems, stats = scan(path)
    assert records[0][2] == {"span_id": "s1", "x": {"k": 2}}
    assert records[1][2] == {"v": '"a": 1'}
    assert sorted((p.line, p.reason, p.field) for p in problems) == [
        (1, REASON_DUPLICATE_KEY, "k"),
        (1, REASON_DUPLICATE_KEY, "span_id"),
    ]
    assert any('"s0"' in p.detail for p in problems)
    assert stats.duplicate_keys == 2 and stats.parsed == 2


def test_strict_raises_naming_file_and_line(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(b'{"a": 1}\n{oops}\n{"a": 3}\n')
    with pytest.raises(LoadError, match=r"s\.jsonl:2: invalid JSON"):
        scan(path, strict=True)


def test_twenty_megabyte_value(tmp_path):
    path = tmp_path / "big.jsonl"
    big = "x" * (20 * 1024 * 1024)
    path.write_bytes(b'{"a": 1}\n{"big": "' + big.encode() + b'"}\n{"a": 3}\n')
    records, problems, _ = scan(path)
    assert problems == [] and len(records[1][2]["big"]) == len(big)
