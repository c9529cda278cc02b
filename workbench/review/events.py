"""Label events: immutable reviewer decisions and the pure reductions over them.

A label is never updated. Relabel, edit and undo are new events; the current label
of a trace for a reviewer is a pure reduction of the event history
(:func:`current_labels`). Rows follow :data:`workbench.schema.LABELS`.

Ordering
    Events are ordered by ``created_at``; ties keep the order of the frame (the store
    returns commit order). :func:`new_label` makes ``created_at`` strictly increasing
    within one process, so a clock that steps back never reorders one kernel's events.

Undo semantics ("undo my last action")
    A ``retract`` event names the event it undoes in ``supersedes``. The retracted
    label is removed from the history as if it had never been given, so the label it
    replaced (if any) is current again: ``pass`` -> ``fail`` -> undo shows ``pass``;
    undoing a first label leaves the trace unlabelled. A retract only affects events
    of the same trace and reviewer. A retract with ``supersedes=None`` clears every
    earlier label of that reviewer on that trace. Redo is simply a new label event.

Examples
--------
>>> first = new_label("t1", "ana", "pass")
>>> second = new_label("t1", "ana", "fail", categories=["wrong_tool_args"], supersedes=first.event_id)
>>> undo = new_retraction("t1", "ana", supersedes=second.event_id)
>>> current_labels(events_frame([first, second, undo]))["verdict"].to_list()
['pass']
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import polars as pl

from workbench._frames import as_polars
from workbench.schema import LABELS, conform

ACTIONS = ("label", "retract")


@dataclass(frozen=True)
class Vocabulary:
    """The verdicts reviewers may give, and which of them count as a failure.

    Parameters
    ----------
    verdicts
        Allowed verdicts, in display order (the widget binds keys in this order).
    failing
        The verdicts that count as a failure for rates, agreement against judges and
        comparisons. Every other verdict counts as a pass.

    Examples
    --------
    >>> vocab = Vocabulary(("accepted", "corrected", "rejected", "escalated"),
    ...                    failing=("corrected", "rejected", "escalated"))
    >>> vocab.is_failure("corrected"), vocab.is_failure("accepted")
    (True, False)
    """

    verdicts: tuple[str, ...] = ("pass", "fail")
    failing: tuple[str, ...] = ("fail",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdicts", tuple(self.verdicts))
        object.__setattr__(self, "failing", tuple(self.failing))
        if not self.verdicts or len(set(self.verdicts)) != len(self.verdicts):
            raise ValueError(f"verdicts must be distinct and non-empty, got {self.verdicts}")
        unknown = [v for v in self.failing if v not in self.verdicts]
        if unknown:
            raise ValueError(f"failing verdicts {unknown} are not in verdicts {self.verdicts}")

    @property
    def passing(self) -> tuple[str, ...]:
        """The verdicts that count as a pass."""
        return tuple(v for v in self.verdicts if v not in self.failing)

    def is_failure(self, verdict: str) -> bool:
        """Whether ``verdict`` counts as a failure (raises on an unknown verdict)."""
        self.check(verdict)
        return verdict in self.failing

    def check(self, verdict: str) -> str:
        """Return ``verdict`` if it is allowed, else raise ``ValueError`` naming the choices."""
        if verdict not in self.verdicts:
            raise ValueError(f"verdict {verdict!r} is not one of {list(self.verdicts)}")
        return verdict

    def failed_expr(self, column: str = "verdict") -> pl.Expr:
        """A polars expression: True for failing verdicts, False for passing, null otherwise."""
        col = pl.col(column)
        return (
            pl.when(col.is_in(list(self.failing)))
            .then(True)
            .when(col.is_in(list(self.passing)))
            .then(False)
            .otherwise(None)
        )


DEFAULT_VOCABULARY = Vocabulary()
OUTCOME_VOCABULARY = Vocabulary(
    ("accepted", "corrected", "rejected", "escalated"), failing=("corrected", "rejected", "escalated")
)


@dataclass(frozen=True)
class LabelEvent:
    """One immutable reviewer decision (a row of :data:`workbench.schema.LABELS`).

    Build it with :func:`new_label` or :func:`new_retraction`, not directly.
    """

    event_id: str
    trace_id: str
    reviewer: str
    action: str
    created_at: datetime
    verdict: str | None = None
    categories: tuple[str, ...] = ()
    note: str | None = None
    corrected_output: str | None = None
    escalate: bool = False
    span_id: str | None = None
    taxonomy_version: int | None = None
    trace_content_hash: str | None = None
    lead_time_ms: int | None = None
    supersedes: str | None = None

    def __post_init__(self) -> None:
        for name in ("event_id", "trace_id", "reviewer"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"label event field {name!r} must be a non-empty string, got {value!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"label event action must be one of {ACTIONS}, got {self.action!r}")
        if self.action == "label" and (not isinstance(self.verdict, str) or not self.verdict):
            raise ValueError(f"a label needs a verdict (trace {self.trace_id!r}), got {self.verdict!r}")
        if not isinstance(self.created_at, datetime) or self.created_at.tzinfo is None:
            raise ValueError("created_at must be a timezone-aware datetime")
        cats = self.categories
        if isinstance(cats, str):
            raise ValueError(f"categories must be a list of names, not the string {cats!r}")
        clean = tuple(dict.fromkeys(str(c).strip() for c in cats if c is not None and str(c).strip()))
        object.__setattr__(self, "categories", clean)
        object.__setattr__(self, "escalate", bool(self.escalate))
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        if self.lead_time_ms is not None and int(self.lead_time_ms) < 0:
            raise ValueError(f"lead_time_ms must be >= 0, got {self.lead_time_ms}")

    def to_row(self) -> dict[str, Any]:
        """The event as a dict with exactly the :data:`LABELS` columns."""
        row = {k: v for k, v in asdict(self).items() if k in LABELS}
        row["categories"] = list(self.categories)
        return {k: row.get(k) for k in LABELS}

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LabelEvent:
        """Rebuild an event from a row of a labels frame (``frame.iter_rows(named=True)``)."""
        created = row.get("created_at")
        if isinstance(created, datetime) and created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return cls(
            event_id=row["event_id"],
            trace_id=row["trace_id"],
            reviewer=row["reviewer"],
            action=row.get("action") or "label",
            created_at=created,
            verdict=row.get("verdict"),
            categories=tuple(row.get("categories") or ()),
            note=row.get("note"),
            corrected_output=row.get("corrected_output"),
            escalate=bool(row.get("escalate") or False),
            span_id=row.get("span_id"),
            taxonomy_version=row.get("taxonomy_version"),
            trace_content_hash=row.get("trace_content_hash"),
            lead_time_ms=row.get("lead_time_ms"),
            supersedes=row.get("supersedes"),
        )


_clock_lock = threading.Lock()
_last_time: list[datetime] = [datetime.min.replace(tzinfo=UTC)]


def _now() -> datetime:
    """UTC now at microsecond precision, strictly increasing within this process."""
    with _clock_lock:
        now = datetime.now(UTC)
        if now <= _last_time[0]:
            now = _last_time[0] + timedelta(microseconds=1)
        _last_time[0] = now
        return now


def new_label(
    trace_id: str,
    reviewer: str,
    verdict: str,
    *,
    categories: Iterable[str] = (),
    note: str | None = None,
    corrected_output: str | None = None,
    escalate: bool = False,
    span_id: str | None = None,
    taxonomy_version: int | None = None,
    trace_content_hash: str | None = None,
    lead_time_ms: int | None = None,
    supersedes: str | None = None,
    event_id: str | None = None,
    vocabulary: Vocabulary | None = None,
) -> LabelEvent:
    """Make a label event (a new label, a relabel or an edit).

    ``event_id`` is a fresh client UUID unless given; keep the event and retry a
    failed save with the same id (the store ignores a second copy). Pass the id of
    the label this one replaces as ``supersedes``. With ``vocabulary`` the verdict is
    checked against it.

    Examples
    --------
    >>> event = new_label("t1", "ana", "fail", categories=["refund_no_policy"], note="no policy lookup")
    >>> event.action, event.categories
    ('label', ('refund_no_policy',))
    """
    if vocabulary is not None:
        vocabulary.check(verdict)
    if isinstance(categories, str):
        raise ValueError(f"categories must be a list of names, not the string {categories!r}")
    return LabelEvent(
        event_id=event_id or str(uuid.uuid4()),
        trace_id=trace_id,
        reviewer=reviewer,
        action="label",
        created_at=_now(),
        verdict=verdict,
        categories=tuple(categories),
        note=note,
        corrected_output=corrected_output,
        escalate=escalate,
        span_id=span_id,
        taxonomy_version=taxonomy_version,
        trace_content_hash=trace_content_hash,
        lead_time_ms=None if lead_time_ms is None else int(lead_time_ms),
        supersedes=supersedes,
    )


def new_retraction(
    trace_id: str,
    reviewer: str,
    *,
    supersedes: str | None,
    span_id: str | None = None,
    note: str | None = None,
    lead_time_ms: int | None = None,
    event_id: str | None = None,
) -> LabelEvent:
    """Make an undo event: it removes the label ``supersedes`` (see the module docstring).

    ``supersedes=None`` clears every earlier label of ``reviewer`` on ``trace_id``.

    Examples
    --------
    >>> label = new_label("t1", "ana", "pass")
    >>> new_retraction("t1", "ana", supersedes=label.event_id).action
    'retract'
    """
    return LabelEvent(
        event_id=event_id or str(uuid.uuid4()),
        trace_id=trace_id,
        reviewer=reviewer,
        action="retract",
        created_at=_now(),
        note=note,
        span_id=span_id,
        lead_time_ms=None if lead_time_ms is None else int(lead_time_ms),
        supersedes=supersedes,
    )


def events_frame(events: Iterable[LabelEvent]) -> pl.DataFrame:
    """A labels frame (:data:`LABELS` schema) from label events, in the given order."""
    rows = [event.to_row() for event in events]
    if not rows:
        return pl.DataFrame(schema=dict(LABELS))
    return pl.DataFrame(rows, schema=dict(LABELS))


def _ordered(events: Any) -> pl.DataFrame:
    given = as_polars(events, name="events")
    frame = conform(given if given.width else pl.DataFrame(schema=dict(LABELS)), LABELS)
    return (
        frame.with_row_index("_row")
        .sort(["created_at", "_row"], nulls_last=False, maintain_order=True)
        .drop("_row")
    )


def _states(frame: pl.DataFrame) -> list[str]:
    """Per row of an ordered events frame: current / superseded / retracted / retract."""
    rows = frame.select("event_id", "trace_id", "reviewer", "action", "supersedes").rows()
    retracted: set[tuple[str, str, str]] = set()
    cleared_before: dict[tuple[str, str], int] = {}
    for i, (_eid, trace, reviewer, action, target) in enumerate(rows):
        if action == "retract":
            if target is None:
                cleared_before[(trace, reviewer)] = i
            else:
                retracted.add((trace, reviewer, target))
    latest: dict[tuple[str, str], int] = {}
    states = [""] * len(rows)
    for i, (eid, trace, reviewer, action, _target) in enumerate(rows):
        key = (trace, reviewer)
        if action == "retract":
            states[i] = "retract"
        elif (trace, reviewer, eid) in retracted or i < cleared_before.get(key, -1):
            states[i] = "retracted"
        else:
            states[i] = "superseded"
            latest[key] = i
    for i in latest.values():
        states[i] = "current"
    return states


def current_labels(events: Any) -> pl.DataFrame:
    """The current label per (trace_id, reviewer): latest non-retracted label event.

    A pure reduction of the event history (pandas or polars); see the module
    docstring for the undo semantics. Returns :data:`LABELS` rows (action ``label``
    only) ordered by ``created_at``. Reducing an already-current frame is a no-op.

    Examples
    --------
    >>> a = new_label("t1", "ana", "pass")
    >>> b = new_label("t1", "ana", "fail", supersedes=a.event_id)
    >>> current_labels(events_frame([a, b]))["verdict"].to_list()
    ['fail']
    """
    frame = _ordered(events)
    if frame.is_empty():
        return frame.select(list(LABELS))
    states = pl.Series("_state", _states(frame), dtype=pl.String)
    return frame.with_columns(states).filter(pl.col("_state") == "current").drop("_state")


def history(events: Any, trace_id: str) -> pl.DataFrame:
    """Every event of one trace in order, with a ``state`` column.

    ``state`` is ``current`` (the reviewer's current label), ``superseded`` (replaced by
    a later label), ``retracted`` (undone) or ``retract`` (the undo event itself).

    Examples
    --------
    >>> a = new_label("t1", "ana", "pass")
    >>> history(events_frame([a]), "t1")["state"].to_list()
    ['current']
    """
    frame = _ordered(events).filter(pl.col("trace_id") == trace_id)
    return frame.with_columns(pl.Series("state", _states(frame), dtype=pl.String))


_HASH_FIELDS = ("trace_id", "span_id", "parent_span_id", "status", "input", "output")


def trace_content_hash(spans: Any) -> str:
    """A stable hash of one trace's content: span ids, inputs, outputs and statuses.

    Independent of row order and of every other column (timings, provenance), so a
    re-import of the same trace gives the same hash and any edit of its content does not.

    Examples
    --------
    >>> import polars as pl
    >>> spans = pl.DataFrame({"trace_id": ["t"], "span_id": ["s"], "input": ["hi"], "output": ["yo"]})
    >>> trace_content_hash(spans) == trace_content_hash(spans.reverse())
    True
    """
    frame = as_polars(spans, name="spans")
    if "span_id" not in frame.columns:
        raise ValueError("trace_content_hash needs a spans frame with a span_id column")
    cols = [c for c in _HASH_FIELDS if c in frame.columns]
    rows = sorted(
        (tuple("" if v is None else str(v) for v in row) for row in frame.select(cols).rows()),
    )
    digest = hashlib.blake2b(orjson.dumps([cols, rows]), digest_size=16)
    return digest.hexdigest()


def trace_content_hashes(spans: Any) -> pl.DataFrame:
    """``trace_id, trace_content_hash`` for every trace in a spans frame."""
    frame = as_polars(spans, name="spans")
    out = [
        (key[0], trace_content_hash(group)) for key, group in frame.group_by("trace_id", maintain_order=True)
    ]
    return pl.DataFrame(out, schema={"trace_id": pl.String, "trace_content_hash": pl.String}, orient="row")


def mark_stale(labels: Any, traces_or_hashes: Any) -> pl.DataFrame:
    """Add ``is_stale``: True where the trace content changed since the label was given.

    Labels are never moved to the new content; they are flagged. ``traces_or_hashes``
    is a spans frame (hashes are computed), a frame with ``trace_id`` and
    ``trace_content_hash``, or a mapping ``trace_id -> hash``. ``is_stale`` is null
    when the label carries no hash or the trace is not in ``traces_or_hashes``.

    Examples
    --------
    >>> label = new_label("t1", "ana", "pass", trace_content_hash="abc")
    >>> mark_stale(events_frame([label]), {"t1": "def"})["is_stale"].to_list()
    [True]
    """
    frame = conform(as_polars(labels, name="labels"), LABELS)
    if isinstance(traces_or_hashes, Mapping):
        hashes = pl.DataFrame(
            list(traces_or_hashes.items()),
            schema={"trace_id": pl.String, "_now_hash": pl.String},
            orient="row",
        )
    else:
        source = as_polars(traces_or_hashes, name="traces_or_hashes")
        if "span_id" in source.columns:
            source = trace_content_hashes(source)
        elif "trace_content_hash" not in source.columns:
            raise ValueError(
                "mark_stale needs spans (with span_id) or a frame with trace_id and trace_content_hash"
            )
        hashes = source.select("trace_id", pl.col("trace_content_hash").alias("_now_hash")).unique(
            "trace_id", keep="last"
        )
    joined = frame.join(hashes, on="trace_id", how="left", maintain_order="left")
    stale = (
        pl.when(pl.col("trace_content_hash").is_null() | pl.col("_now_hash").is_null())
        .then(None)
        .otherwise(pl.col("trace_content_hash") != pl.col("_now_hash"))
    )
    return joined.with_columns(stale.cast(pl.Boolean).alias("is_stale")).drop("_now_hash")


def with_failed(labels: Any, *, vocabulary: Vocabulary = DEFAULT_VOCABULARY) -> pl.DataFrame:
    """Add a boolean ``failed`` column from ``verdict`` (null for retracts / unknown verdicts)."""
    frame = as_polars(labels, name="labels")
    return frame.with_columns(vocabulary.failed_expr().alias("failed"))
