"""The failure taxonomy: categories created while reviewing, versioned by append-only events.

Clean API: one :class:`Taxonomy` object over a :class:`~workbench.review.store.LabelStore`.
Every change (add, define, rename, merge, split) is a taxonomy event stored in the
store's ``taxonomy_events`` table and bumps the taxonomy version by one. Rename, merge
and split re-map existing labels by saving NEW label events (same reviewer, new
categories, ``supersedes`` the old event, ``taxonomy_version`` = the new version) in the
same transaction as the taxonomy event; nothing is ever updated. Re-map event ids are
derived from (taxonomy event, old label), so a retried change never doubles them.

Labels saved later by a kernel that still shows the old names keep those names; call
the change again (e.g. ``merge``) to re-map them. :meth:`ReviewSession.undo
<workbench.review.session.ReviewSession.undo>` retracts a label together with its re-mapped
copies; by hand, retract the re-mapped event (``store.current()``) and the label it copied.

:func:`saturation` is the "no new category in the last N reviewed traces" signal.

Examples
--------
>>> import tempfile, pathlib
>>> from workbench.review.store import LabelStore
>>> store = LabelStore(pathlib.Path(tempfile.mkdtemp()) / "labels.sqlite")
>>> taxonomy = Taxonomy(store, author="ana")
>>> taxonomy.add("refund_no_policy", definition="refund promised without a policy lookup").version
1
>>> taxonomy.rename("refund_no_policy", "refund_without_policy").version, taxonomy.names()
(2, ['refund_without_policy'])
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from workbench import _html, _markdown
from workbench._frames import as_polars
from workbench.review.events import LabelEvent, _now, current_labels
from workbench.schema import LABELS, STR_LIST, UTC_TIME, conform

if TYPE_CHECKING:
    from workbench.review.store import LabelStore

TAXONOMY_EVENTS: dict[str, pl.DataType] = {
    "event_id": pl.String,
    "version": pl.Int64,
    "action": pl.String,  # add | define | rename | merge | split
    "sources": STR_LIST,
    "targets": STR_LIST,
    "definition": pl.String,
    "examples": STR_LIST,
    "assignments": pl.String,  # JSON object trace_id -> category (split)
    "author": pl.String,
    "created_at": UTC_TIME,
}
CATEGORIES: dict[str, pl.DataType] = {
    "name": pl.String,
    "definition": pl.String,
    "examples": STR_LIST,
    "status": pl.String,  # active | renamed | merged | split
    "replaced_by": STR_LIST,
    "created_version": pl.Int64,
    "updated_version": pl.Int64,
    "author": pl.String,
}
_REMAP_NAMESPACE = uuid.UUID("5b0f4a52-6d0e-4c1a-9a43-7f2f3c9e0b11")
MAX_NAME_LENGTH = 80


def taxonomy_frame_from_rows(rows: Sequence[Sequence[Any]]) -> pl.DataFrame:
    """Build a :data:`TAXONOMY_EVENTS` frame from store rows (JSON text columns, microsecond times)."""
    out = []
    for event_id, version, action, sources, targets, definition, examples, assignments, author, us in rows:
        out.append(
            {
                "event_id": event_id,
                "version": int(version),
                "action": action,
                "sources": orjson.loads(sources),
                "targets": orjson.loads(targets),
                "definition": definition,
                "examples": orjson.loads(examples),
                "assignments": assignments,
                "author": author,
                "created_at": int(us),
            }
        )
    frame = pl.DataFrame(out, schema=TAXONOMY_EVENTS | {"created_at": pl.Int64})
    return frame.with_columns(pl.col("created_at").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))


def check_name(name: str) -> str:
    """Return a clean category name or raise ``ValueError`` saying what is wrong."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a category name must be a non-empty string, got {name!r}")
    clean = name.strip()
    if len(clean) > MAX_NAME_LENGTH or any(c in clean for c in "\n\r\t"):
        raise ValueError(f"category name {clean[:40]!r}: one line of at most {MAX_NAME_LENGTH} characters")
    return clean


def categories_from_events(events: Any) -> pl.DataFrame:
    """Reduce taxonomy events to one row per category name ever used (:data:`CATEGORIES`)."""
    given = as_polars(events, name="taxonomy events")
    if given.width == 0:  # no columns at all: no events
        given = pl.DataFrame(schema=TAXONOMY_EVENTS)
    frame = conform(given, TAXONOMY_EVENTS).sort("version")
    cats: dict[str, dict[str, Any]] = {}

    def touch(name: str, version: int, author: str | None) -> dict[str, Any]:
        if name not in cats:
            cats[name] = {
                "name": name, "definition": "", "examples": [], "status": "active", "replaced_by": [],
                "created_version": version, "updated_version": version, "author": author,
            }  # fmt: skip
        cat = cats[name]
        cat["updated_version"] = version
        if cat["status"] != "active":
            cat.update(status="active", replaced_by=[])
        return cat

    for row in frame.iter_rows(named=True):
        version, author, action = row["version"], row["author"], row["action"]
        sources, targets = row["sources"] or [], row["targets"] or []
        if action in ("add", "define"):
            cat = touch(targets[0], version, author)
            if row["definition"] is not None:
                cat["definition"] = row["definition"]
            if row["examples"] is not None and (action == "define" or row["examples"]):
                cat["examples"] = list(row["examples"])
            continue
        for target in targets:
            cat = touch(target, version, author)
            if row["definition"] and len(targets) == 1:
                cat["definition"] = row["definition"]
        status = {"rename": "renamed", "merge": "merged", "split": "split"}[action]
        rest = orjson.loads(row["assignments"] or "{}").get("__rest__", "")
        for source in sources:
            if source in targets or (action == "split" and not rest):
                continue  # merged into itself, or split with the source kept for the rest
            cats[source].update(status=status, replaced_by=list(targets), updated_version=version)
    return pl.DataFrame(list(cats.values()), schema=CATEGORIES)


def remap_categories(categories: Sequence[str], event: Mapping[str, Any], trace_id: str) -> tuple[str, ...]:
    """The categories of one label after a rename / merge / split taxonomy event."""
    sources, targets = list(event["sources"]), list(event["targets"])
    assignments = dict(event.get("assignments") or {})
    rest = assignments.pop("__rest__", None)
    out: list[str] = []
    for name in categories:
        if name not in sources:
            out.append(name)
        elif event["action"] in ("rename", "merge"):
            out.append(targets[0])
        elif trace_id in assignments:
            out.append(assignments[trace_id])
        else:
            out.append(rest or name)
    return tuple(dict.fromkeys(out))


def _remapper(event: Mapping[str, Any]) -> Any:
    def remap(current: pl.DataFrame, version: int) -> list[LabelEvent]:
        sources = list(event["sources"])
        touched = current.filter(pl.col("categories").list.eval(pl.element().is_in(sources)).list.any())
        out = []
        for row in touched.iter_rows(named=True):
            old = LabelEvent.from_row(row)
            new_categories = remap_categories(old.categories, event, old.trace_id)
            if new_categories == old.categories:
                continue
            out.append(
                LabelEvent(
                    event_id=str(uuid.uuid5(_REMAP_NAMESPACE, f"{event['event_id']}:{old.event_id}")),
                    trace_id=old.trace_id,
                    reviewer=old.reviewer,
                    action="label",
                    created_at=_now(),
                    verdict=old.verdict,
                    categories=new_categories,
                    note=old.note,
                    corrected_output=old.corrected_output,
                    escalate=old.escalate,
                    span_id=old.span_id,
                    taxonomy_version=version,
                    trace_content_hash=old.trace_content_hash,
                    supersedes=old.event_id,
                )  # fmt: skip
            )
        return out

    return remap


@dataclass(frozen=True)
class TaxonomyChange:
    """What one taxonomy change did: the new version and the label events it re-mapped."""

    version: int
    action: str
    relabelled: tuple[LabelEvent, ...] = ()


class Taxonomy:
    """The failure categories of one label store, versioned by append-only events.

    Parameters
    ----------
    store
        The :class:`~workbench.review.store.LabelStore` holding labels and taxonomy events.
    author
        Who makes changes through this object (recorded on every taxonomy event).
    """

    def __init__(self, store: LabelStore, *, author: str | None = None) -> None:
        self.store = store
        self.author = author

    def events(self) -> pl.DataFrame:
        """Every taxonomy event, oldest first (:data:`TAXONOMY_EVENTS`)."""
        return self.store.taxonomy_events()

    def categories(self, *, include_replaced: bool = False) -> pl.DataFrame:
        """One row per category (:data:`CATEGORIES`); only active ones unless asked."""
        cats = categories_from_events(self.events())
        return cats if include_replaced else cats.filter(pl.col("status") == "active")

    def names(self) -> list[str]:
        """Active category names in the order they were created (the widget's 1-9 keys)."""
        return self.categories()["name"].to_list()

    @property
    def version(self) -> int:
        """The taxonomy version: the number of changes so far (0 for an empty taxonomy)."""
        versions = self.events()["version"]
        return int(versions.max()) if len(versions) else 0

    def _record(self, action: str, *, sources: Sequence[str] = (), targets: Sequence[str] = (),
                definition: str | None = None, examples: Iterable[str] = (),
                assignments: Mapping[str, str] | None = None, remap: bool = False) -> TaxonomyChange:  # fmt: skip
        row = {
            "event_id": str(uuid.uuid4()), "action": action, "sources": list(sources),
            "targets": list(targets), "definition": definition, "examples": [str(e) for e in examples],
            "assignments": dict(assignments or {}), "author": self.author, "created_at": _now(),
        }  # fmt: skip
        version, relabelled = self.store.save_taxonomy_event(row, remap=_remapper(row) if remap else None)
        return TaxonomyChange(version=version, action=action, relabelled=tuple(relabelled))

    def _active(self) -> set[str]:
        return set(self.names())

    def add(self, name: str, *, definition: str = "", examples: Iterable[str] = ()) -> TaxonomyChange:
        """Create a category (while reviewing). Adding an existing active name changes nothing."""
        name = check_name(name)
        if name in self._active():
            return TaxonomyChange(version=self.version, action="add")
        return self._record("add", targets=[name], definition=definition, examples=examples)

    def define(self, name: str, definition: str, *, examples: Iterable[str] | None = None) -> TaxonomyChange:
        """Set a category's definition (and example trace ids, if given) as a new version."""
        name = self._require(name)
        ex = () if examples is None else examples
        return self._record("define", targets=[name], definition=definition, examples=ex)

    def rename(self, old: str, new: str) -> TaxonomyChange:
        """Rename a category; its labels are re-mapped by new label events."""
        old, new = self._require(old), check_name(new)
        if new in self._active():
            raise ValueError(f"category {new!r} already exists; use merge([{old!r}], into={new!r})")
        return self._record("rename", sources=[old], targets=[new], remap=True)

    def merge(self, sources: Iterable[str], *, into: str, definition: str | None = None) -> TaxonomyChange:
        """Merge categories into one (new or existing); their labels are re-mapped."""
        names = [self._require(s) for s in sources]
        into = check_name(into)
        if not names or names == [into]:
            raise ValueError("merge needs at least one category other than the target")
        return self._record("merge", sources=names, targets=[into], definition=definition, remap=True)

    def split(self, source: str, assignments: Mapping[str, str], *, rest: str | None = None,
              definitions: Mapping[str, str] | None = None) -> TaxonomyChange:  # fmt: skip
        """Split a category: ``assignments`` maps trace_id -> new category for its labels.

        Labels on traces not in ``assignments`` get ``rest``; with ``rest=None`` they keep
        ``source``, which stays active (a sub-category was split off).
        """
        source = self._require(source)
        named = [check_name(c) for c in assignments.values()] + ([check_name(rest)] if rest else [])
        targets = list(dict.fromkeys(named))
        if not targets:
            raise ValueError("split needs at least one trace assignment or a rest category")
        mapping = {str(t): check_name(c) for t, c in assignments.items()} | (
            {"__rest__": rest} if rest else {}
        )
        change = self._record("split", sources=[source], targets=targets, assignments=mapping, remap=True)
        for name, text in (definitions or {}).items():
            change = TaxonomyChange(self.define(name, text).version, "split", change.relabelled)
        return change

    def _require(self, name: str) -> str:
        name = check_name(name)
        if name not in self._active():
            raise ValueError(f"no active category {name!r}; active: {sorted(self._active())}")
        return name

    def _repr_html_(self) -> str:
        cats = self.categories()
        return _html.report(
            f"Taxonomy version {self.version}: {len(cats)} active categories",
            [_html.frame_table(cats.select("name", "definition", "examples", "author"))],
        )


@dataclass(frozen=True)
class Saturation:
    """New failure categories among the last ``last_n`` reviewed traces."""

    n_reviewed: int
    last_n: int
    new_in_window: tuple[str, ...]
    curve: pl.DataFrame = field(repr=False)

    @property
    def saturated(self) -> bool:
        """True when at least ``last_n`` traces were reviewed and none of the last ``last_n`` added a category."""
        return self.n_reviewed >= self.last_n and not self.new_in_window

    @property
    def message(self) -> str:
        if self.n_reviewed < self.last_n:
            return f"{self.n_reviewed} traces reviewed (all reviewers); saturation needs at least {self.last_n}"
        if self.saturated:
            return f"taxonomy saturated: no new category in the last {self.last_n} traces reviewed (all reviewers)"
        return f"{len(self.new_in_window)} new categories in the last {self.last_n} traces reviewed (all reviewers)"

    def to_frame(self) -> pl.DataFrame:
        """The discovery curve: position, trace_id, new categories, categories so far."""
        return self.curve

    def to_markdown(self) -> str:
        new = _markdown.cell(", ".join(self.new_in_window) or "none")
        return f"**Saturation** — {_markdown.cell(self.message)}. New in window: {new}."

    def _repr_html_(self) -> str:
        tone = "good" if self.saturated else "warn"
        pairs = {"reviewed traces": self.n_reviewed, "window": self.last_n,
                 "new in window": ", ".join(self.new_in_window) or "none"}  # fmt: skip
        body = _html.join([_html.badge(self.message, tone=tone), _html.key_values(pairs)])
        return _html.report("Category saturation", [body])


def saturation(labels: Any, *, last_n: int = 20, reviewer: str | None = None) -> Saturation:
    """How many categories first appeared among the last ``last_n`` reviewed traces.

    Pass the full event history (``store.events()``): traces are ordered by when they
    were first reviewed, categories come from the current labels (so a rename or merge
    does not look like a new category).

    Examples
    --------
    >>> from workbench.review.events import events_frame, new_label
    >>> events = events_frame([new_label(f"t{i}", "ana", "fail", categories=["a"]) for i in range(25)])
    >>> saturation(events, last_n=20).saturated
    True
    """
    if last_n < 1:
        raise ValueError(f"last_n must be >= 1, got {last_n}")
    frame = conform(as_polars(labels, name="labels"), LABELS)
    if reviewer is not None:
        frame = frame.filter(pl.col("reviewer") == reviewer)
    first_seen = (
        frame.filter(pl.col("action").fill_null("label") == "label")
        .group_by("trace_id")
        .agg(pl.col("created_at").min().alias("first_reviewed"))
    )
    current = (
        current_labels(frame)
        .group_by("trace_id")
        .agg(pl.col("categories").list.explode(keep_nulls=False, empty_as_null=False).unique())
    )
    ordered = (
        current.join(first_seen, on="trace_id", how="left")
        .sort(["first_reviewed", "trace_id"], nulls_last=True)
        .with_row_index("position", offset=1)
    )
    seen: set[str] = set()
    new_lists, totals = [], []
    for cats in ordered["categories"].to_list():
        new = sorted(c for c in (cats or []) if c is not None and c not in seen)
        seen.update(new)
        new_lists.append(new)
        totals.append(len(seen))
    curve = ordered.select(
        pl.col("position").cast(pl.Int64),
        "trace_id",
        pl.Series("new_categories", new_lists, dtype=STR_LIST),
        pl.Series("n_categories", totals, dtype=pl.Int64),
    )
    window = curve.tail(last_n) if len(curve) else curve
    new_in_window = tuple(c for cats in window["new_categories"].to_list() for c in cats)
    return Saturation(n_reviewed=len(curve), last_n=last_n, new_in_window=new_in_window, curve=curve)
