"""Taxonomy: versioned categories, re-mapping labels by new events, saturation."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from workbench.review.events import events_frame, new_label, new_retraction
from workbench.review.store import LabelStore
from workbench.review.taxonomy import Taxonomy, categories_from_events, remap_categories, saturation


@pytest.fixture
def store(tmp_path: Path):
    with LabelStore(tmp_path / "labels.sqlite") as opened:
        yield opened


def _current_categories(store: LabelStore) -> dict[tuple[str, str], list[str]]:
    return {(r["trace_id"], r["reviewer"]): r["categories"] for r in store.current().iter_rows(named=True)}


def test_add_define_and_versions(store: LabelStore) -> None:
    taxonomy = Taxonomy(store, author="ana")
    assert taxonomy.version == 0 and taxonomy.names() == []
    assert (
        taxonomy.add("wrong_tool_args", definition="tool called with bad arguments", examples=["t1"]).version
        == 1
    )
    assert taxonomy.add("wrong_tool_args").version == 1  # already there: no new event
    assert taxonomy.add("hallucinated_no_results").version == 2
    assert taxonomy.define("hallucinated_no_results", "answers although search returned nothing").version == 3
    cats = taxonomy.categories()
    assert cats["name"].to_list() == ["wrong_tool_args", "hallucinated_no_results"]
    assert cats.filter(pl.col("name") == "wrong_tool_args")["examples"].to_list() == [["t1"]]
    assert cats["definition"].to_list()[1] == "answers although search returned nothing"
    assert cats["author"].to_list() == ["ana", "ana"]
    events = taxonomy.events()
    assert events["version"].to_list() == [1, 2, 3]
    assert events["action"].to_list() == ["add", "add", "define"]
    with pytest.raises(ValueError, match="non-empty"):
        taxonomy.add("  ")
    with pytest.raises(ValueError, match="no active category"):
        taxonomy.define("nope", "x")
    assert "Taxonomy version 3" in taxonomy._repr_html_()


def test_rename_remaps_labels_by_new_events(store: LabelStore) -> None:
    taxonomy = Taxonomy(store, author="lead")
    taxonomy.add("refund")
    old_ana = store.save(
        new_label("t1", "ana", "fail", categories=["refund", "tone"], note="n1", taxonomy_version=1)
    )
    store.save(new_label("t2", "bo", "fail", categories=["tone"]))
    before = store.count()
    change = taxonomy.rename("refund", "refund_no_policy")
    assert change.version == 2 and len(change.relabelled) == 1
    assert store.count() == before + 1  # one NEW label event; nothing updated
    remap = store.events().filter(pl.col("event_id") == change.relabelled[0].event_id).row(0, named=True)
    assert remap["supersedes"] == old_ana.event_id
    assert remap["reviewer"] == "ana" and remap["note"] == "n1" and remap["taxonomy_version"] == 2
    assert _current_categories(store) == {("t1", "ana"): ["refund_no_policy", "tone"], ("t2", "bo"): ["tone"]}
    assert store.events()["event_id"].to_list()[0] == old_ana.event_id  # history kept
    assert taxonomy.names() == ["refund_no_policy"]
    renamed = taxonomy.categories(include_replaced=True).filter(pl.col("name") == "refund").row(0, named=True)
    assert renamed["status"] == "renamed" and renamed["replaced_by"] == ["refund_no_policy"]
    taxonomy.add("other")
    with pytest.raises(ValueError, match="already exists"):
        taxonomy.rename("other", "refund_no_policy")


def test_merge_into_existing_and_dedupes(store: LabelStore) -> None:
    taxonomy = Taxonomy(store)
    for name in ("a", "b", "c"):
        taxonomy.add(name)
    store.save(new_label("t1", "ana", "fail", categories=["a", "b"]))
    store.save(new_label("t2", "ana", "fail", categories=["b"]))
    store.save(new_label("t3", "ana", "fail", categories=["c"]))
    change = taxonomy.merge(["a", "b"], into="c")
    assert change.version == 4 and len(change.relabelled) == 2
    assert _current_categories(store) == {("t1", "ana"): ["c"], ("t2", "ana"): ["c"], ("t3", "ana"): ["c"]}
    assert taxonomy.names() == ["c"]
    with pytest.raises(ValueError, match="no active category"):
        taxonomy.merge(["a"], into="c")


def test_split_assigns_per_trace_and_keeps_or_retires_the_source(store: LabelStore) -> None:
    taxonomy = Taxonomy(store)
    taxonomy.add("tool_error")
    for i in range(4):
        store.save(new_label(f"t{i}", "ana", "fail", categories=["tool_error"]))
    change = taxonomy.split("tool_error", {"t0": "wrong_args", "t1": "timeout"})
    assert change.version == 2 and len(change.relabelled) == 2
    current = _current_categories(store)
    assert current[("t0", "ana")] == ["wrong_args"] and current[("t1", "ana")] == ["timeout"]
    assert current[("t2", "ana")] == ["tool_error"]  # no rest: the source stays for the others
    assert set(taxonomy.names()) == {"tool_error", "wrong_args", "timeout"}
    change = taxonomy.split(
        "tool_error", {"t2": "timeout"}, rest="other_tool", definitions={"other_tool": "misc"}
    )
    assert change.version == 4  # the split, then the definition
    current = _current_categories(store)
    assert current[("t2", "ana")] == ["timeout"] and current[("t3", "ana")] == ["other_tool"]
    assert "tool_error" not in taxonomy.names()
    assert taxonomy.categories().filter(pl.col("name") == "other_tool")["definition"].to_list() == ["misc"]


def test_retried_change_does_not_double_remaps(store: LabelStore) -> None:
    store.save(new_label("t1", "ana", "fail", categories=["x"]))
    row = {"event_id": "fixed-id", "action": "rename", "sources": ["x"], "targets": ["y"], "created_at": None}
    from workbench.review.events import _now
    from workbench.review.taxonomy import _remapper

    row["created_at"] = _now()
    first = store.save_taxonomy_event(row, remap=_remapper(row))
    again = store.save_taxonomy_event(row, remap=_remapper(row))
    assert first[0] == again[0] == 1 and again[1] == []
    assert store.count() == 2


def test_undo_after_remap_retracts_the_current_event(store: LabelStore) -> None:
    taxonomy = Taxonomy(store)
    taxonomy.add("x")
    store.save(new_label("t1", "ana", "pass"))
    second = store.save(new_label("t1", "ana", "fail", categories=["x"]))
    taxonomy.rename("x", "y")
    current_id = store.current()["event_id"][0]
    assert current_id != second.event_id
    store.save(new_retraction("t1", "ana", supersedes=current_id))
    # the remap and the label it copied are both ana's; retracting the current one shows the copy's source
    assert store.current()["verdict"].to_list() == ["fail"]
    store.save(new_retraction("t1", "ana", supersedes=second.event_id))
    assert store.current()["verdict"].to_list() == ["pass"]


def test_remap_categories_pure() -> None:
    merge = {"action": "merge", "sources": ["a", "b"], "targets": ["c"]}
    assert remap_categories(("a", "z", "b"), merge, "t") == ("c", "z")
    split = {
        "action": "split",
        "sources": ["a"],
        "targets": ["p", "q"],
        "assignments": {"t1": "p", "__rest__": "q"},
    }
    assert remap_categories(("a",), split, "t1") == ("p",)
    assert remap_categories(("a",), split, "t2") == ("q",)
    assert categories_from_events(pl.DataFrame()).is_empty()


def test_saturation_counts_new_categories_in_review_order() -> None:
    events = []
    for i in range(30):
        cats = ["a"] if i % 2 else []
        if i == 5:
            cats = ["b"]
        if i == 22:
            cats = ["a", "c"]
        events.append(new_label(f"t{i:02d}", "ana", "fail" if cats else "pass", categories=cats))
    result = saturation(events_frame(events), last_n=20)
    assert result.n_reviewed == 30 and result.new_in_window == ("c",) and not result.saturated
    curve = result.to_frame()
    assert curve["n_categories"].to_list()[-1] == 3
    assert curve.filter(pl.col("new_categories").list.len() > 0)["trace_id"].to_list() == [
        "t01",
        "t05",
        "t22",
    ]
    assert saturation(events_frame(events), last_n=7).saturated  # last 7 traces (t23..t29) add nothing
    assert not saturation(events_frame(events[:5]), last_n=20).saturated  # too few traces yet
    assert "need" in saturation(events_frame(events[:5]), last_n=20).message
    assert "Category saturation" in result._repr_html_() and "c" in result.to_markdown()


def test_saturation_ignores_renames_and_uses_first_review_time(store: LabelStore) -> None:
    taxonomy = Taxonomy(store)
    taxonomy.add("early")
    store.save(new_label("t00", "ana", "fail", categories=["early"]))
    for i in range(1, 25):
        store.save(new_label(f"t{i:02d}", "ana", "pass"))
    taxonomy.rename("early", "renamed_early")  # a re-map event now, for a trace reviewed first
    result = saturation(store.events(), last_n=20)
    assert result.saturated, result.to_frame().head(3)
    assert result.to_frame()["new_categories"][0].to_list() == ["renamed_early"]
    with pytest.raises(ValueError, match="last_n"):
        saturation(store.events(), last_n=0)
