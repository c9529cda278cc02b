"""Rollup of spans into traces and sessions, anomaly flags, and the load report."""

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from workbench import schema
from workbench.load._base import Problem, ReaderResult
from workbench.load.anomalies import flag_anomalies
from workbench.load.result import assemble
from workbench.load.rollup import build_sessions, build_traces

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def span(trace, span_id, parent=None, kind="chain", start=0, end=1, **extra):
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_span_id": parent,
        "kind": kind,
        "name": extra.pop("name", span_id),
        "start_time": T0 + timedelta(seconds=start),
        "end_time": T0 + timedelta(seconds=end),
        "status": extra.pop("status", "ok"),
        **extra,
    }


def spans_frame(rows):
    return schema.conform(pl.DataFrame(rows), schema.SPANS)


def test_flags_duplicates_orphans_cycles_and_negative_durations():
    rows = [
        span("t1", "root"),
        span("t1", "a", "root"),
        span("t1", "a", "root"),  # duplicate id
        span("t1", "b", "missing"),  # orphan
        span("t2", "x", "y"),  # 2-cycle
        span("t2", "y", "x"),
        span("t2", "z", "x"),  # leads into the cycle, not on it
        span("t3", "self", "self"),  # self-loop
        span("t3", "late", None, start=5, end=2),  # ends before start
    ]
    flagged = flag_anomalies(spans_frame(rows))
    assert flagged.height == len(rows)  # never drops a row
    assert flagged["is_duplicate"].to_list() == [False, True, True, False, False, False, False, False, False]
    assert flagged["is_orphan"].to_list() == [False, False, False, True, False, False, False, False, False]
    assert flagged["in_cycle"].to_list() == [False, False, False, False, True, True, False, True, False]
    assert flagged["ends_before_start"].to_list() == [False] * 8 + [True]


def test_cycle_detection_on_a_long_chain_terminates_and_finds_nothing():
    n = 50_000
    rows = {"trace_id": ["t"] * n, "span_id": [str(i) for i in range(n)], "parent_span_id": [None] + [str(i) for i in range(n - 1)]}
    flagged = flag_anomalies(pl.DataFrame(rows))
    assert not flagged["in_cycle"].any()
    assert not flagged["is_orphan"].any()


def test_trace_rollup_counts_tokens_on_llm_leaves_and_takes_root_io():
    rows = [
        span("t1", "root", kind="agent", start=0, end=10, input="hi", output="bye", session_id="s1", user_id="u1"),
        span("t1", "llm1", "root", kind="llm", start=1, end=2, tokens_in=10, tokens_out=5, model="m1", cost_usd=0.01,
             prompt_version="v2"),
        span("t1", "wrap", "root", kind="llm", start=3, end=6, tokens_in=99, tokens_out=99, model="m2"),
        span("t1", "llm2", "wrap", kind="llm", start=4, end=5, tokens_in=20, tokens_out=7, model="m2", cost_usd=0.02),
        span("t1", "tool", "root", kind="tool", start=6, end=7, status="error"),
        span("t2", "only", kind="llm", start=20, end=21, input="q", output="a", session_id="s1", tokens_in=1, tokens_out=1,
             tokens_total=2),
    ]
    traces = build_traces(flag_anomalies(spans_frame(rows)))
    schema.validate(traces, schema.TRACES, table="traces")
    t1 = traces.filter(pl.col("trace_id") == "t1").row(0, named=True)
    assert t1["root_span_id"] == "root"
    assert (t1["input"], t1["output"]) == ("hi", "bye")
    assert (t1["tokens_in"], t1["tokens_out"], t1["tokens_total"]) == (30, 12, 42)
    assert t1["cost_usd"] == pytest.approx(0.03)
    assert t1["n_spans"] == 5 and t1["n_llm_calls"] == 3 and t1["n_tool_calls"] == 1 and t1["n_errors"] == 1
    assert t1["models"] == ["m1", "m2"]
    assert traces.filter(pl.col("trace_id") == "t2")["models"].to_list() == [[]]  # an LLM span naming no model
    assert t1["prompt_version"] == "v2"
    assert t1["duration_ms"] == 10_000
    assert t1["status"] == "ok"  # the root says ok; the tool error is counted, not promoted
    sessions = build_sessions(traces)
    assert sessions.row(0, named=True)["trace_ids"] == ["t1", "t2"]
    assert sessions.row(0, named=True)["n_turns"] == 2


def test_models_are_distinct_in_the_order_first_used_root_first_then_by_start():
    rows = [
        span("t", "late", "root", kind="llm", start=9, end=10, model="m3"),
        span("t", "tool", "root", kind="tool", start=1, end=2, model="not-an-llm"),
        span("t", "early", "root", kind="llm", start=2, end=3, model="m2"),
        span("t", "again", "root", kind="llm", start=5, end=6, model="m3"),
        span("t", "unnamed", "root", kind="llm", start=1, end=2),
        span("t", "root", kind="llm", start=0, end=11, model="m1"),
        span("u", "solo", kind="agent", start=0, end=1),
    ]
    traces = build_traces(flag_anomalies(spans_frame(rows))).sort("trace_id")
    assert traces["models"].to_list() == [["m1", "m2", "m3"], []]


def test_outcomes_from_feedback():
    rows = [span("t1", "r"), span("t2", "r"), span("t3", "r")]
    fb = schema.conform(
        pl.DataFrame(
            [
                {"target_level": "trace", "trace_id": "t1", "name": "resolved", "value_num": 1.0, "annotator_kind": "code"},
                {"target_level": "trace", "trace_id": "t2", "name": "resolved", "value_num": 0.0, "annotator_kind": "code"},
                {"target_level": "trace", "trace_id": "t2", "name": "thumbs", "value_num": 0.0, "annotator_kind": "human"},
                {"target_level": "trace", "trace_id": "t3", "name": "reward", "value_num": 0.25, "annotator_kind": "code"},
                {"target_level": "trace", "trace_id": "t3", "name": "resolved", "value_num": 1.0, "annotator_kind": "llm"},
            ]
        ),
        schema.FEEDBACK,
    )
    traces = build_traces(flag_anomalies(spans_frame(rows)), fb).sort("trace_id")
    assert traces["passed"].to_list() == [True, False, None]  # an LLM judge is not an outcome
    assert traces["user_feedback"].to_list() == [None, 0.0, None]
    assert traces["reward"].to_list() == [None, None, 0.25]


def test_assemble_reports_files_problems_and_anomalies():
    spans = pl.DataFrame([span("t1", "a"), span("t1", "b", "zzz")])
    problem = Problem("x.jsonl", 3, 120, "malformed JSON", detail="unexpected end")
    result = assemble([(ReaderResult("otlp", spans, problems=[problem]), {"path": "x.jsonl", "detected": True, "bytes": 10, "seconds": 0.1})])
    assert result.rows() == {"spans": 2, "traces": 1, "sessions": 0, "feedback": 0, "problems": 1}
    assert result.problems_by_reason() == {"malformed JSON": 1}
    assert result.anomalies()["is_orphan"] == 1
    assert result.to_dict()["formats"] == {"x.jsonl": "otlp"}
    text = repr(result)
    assert "x.jsonl: otlp (detected)" in text and "malformed JSON 1" in text
    assert "Load report" in result._repr_html_()


def test_order_is_root_then_start_then_row_and_leaves_are_found_by_graph():
    rows = [
        span("t", "late", "root", kind="llm", start=5, input="late question", tokens_in=50),
        span("t", "tie-b", "root", kind="llm", start=2, input="first of a tie", tokens_in=7),
        span("t", "tie-c", "tie-b", kind="llm", start=2, input="second of a tie", tokens_in=3),
        span("t", "root", start=9),  # the root comes first whatever its start time
        {**span("u", "no-start", kind="llm", input="no time"), "start_time": None},
        span("u", "x", "gone", kind="llm", start=1, input="orphan with time", tokens_in=4),
    ]
    spans = flag_anomalies(spans_frame(rows))
    traces = {row["trace_id"]: row for row in build_traces(spans).to_dicts()}
    assert traces["t"]["root_span_id"] == "root"
    assert traces["t"]["input"] == "first of a tie"  # root has none: the earliest LLM input, row order on ties
    assert traces["t"]["tokens_in"] == 3 + 50  # tie-b has an LLM child, so only the leaves count
    assert traces["u"]["root_span_id"] == "x"  # an orphan counts as a root; the span without a start comes last
    assert traces["u"]["input"] == "orphan with time"


def test_a_trace_whose_llm_leaves_carry_nothing_falls_back_to_its_root():
    rows = [
        # no LLM span at all: the root's counts, no models, input and output the root's
        span("a", "root", kind="agent", start=0, end=3, tokens_in=7, tokens_out=3, tokens_total=10, cost_usd=0.5,
             input="qa", output="ra"),
        span("a", "tool", "root", kind="tool", start=1, end=2),
        # LLM leaves without counts: the root's again; the root has no input, so the first LLM input, and the
        # last LLM output
        span("b", "root", kind="agent", start=10, end=20, tokens_in=1, tokens_out=2, session_id="s"),
        span("b", "llm1", "root", kind="llm", start=11, end=12, input="first", output="early", model="m"),
        span("b", "llm2", "root", kind="llm", start=13, end=14, input="second", output="late"),
        # counts on one leaf only, cost on none: the leaves' counts, the root's cost
        span("c", "root", kind="agent", start=30, end=40, cost_usd=0.25, tokens_in=100, tokens_out=100),
        span("c", "llm1", "root", kind="llm", start=31, end=32, tokens_in=4, tokens_out=6),
        span("c", "llm2", "root", kind="llm", start=33, end=34),
    ]
    traces = {row["trace_id"]: row for row in build_traces(flag_anomalies(spans_frame(rows))).to_dicts()}
    a, b, c = traces["a"], traces["b"], traces["c"]
    assert (a["tokens_in"], a["tokens_out"], a["tokens_total"], a["cost_usd"]) == (7, 3, 10, 0.5)
    assert (a["n_llm_calls"], a["models"], a["input"], a["output"]) == (0, [], "qa", "ra")
    assert (b["tokens_in"], b["tokens_out"], b["tokens_total"], b["cost_usd"]) == (1, 2, None, None)
    assert (b["input"], b["output"], b["models"], b["session_id"]) == ("first", "late", ["m"], "s")
    assert (c["tokens_in"], c["tokens_out"], c["tokens_total"], c["cost_usd"]) == (4, 6, 10, 0.25)
