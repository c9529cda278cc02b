"""Export: versioned eval datasets built from traces and labels, with provenance.

``export_eval_set(traces, labels, name=..., out_dir=...)`` builds items (one per
labelled trace), removes exact and near duplicates, splits by group (no session,
user or task in two splits), checks for leakage, redacts PII and secrets (on by
default, offline), writes every requested format atomically and a manifest, as
the next version of ``name``. See :mod:`workbench.export.dataset`.
"""

from workbench.export.dataset import EvalDataset, build_eval_dataset, export_eval_set
from workbench.export.dedup import DedupReport, deduplicate, find_duplicates
from workbench.export.detectors import (
    DenyListDetector,
    Detector,
    Finding,
    PatternDetector,
    PresidioDetector,
    default_detectors,
)
from workbench.export.items import EVAL_ITEMS, build_eval_items
from workbench.export.manifest import DatasetDiff, diff_versions, read_manifest, versions
from workbench.export.publish import ExportResult
from workbench.export.readers import read_export
from workbench.export.redact import RedactionError, RedactionReport, redact_frame
from workbench.export.splits import LeakageReport, assign_splits, check_leakage
from workbench.export.writers import FORMATS, write_format

__all__ = [
    "EVAL_ITEMS",
    "FORMATS",
    "DatasetDiff",
    "DedupReport",
    "DenyListDetector",
    "Detector",
    "EvalDataset",
    "ExportResult",
    "Finding",
    "LeakageReport",
    "PatternDetector",
    "PresidioDetector",
    "RedactionError",
    "RedactionReport",
    "assign_splits",
    "build_eval_dataset",
    "build_eval_items",
    "check_leakage",
    "deduplicate",
    "default_detectors",
    "diff_versions",
    "export_eval_set",
    "find_duplicates",
    "read_export",
    "read_manifest",
    "redact_frame",
    "versions",
    "write_format",
]
