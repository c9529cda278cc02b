"""Export manifests: provenance, versions and diffs between versions.

An export lives in ``<out_dir>/<name>/v<N>/`` with a ``manifest.json`` that lists
every item (id, trace, span, trace time, label events, split, content hash), the
reviewers, taxonomy versions, the filters used, the dedup, split, leakage and
redaction reports, the hashes of the source files and of every written file.
Exporting again under the same name makes ``v<N+1>``; versions are never
overwritten. :func:`diff_versions` compares two versions item by item.

Examples
--------
>>> a = {"name": "x", "version": 1, "items": [{"item_id": "i1", "hash": "h1"}, {"item_id": "i2", "hash": "h2"}]}
>>> b = {"name": "x", "version": 2, "items": [{"item_id": "i2", "hash": "h9"}, {"item_id": "i3", "hash": "h3"}]}
>>> d = diff_versions(a, b)
>>> d.added, d.removed, d.changed
(('i3',), ('i1',), ('i2',))
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import polars as pl

from workbench import _html

MANIFEST_NAME = "manifest.json"
_VERSION_DIR = re.compile(r"^v(\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_name(name: str) -> str:
    """A dataset name usable as a directory name (letters, digits, ``._-``)."""
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in (".", ".."):
        raise ValueError(
            f"dataset name {name!r} must start with a letter or digit and use only letters, digits, '.', '_', '-'"
        )
    return name


def sha256_file(path: str | os.PathLike[str], *, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def source_entries(paths: Iterable[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """``{path, bytes, sha256}`` for every existing source file (missing files are listed as such)."""
    out = []
    for raw in dict.fromkeys(str(p) for p in paths if p):
        path = Path(raw)
        if path.is_file():
            out.append({"path": raw, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
        else:
            out.append({"path": raw, "bytes": None, "sha256": None, "missing": True})
    return out


def versions(out_dir: str | os.PathLike[str], name: str) -> list[int]:
    """The published version numbers of ``name`` in ``out_dir``, ascending."""
    base = Path(out_dir) / check_name(name)
    if not base.is_dir():
        return []
    found = []
    for entry in base.iterdir():
        match = _VERSION_DIR.match(entry.name)
        if match and (entry / MANIFEST_NAME).is_file():
            found.append(int(match.group(1)))
    return sorted(found)


def version_path(out_dir: str | os.PathLike[str], name: str, version: int) -> Path:
    return Path(out_dir) / check_name(name) / f"v{int(version)}"


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a manifest from a version directory or a ``manifest.json`` path."""
    target = Path(path)
    if target.is_dir():
        target = target / MANIFEST_NAME
    try:
        return orjson.loads(target.read_bytes())
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"no export manifest at {target}") from exc
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{target}: not a valid manifest ({exc})") from exc


def latest_manifest(out_dir: str | os.PathLike[str], name: str) -> dict[str, Any] | None:
    """The manifest of the newest version of ``name`` in ``out_dir`` (None when there is none)."""
    found = versions(out_dir, name)
    return read_manifest(version_path(out_dir, name, found[-1])) if found else None


def content_hash(item_hashes: Mapping[str, str]) -> str:
    """One hash for a whole item set: SHA-256 over ``item_id:hash`` lines sorted by id."""
    digest = hashlib.sha256()
    for item_id in sorted(item_hashes):
        digest.update(f"{item_id}:{item_hashes[item_id]}\n".encode())
    return digest.hexdigest()


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def _as_manifest(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    manifest = getattr(value, "manifest", None)
    if isinstance(manifest, Mapping):
        return dict(manifest)
    return read_manifest(value)


@dataclass(frozen=True)
class DatasetDiff:
    """Items added, removed and changed between two export versions (by item id)."""

    old: str
    new: str
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_frame(self) -> pl.DataFrame:
        """``item_id, change`` rows (added / removed / changed)."""
        rows = (
            [(i, "added") for i in self.added]
            + [(i, "removed") for i in self.removed]
            + [(i, "changed") for i in self.changed]
        )
        return pl.DataFrame(rows, schema={"item_id": pl.String, "change": pl.String}, orient="row")

    def to_markdown(self) -> str:
        return (
            f"| {self.old} → {self.new} | count |\n|---|---:|\n| added | {len(self.added)} |\n"
            f"| removed | {len(self.removed)} |\n| changed | {len(self.changed)} |\n| unchanged | {self.unchanged} |\n"
        )

    def _repr_html_(self) -> str:
        summary = _html.key_values(
            [
                ("added", len(self.added)),
                ("removed", len(self.removed)),
                ("changed", len(self.changed)),
                ("unchanged", self.unchanged),
            ]
        )
        sections = [summary]
        if not self.identical:
            sections.append(_html.section("Items", _html.frame_table(self.to_frame(), max_rows=30)))
        return _html.report(f"Dataset diff {self.old} → {self.new}", sections)


def diff_versions(old: Any, new: Any) -> DatasetDiff:
    """Compare two export versions: manifests, version directories or export results.

    Items are matched by ``item_id`` (stable across versions: it derives from the
    trace and span); an item whose content hash differs is ``changed``.
    """
    a, b = _as_manifest(old), _as_manifest(new)
    ha = {i["item_id"]: i.get("hash") for i in a.get("items", [])}
    hb = {i["item_id"]: i.get("hash") for i in b.get("items", [])}
    added = tuple(sorted(set(hb) - set(ha)))
    removed = tuple(sorted(set(ha) - set(hb)))
    common = set(ha) & set(hb)
    changed = tuple(sorted(i for i in common if ha[i] != hb[i]))
    return DatasetDiff(
        old=f"{a.get('name', '?')} v{a.get('version', '?')}",
        new=f"{b.get('name', '?')} v{b.get('version', '?')}",
        added=added,
        removed=removed,
        changed=changed,
        unchanged=len(common) - len(changed),
    )
