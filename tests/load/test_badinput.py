"""The bad-input corpus: every good record loads; every bad one is a problem with file:line and reason."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from workbench.load import LoadError, read_traces
from workbench.load import otlp as otlp_reader

BAD = Path(__file__).resolve().parents[1] / "fixtures" / "bad"


def load(path, **kwargs):
    return read_traces(path, format="otlp", cache=False, **kwargs)


def problems_of(result) -> list[tuple]:
    return result.problems.select("source_file", "line", "reason").rows()


@pytest.mark.parametrize(
    ("name", "good", "expected"),
    [
        ("malformed.jsonl", 5, [(3, "invalid JSON")]),
        ("truncated.jsonl", 5, [(6, "truncated last line")]),
        ("invalid_utf8.jsonl", 5, [(4, "invalid UTF-8")]),
        ("bom_crlf.jsonl", 6, []),
        ("nan.jsonl", 5, [(2, "NaN/Infinity token")]),
        ("non_object.jsonl", 6, [(4, "not a JSON object"), (5, "not a JSON object"), (6, "not a JSON object")]),
        ("blank_lines.jsonl", 6, []),
        ("duplicate_keys.jsonl", 6, [(3, "duplicate key")]),
    ],
)
def test_bad_file(name, good, expected):
    path = BAD / name
    result = load(path)
    assert result.spans.height == good
    assert problems_of(result) == [(str(path), line, reason) for line, reason in expected]
    lines = result.spans["source_line"].to_list()
    assert len(set(lines)) == good  # each good line loaded once


def test_exact_lines_and_offsets():
    result = load(BAD / "invalid_utf8.jsonl")
    data = (BAD / "invalid_utf8.jsonl").read_bytes()
    (offset,) = result.problems["byte_offset"].to_list()
    assert data[offset:offset + 1] == b"\xff"
    assert result.spans["source_line"].to_list() == [1, 2, 3, 5, 6]
    blank = load(BAD / "blank_lines.jsonl")
    assert blank.spans["source_line"].to_list() == [1, 3, 6, 8, 9, 10]


def test_duplicate_key_keeps_last_value_and_names_the_first():
    result = load(BAD / "duplicate_keys.jsonl")
    assert result.spans.filter(source_line=3)["name"].item() == "ChatCompletion"
    problem = result.problems.row(0, named=True)
    assert problem["field"] == "name" and '"first"' in problem["detail"]


def test_type_drift_is_never_silently_nulled():
    path = BAD / "type_drift.jsonl"
    result = load(path)
    spans = {row["source_line"]: row for row in result.spans.iter_rows(named=True)}
    assert len(spans) == 7
    assert [spans[i]["tokens_in"] for i in range(1, 8)] == [10, 12, None, 14, 10, None, 10]
    assert orjson.loads(spans[3]["attributes"])["llm.token_count.prompt"] == {"cached": 3}
    assert orjson.loads(spans[6]["attributes"])["llm.token_count.prompt"] == "twelve"
    assert spans[5]["start_time"] is not None  # a JSON number for nanoseconds is accepted
    assert spans[7]["end_time"] is None and orjson.loads(spans[7]["attributes"])["otel.endTimeUnixNano"] == "yesterday"
    assert result.problems.select("line", "reason", "field").rows() == [
        (3, "type drift", "llm.token_count.prompt"),
        (6, "type drift", "llm.token_count.prompt"),
        (7, "bad field value", "endTimeUnixNano"),
    ]


def _span_line(i: int, tokens: dict) -> bytes:
    return orjson.dumps({
        "traceId": f"{i // 4:032x}", "spanId": f"{i + 1:016x}", "name": "llm", "kind": 1,
        "startTimeUnixNano": str(1_767_261_600_000_000_000 + i), "endTimeUnixNano": str(1_767_261_600_000_100_000 + i),
        "attributes": [{"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
                       {"key": "llm.token_count.prompt", "value": tokens}],
    })


def test_late_type_drift_after_many_clean_rows(tmp_path):
    path = tmp_path / "late.jsonl"
    lines = [_span_line(i, {"intValue": str(i)}) for i in range(3000)]
    lines[2500] = _span_line(2500, {"stringValue": "late-string"})
    lines[2600] = _span_line(2600, {"doubleValue": 7.0})
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load(path)
    assert result.spans.height == 3000
    late = result.spans.filter(source_line=2501).row(0, named=True)
    assert late["tokens_in"] is None
    assert orjson.loads(late["attributes"])["llm.token_count.prompt"] == "late-string"
    assert result.spans.filter(source_line=2601)["tokens_in"].item() == 7
    assert result.problems.select("line", "reason").rows() == [(2501, "type drift")]
    assert result.spans.filter(source_line=3000)["tokens_in"].item() == 2999


def test_twenty_megabyte_value(tmp_path):
    path = tmp_path / "big.jsonl"
    big = "y" * (20 * 1024 * 1024)
    lines = [_span_line(0, {"intValue": "1"}), orjson.dumps({
        "traceId": "a" * 32, "spanId": "b" * 16, "name": "big",
        "attributes": [{"key": "output.value", "value": {"stringValue": big}}]}), _span_line(2, {"intValue": "3"})]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = load(path)
    assert result.problems.height == 0 and result.spans.height == 3
    assert len(result.spans.filter(name="big")["output"].item()) == len(big)


def test_strict_raises_at_first_problem_naming_file_and_line():
    with pytest.raises(LoadError, match=r"malformed\.jsonl:3: invalid JSON"):
        load(BAD / "malformed.jsonl", strict=True)
    with pytest.raises(LoadError, match=r"type_drift\.jsonl:3 \(field 'llm.token_count.prompt'\): type drift"):
        load(BAD / "type_drift.jsonl", strict=True)


def test_reader_alone_gives_the_same_counts():
    result = otlp_reader.read(str(BAD / "non_object.jsonl"))
    assert result.spans.height == 6 and [p.line for p in result.problems] == [4, 5, 6]
