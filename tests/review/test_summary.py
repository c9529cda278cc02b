"""label_summary: counts, rates and Wilson intervals per verdict, category and segment."""

from __future__ import annotations

import math

import polars as pl
import pytest
from statsmodels.stats.proportion import proportion_confint

from workbench.review.events import OUTCOME_VOCABULARY, events_frame, new_label, new_retraction
from workbench.review.summary import label_summary
from workbench.schema import TRACES, conform


def _traces() -> pl.DataFrame:
    rows = []
    for i in range(40):
        rows.append(
            {
                "trace_id": f"t{i:02d}",
                "prompt_version": "v1" if i < 20 else "v2",
                "output": f"answer {i}",
                "status": "error" if i % 10 == 0 else "ok",
                "n_errors": 1 if i % 10 == 0 else 0,
                "models": ["gpt-a"] if i % 2 else ["gpt-a", "gpt-b"],
            }
        )
    return conform(pl.DataFrame(rows), TRACES)


def _labels() -> pl.DataFrame:
    events = []
    for i in range(30):  # t00..t29 labelled; v1 = 20 labels, v2 = 10 labels
        fail = i % 3 == 0
        cats = (["refund_no_policy"] if i < 20 else ["v2_regression"]) if fail else []
        corrected = None
        if i % 5 == 0:
            corrected = f"answer {i}" if i == 0 else f"better answer {i}"  # t00's "correction" is unchanged
        events.append(
            new_label(
                f"t{i:02d}",
                "ana",
                "fail" if fail else "pass",
                categories=cats,
                corrected_output=corrected,
                escalate=(i % 7 == 0),
            )  # fmt: skip
        )
    undone = new_label("t35", "ana", "fail")  # labelled, then undone: not counted
    events += [undone, new_retraction("t35", "ana", supersedes=undone.event_id)]
    return events_frame(events)


def _ci(k: int, n: int) -> tuple[float, float]:
    return proportion_confint(k, n, method="wilson")


def test_overall_rates_and_intervals() -> None:
    summary = label_summary(_labels(), _traces())
    frame = summary.to_frame()
    assert set(frame["measure"]) == {"verdict", "failure", "category", "completion", "override", "escalation",
                                     "exceptions", "coverage"}  # fmt: skip
    fails = sum(1 for i in range(30) if i % 3 == 0)  # 10
    assert summary.rate("failure") == pytest.approx(fails / 30)
    row = frame.filter(pl.col("measure") == "failure").row(0, named=True)
    assert (row["count"], row["n"]) == (10, 30)
    assert (row["low"], row["high"]) == pytest.approx(_ci(10, 30))
    assert summary.rate("verdict", "pass") == pytest.approx(20 / 30)
    assert summary.rate("category", "refund_no_policy") == pytest.approx(7 / 30)  # i in 0,3,..,18
    escalated = [i for i in range(30) if i % 7 == 0]  # 0, 7, 14, 21, 28
    assert summary.rate("escalation") == pytest.approx(len(escalated) / 30)
    completed = [i for i in range(30) if i % 3 != 0 and i % 7 != 0]
    assert summary.rate("completion") == pytest.approx(len(completed) / 30)
    # corrections on t05, t10, t15, t20, t25 differ from the output; t00's equals it
    assert summary.rate("override") == pytest.approx(5 / 30)
    assert summary.rate("exceptions") == pytest.approx(4 / 40)
    assert summary.rate("coverage") == pytest.approx(30 / 40)


def test_breakdown_by_a_traces_column() -> None:
    summary = label_summary(_labels(), _traces(), by="prompt_version")
    assert summary.rate("failure", prompt_version="v1") == pytest.approx(7 / 20)
    assert summary.rate("failure", prompt_version="v2") == pytest.approx(3 / 10)
    assert summary.rate("category", "v2_regression", prompt_version="v2") == pytest.approx(3 / 10)
    with pytest.raises(KeyError):
        summary.rate("category", "v2_regression", prompt_version="v1")
    assert summary.rate("coverage", prompt_version="v2") == pytest.approx(10 / 20)
    assert summary.rate("exceptions", prompt_version="v1") == pytest.approx(2 / 20)
    wide = summary.table()
    assert {"v1", "v2"} <= set(wide.columns)
    markdown = summary.to_markdown()
    assert markdown.startswith("| measure | value |") and "35.0% [" in markdown
    html = summary._repr_html_()
    assert "Label summary by prompt_version" in html and "Wilson" in html


def test_list_columns_are_exploded_and_label_columns_work() -> None:
    summary = label_summary(_labels(), _traces(), by="models")
    # every trace has gpt-a; even-numbered traces also have gpt-b
    assert summary.rate("coverage", models="gpt-a") == pytest.approx(30 / 40)
    assert summary.rate("coverage", models="gpt-b") == pytest.approx(15 / 20)
    by_reviewer = label_summary(_labels(), by="reviewer")
    assert by_reviewer.rate("failure", reviewer="ana") == pytest.approx(10 / 30)
    with pytest.raises(ValueError, match="intent"):
        label_summary(_labels(), _traces(), by="intent")


def test_without_traces_and_with_pandas_and_custom_vocabulary() -> None:
    events = events_frame(
        [new_label("a", "r", "accepted"), new_label("b", "r", "corrected", corrected_output="fixed"),
         new_label("c", "r", "escalated", escalate=True), new_label("d", "r", "rejected"),
         new_label("d", "s", "accepted")]
    )  # fmt: skip
    summary = label_summary(events.to_pandas(), vocabulary=OUTCOME_VOCABULARY)
    assert summary.rate("failure") == pytest.approx(3 / 5)
    assert summary.rate("override") == pytest.approx(1 / 5)  # no traces: any non-empty correction
    assert "exceptions" not in set(summary.to_frame()["measure"])
    one = label_summary(events, vocabulary=OUTCOME_VOCABULARY, reviewer="s")
    assert one.rate("failure") == 0.0
    assert one.to_frame().filter(pl.col("measure") == "failure")["high"][0] == pytest.approx(_ci(0, 1)[1])


def test_empty_labels_give_undefined_rates() -> None:
    summary = label_summary(events_frame([]))
    assert math.isnan(summary.rate("failure"))


def test_markdown_escapes_pipes_newlines_and_html_in_categories():
    from workbench.review.events import events_frame, new_label
    from workbench.review.summary import label_summary

    labels = events_frame([new_label("t1", "ana", "fail", categories=["a|b <script>x</script>\nc"])])
    markdown = label_summary(labels).to_markdown()
    row = next(line for line in markdown.splitlines() if "script" in line)
    assert "a\\|b &lt;script&gt;" in row and "<script>" not in markdown
    assert all(line.count("|") - line.count("\\|") == markdown.splitlines()[0].count("|") for line in markdown.splitlines())
