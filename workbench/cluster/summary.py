"""The cluster summary: one row per cluster, shown in a notebook, as a frame or markdown.

Built by :meth:`workbench.cluster.FailureClusters.summary`; computing and rendering are
separate (compute once, render many ways).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import polars as pl

from workbench import _markdown
from workbench._html import Safe, badge, details, join, key_values, report, section, table, tag

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "cluster": pl.Int64,
    "name": pl.String,
    "size": pl.Int64,
    "share": pl.Float64,
    "keywords": pl.List(pl.String),
    "representative": pl.List(pl.String),
    "boundary": pl.List(pl.String),
    "n_labelled": pl.Int64,
    "n_failed": pl.Int64,
    "failure_rate": pl.Float64,
    "rate_low": pl.Float64,
    "rate_high": pl.Float64,
    "lift": pl.Float64,
    "failure_share": pl.Float64,
    "categories": pl.List(pl.String),
    "stability": pl.Float64,
    "stability_band": pl.String,
    "is_new": pl.Boolean,
}


def _pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.{digits}f}%"


def _rate(row: dict) -> str:
    if not row["n_labelled"]:
        return "–"
    return f"{_pct(row['failure_rate'])} [{_pct(row['rate_low'])}, {_pct(row['rate_high'])}] of {row['n_labelled']}"


def _lift(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}×"


def _stability_badge(row: dict) -> Safe:
    band = row["stability_band"] or "unknown"
    tone = {"unstable": "bad", "doubtful": "warn", "stable": "good", "highly stable": "good"}.get(band, "neutral")
    score = row["stability"]
    text = band if score is None or math.isnan(score) else f"{score:.2f} {band}"
    return badge(text, tone=tone)


@dataclass(frozen=True, repr=False)
class ClusterSummary:
    """Per-cluster facts of a clustering (or of a cohort assigned to it).

    Attributes
    ----------
    frame
        One row per cluster (:data:`SUMMARY_SCHEMA`); the unclustered group is cluster -1.
    n_traces
        Traces clustered (or assigned).
    text
        What was embedded.
    base_rate
        Failure rate over every trace with a known outcome (NaN without outcomes).
    warnings
        Plain sentences: unstable clusters, skipped traces, sampling.
    """

    frame: pl.DataFrame
    n_traces: int
    text: str
    base_rate: float
    warnings: tuple[str, ...] = field(default_factory=tuple)
    note: str = ""

    def to_frame(self) -> pl.DataFrame:
        """The per-cluster table."""
        return self.frame

    def __repr__(self) -> str:
        return self.to_markdown()

    def to_markdown(self) -> str:
        """A markdown table (name, size, failure rate with its interval, lift, stability)."""
        lines = [
            f"**{self.n_traces:,} traces clustered by {self.text}**"
            + (f"; base failure rate {_pct(self.base_rate)}" if not math.isnan(self.base_rate) else ""),
            "",
            "| cluster | size | share | failure rate [95% CI] | lift | failure share | stability | keywords |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for row in self.frame.iter_rows(named=True):
            name = _markdown.cell(row["name"])
            words = _markdown.cell(", ".join(row["keywords"][:6]))
            stab = "–" if row["stability"] is None or math.isnan(row["stability"]) else (
                f"{row['stability']:.2f} ({row['stability_band']})")
            lines.append(
                f"| {name} | {row['size']:,} | {_pct(row['share'])} | {_rate(row)} | {_lift(row['lift'])} | "
                f"{_pct(row['failure_share'])} | {stab} | {words} |"
            )
        if self.warnings:
            lines.append("")
            lines.extend(f"- ⚠ {w}" for w in self.warnings)
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        facts = key_values([
            ("traces", f"{self.n_traces:,}"),
            ("embedded text", self.text),
            ("clusters", str(int((self.frame["cluster"] >= 0).sum()))),
            ("base failure rate", _pct(self.base_rate)),
        ] + ([("note", self.note)] if self.note else []))
        rows = []
        for row in self.frame.iter_rows(named=True):
            new = badge("new", tone="warn") if row["is_new"] else Safe("")
            rows.append([
                join([tag("span", row["name"]), Safe(" "), new]),
                f"{row['size']:,}",
                _pct(row["share"]),
                _rate(row),
                _lift(row["lift"]),
                _pct(row["failure_share"]),
                ", ".join(row["categories"]),
                _stability_badge(row),
                ", ".join(row["keywords"][:8]),
            ])
        overview = table(rows, ["cluster", "size", "share", "failure rate [95% CI]", "lift", "failure share",
                                "categories", "stability", "keywords"], max_rows=100)
        examples = []
        for row in self.frame.iter_rows(named=True):
            body = join([
                tag("h4", "representative"),
                join(tag("pre", text, cls="wb-pre") for text in row["representative"]),
                tag("h4", "boundary"),
                join(tag("pre", text, cls="wb-pre") for text in row["boundary"]) if row["boundary"] else tag("p", "–"),
            ])
            examples.append(details(f"{row['name']} — examples", body))
        sections = [facts, section("Clusters", overview)]
        if self.warnings:
            sections.append(section("Warnings", tag("ul", join(tag("li", w) for w in self.warnings))))
        sections.append(section("Examples", join(examples)))
        return report("Failure clusters", sections)
