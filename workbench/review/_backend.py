"""Where a label store may live: refuse unsafe backends and network filesystems.

Measured in reliability.md section 1: DuckDB and shared JSONL/Parquet files lose
acknowledged labels under concurrent writers, and SQLite's WAL does not work over a
network filesystem. :func:`resolve_target` turns what the user passed into a
SQLAlchemy URL or refuses with a message that says why and what to use instead.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

PROC_MOUNTS = "/proc/mounts"

NETWORK_FS = (
    "nfs",
    "nfs4",
    "cifs",
    "smb",
    "smbfs",
    "smb2",
    "smb3",
    "9p",
    "afs",
    "ceph",
    "glusterfs",
    "lustre",
    "gpfs",
    "davfs",
    "sshfs",
    "ncpfs",
    "coda",
)

FLAT_FILE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv", ".tsv", ".arrow", ".feather")
DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".duck")

USE_INSTEAD = (
    "Use a local SQLite file (e.g. LabelStore('labels.sqlite')) for one machine, or PostgreSQL "
    "(LabelStore('postgresql+psycopg://user@host/db')) for a team or a shared disk."
)


class UnsafeStoreError(ValueError):
    """The requested label store location would risk losing labels."""


@dataclass(frozen=True)
class StoreTarget:
    """A resolved store location: a SQLAlchemy URL plus, for SQLite, the file path."""

    url: str
    dialect: str  # "sqlite" or "postgresql"
    path: Path | None = None


def _unescape_mount(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mount_table(source: str | os.PathLike[str] = PROC_MOUNTS) -> list[tuple[str, str]]:
    """``(mount_point, fs_type)`` pairs from a mounts file (``/proc/mounts`` format)."""
    try:
        text = Path(source).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    pairs = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            pairs.append((_unescape_mount(parts[1]), parts[2]))
    return pairs


def filesystem_of(path: str | os.PathLike[str], *, mount_table: str | os.PathLike[str] = PROC_MOUNTS) -> str:
    """The filesystem type holding ``path`` (the longest matching mount point), or ``""``."""
    target = Path(os.path.abspath(path))
    best, fstype = "", ""
    for mount_point, kind in read_mount_table(mount_table):
        mp = mount_point.rstrip("/") or "/"
        inside = str(target) == mp or str(target).startswith(mp if mp == "/" else mp + "/")
        if inside and len(mp) >= len(best):
            best, fstype = mp, kind
    return fstype


def is_network_fs(fstype: str) -> bool:
    """Whether a filesystem type is a network or FUSE filesystem (unsafe for SQLite WAL)."""
    kind = fstype.lower()
    return kind in NETWORK_FS or kind.startswith(("fuse", "nfs", "smb", "cifs"))


def _refuse_suffix(name: str, shown: str) -> None:
    lower = name.lower()
    for suffix in (".gz", ".zst", ".bz2", ".xz"):
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if lower.endswith(DUCKDB_SUFFIXES):
        raise UnsafeStoreError(
            f"{shown}: DuckDB cannot be the label store: it allows one read-write process per file and "
            f"lost acknowledged labels under concurrent writers (reliability.md 1.2). {USE_INSTEAD}"
        )
    if lower.endswith(FLAT_FILE_SUFFIXES):
        raise UnsafeStoreError(
            f"{shown}: a shared JSONL/JSON/Parquet/CSV file cannot be the label store: a killed writer "
            f"tears the file and other reviewers' acknowledged labels are lost (reliability.md 1.4). "
            f"Use such files for exports and snapshots only. {USE_INSTEAD}"
        )


def resolve_target(
    path_or_url: str | os.PathLike[str],
    *,
    allow_network_fs: bool = False,
    mount_table: str | os.PathLike[str] = PROC_MOUNTS,
) -> StoreTarget:
    """Check a store location and return its SQLAlchemy URL, or raise :class:`UnsafeStoreError`.

    Examples
    --------
    >>> resolve_target("postgresql+psycopg://reviewer@db/labels").dialect
    'postgresql'
    """
    raw = os.fspath(path_or_url)
    if not raw.strip():
        raise UnsafeStoreError(f"empty label store location. {USE_INSTEAD}")
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme.startswith("duckdb") or scheme in ("motherduck", "md"):
        raise UnsafeStoreError(
            f"{raw!r}: DuckDB cannot be the label store: one read-write process per file, and it lost "
            f"acknowledged labels under concurrent writers (reliability.md 1.2). {USE_INSTEAD}"
        )
    if scheme.startswith(("postgresql", "postgres")):
        url = raw.replace("postgres://", "postgresql://", 1)
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        return StoreTarget(url=url, dialect="postgresql")
    if scheme and not scheme.startswith("sqlite"):
        raise UnsafeStoreError(f"{raw!r}: unsupported label store URL scheme {scheme!r}. {USE_INSTEAD}")
    if scheme:
        database = raw.split("://", 1)[1]
        database = database[1:] if database.startswith("/") else database
        database = database.split("?", 1)[0]
    else:
        database = raw
    if database in ("", ":memory:") or database.startswith("file::memory:"):
        raise UnsafeStoreError(
            f"{raw!r}: an in-memory SQLite store loses every label when the kernel stops. "
            f"Give a file path. {USE_INSTEAD}"
        )
    path = Path(database).expanduser().resolve()
    _refuse_suffix(path.name, str(path))
    if path.exists() and path.is_dir():
        raise UnsafeStoreError(f"{path}: is a directory; give the path of a SQLite file inside it")
    fstype = filesystem_of(path, mount_table=mount_table)
    if is_network_fs(fstype) and not allow_network_fs:
        raise UnsafeStoreError(
            f"{path} is on a {fstype!r} filesystem. SQLite's WAL mode needs all processes on one host "
            f"with a local disk; on a network or FUSE filesystem locking is unreliable and labels can be "
            f"corrupted or lost. Use PostgreSQL for a shared location "
            f"(LabelStore('postgresql+psycopg://user@host/db')), or a SQLite file on a local disk. "
            f"Pass allow_network_fs=True only if you are sure this mount is local to one machine."
        )
    return StoreTarget(url=f"sqlite:///{path}", dialect="sqlite", path=path)


def looks_like_duckdb(path: Path) -> bool:
    """Whether an existing file carries DuckDB's magic bytes (only call when SQLite rejected it)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
    except OSError:
        return False
    return header[8:12] == b"DUCK"
