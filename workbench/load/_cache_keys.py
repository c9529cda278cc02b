"""The names of cache entries (:mod:`workbench.load.cache`): where the cache lives and the keys of files and
sets of files. Nothing heavy is imported here, so that a load's head start
(:mod:`workbench.load._head_start`) can tell whether the cache will answer a call."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

SAMPLE_EDGE = 1 << 20
SAMPLE_BLOCK = 1 << 16
SAMPLE_BLOCKS = 64
# 2: Arrow IPC, set entries with the assembled tables; 3: Langfuse roots joined across files; 4: big tables in parts
CACHE_LAYOUT = "4"


def default_dir() -> Path:
    """Where the cache lives unless told otherwise."""
    if os.environ.get("WORKBENCH_CACHE_DIR"):
        return Path(os.environ["WORKBENCH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "workbench"


def resolve_dir(cache: bool | str | os.PathLike) -> Path | None:
    """``True`` -> the default directory, a path -> that path, ``False`` -> no cache."""
    if cache is False or cache is None:
        return None
    if cache is True:
        return default_dir()
    return Path(cache)


def cache_key(path: str | os.PathLike, fmt: str, reader_version: str) -> str:
    """The key of a file's entry (what it covers: :mod:`workbench.load.cache`)."""
    stat = os.stat(path)
    digest = hashlib.sha256(f"{CACHE_LAYOUT}|{fmt}|{reader_version}|{stat.st_size}|{stat.st_mtime_ns}|".encode())
    with open(path, "rb") as handle:
        digest.update(handle.read(SAMPLE_EDGE))
        if stat.st_size > 2 * SAMPLE_EDGE:
            step = (stat.st_size - 2 * SAMPLE_EDGE) // SAMPLE_BLOCKS
            for i in range(SAMPLE_BLOCKS):
                handle.seek(SAMPLE_EDGE + i * step)
                digest.update(handle.read(SAMPLE_BLOCK))
            handle.seek(stat.st_size - SAMPLE_EDGE)
            digest.update(handle.read(SAMPLE_EDGE))
    return digest.hexdigest()


def set_key(file_keys: list[str], format_arg: str) -> str:
    """The key of a set entry: the files' keys in order, and how the format was chosen."""
    digest = hashlib.sha256(f"{CACHE_LAYOUT}|set|{format_arg}|".encode())
    for key in file_keys:
        digest.update(key.encode() + b"|")
    return digest.hexdigest()


def has_entry(directory: Path, key: str) -> bool:
    """Whether the cache in ``directory`` holds a finished entry ``key``."""
    return (directory / key / "meta.json").exists()
