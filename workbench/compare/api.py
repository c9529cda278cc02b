"""``compare_cohorts``: baseline vs candidates with the method chosen from the data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from workbench._frames import as_polars
from workbench.compare import _stats, checks
from workbench.compare._binary import SLICE, proportion_rows
from workbench.compare._continuous import continuous_rows
from workbench.compare._means import mean_rows
from workbench.compare._reliability import pass_k_rows
from workbench.compare._robust import cluster_cells
from workbench.compare.cohorts import COHORT, CohortSpec, by_column
from workbench.compare.design import INDEPENDENT, detect_design, with_units
from workbench.compare.lifecycle import failure_lifecycle
from workbench.compare.metrics import CATEGORY_PREFIX, MEAN, PROPORTION, Metric, trace_metrics
from workbench.compare.result import ALL, CANNOT_DECIDE, COLUMNS, IMPROVED, NO_CHANGE, REGRESSED, Comparison


def compare_cohorts(
    traces: Any,
    *,
    cohort: str | CohortSpec,
    baseline: str | None = None,
    candidates: Sequence[str] | None = None,
    labels: Any = None,
    feedback: Any = None,
    clusters: Any = None,
    clusters_better: str | None = None,
    task_key: str | None = None,
    session_key: str | None = "session_id",
    metrics: Sequence[str] | None = None,
    slices: str | None = None,
    alpha: float = 0.05,
    n_boot: int = 2000,
    seed: int = 0,
    min_n: int = 10,
    vocabulary: Any = None,
) -> Comparison:
    """Compare a baseline cohort of traces with one or more candidates.

    Parameters
    ----------
    traces
        Traces table (polars or pandas), e.g. ``read_traces(...).traces``.
    cohort
        A column name (with ``baseline``) or a :class:`CohortSpec` from ``by_column``,
        ``by_time`` or ``by_filter``.
    baseline, candidates
        With a column name: the baseline value and (optionally) the candidate values.
    labels
        Label events or current labels; the failure rate and category prevalences
        come from them (majority verdict per trace), else from ``traces.passed``.
    feedback
        Feedback table; used to warn when the LLM judge differs between cohorts.
    clusters
        Frame ``(trace_id, cluster)`` or a traces column (cluster, intent): adds the
        prevalence of each value (a share of all traces in the cohort: a trace missing
        from the frame counts as in no cluster) and a mix-shift check.
    clusters_better
        ``"lower"`` when ``clusters`` are failure modes (a smaller share is an
        improvement); ``None`` for intents (changes are "increased" / "decreased").
    task_key
        Column naming the task: shared tasks make the analysis paired.
    session_key
        Column whose repeated values cluster traces (default ``session_id``).
    metrics
        Metric names to keep (a name ending in ``*`` keeps a prefix, e.g. ``"category: *"``).
    slices
        A column to slice by: every metric is also compared within each of its values.
    alpha
        Two-sided significance level; intervals have coverage ``1 - alpha``.
    n_boot
        Bootstrap resamples for continuous metrics and pass^k.
    seed
        Seed of every random draw (results are reproducible).
    min_n
        Fewer traces (or pairs) than this in a cohort: "not enough data to decide".

    Returns
    -------
    Comparison
        Shows itself in a notebook; ``.to_frame()``, ``.to_markdown()``, ``.figure()``.

    Examples
    --------
    >>> from workbench.load import read_traces                                   # doctest: +SKIP
    >>> loaded = read_traces("data/support_agent.otlp.jsonl")                    # doctest: +SKIP
    >>> compare_cohorts(loaded.traces, cohort="prompt_version", baseline="v1")   # doctest: +SKIP
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    spec = _spec(cohort, baseline, candidates)
    frame, available = trace_metrics(traces, labels=labels, clusters=clusters,
                                     clusters_better=clusters_better, vocabulary=vocabulary)
    chosen = _select_metrics(available, metrics)
    assigned = spec.assign(frame)
    if assigned.filter(pl.col(COHORT) == spec.baseline).is_empty():
        raise ValueError(f"the baseline cohort {spec.baseline!r} has no traces ({spec.description})")
    cands = spec.candidates_in(assigned)
    if not cands:
        raise ValueError(f"no candidate cohort has traces ({spec.description})")
    if slices is not None and slices not in assigned.columns:
        raise ValueError(f"slices column {slices!r} is not in the traces table")
    rng = np.random.default_rng(seed)
    confidence = 1 - alpha
    parts, designs = [], {}
    for cand in cands:
        pair = assigned.filter(pl.col(COHORT).is_in([spec.baseline, cand]))
        design = detect_design(pair, baseline=spec.baseline, candidate=cand, task_key=task_key,
                               session_key=session_key)
        designs[cand] = design
        sliced = _with_slices(with_units(pair, design), slices)
        kwargs = {"baseline": spec.baseline, "candidate": cand, "design": design,
                  "confidence": confidence, "alpha": alpha}
        # cells of (slice, unit, cohort), sorted once and shared by every metric's robust SE
        cells = None if design.kind == INDEPENDENT else cluster_cells(sliced, candidate=cand)
        for metric in chosen:
            if metric.kind == PROPORTION:
                rows = proportion_rows(sliced, metric.name, cells=cells, **kwargs)
            elif metric.kind == MEAN:
                rows = mean_rows(sliced, metric.name, cells=cells, **kwargs)
            else:
                rows = continuous_rows(sliced, metric.name, n_boot=n_boot, rng=rng, **kwargs)
            parts.append(_label(rows, cand, metric.name, metric.kind))
        if design.min_runs >= 2 and any(m.name == "failure_rate" for m in chosen):
            k = design.min_runs
            rows = pass_k_rows(sliced, "failure_rate", k=k, n_boot=n_boot, rng=rng, **kwargs)
            parts.append(_label(rows, cand, f"pass^{k}", "proportion"))
    table = pl.concat([p for p in parts if p.height], how="diagonal_relaxed") if parts else pl.DataFrame()
    table = _with_verdicts(table, {m.name: m for m in chosen}, alpha=alpha, min_n=min_n)
    warnings = _warnings(assigned, table, spec=spec, candidates=cands, labels=labels, feedback=feedback,
                         clusters=clusters, slices=slices, alpha=alpha, designs=designs)
    categories = [m.name for m in available if m.name.startswith(CATEGORY_PREFIX)]
    order = [spec.baseline, *cands]
    return Comparison(
        rows=table, baseline=spec.baseline, candidates=cands, designs=designs, warnings=tuple(warnings),
        lifecycle=failure_lifecycle(assigned, categories, order=order, alpha=alpha), alpha=alpha,
        n_boot=n_boot, description=spec.description, sources={m.name: m.source for m in chosen},
    )


def _spec(cohort: str | CohortSpec, baseline: str | None, candidates: Sequence[str] | None) -> CohortSpec:
    if isinstance(cohort, CohortSpec):
        return cohort
    if not isinstance(cohort, str):
        raise TypeError("cohort must be a column name or a CohortSpec (by_column / by_time / by_filter)")
    if baseline is None:
        raise ValueError(f"cohort={cohort!r} is a column name: give baseline= (one of its values)")
    return by_column(cohort, baseline=baseline, candidates=candidates)


def _select_metrics(available: list[Metric], wanted: Sequence[str] | None) -> list[Metric]:
    if wanted is None:
        return available
    chosen, names = [], [m.name for m in available]
    for name in wanted:
        hits = [m for m in available if (m.name.startswith(name[:-1]) if name.endswith("*") else m.name == name)]
        if not hits:
            raise ValueError(f"metric {name!r} is not available; available: {', '.join(names)}")
        chosen += [m for m in hits if m not in chosen]
    return chosen


def _with_slices(frame: pl.DataFrame, slices: str | None) -> pl.DataFrame:
    overall = frame.with_columns(pl.lit(ALL).alias(SLICE))
    if slices is None:
        return overall
    by_value = frame.with_columns(pl.col(slices).cast(pl.String).fill_null("(none)").alias(SLICE))
    return pl.concat([overall, by_value], how="vertical")


def _label(rows: pl.DataFrame, candidate: str, metric: str, kind: str) -> pl.DataFrame:
    return rows.rename({SLICE: "slice"}).with_columns(
        pl.lit(candidate).alias("candidate"), pl.lit(metric).alias("metric"), pl.lit(kind).alias("kind")
    )


def _with_verdicts(table: pl.DataFrame, metrics: dict[str, Metric], *, alpha: float, min_n: int) -> pl.DataFrame:
    if table.is_empty():
        return pl.DataFrame(schema={c: pl.String for c in COLUMNS})
    for col in COLUMNS:
        if col not in table.columns:
            table = table.with_columns(pl.lit(None, dtype=pl.Float64).alias(col))
    adjusted = _stats.benjamini_hochberg(table["p_value"].fill_null(np.nan).to_numpy())
    table = table.with_columns(pl.Series("p_adjusted", adjusted))
    verdicts = []
    for r in table.iter_rows(named=True):
        better = metrics[r["metric"]].better if r["metric"] in metrics else "higher"  # pass^k: higher is better
        verdicts.append(_verdict(r, better, alpha=alpha, min_n=min_n))
    return table.with_columns(pl.Series("verdict", verdicts, dtype=pl.String)).select(COLUMNS)


def _verdict(row: dict, better: str | None, *, alpha: float, min_n: int) -> str:
    """improved / regressed (increased / decreased without a direction), or say why not."""
    p = row["p_adjusted"]
    if min(row["n_baseline"] or 0, row["n_candidate"] or 0) < min_n or p is None or np.isnan(p):
        return CANNOT_DECIDE
    diff = row["difference"]
    if p < alpha and diff != 0:
        up = diff > 0
        if better is None:
            return "increased" if up else "decreased"
        return REGRESSED if up == (better == "lower") else IMPROVED
    mde = row["mde"]
    scale = abs(row["baseline_value"]) if row["baseline_value"] else abs(row["candidate_value"] or 0.0)
    if mde is not None and not np.isnan(mde) and scale > 0 and mde >= scale:
        return CANNOT_DECIDE
    return NO_CHANGE


def _warnings(assigned: pl.DataFrame, table: pl.DataFrame, *, spec: CohortSpec, candidates: tuple[str, ...],
              labels: Any, feedback: Any, clusters: Any, slices: str | None, alpha: float,
              designs: dict) -> list[str]:
    out = checks.overlap_warnings(assigned, baseline=spec.baseline, candidates=candidates)
    label_frame = None if labels is None else as_polars(labels, name="labels")
    out += checks.version_warnings(assigned, baseline=spec.baseline, candidates=candidates, labels=label_frame,
                                   feedback=feedback)
    mix_columns = [c for c in (slices, clusters if isinstance(clusters, str) else None) if c]
    if clusters is not None and not isinstance(clusters, str):
        mix_columns.append([c for c in as_polars(clusters, name="clusters").columns if c != "trace_id"][0])
    for column in dict.fromkeys(mix_columns):
        out += checks.mix_shift_warnings(assigned, column, baseline=spec.baseline, candidates=candidates, alpha=alpha)
    out += checks.simpson_warnings(table, slice_column=slices)
    for cand, design in designs.items():
        out += [f"{cand}: {note}" for note in design.notes]
    return out
