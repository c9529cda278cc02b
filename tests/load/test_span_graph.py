"""The span graph (which rows are the same span, the same trace, and each span's parent), exact by the C
extension and by hashes without it, against a dictionary over the ids themselves."""

from __future__ import annotations

import itertools
import random

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench import schema
from workbench.load import _otlp_native, anomalies
from workbench.load.anomalies import SpanGraph, flag_anomalies, span_graph
from workbench.load.rollup import build_traces

# inline (<= 12 bytes) and out-of-line strings, a null and the empty string, and long ids that share their
# length and first four bytes (what a view keeps inline), so that only the bytes behind the view differ
IDS = [None, "", "a", "b", "abcdefghijkl", "abcdefghijklm", "abcdXXXXXXXXXXXXXXXX", "abcdYYYYYYYYYYYYYYYY",
       "é" * 7, "0af7651916cd43dd8448eb211c80319c"]
native = pytest.mark.skipif(not _otlp_native.AVAILABLE, reason="the C extension is not built here")


def reference(rows: list[tuple]) -> SpanGraph:
    """The graph from Python dictionaries keyed by the ids (None equals None only)."""
    first_pair: dict = {}
    first_trace: dict = {}
    node = [first_pair.setdefault((trace, span), i) for i, (trace, span, _) in enumerate(rows)]
    trace_row = [first_trace.setdefault(trace, i) for i, (trace, _, _) in enumerate(rows)]
    parent = [-1 if p is None else first_pair.get((trace, p), -1) for trace, _, p in rows]
    return SpanGraph(*(np.array(values, dtype=np.int64) for values in (node, parent, trace_row)))


def frame_of(rows: list[tuple], pieces: int = 3) -> pl.DataFrame:
    """The rows as a spans frame in several chunks, as a load concatenates its blocks."""
    frame = pl.DataFrame(rows, schema={"trace_id": pl.String, "span_id": pl.String, "parent_span_id": pl.String},
                         orient="row")
    cuts = sorted({0, len(rows), *random.Random(len(rows)).sample(range(len(rows) + 1), min(pieces, len(rows)))})
    return pl.concat([frame.slice(a, b - a) for a, b in itertools.pairwise(cuts)] or [frame], rechunk=False)


def assert_same(got: SpanGraph, want: SpanGraph) -> None:
    for name in SpanGraph._fields:
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name


rows_strategy = st.lists(st.tuples(st.sampled_from(IDS), st.sampled_from(IDS), st.sampled_from(IDS)),
                         min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(rows_strategy)
def test_the_graph_is_the_one_a_dictionary_of_the_ids_gives(rows):
    assert_same(span_graph(frame_of(rows)), reference(rows))


@settings(max_examples=60, deadline=None)
@given(rows_strategy)
def test_without_the_extension_the_hashed_graph_is_the_same(rows):
    assert_same(anomalies._hashed_graph(frame_of(rows)), reference(rows))


def test_many_spans_of_many_traces_with_duplicates_and_missing_parents():
    rng = random.Random(7)
    rows = []
    for t in range(3000):
        trace = f"{rng.getrandbits(128):032x}"
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(rng.randint(1, 12))]
        for i, span in enumerate(ids):
            parent = None if i == 0 else rng.choice([*ids[:i], "feedfacefeedface"])
            rows.append((trace, span, parent))
        if t % 50 == 0:
            rows.append((trace, ids[-1], ids[0]))  # a duplicate of the last span
    rng.shuffle(rows)
    got = span_graph(frame_of(rows, pieces=9))
    assert_same(got, reference(rows))
    assert (got.parent == -1).sum() > 3000  # roots and spans whose parent is missing


M64 = (1 << 64) - 1


def _word_step(h: int, word: bytes) -> int:
    """One 8-byte step of ``text_hash`` in ``_span_index.h``."""
    h = ((h ^ int.from_bytes(word, "little")) * 0x9E3779B97F4A7C15) & M64
    return h ^ (h >> 29)


def colliding_ids() -> tuple[str, str]:
    """Two different 16-byte ASCII ids that ``text_hash`` gives the same hash: after the first word the
    states differ by ``d``; a second word that differs by ``d`` too cancels it. ``d`` is searched for with
    no high bit in any byte, so that both ids stay ASCII. Both start with "trac": the four bytes a view
    keeps inline are the same."""
    start = 0x243F6A8885A308D3 ^ 16
    first, second = b"trace-id", b"-second-"
    state = _word_step(start, first)
    for i in range(10_000):
        other = f"trac{i:04d}".encode()
        difference = state ^ _word_step(start, other)
        if difference and not difference & 0x8080808080808080:
            twin = (int.from_bytes(second, "little") ^ difference).to_bytes(8, "little")
            assert _word_step(_word_step(start, other), twin) == _word_step(state, second)
            return (first + second).decode(), (other + twin).decode()
    raise AssertionError("no ASCII collision found")


@native
def test_ids_whose_hashes_collide_are_still_told_apart():
    a, b = colliding_ids()
    assert a != b and len(a) == len(b) == 16
    rows = [(a, a, None), (b, a, a), (a, b, a), (b, b, b), (a, a, b)]
    assert_same(span_graph(frame_of(rows)), reference(rows))


@native
def test_the_extension_is_what_answers_here(monkeypatch):
    def refuse(_spans):
        raise AssertionError("the hashed graph was used")

    monkeypatch.setattr(anomalies, "_hashed_graph", refuse)
    rows = [("t", "a", None), ("t", "b", "a")]
    assert_same(span_graph(frame_of(rows)), reference(rows))


def test_flags_and_traces_are_the_same_without_the_extension(monkeypatch):
    rng = random.Random(3)
    rows = [(f"trace-{rng.randint(0, 40):03d}-with-a-long-id", f"span-{i % 300}",
             None if i % 7 == 0 else f"span-{rng.randint(0, 320)}") for i in range(900)]
    kinds = ["llm", "tool", "chain"]
    spans = schema.conform(frame_of(rows).with_columns(
        pl.Series("kind", [kinds[i % 3] for i in range(len(rows))]),
        pl.Series("start_time", [i * 1000 for i in range(len(rows))]).cast(pl.Datetime("us", "UTC")),
        pl.Series("end_time", [i * 1000 + 500 for i in range(len(rows))]).cast(pl.Datetime("us", "UTC")),
        pl.Series("tokens_in", [i % 5 for i in range(len(rows))], dtype=pl.Int64),
        pl.Series("model", [f"model-{i % 4}" for i in range(len(rows))]),
    ), schema.SPANS)
    with_extension = flag_anomalies(spans)
    traces = build_traces(with_extension)
    monkeypatch.setattr(anomalies, "span_index", lambda *columns: None)
    monkeypatch.setattr("workbench.load.rollup.span_graph", anomalies.span_graph)
    without = flag_anomalies(spans)
    assert without.equals(with_extension)
    assert build_traces(without).equals(traces)
    assert traces.height == len({trace for trace, _, _ in rows})


@native
def test_columns_of_different_lengths_or_bad_views_are_refused():
    from workbench.load import _otlp_scan

    good = pl.Series(["a", "b"]).to_arrow(compat_level=pl.CompatLevel.newest())
    short = pl.Series(["a"]).to_arrow(compat_level=pl.CompatLevel.newest())
    args = _otlp_native._view_args
    with pytest.raises(ValueError, match="different lengths"):
        _otlp_scan.span_index(args(good), args(short), args(good))
    view = np.zeros(16, dtype=np.uint8)
    view[:4] = np.frombuffer(np.int32(20).tobytes(), dtype=np.uint8)  # 20 bytes in buffer 0, which is 3 long
    outside = (view.tobytes(), 1, (b"abc",), None)
    with pytest.raises(ValueError, match="outside its data buffer"):
        _otlp_scan.span_index(outside, args(short), args(short))
