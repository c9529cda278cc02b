"""The label store's schema version, and the steps that bring an older store up to it.

The version lives in the ``workbench_meta`` table (both dialects). A store made
before versioning existed is version 0. Opening a store:

* newer than :data:`SCHEMA_VERSION`: refused (:class:`StoreVersionError`), untouched;
* older: first a consistent backup (``LabelStore.backup``: the SQLite online backup
  API), then every step in :data:`MIGRATIONS` in one transaction, then the new version
  is stamped. A second kernel opening the store at the same time re-reads the version
  inside its own write transaction, so the steps run once (reliability.md 1, S12).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.review._local_log import data_dir

SCHEMA_VERSION = 1
VERSION_KEY = "schema_version"


def _stamp_only(_conn: Any) -> None:
    """0 -> 1: the tables of the first release are already version 1's; only the stamp was missing."""


MIGRATIONS: dict[int, Callable[[Any], None]] = {0: _stamp_only}  # from version -> step to version + 1


class StoreVersionError(RuntimeError):
    """The store was written by a newer workbench than this one."""


def read_version(conn: Any) -> int | None:
    """The stamped version, or ``None`` when there is none."""
    import sqlalchemy as sa

    from workbench.review._sql import tables

    meta = tables()["meta"]
    value = conn.execute(sa.select(meta.c.value).where(meta.c.key == VERSION_KEY)).scalar()
    return int(value) if value is not None else None


def stamp(conn: Any, version: int) -> None:
    """Record ``version`` (the meta table is the only row ever updated: it is not an event table)."""
    import sqlalchemy as sa

    from workbench.review._sql import tables

    meta = tables()["meta"]
    conn.execute(sa.delete(meta).where(meta.c.key == VERSION_KEY))
    conn.execute(sa.insert(meta).values(key=VERSION_KEY, value=str(version)))


def check_supported(version: int, where: str) -> None:
    if version > SCHEMA_VERSION:
        raise StoreVersionError(
            f"{where} has label-store schema version {version}, but this workbench reads up to "
            f"{SCHEMA_VERSION}; upgrade workbench (pip install -U workbench) to open it. Nothing was changed.")


def backup_path(store: Any, version: int) -> Path:
    """Where the copy taken before migrating from ``version`` goes."""
    name = f"before-schema-{version + 1}"
    if store.path is not None:
        return store.path.with_name(f"{store.path.stem}.{name}{store.path.suffix or '.sqlite'}")
    return data_dir("backups") / f"{store.url_hash}.{name}.sqlite"


def migrate(store: Any, version: int) -> Path:
    """Back the store up, then run the steps from ``version`` to :data:`SCHEMA_VERSION`; returns the backup."""
    copy = store.backup(backup_path(store, version))
    with store._write() as conn:
        if store.dialect == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(73110501)")
        current = read_version(conn) or 0  # another kernel may have migrated meanwhile
        for step in range(current, SCHEMA_VERSION):
            MIGRATIONS[step](conn)
        if current < SCHEMA_VERSION:
            stamp(conn, SCHEMA_VERSION)
    return copy
