"""The :class:`Comparison` result: a table that shows itself, converts and plots.

Computed once by :func:`workbench.compare.compare_cohorts`; rendered many ways:
``_repr_html_`` (notebook), :meth:`Comparison.to_frame`, :meth:`Comparison.to_markdown`
(pull-request description) and :meth:`Comparison.figure` (plotly forest plot).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from workbench import _markdown
from workbench.compare.design import Design

ALL = "(all)"
IMPROVED, REGRESSED = "improved", "regressed"
NO_CHANGE = "no detectable change"
CANNOT_DECIDE = "not enough data to decide"
_TONES = {IMPROVED: "good", REGRESSED: "bad", CANNOT_DECIDE: "warn"}

COLUMNS = [
    "candidate", "metric", "slice", "kind", "n_baseline", "n_candidate", "unit", "baseline_value",
    "candidate_value", "difference", "ci_low", "ci_high", "p_value", "p_adjusted", "mde", "verdict",
    "baseline_low", "baseline_high", "candidate_low", "candidate_high", "hl_shift", "method",
]


@dataclass(frozen=True, repr=False)
class Comparison:
    """Baseline vs candidate cohorts, one row per (candidate, metric, slice).

    Attributes
    ----------
    rows
        The result table (see :meth:`to_frame` for the columns).
    baseline, candidates
        Cohort names.
    designs
        The analysis chosen for each candidate (:class:`~workbench.compare.design.Design`).
    warnings
        Sentences about mix shift, Simpson's paradox, versions and overlap.
    lifecycle
        Failure-mode lifecycle table (:func:`~workbench.compare.lifecycle.failure_lifecycle`).
    """

    rows: pl.DataFrame
    baseline: str
    candidates: tuple[str, ...]
    designs: dict[str, Design]
    warnings: tuple[str, ...] = ()
    lifecycle: pl.DataFrame = field(default_factory=pl.DataFrame)
    alpha: float = 0.05
    n_boot: int = 2000
    description: str = ""
    sources: dict[str, str] = field(default_factory=dict)

    def to_frame(self) -> pl.DataFrame:
        """The rows as a polars frame: n, both values, difference, interval, p, adjusted p, MDE, verdict.

        ``difference`` is candidate minus baseline (proportions as fractions; continuous
        metrics as the difference of medians); ``ci_low``/``ci_high`` its confidence
        interval at ``1 - alpha``; ``p_adjusted`` is Benjamini-Hochberg across all rows;
        ``mde`` the minimum detectable effect at 80% power.
        """
        return self.rows

    def verdict(self, metric: str, *, slice: str = ALL, candidate: str | None = None) -> str:
        """The verdict of one row (``candidate`` defaults to the only/first candidate)."""
        cand = candidate or self.candidates[0]
        hit = self.rows.filter(
            (pl.col("candidate") == cand) & (pl.col("metric") == metric) & (pl.col("slice") == slice)
        )
        if hit.is_empty():
            raise KeyError(f"no row for metric {metric!r}, slice {slice!r}, candidate {cand!r}")
        return hit["verdict"][0]

    # -- rendering --------------------------------------------------------------------------
    def _title(self) -> str:
        return f"Cohort comparison: {', '.join(self.candidates)} vs {self.baseline} (baseline)"

    def _summary(self) -> list[tuple[str, str]]:
        counts = self.rows.group_by("verdict").len().sort("verdict").iter_rows()
        pairs = [("cohorts", self.description or f"{self.baseline} vs {', '.join(self.candidates)}")]
        for cand, design in self.designs.items():
            pairs.append((f"design ({cand})", design.description))
        pairs.append(("verdicts", "; ".join(f"{v}: {n}" for v, n in counts)))
        pairs.append(("settings", f"alpha {self.alpha}, two-sided; {1 - self.alpha:.0%} intervals; "
                      f"BH-adjusted p across {self.rows['p_value'].is_not_null().sum()} rows; "
                      f"{self.n_boot:,} bootstrap resamples; MDE at 80% power"))
        pairs.extend((f"source of {k}", v) for k, v in self.sources.items() if v)
        return pairs

    def _display_rows(self) -> list[dict[str, str]]:
        out = []
        for r in self.rows.iter_rows(named=True):
            prop = r["kind"] == "proportion"
            out.append({
                "candidate": r["candidate"], "metric": r["metric"], "slice": r["slice"],
                "n (base / cand)": f"{r['n_baseline']:,} / {r['n_candidate']:,} {r['unit']}",
                "baseline": _value(r["baseline_value"], prop), "candidate value": _value(r["candidate_value"], prop),
                "difference [CI]": f"{_diff(r['difference'], prop)} [{_diff(r['ci_low'], prop)}, "
                                   f"{_diff(r['ci_high'], prop)}]",
                "p": _p(r["p_value"]), "adj. p": _p(r["p_adjusted"]), "MDE": _mde(r["mde"], prop),
                "verdict": r["verdict"],
            })
        return out

    def _shown_columns(self) -> list[str]:
        cols = ["candidate", "metric", "slice", "n (base / cand)", "baseline", "candidate value",
                "difference [CI]", "p", "adj. p", "MDE", "verdict"]
        if len(self.candidates) == 1:
            cols.remove("candidate")
        if self.rows["slice"].n_unique() == 1:
            cols.remove("slice")
        return cols

    def __repr__(self) -> str:
        return self.to_markdown()

    def to_markdown(self, *, max_rows: int | None = None) -> str:
        """Markdown for a pull-request description: summary, table, warnings, lifecycle."""
        lines = [f"### {_markdown.cell(self._title())}", ""]
        lines += [f"- **{_markdown.cell(k)}**: {_markdown.cell(v)}" for k, v in self._summary()]
        lines.append("")
        cols = self._shown_columns()
        rows = self._display_rows()
        shown = rows if max_rows is None else rows[:max_rows]
        lines.append("| " + " | ".join(c for c in cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
        lines += ["| " + " | ".join(_markdown.cell(row[c]) for c in cols) + " |" for row in shown]
        if len(shown) < len(rows):
            lines.append(f"\n… {len(rows) - len(shown):,} more rows")
        undecided = sum(1 for r in rows if r["verdict"] == CANNOT_DECIDE)
        if undecided:
            lines += ["", f"The data cannot decide {undecided} of {len(rows)} rows: too few traces, or a minimum "
                      "detectable effect as large as the value itself. Collect more traces before reading them."]
        if self.warnings:
            lines += ["", "**Warnings**", ""] + [f"- {_markdown.cell(w)}" for w in self.warnings]
        if self.lifecycle.height:
            lines += ["", "**Failure-mode lifecycle**", "", "| category | first seen | last seen | stopped in | "
                      "time to fix | status |", "|---|---|---|---|---|---|"]
            for r in self.lifecycle.iter_rows(named=True):
                lines.append(
                    f"| {_markdown.cell(r['category'])} | {_when(r['first_seen'])} | {_when(r['last_seen'])} | "
                    f"{_markdown.cell(r['stopped_in'] or '—')} | {_duration(r['time_to_fix'])} | {_markdown.cell(r['status'])} |"
                )
        methods = sorted({re.sub(r"design effect [^)]*", "design effect in the frame's method column", m)
                          for m in self.rows["method"].drop_nulls().to_list()})
        lines += ["", "**Methods**", ""] + [f"- {_markdown.cell(m)}" for m in methods]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        from workbench import _html

        rows = self._display_rows()
        for row in rows:
            row["verdict"] = _html.badge(row["verdict"], tone=_TONES.get(row["verdict"], "neutral"))
        sections = [
            _html.key_values(self._summary()),
            _html.section("Results", _html.table(rows, self._shown_columns(), max_rows=200)),
        ]
        if self.warnings:
            items = _html.join(_html.tag("li", w) for w in self.warnings)
            sections.append(_html.section("Warnings", _html.tag("ul", items)))
        if self.lifecycle.height:
            sections.append(_html.section("Failure-mode lifecycle", _html.frame_table(self.lifecycle)))
        return _html.report(self._title(), sections)

    def figure(self, *, metrics: list[str] | None = None) -> Any:
        """A plotly forest plot: each row's difference and interval, coloured by verdict."""
        from workbench.compare._figure import forest_plot

        rows = self.rows if metrics is None else self.rows.filter(pl.col("metric").is_in(metrics))
        return forest_plot(rows, title=self._title())


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _value(value: Any, prop: bool) -> str:
    if not _finite(value):
        return "—"
    return f"{value:.1%}" if prop else f"{value:,.4g}"


def _diff(value: Any, prop: bool) -> str:
    if not _finite(value):
        return "—"
    return f"{value * 100:+.1f} pp" if prop else f"{value:+,.4g}"


def _mde(value: Any, prop: bool) -> str:
    if not _finite(value):
        return "—"
    return f"{value * 100:.1f} pp" if prop else f"{value:,.4g}"


def _p(value: Any) -> str:
    if not _finite(value):
        return "—"
    return "<0.0001" if value < 1e-4 else f"{value:.3g}"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else "—"


def _duration(value: Any) -> str:
    if value is None:
        return "—"
    days = value.total_seconds() / 86400
    return f"{days:.1f} days" if days >= 1 else f"{days * 24:.1f} hours"
