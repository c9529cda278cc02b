"""Shared fixtures: a small labelled trace set with tricky text and planted PII."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import polars as pl
import pytest

from workbench.review.events import events_frame, new_label

START = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
TRICKY = 'Zürich "quoted", comma; <script>alert(1)</script>\nnew line\ttab \u202e bidi 😀'


def make_traces(n: int = 60) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "trace_id": [f"trace-{k:03d}" for k in range(n)],
            "session_id": [f"sess-{k // 3}" for k in range(n)],
            "user_id": [f"user-{k // 6}" for k in range(n)],
            "root_span_id": [f"span-{k:03d}" for k in range(n)],
            "start_time": [START + timedelta(minutes=7 * k) for k in range(n)],
            "input": [
                f"Question {k}: {TRICKY}" if k % 5 == 0 else f"Where is order {1000 + k}? It is late."
                for k in range(n)
            ],
            "output": [f"Answer {k}, see https://shop.example.com/o/{k}" for k in range(n)],
            "prompt_version": ["v1" if k < n // 2 else "v2" for k in range(n)],
            "metadata": [
                orjson.dumps({"channel": "chat", "rank": k, "ratio": k / 7}).decode() for k in range(n)
            ],
        }
    )


def make_labels(traces: pl.DataFrame) -> pl.DataFrame:
    events = []
    for k, trace_id in enumerate(traces["trace_id"].to_list()):
        if k % 4 == 3:
            continue  # unlabelled
        failed = k % 3 == 0
        events.append(
            new_label(
                trace_id,
                "ana" if k % 2 else "bo",
                "fail" if failed else "pass",
                categories=["wrong_tool_args"]
                if failed and k % 2
                else (["refund_no_policy"] if failed else []),
                corrected_output=f"Corrected answer {k}: {TRICKY}" if failed and k % 6 == 0 else None,
                note=f"note {k}" if failed else None,
                taxonomy_version=2,
                event_id=f"event-{k:04d}",
            )
        )
    return events_frame(events)


@pytest.fixture
def traces() -> pl.DataFrame:
    return make_traces()


@pytest.fixture
def labels(traces: pl.DataFrame) -> pl.DataFrame:
    return make_labels(traces)
