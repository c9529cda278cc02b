"""The export pipeline: items -> dedup -> group splits -> leakage check -> redaction -> files.

:func:`build_eval_dataset` makes an :class:`EvalDataset` in memory (nothing is
written); :meth:`EvalDataset.write` publishes it as the next version of its name
with a manifest; :func:`export_eval_set` does both.

Order matters and is fixed: duplicates are removed *before* splitting (so
near-copies cannot straddle splits), splits are checked for leakage, and
redaction runs on everything that will be written (input, conversation, output,
expected, reviewer notes, ids and trace metadata) before any file exists. If a
detector fails, :class:`~workbench.export.redact.RedactionError` is raised and no
file is written.

Examples
--------
>>> import polars as pl, tempfile
>>> from workbench.review.events import events_frame, new_label
>>> traces = pl.DataFrame({"trace_id": ["t1", "t2"], "session_id": ["s1", "s2"],
...                        "input": ["refund? mail me at ann@example.com", "hi"], "output": ["no", "hello"]})
>>> labels = events_frame([new_label("t1", "ana", "fail", categories=["refund_no_policy"]),
...                        new_label("t2", "ana", "pass")])
>>> result = export_eval_set(traces, labels, name="support", out_dir=tempfile.mkdtemp(),
...                          split={"dev": 0.5, "test": 0.5})
>>> result.version, result.manifest["n_items"], result.dataset.redaction.counts  # input + conversation
(1, 2, {'EMAIL': 2})
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

from workbench import _html, _markdown
from workbench.export import manifest as mf
from workbench.export.dedup import DedupReport, deduplicate
from workbench.export.detectors import Detector
from workbench.export.items import _selected_ids, build_eval_items
from workbench.export.redact import RedactionReport, disabled_report, redact_frame
from workbench.export.splits import (
    DEFAULT_GROUP_COLUMNS,
    DEFAULT_RATIOS,
    LeakageReport,
    assign_splits,
    check_leakage,
)
from workbench.export.writers import EXPORT_COLUMNS, check_formats
from workbench.review.events import DEFAULT_VOCABULARY, Vocabulary

if TYPE_CHECKING:
    from workbench.export.publish import ExportResult

DEFAULT_FORMATS = ("jsonl",)
_TEXT_COLUMNS = ("input", "output", "expected", "note", "session_id", "user_id", "task_id")
_META_FIELDS = (
    "item_id", "trace_id", "span_id", "session_id", "user_id", "task_id", "verdict", "categories", "note",
    "expected_source", "cluster", "cohort", "prompt_version", "split", "label_event_ids",
    "reviewers", "taxonomy_version", "n_duplicates",
)  # fmt: skip


def conversation_text(items: pl.DataFrame) -> pl.Series:
    """The text compared for duplicates and leakage: the conversation up to the failing turn."""
    joined = items.select(
        pl.col("messages").list.eval(pl.element().struct.field("content")).list.join(" ").alias("text")
    ).to_series()
    return joined.fill_null("")


def _stratum(items: pl.DataFrame) -> pl.Expr:
    first = pl.col("categories").list.first()
    return pl.when(first.is_not_null()).then(pl.col("verdict") + ":" + first).otherwise(pl.col("verdict"))


def _tags() -> pl.Expr:
    def tag(prefix: str, column: str) -> pl.Expr:
        return pl.concat_list(pl.lit(prefix + ":") + pl.col(column))

    parts = [
        tag("verdict", "verdict"),
        pl.col("categories").list.eval(pl.lit("category:") + pl.element()),
        tag("cluster", "cluster"),
        tag("cohort", "cohort"),
        tag("prompt_version", "prompt_version"),
        tag("split", "split"),
        pl.concat_list(pl.lit("source:production")),
    ]
    return pl.concat_list(parts).list.drop_nulls().alias("tags")


def _metadata(items: pl.DataFrame) -> pl.Series:
    """Each item's metadata as canonical JSON (sorted keys), built from the redacted columns."""
    columns = {name: items.get_column(name).to_list() for name in _META_FIELDS}
    times = [t.isoformat() if t is not None else None for t in items.get_column("trace_start_time").to_list()]
    traces = [orjson.loads(t) if t else {} for t in items.get_column("trace_metadata").to_list()]
    names = list(columns)
    out = []
    for i, values in enumerate(zip(*columns.values(), strict=True)):
        row = dict(zip(names, values, strict=True))
        row["trace_start_time"] = times[i]
        row["trace"] = traces[i]
        row["source"] = "production"
        out.append(orjson.dumps(row, option=orjson.OPT_SORT_KEYS).decode())
    return pl.Series("metadata", out, dtype=pl.String)


def _describe_selection(select: Any) -> dict[str, Any] | None:
    if select is None:
        return None
    if isinstance(select, pl.Expr):
        return {"kind": "expression", "expression": str(select)}
    ids = _selected_ids(select) or []
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    description = {"kind": type(select).__name__, "n_trace_ids": len(ids), "trace_ids_sha256": digest}
    for attribute in ("strategy", "seed", "by"):
        if hasattr(select, attribute):
            description[attribute] = getattr(select, attribute)
    return description


@dataclass(frozen=True)
class EvalDataset:
    """An eval set in memory: final items (redacted, split, tagged) and how they were made."""

    name: str
    items: pl.DataFrame
    redaction: RedactionReport
    dedup: DedupReport | None
    leakage: LeakageReport | None
    settings: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()

    def __len__(self) -> int:
        return self.items.height

    def to_frame(self) -> pl.DataFrame:
        """The items with their exported columns."""
        return self.items.select(EXPORT_COLUMNS)

    def summary(self) -> dict[str, Any]:
        """Counts by split, verdict and category."""

        def counts(column: str) -> dict[str, int]:
            frame = self.items.group_by(column).len().sort(column, nulls_last=True)
            return {str(k): int(v) for k, v in frame.iter_rows()}

        categories = self.items.get_column("categories").explode().drop_nulls().value_counts(sort=True)
        return {
            "n_items": self.items.height,
            "n_with_expected": int(self.items.get_column("expected").is_not_null().sum()),
            "splits": counts("split"),
            "verdicts": counts("verdict"),
            "categories": {str(k): int(v) for k, v in categories.iter_rows()},
        }

    def write(
        self,
        out_dir: str | os.PathLike[str],
        *,
        formats: Sequence[str] | str = DEFAULT_FORMATS,
        system_prompt: str | None = None,
        promptfoo_assert: str = "factuality",
    ) -> ExportResult:
        """Publish as the next version ``<out_dir>/<name>/v<N>/`` with a manifest (atomically).

        All files are written into a hidden staging folder, flushed to disk, then
        the folder is renamed into place: a reader (or a crash) never sees half a version.
        """
        from workbench.export.publish import publish

        return publish(
            self,
            out_dir,
            formats=check_formats(formats),
            system_prompt=system_prompt,
            promptfoo_assert=promptfoo_assert,
        )

    def to_markdown(self) -> str:
        s = self.summary()
        lines = [
            f"**{_markdown.cell(self.name)}**: {s['n_items']} items ({s['n_with_expected']} with expected)",
            "",
            "| split | items |",
            "|---|---:|",
        ]
        lines += [f"| {_markdown.cell(k)} | {v} |" for k, v in s["splits"].items()]
        return "\n".join(lines) + "\n"

    def _repr_html_(self) -> str:
        s = self.summary()
        facts = [
            ("items", s["n_items"]),
            ("with expected", s["n_with_expected"]),
            ("splits", ", ".join(f"{k}: {v}" for k, v in s["splits"].items())),
            ("verdicts", ", ".join(f"{k}: {v}" for k, v in s["verdicts"].items())),
            (
                "duplicates removed",
                (self.dedup.n_exact_removed + self.dedup.n_near_removed) if self.dedup else "off",
            ),
            (
                "redacted",
                ", ".join(f"{k}: {v}" for k, v in self.redaction.counts.items())
                or ("nothing found" if self.redaction.enabled else "OFF"),
            ),
            ("NER", self.redaction.ner),
            ("leakage", "none" if self.leakage is None or self.leakage.ok else "FOUND"),
        ]
        preview = self.items.select("item_id", "input", "expected", "verdict", "categories", "split").head(20)
        return _html.report(
            f"Eval dataset {self.name}",
            [_html.key_values(facts), _html.section("First items", _html.frame_table(preview, max_rows=20))],
        )


def build_eval_dataset(
    traces: Any,
    labels: Any,
    *,
    name: str,
    spans: Any = None,
    select: Any = None,
    cohort: Any = None,
    clusters: Any = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    history_turns: int = 5,
    dedup: bool = True,
    near_duplicates: bool = True,
    dedup_threshold: float = 0.8,
    split: Mapping[str, float] | None = DEFAULT_RATIOS,
    group_columns: Sequence[str] = DEFAULT_GROUP_COLUMNS,
    seed: int = 0,
    fixed_splits: Mapping[str, str] | None = None,
    redact: bool = True,
    detectors: Iterable[Detector] | None = None,
    field_rules: Mapping[str, str] | None = None,
    deny_list: Iterable[str] = (),
    sources: Iterable[str] = (),
) -> EvalDataset:
    """Build an eval dataset from traces and labels, in memory.

    Parameters are those of :func:`~workbench.export.items.build_eval_items`
    (``spans, select, cohort, clusters, vocabulary, history_turns``) plus:

    dedup, near_duplicates, dedup_threshold
        Remove exact duplicates of the conversation text, and near duplicates at
        estimated Jaccard >= ``dedup_threshold`` (MinHash on word 3-grams).
    split, group_columns, seed, fixed_splits
        Split shares (``None``: no split), columns that keep items together, seed,
        and ``item_id -> split`` assignments to keep from an earlier version.
    redact, detectors, field_rules, deny_list
        Redaction is on by default (offline regex + validators; see
        :func:`~workbench.export.redact.redact_frame`).
    sources
        Extra source files to hash in the manifest (e.g. the label store).
    """
    name = mf.check_name(name)
    items = build_eval_items(
        traces,
        labels,
        spans=spans,
        select=select,
        cohort=cohort,
        clusters=clusters,
        vocabulary=vocabulary,
        history_turns=history_turns,
    )
    dedup_report = None
    if dedup:
        items, dedup_report = deduplicate(
            items, text=conversation_text(items), near=near_duplicates, threshold=dedup_threshold, seed=seed
        )
    leakage = None
    moved = 0
    if split:
        with_stratum = items.with_columns(_stratum(items).alias("stratum"))
        assigned = assign_splits(
            with_stratum,
            ratios=split,
            group_columns=group_columns,
            stratify_by="stratum",
            seed=seed,
            fixed=fixed_splits,
        )
        items = items.with_columns(assigned)
        if fixed_splits:
            previous = items.get_column("item_id").replace_strict(
                dict(fixed_splits), default=None, return_dtype=pl.String
            )
            moved = int((previous.is_not_null() & (previous != assigned)).sum())
        leakage = check_leakage(items, group_columns=group_columns, text=conversation_text(items))
        if any(leakage.shared_groups.values()):
            raise RuntimeError(f"split leakage: {leakage.to_dict()['shared_groups']}")
    if redact:
        items, redaction = redact_frame(
            items,
            text_columns=_TEXT_COLUMNS,
            json_columns=("trace_metadata",),
            message_columns=("messages",),
            detectors=detectors,
            field_rules=field_rules,
            deny_list=deny_list,
        )
    else:
        redaction = disabled_report()
    items = items.with_columns(_tags())
    items = items.with_columns(_metadata(items))
    trace_sources = []
    frame_sources = getattr(traces, "columns", [])
    if "source_file" in frame_sources:
        trace_sources = [s for s in pl.Series(traces["source_file"]).drop_nulls().unique().sort().to_list()]
    settings = {
        "select": _describe_selection(select),
        "cohort": cohort
        if isinstance(cohort, str)
        else (type(cohort).__name__ if cohort is not None else None),
        "clusters": clusters is not None,
        "vocabulary": {"verdicts": list(vocabulary.verdicts), "failing": list(vocabulary.failing)},
        "history_turns": history_turns,
        "dedup": {"enabled": dedup, "near": near_duplicates, "threshold": dedup_threshold},
        "split": {
            "ratios": dict(split) if split else None,
            "group_columns": list(group_columns),
            "seed": seed,
            "stratify_by": "verdict:first_category",
            "fixed_from_previous": len(fixed_splits or {}),
            "moved_from_previous": moved,
        },
        "redact": redact,
    }
    return EvalDataset(
        name=name,
        items=items,
        redaction=redaction,
        dedup=dedup_report,
        leakage=leakage,
        settings=settings,
        sources=tuple(dict.fromkeys([*trace_sources, *map(str, sources)])),
    )


def export_eval_set(
    traces: Any,
    labels: Any,
    *,
    name: str,
    out_dir: str | os.PathLike[str],
    formats: Sequence[str] | str = DEFAULT_FORMATS,
    spans: Any = None,
    select: Any = None,
    cohort: Any = None,
    clusters: Any = None,
    vocabulary: Vocabulary = DEFAULT_VOCABULARY,
    history_turns: int = 5,
    dedup: bool = True,
    near_duplicates: bool = True,
    dedup_threshold: float = 0.8,
    split: Mapping[str, float] | None = DEFAULT_RATIOS,
    group_columns: Sequence[str] = DEFAULT_GROUP_COLUMNS,
    seed: int = 0,
    keep_previous_splits: bool = True,
    redact: bool = True,
    detectors: Iterable[Detector] | None = None,
    field_rules: Mapping[str, str] | None = None,
    deny_list: Iterable[str] = (),
    sources: Iterable[str] = (),
    system_prompt: str | None = None,
) -> ExportResult:
    """Build an eval dataset and publish it as the next version of ``name`` in ``out_dir``.

    See :func:`build_eval_dataset` for the options. With ``keep_previous_splits``
    items already exported in an earlier version keep their split. Returns an
    :class:`~workbench.export.publish.ExportResult` (``.path``, ``.manifest``,
    ``.diff()``). Nothing is written when any step fails.
    """
    formats = check_formats(formats)
    fixed = None
    if keep_previous_splits and split:
        previous = mf.latest_manifest(out_dir, mf.check_name(name))
        if previous:
            fixed = {i["item_id"]: i["split"] for i in previous.get("items", []) if i.get("split")}
    dataset = build_eval_dataset(
        traces,
        labels,
        name=name,
        spans=spans,
        select=select,
        cohort=cohort,
        clusters=clusters,
        vocabulary=vocabulary,
        history_turns=history_turns,
        dedup=dedup,
        near_duplicates=near_duplicates,
        dedup_threshold=dedup_threshold,
        split=split,
        group_columns=group_columns,
        seed=seed,
        fixed_splits=fixed,
        redact=redact,
        detectors=detectors,
        field_rules=field_rules,
        deny_list=deny_list,
        sources=sources,
    )
    return dataset.write(out_dir, formats=formats, system_prompt=system_prompt)
