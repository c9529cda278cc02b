"""Redact PII and secrets from whole columns at once, with consistent placeholders.

:func:`redact_frame` is the one entry point. It runs, in order:

1. **field-path rules** on JSON columns and plain columns: values at matching
   paths (``metadata.*.email``, ``user_id``) are replaced whatever they look like;
2. every **detector** (:mod:`workbench.export.detectors`) over all the text of the
   export in one pass per detector;
3. one Aho-Corasick ``replace_many`` per column, replacing each found value with a
   placeholder such as ``<EMAIL_1>``; the same value gets the same placeholder
   everywhere in one export (numbered in order of first appearance);
4. a **verification** re-scan: anything still detected is a failure.

Any error in a detector raises :class:`RedactionError`: callers must then write
nothing (the export never falls back to raw text). The mapping from values to
placeholders stays in memory and is never written.

Examples
--------
>>> import polars as pl
>>> frame = pl.DataFrame({"input": ["mail a@b.io", "a@b.io again"], "output": ["ok", "call +1 415-555-0100"]})
>>> clean, report = redact_frame(frame, text_columns=["input", "output"])
>>> clean["input"].to_list(), report.counts
(['mail <EMAIL_1>', '<EMAIL_1> again'], {'EMAIL': 2, 'PHONE': 1})
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import polars as pl

from workbench.export.detectors import Detector, Finding, PatternDetector, default_detectors
from workbench.export.field_rules import (
    _MIN_PROPAGATED_LENGTH,
    DEFAULT_FIELD_RULES,
    PlaceholderMap,
    RedactionError,
    _field_rules_on_columns,
    _field_rules_on_json,
)

POLICY_VERSION = "workbench-redaction/1"
# a placeholder such as <EMAIL_12>; group 1 is the kind
PLACEHOLDER_PATTERN = r"<([A-Z][A-Z_]*)_[0-9]+>"
_PLACEHOLDER = re.compile(PLACEHOLDER_PATTERN)

_JSON_ESCAPE = r'\\(?:[nrtbf"\\/]|u[0-9a-fA-F]{4})'


@dataclass(frozen=True)
class RedactionReport:
    """What redaction did: detectors that ran, counts per kind, fields touched.

    ``counts`` are occurrences per kind, ``distinct`` distinct values per kind. The
    values themselves are never kept in the report.
    """

    policy_version: str
    detectors: tuple[dict[str, str], ...]
    ner: str
    counts: dict[str, int]
    distinct: dict[str, int]
    field_rules: tuple[str, ...]
    field_rule_hits: int
    columns: tuple[str, ...]
    enabled: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "policy_version": self.policy_version,
            "detectors": [dict(d) for d in self.detectors],
            "ner": self.ner,
            "counts": dict(self.counts),
            "distinct": dict(self.distinct),
            "field_rules": list(self.field_rules),
            "field_rule_hits": self.field_rule_hits,
            "columns": list(self.columns),
        }


def disabled_report() -> RedactionReport:
    """The report of an export made with ``redact=False``."""
    return RedactionReport(POLICY_VERSION, (), "not run", {}, {}, (), 0, (), enabled=False)


@dataclass
class _Target:
    """One column to redact, and how to read / write its text."""

    name: str
    shape: str  # "text", "json" or "messages"

    def scan_text(self, frame: pl.DataFrame) -> pl.Series:
        """The strings detectors look at, one per row (messages: one per message)."""
        column = frame.get_column(self.name)
        if self.shape == "json":
            return column.str.replace_all(_JSON_ESCAPE, " ")
        if self.shape == "messages":
            return column.explode().struct.field("content")
        return column.cast(pl.String)

    def row_mask(self, frame: pl.DataFrame, scan_mask: pl.Series) -> pl.Series:
        """Map a mask over :meth:`scan_text` rows back to frame rows."""
        if self.shape != "messages":
            return scan_mask
        lengths = frame.get_column(self.name).list.len().fill_null(0).clip(lower_bound=1)
        owner = pl.int_range(0, frame.height, eager=True).repeat_by(lengths).explode()
        hit_rows = owner.filter(scan_mask.fill_null(False)).unique()
        return pl.int_range(0, frame.height, eager=True).is_in(hit_rows.implode())


def _patch(series: pl.Series, mask: pl.Series, new_values: pl.Series) -> pl.Series:
    """``series`` with the rows where ``mask`` holds replaced by ``new_values`` (any dtype)."""
    positions = pl.concat([(~mask).arg_true(), mask.arg_true()])
    combined = pl.concat([series.filter(~mask), new_values.rename(series.name)])
    return combined.gather(positions.arg_sort())


def _replace_rows(
    frame: pl.DataFrame, target: _Target, mask: pl.Series, placeholders: Mapping[str, str]
) -> pl.DataFrame:
    if not placeholders or not mask.any():
        return frame
    ordered = sorted(placeholders, key=len, reverse=True)  # leftmost-longest
    targets = [placeholders[v] for v in ordered]

    def rep(expr: pl.Expr) -> pl.Expr:
        return expr.str.replace_many(ordered, targets, leftmost=True)

    column = frame.get_column(target.name)
    subset = column.filter(mask).to_frame()
    if target.shape == "messages":
        expr = pl.col(target.name).list.eval(
            pl.element().struct.with_fields(rep(pl.field("content")).alias("content"))
        )
    else:
        expr = rep(pl.col(target.name))
    new_values = subset.select(expr).to_series()
    if target.shape == "json":
        new_values = _keep_json_valid(subset.to_series(), new_values, ordered, placeholders)
    return frame.with_columns(_patch(column, mask, new_values))


def _keep_json_valid(
    before: pl.Series, after: pl.Series, ordered: Sequence[str], placeholders: Mapping[str, str]
) -> pl.Series:
    """Redo, leaf by leaf, the rows whose JSON a text replacement broke (a value inside a number)."""
    texts = after.to_list()
    broken = []
    for index, text in enumerate(texts):
        if text is None:
            continue
        try:
            orjson.loads(text)
        except orjson.JSONDecodeError:
            broken.append(index)
    if not broken:
        return after
    originals = before.gather(broken)
    present = originals.str.extract_many(list(ordered), overlapping=True).to_list()
    for index, original, keys in zip(broken, originals.to_list(), present, strict=True):
        found = sorted(set(keys or []), key=len, reverse=True)
        texts[index] = orjson.dumps(
            _replace_leaves(orjson.loads(original), found, placeholders), option=orjson.OPT_SORT_KEYS
        ).decode()
    return pl.Series(after.name, texts, dtype=pl.String)


def _replace_leaves(value: Any, keys: Sequence[str], placeholders: Mapping[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _replace_leaves(v, keys, placeholders) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_leaves(v, keys, placeholders) for v in value]
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = value if isinstance(value, str) else orjson.dumps(value).decode()
        replaced = text
        for key in keys:
            replaced = replaced.replace(key, placeholders[key])
        return value if replaced == text else replaced
    return value


def _detect(detector: Detector, texts: pl.Series) -> tuple[list[Finding], pl.Series]:
    name = getattr(detector, "name", type(detector).__name__)
    try:
        scan = getattr(detector, "scan", None)
        if callable(scan):
            found, mask = scan(texts)
        else:
            found = list(detector.find(texts))
            values = [f.value for f in found if isinstance(f, Finding)]
            mask = texts.str.contains_any(values).fill_null(False) if values else texts.is_null() & False
    except Exception as exc:
        raise RedactionError(f"detector {name!r} failed: {type(exc).__name__}: {exc}") from exc
    for item in found:
        if not isinstance(item, Finding) or not isinstance(item.value, str) or not item.value:
            raise RedactionError(f"detector {name!r} returned {item!r}, expected Finding objects")
    return found, mask


def redact_frame(
    frame: pl.DataFrame,
    *,
    text_columns: Sequence[str] = (),
    json_columns: Sequence[str] = (),
    message_columns: Sequence[str] = (),
    detectors: Iterable[Detector] | None = None,
    field_rules: Mapping[str, str] | None = None,
    deny_list: Iterable[str] = (),
) -> tuple[pl.DataFrame, RedactionReport]:
    """Redact the named columns of ``frame``; return the new frame and a report.

    Parameters
    ----------
    frame
        Any polars frame.
    text_columns
        Plain string columns.
    json_columns
        String columns holding JSON text: field-path rules apply inside them, and
        the detectors see them with JSON escapes neutralised.
    message_columns
        ``list[struct{role, content}]`` columns: each ``content`` is redacted.
    detectors
        Default :func:`~workbench.export.detectors.default_detectors` (offline regex
        and validators). Add :class:`~workbench.export.detectors.PresidioDetector`
        for NER.
    field_rules
        ``{path pattern: kind}``. A pattern is a column name (``"user_id"``: every
        value of that column) or a dotted path into a JSON column with ``*``
        wildcards (``"metadata.*.email"``, ``"*.phone"`` at any depth). Default
        :data:`DEFAULT_FIELD_RULES`; pass ``{}`` to disable.
    deny_list
        Exact terms always redacted (kind ``DENY``).

    Raises
    ------
    RedactionError
        When a detector fails, a JSON column does not parse, or anything detectable
        survives redaction. The caller must then write nothing.
    """
    from workbench.export.detectors import DenyListDetector

    detector_list = list(default_detectors() if detectors is None else detectors)
    terms = [t for t in deny_list if t]
    if terms:
        detector_list.append(DenyListDetector(terms))
    rules = dict(DEFAULT_FIELD_RULES if field_rules is None else field_rules)
    targets = (
        [_Target(c, "text") for c in text_columns]
        + [_Target(c, "json") for c in json_columns]
        + [_Target(c, "messages") for c in message_columns]
    )
    mapping = PlaceholderMap()
    rule_hits = 0

    frame, hits = _field_rules_on_columns(frame, list(text_columns), rules, mapping)
    rule_hits += hits
    for column in json_columns:
        frame, hits = _field_rules_on_json(frame, column, rules, mapping)
        rule_hits += hits
    # values found by field rules are also replaced in free text when long enough to be specific;
    # those the pattern detector recognises itself (e-mails, phones...) are found by its scan anyway
    to_replace = {v: p for v, p in mapping.placeholders.items() if len(v) >= _MIN_PROPAGATED_LENGTH}
    searched = [v for v in to_replace if not _self_detected(v)]

    masks: dict[str, pl.Series] = {}
    for target in targets:
        texts = target.scan_text(frame)
        scan_mask = texts.str.contains_any(searched).fill_null(False) if searched else None
        for detector in detector_list:
            found, mask = _detect(detector, texts)
            for finding in found:
                to_replace[finding.value] = mapping.add(finding.kind, finding.value, finding.count)
            scan_mask = mask if scan_mask is None else scan_mask | mask
        if scan_mask is not None:
            masks[target.name] = target.row_mask(frame, scan_mask.fill_null(False))
    for target in targets:
        if target.name in masks:
            frame = _replace_rows(frame, target, masks[target.name], to_replace)

    residue = _verify(frame, detector_list, targets, masks)
    if residue:
        kinds = sorted({f.kind for f in residue})
        raise RedactionError(f"{len(residue)} value(s) of kind {kinds} still detected after redaction")

    distinct = Counter(mapping.kinds.values())
    report = RedactionReport(
        policy_version=POLICY_VERSION,
        detectors=tuple(
            {"name": getattr(d, "name", type(d).__name__), "version": str(getattr(d, "version", "?"))}
            for d in detector_list
        ),
        ner="run" if any(getattr(d, "is_ner", False) for d in detector_list) else "not run",
        counts=dict(sorted(mapping.counts.items())),
        distinct=dict(sorted(distinct.items())),
        field_rules=tuple(rules),
        field_rule_hits=rule_hits,
        columns=tuple(t.name for t in targets),
    )
    return frame, report


def _self_detected(value: str) -> bool:
    """Whether the pattern detector finds exactly ``value`` wherever it appears."""
    from workbench.export.detectors import classify

    return any(found == value for _kind, found in classify(value))


def _verify(
    frame: pl.DataFrame,
    detectors: Sequence[Detector],
    targets: Sequence[_Target],
    masks: Mapping[str, pl.Series],
) -> list[Finding]:
    """Pattern findings that survive redaction in the rows that were changed.

    Rows without any candidate were not changed, so they cannot hold a new one.
    NER detectors are not re-run (that would double their cost); the regex
    detectors are the guarantee.
    """
    residue: list[Finding] = []
    patterns = [d for d in detectors if isinstance(d, PatternDetector)]
    for target in targets:
        mask = masks.get(target.name)
        if mask is None or not patterns or not mask.any():
            continue
        texts = target.scan_text(frame.filter(mask))
        for detector in patterns:
            residue.extend(f for f in detector.find(texts) if not _PLACEHOLDER.fullmatch(f.value))
    return residue
