"""Publish an eval dataset as a new, immutable version directory with its manifest.

Layout: ``<out_dir>/<name>/v<N>/`` holding one file per format and
``manifest.json``. Everything is written into a hidden staging folder in
``<out_dir>/<name>/``, fsynced, and renamed to ``v<N>`` in one step, so a version
either exists complete or not at all (a killed export leaves only a staging
folder, removed by the next export). ``N`` is one more than the newest version.

Examples
--------
>>> from workbench.export.manifest import diff_versions
>>> ExportResult.__name__
'ExportResult'
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from workbench import _html
from workbench.export import atomic
from workbench.export import manifest as mf
from workbench.export.redact import PLACEHOLDER_PATTERN
from workbench.export.writers import FORMATS, item_lines, write_format

if TYPE_CHECKING:
    from workbench.export.dataset import EvalDataset

_PUBLISH_ATTEMPTS = 20


def _package_version() -> str:
    try:
        from importlib.metadata import version

        return version("workbench")
    except Exception:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


def _file_entries(root: Path, written: dict[str, Path], counts: dict[str, int]) -> list[dict[str, Any]]:
    entries = []
    for fmt, path in written.items():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            entries.append(
                {
                    "format": fmt,
                    "path": file.relative_to(root).as_posix(),
                    "bytes": file.stat().st_size,
                    "sha256": mf.sha256_file(file),
                    "n_records": _count(file)
                    if file.suffix == ".parquet"
                    else counts[fmt]
                    if file == path
                    else None,
                }
            )
    return entries


def item_hashes(ids: list[str], lines: pl.Series) -> dict[str, str]:
    """SHA-256 of each item's JSONL line with placeholder numbers dropped (``<EMAIL_3>`` -> ``<EMAIL>``).

    Placeholder numbers depend on everything else in the export, so they are left
    out: an item only counts as changed between versions when its content changed.
    """
    marked = lines.str.contains(PLACEHOLDER_PATTERN).fill_null(False).arg_true()
    stable = (
        lines.clone()
        .scatter(marked, lines.gather(marked).str.replace_all(PLACEHOLDER_PATTERN, "<$1>"))
        .to_list()
    )
    return {i: hashlib.sha256(line.encode()).hexdigest() for i, line in zip(ids, stable, strict=True)}


def _count(parquet: Path) -> int:
    return int(pl.scan_parquet(parquet).select(pl.len()).collect().item())


def _dataset_card(dataset: EvalDataset, version: int, content_hash: str) -> str:
    summary = dataset.summary()
    splits = sorted(summary["splits"]) if summary["splits"] else ["train"]
    splits = [s if s != "None" else "train" for s in splits]
    data_files = "\n".join(f"      - split: {s}\n        path: data/{s}-*" for s in splits)
    counts = "\n".join(f"| {k} | {v} |" for k, v in summary["splits"].items())
    redaction = ", ".join(f"{k}: {v}" for k, v in dataset.redaction.counts.items()) or "nothing found"
    return (
        "---\n"
        f"pretty_name: {dataset.name}\n"
        "tags:\n  - evaluation\n  - llm-agents\n  - workbench\n"
        "configs:\n  - config_name: default\n    data_files:\n"
        f"{data_files}\n"
        "---\n\n"
        f"# {dataset.name} (version {version})\n\n"
        "Eval items built by workbench from production traces and reviewer labels. Every item links back\n"
        "to its trace (`trace_id`, `span_id`) and to the label events that judged it (`label_event_ids`).\n\n"
        f"- content hash: `{content_hash}`\n"
        f"- items: {summary['n_items']} ({summary['n_with_expected']} with an expected output)\n"
        f"- redaction: {'on' if dataset.redaction.enabled else 'OFF'} ({redaction}); NER {dataset.redaction.ner}\n\n"
        "| split | items |\n|---|---:|\n"
        f"{counts}\n\n"
        "The full provenance (trace ids and times, label events, reviewers, filters, dedup and redaction\n"
        "reports, source file hashes) is in `manifest.json` next to this folder.\n"
    )


def _manifest(
    dataset: EvalDataset,
    version: int,
    hashes: dict[str, str],
    files: list[dict[str, Any]],
    counts: dict[str, int],
) -> dict[str, Any]:
    items = dataset.items
    times = [t.isoformat() if t is not None else None for t in items.get_column("trace_start_time").to_list()]
    ids = items.get_column("item_id").to_list()
    rows = [
        {"item_id": i, "trace_id": t, "span_id": s, "trace_start_time": when, "label_event_ids": events,
         "split": split, "hash": hashes[i]}
        for i, t, s, when, events, split in zip(
            ids, items.get_column("trace_id").to_list(), items.get_column("span_id").to_list(), times,
            items.get_column("label_event_ids").to_list(), items.get_column("split").to_list(), strict=True,
        )
    ]  # fmt: skip
    taxonomy = items.get_column("taxonomy_version").drop_nulls().unique().sort().to_list()
    return {
        "format_version": 1,
        "name": dataset.name,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "workbench_version": _package_version(),
        "content_hash": mf.content_hash(hashes),
        **dataset.summary(),
        "reviewers": items.get_column("reviewers").explode().drop_nulls().unique().sort().to_list(),
        "taxonomy_versions": taxonomy,
        "taxonomy_version": taxonomy[-1] if taxonomy else None,
        "n_label_events": int(items.get_column("label_event_ids").list.len().sum() or 0),
        "filters": dataset.settings,
        "dedup": dataset.dedup.to_dict() if dataset.dedup else {"enabled": False},
        "leakage": dataset.leakage.to_dict() if dataset.leakage else None,
        "redaction": dataset.redaction.to_dict(),
        "sources": mf.source_entries(dataset.sources),
        "files": files,
        "records_per_format": counts,
        "items": rows,
    }


@dataclass(frozen=True)
class ExportResult:
    """A published export version: where it is, its files and its manifest."""

    name: str
    version: int
    path: Path
    files: dict[str, Path]
    manifest: dict[str, Any]
    dataset: EvalDataset

    def diff(self, other: Any = None) -> mf.DatasetDiff:
        """Items added / removed / changed since ``other`` (default: the previous version)."""
        if other is None:
            earlier = [v for v in mf.versions(self.path.parent.parent, self.name) if v < self.version]
            if not earlier:
                raise ValueError(
                    f"{self.name} v{self.version} is the first version; pass the version to compare"
                )
            other = mf.version_path(self.path.parent.parent, self.name, earlier[-1])
        return mf.diff_versions(other, self)

    def to_frame(self) -> pl.DataFrame:
        """One row per written file: format, path, bytes, sha256, records."""
        return pl.DataFrame(self.manifest["files"], schema={
            "format": pl.String, "path": pl.String, "bytes": pl.Int64, "sha256": pl.String, "n_records": pl.Int64,
        })  # fmt: skip

    def _repr_html_(self) -> str:
        facts = [
            ("path", str(self.path)),
            ("items", self.manifest["n_items"]),
            ("content hash", self.manifest["content_hash"][:16] + "…"),
            ("created", self.manifest["created_at"]),
        ]
        return _html.report(
            f"Export {self.name} v{self.version}",
            [_html.key_values(facts), _html.section("Files", _html.frame_table(self.to_frame()))],
        )


def publish(
    dataset: EvalDataset,
    out_dir: str | os.PathLike[str],
    *,
    formats: tuple[str, ...],
    system_prompt: str | None = None,
    promptfoo_assert: str = "factuality",
) -> ExportResult:
    """Write every format and the manifest into a staging folder, then rename it to the next version."""
    base = Path(out_dir) / mf.check_name(dataset.name)
    base.mkdir(parents=True, exist_ok=True)
    atomic.remove_stale_staging(base)
    staging = atomic.staging_directory(base, "v")
    try:
        lines = item_lines(dataset.items)
        ids = dataset.items.get_column("item_id").to_list()
        hashes = item_hashes(ids, lines)
        written: dict[str, Path] = {}
        counts: dict[str, int] = {}
        for fmt in formats:
            options: dict[str, Any] = {"name": dataset.name}
            if fmt == "jsonl":
                options["lines"] = lines
            if fmt in ("openai_evals", "openai_chat"):
                options["system_prompt"] = system_prompt
            if fmt == "promptfoo":
                options["assert_type"] = promptfoo_assert
            if fmt == "phoenix":
                options["description"] = f"workbench export {dataset.name}"
            if fmt == "huggingface":
                options["card"] = _dataset_card(dataset, 0, mf.content_hash(hashes))
            written[fmt] = write_format(dataset.items, staging, format=fmt, **options)
            counts[fmt] = _records_written(dataset.items, fmt)
        files = _file_entries(staging, written, counts)
        for _attempt in range(_PUBLISH_ATTEMPTS):
            existing = mf.versions(out_dir, dataset.name)
            version = (existing[-1] if existing else 0) + 1
            if "huggingface" in written:
                atomic.write_bytes_atomic(
                    written["huggingface"] / "README.md",
                    _dataset_card(dataset, version, mf.content_hash(hashes)).encode(),
                )
                files = _file_entries(staging, written, counts)
            manifest = _manifest(dataset, version, hashes, files, counts)
            atomic.write_bytes_atomic(staging / mf.MANIFEST_NAME, mf.manifest_bytes(manifest))
            target = mf.version_path(out_dir, dataset.name, version)
            try:
                atomic.publish_directory(staging, target)
            except FileExistsError:
                continue  # another export took this number: take the next one
            break
        else:  # pragma: no cover - 20 concurrent exports of one name
            raise RuntimeError(f"could not publish {dataset.name}: too many concurrent exports")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    final = {fmt: target / path.relative_to(staging) for fmt, path in written.items()}
    return ExportResult(dataset.name, version, target, final, manifest, dataset)


def _records_written(items: pl.DataFrame, fmt: str) -> int:
    if fmt in ("openai_evals", "openai_chat"):
        return int(items.get_column("expected").is_not_null().sum())
    return items.height


__all__ = ["FORMATS", "ExportResult", "publish"]
