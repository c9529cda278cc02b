"""Random byte mutations of valid NDJSON never raise, and every line is accounted for."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench.load import otlp
from workbench.load._records import RecordStats, iter_json_records

CLEAN = (Path(__file__).resolve().parents[1] / "fixtures" / "bad" / "type_drift.jsonl").read_bytes()


def physical_lines(data: bytes) -> int:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


mutation = st.tuples(
    st.sampled_from(["replace", "insert", "delete"]),
    st.integers(min_value=0, max_value=len(CLEAN) - 1),
    st.binary(min_size=1, max_size=4)
    | st.sampled_from([b"\n", b"\r\n", b"\xff", b"NaN", b"{", b"}", b'"', b"\xef\xbb\xbf", b"\x00"]),
)


def mutate(data: bytes, edits) -> bytes:
    for kind, pos, chunk in edits:
        pos %= max(len(data), 1)
        if kind == "replace":
            data = data[:pos] + chunk + data[pos + len(chunk):]
        elif kind == "insert":
            data = data[:pos] + chunk + data[pos:]
        else:
            data = data[:pos] + data[pos + len(chunk):]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(mutation, min_size=1, max_size=6))
def test_mutated_ndjson_never_raises_and_counts_add_up(tmp_path, edits):
    data = mutate(CLEAN, edits)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(data)
    problems: list = []
    stats = RecordStats()
    records = list(iter_json_records(path, problems=problems, stats=stats))
    if stats.mode == "jsonl":
        assert stats.parsed + stats.quarantined + stats.blank == stats.total_lines == physical_lines(data)
        assert len(records) == stats.parsed
        assert stats.quarantined == len([p for p in problems if p.reason != "duplicate key"])
    else:
        assert len(records) == 1
    result = otlp.read(str(path))  # the reader too: problems, never an exception
    assert result.spans.height <= 7
    assert all(p.source_file == str(path) and (p.line is None or p.line >= 1) for p in result.problems)
