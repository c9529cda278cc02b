"""Review queues: which traces to read next, and why (pure functions on the traces table).

A queue is an ordered list of trace ids, each with the reason it is there, and the
strategy that built it. Only ``random`` and ``stratified`` queues are samples that
support prevalence estimates ("12% of traffic fails this way"); the others are
searches for failures (``ReviewQueue.estimates_prevalence`` says which).

Strategies
----------
``unlabelled``  traces without a current label first (by ``reviewer`` when given), oldest first
``recent``      newest first
``random``      a seeded random order
``stratified``  proportional allocation over the values of column ``by``, interleaved so that
                every prefix of the queue keeps the proportions
``cluster``     cluster representatives (about 65%, round-robin over clusters, most central
                first) plus random traces (about 35%); needs a cluster column (``by``, default
                ``cluster``)
``outliers``    errors, long, slow, many tool calls (above the 95th percentile), most unusual first
``feedback``    negative user feedback: ``traces.user_feedback`` or a feedback table below
                ``threshold``, worst first
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from workbench._frames import as_polars
from workbench._html import Safe, frame_table, report, section, tag

STRATEGIES = ("unlabelled", "recent", "random", "stratified", "cluster", "outliers", "feedback")
SAMPLING_STRATEGIES = ("random", "stratified")
REPRESENTATIVE_SHARE = 0.65
OUTLIER_QUANTILE = 0.95
_PROBABILITY_COLUMNS = ("cluster_probability", "probability", "membership")


@dataclass(frozen=True)
class ReviewQueue:
    """Ordered trace ids with the reason each is in the queue.

    Attributes
    ----------
    trace_ids, reasons
        Parallel tuples: the order to review in and why each trace is there.
    strategy, seed, by
        How the queue was built.
    population
        How many traces the queue was drawn from.
    strata
        For ``stratified``: population size of each stratum (for weighting estimates).
    """

    trace_ids: tuple[str, ...]
    reasons: tuple[str, ...]
    strategy: str
    seed: int | None = None
    by: str | None = None
    population: int = 0
    strata: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.trace_ids)

    def __iter__(self):
        return iter(self.trace_ids)

    @property
    def estimates_prevalence(self) -> bool:
        """True when the queue is a random or stratified sample (prevalence may be estimated)."""
        return self.strategy in SAMPLING_STRATEGIES

    def reason(self, trace_id: str) -> str:
        """Why ``trace_id`` is in the queue."""
        return self.reasons[self.trace_ids.index(trace_id)]

    def resume_position(self, labels: Any = None, *, reviewer: str | None = None) -> int:
        """Index of the first trace without a current label by ``reviewer`` (``len`` if all done).

        ``labels`` is a labels frame (events or current labels) or ``None``.
        """
        done = _labelled_ids(labels, reviewer)
        return next((i for i, t in enumerate(self.trace_ids) if t not in done), len(self.trace_ids))

    def to_frame(self) -> pl.DataFrame:
        """``position, trace_id, reason`` rows."""
        return pl.DataFrame(
            {"position": list(range(1, len(self) + 1)), "trace_id": list(self.trace_ids),
             "reason": list(self.reasons)},
            schema={"position": pl.Int64, "trace_id": pl.String, "reason": pl.String},
        )

    def _repr_html_(self) -> str:
        kind = "sample: prevalence can be estimated" if self.estimates_prevalence else (
            "search for failures: do not estimate prevalence from it")
        facts = tag("p", f"{self.strategy} queue · {len(self)} of {self.population} traces · {kind}")
        return report("Review queue", [facts, section("Order", Safe(frame_table(self.to_frame(), max_rows=20)))])


def review_queue(
    traces: Any,
    *,
    strategy: str = "unlabelled",
    labels: Any = None,
    n: int | None = None,
    seed: int = 0,
    by: str | None = None,
    reviewer: str | None = None,
    feedback: Any = None,
    threshold: float = 0.5,
) -> ReviewQueue:
    """Build a review queue from the traces table.

    Parameters
    ----------
    traces
        The traces table (``schema.TRACES``; needs ``trace_id``).
    strategy
        One of :data:`STRATEGIES` (see the module docstring).
    labels
        Label events or current labels; used by ``unlabelled`` and to resume.
    n
        Queue length (default: every eligible trace).
    seed
        Seed of every random choice; the same inputs and seed give the same queue.
    by
        Column to stratify by (``stratified``) or the cluster column (``cluster``).
    reviewer
        Count only this reviewer's labels as done (``unlabelled``).
    feedback, threshold
        For ``feedback``: a feedback table (``schema.FEEDBACK``) used instead of
        ``traces.user_feedback``; values below ``threshold`` are negative.

    Examples
    --------
    >>> import polars as pl
    >>> traces = pl.DataFrame({"trace_id": ["a", "b", "c", "d"], "intent": ["x", "x", "y", "y"]})
    >>> queue = review_queue(traces, strategy="stratified", by="intent", n=2, seed=1)
    >>> sorted(queue.reason(t) for t in queue)
    ['stratum intent=x', 'stratum intent=y']
    """
    frame = as_polars(traces, name="traces")
    if "trace_id" not in frame.columns:
        raise ValueError(f"traces needs a trace_id column; it has {frame.columns}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown queue strategy {strategy!r}; choose one of {list(STRATEGIES)}")
    if n is not None and n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    frame = frame.unique("trace_id", keep="first", maintain_order=True)
    rng = np.random.default_rng(seed)
    strata: dict[str, int] = {}
    if strategy == "unlabelled":
        ids, reasons = _unlabelled(frame, labels, reviewer)
    elif strategy == "recent":
        ordered = _chronological(frame, descending=True)
        ids, reasons = ordered, ["most recent first"] * len(ordered)
    elif strategy == "random":
        ids = [frame["trace_id"][int(i)] for i in rng.permutation(len(frame))]
        reasons = [f"random sample (seed {seed})"] * len(ids)
    elif strategy == "stratified":
        ids, reasons, strata = _stratified(frame, _column(frame, by, "stratified"), n, rng)
    elif strategy == "cluster":
        ids, reasons = _by_cluster(frame, _column(frame, by or "cluster", "cluster"), n, rng)
    elif strategy == "outliers":
        ids, reasons = _outliers(frame)
    else:
        ids, reasons = _negative_feedback(frame, feedback, threshold)
    if n is not None:
        ids, reasons = ids[:n], reasons[:n]
    return ReviewQueue(tuple(ids), tuple(reasons), strategy, seed, by, len(frame), strata)


def _column(frame: pl.DataFrame, name: str | None, strategy: str) -> str:
    if name is None:
        raise ValueError(f"the {strategy!r} strategy needs by=<column>; columns are {frame.columns}")
    if name not in frame.columns:
        raise ValueError(f"the {strategy!r} strategy needs column {name!r}; columns are {frame.columns}")
    return name


def _labelled_ids(labels: Any, reviewer: str | None) -> set[str]:
    if labels is None:
        return set()
    from workbench.review.events import current_labels

    current = current_labels(labels)
    if reviewer is not None:
        current = current.filter(pl.col("reviewer") == reviewer)
    return set(current["trace_id"].to_list())


def _chronological(frame: pl.DataFrame, *, descending: bool = False) -> list[str]:
    if "start_time" not in frame.columns:
        ids = frame["trace_id"].to_list()
        return ids[::-1] if descending else ids
    ordered = frame.with_row_index("_row").sort(
        ["start_time", "_row"], descending=[descending, descending], nulls_last=True
    )
    return ordered["trace_id"].to_list()


def _unlabelled(frame: pl.DataFrame, labels: Any, reviewer: str | None) -> tuple[list[str], list[str]]:
    done = _labelled_ids(labels, reviewer)
    ordered = _chronological(frame)
    todo = [t for t in ordered if t not in done]
    seen = [t for t in ordered if t in done]
    who = f" by {reviewer}" if reviewer else ""
    return todo + seen, [f"unlabelled{who}"] * len(todo) + [f"already labelled{who}"] * len(seen)


def _allocate(sizes: dict[Any, int], n: int) -> dict[Any, int]:
    """Largest-remainder proportional allocation of ``n`` over strata of ``sizes``."""
    total = sum(sizes.values())
    exact = {k: n * s / total for k, s in sizes.items()}
    quota = {k: min(sizes[k], math.floor(v)) for k, v in exact.items()}
    left = n - sum(quota.values())
    for k in sorted(exact, key=lambda k: (-(exact[k] - math.floor(exact[k])), str(k))):
        if left <= 0:
            break
        if quota[k] < sizes[k]:
            quota[k] += 1
            left -= 1
    return quota


def _stratified(frame: pl.DataFrame, by: str, n: int | None, rng: np.random.Generator
                ) -> tuple[list[str], list[str], dict[str, int]]:
    values = frame[by].cast(pl.String).fill_null("(missing)").to_list()
    ids = frame["trace_id"].to_list()
    groups: dict[str, list[str]] = {}
    for trace_id, value in zip(ids, values, strict=True):
        groups.setdefault(value, []).append(trace_id)
    sizes = {k: len(v) for k, v in groups.items()}
    quota = _allocate(sizes, len(ids) if n is None else min(n, len(ids)))
    keyed = []
    for value in sorted(groups):
        members = [groups[value][int(i)] for i in rng.permutation(len(groups[value]))][: quota[value]]
        jitter = rng.random()
        for rank, trace_id in enumerate(members):
            keyed.append(((rank + 0.5) / quota[value], jitter, trace_id, f"stratum {by}={value}"))
    keyed.sort()
    return [k[2] for k in keyed], [k[3] for k in keyed], sizes


def _by_cluster(frame: pl.DataFrame, column: str, n: int | None, rng: np.random.Generator
                ) -> tuple[list[str], list[str]]:
    total = len(frame) if n is None else min(n, len(frame))
    n_rep = round(total * REPRESENTATIVE_SHARE)
    prob = next((c for c in _PROBABILITY_COLUMNS if c in frame.columns), None)
    ids = frame["trace_id"].to_list()
    labels = frame[column].cast(pl.String).to_list()
    scores = frame[prob].fill_null(0).to_list() if prob else [0.0] * len(ids)
    noise = {"-1", "None", "noise", "unclustered"}
    clusters: dict[str, list[tuple[float, float, str]]] = {}
    for trace_id, label, score in zip(ids, labels, scores, strict=True):
        if label is not None and label not in noise:
            clusters.setdefault(label, []).append((-float(score), rng.random(), trace_id))
    for members in clusters.values():
        members.sort()
    chosen: list[str] = []
    reasons: list[str] = []
    depth = 0
    while len(chosen) < n_rep and any(depth < len(m) for m in clusters.values()):
        for label in sorted(clusters, key=lambda c: (len(clusters[c]), c)):  # small clusters first
            if depth < len(clusters[label]) and len(chosen) < n_rep:
                chosen.append(clusters[label][depth][2])
                reasons.append(f"cluster {label} representative")
        depth += 1
    taken = set(chosen)
    rest = [ids[int(i)] for i in rng.permutation(len(ids)) if ids[int(i)] not in taken]
    chosen += rest[: total - len(chosen)]
    reasons += ["random (outside the representatives)"] * (len(chosen) - len(reasons))
    return chosen, reasons


def _outliers(frame: pl.DataFrame) -> tuple[list[str], list[str]]:
    checks = [("n_spans", "long"), ("duration_ms", "slow"), ("n_tool_calls", "many tool calls"),
              ("tokens_total", "many tokens")]
    scores = np.zeros(len(frame))
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    for column, word in checks:
        if column not in frame.columns:
            continue
        values = frame[column].cast(pl.Float64).to_numpy()
        finite = values[np.isfinite(values)]
        if finite.size < 2:
            continue
        cut = float(np.quantile(finite, OUTLIER_QUANTILE))
        for i, value in enumerate(values):
            if np.isfinite(value) and value > cut:
                pct = float(np.mean(finite < value)) * 100
                scores[i] += 1 + pct / 100
                reasons[i].append(f"{word} ({column}={value:,.0f}, above {pct:.0f}% of traces)")
    errors = np.zeros(len(frame), dtype=bool)
    if "n_errors" in frame.columns:
        errors |= frame["n_errors"].fill_null(0).to_numpy() > 0
    if "status" in frame.columns:
        errors |= (frame["status"] == "error").fill_null(False).to_numpy()
    for i in np.flatnonzero(errors):
        scores[i] += 2
        reasons[i].insert(0, "errors")
    order = sorted((i for i in range(len(frame)) if scores[i] > 0), key=lambda i: (-scores[i], i))
    ids = frame["trace_id"].to_list()
    return [ids[i] for i in order], ["outlier: " + ", ".join(reasons[i]) for i in order]


def _negative_feedback(frame: pl.DataFrame, feedback: Any, threshold: float) -> tuple[list[str], list[str]]:
    if feedback is not None:
        table = as_polars(feedback, name="feedback")
        if "trace_id" not in table.columns or "value_num" not in table.columns:
            raise ValueError("feedback needs trace_id and value_num columns (schema.FEEDBACK)")
        worst = (
            table.filter(pl.col("value_num") < threshold)
            .group_by("trace_id").agg(pl.col("value_num").min().alias("_value"),
                                      pl.col("name").first().alias("_name") if "name" in table.columns
                                      else pl.lit("feedback").alias("_name"))
        )
        scored = frame.select("trace_id").with_row_index("_row").join(worst, on="trace_id", how="inner")
    else:
        if "user_feedback" not in frame.columns:
            raise ValueError("the 'feedback' strategy needs traces.user_feedback or feedback=<table>")
        scored = frame.select("trace_id", pl.col("user_feedback").alias("_value")).with_row_index("_row").filter(
            pl.col("_value") < threshold).with_columns(_name=pl.lit("user_feedback"))
    scored = scored.sort(["_value", "_row"])
    reasons = [f"negative feedback: {name}={value:g}" for name, value in scored.select("_name", "_value").rows()]
    return scored["trace_id"].to_list(), reasons
