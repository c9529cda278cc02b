"""Helpers for the readers that are told where things are (chat transcripts, plain tables).

``field_path`` / ``lookup`` resolve dotted paths such as ``"trajectory.messages"``
or ``"turns.0.content"`` inside parsed JSON; ``load_files`` runs a per-file
reader over paths, directories and globs and assembles a ``LoadResult``;
``stable_id`` hashes key values into hex ids that stay the same on every load.

Example
-------
>>> lookup({"result": {"passed": True}}, "result.passed")
True
>>> lookup({"a": [{"b": 1}]}, "a.0.b")
1
>>> lookup({"a": 1}, "b") is MISSING
True
>>> stable_id(["task-7", 0], length=16)
'a84b9e8d9d84ae57'
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from workbench.load._base import LoadError, Problem, ReaderResult
from workbench.load.result import LoadResult, assemble


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def lookup(value: Any, path: str | None) -> Any:
    """The value at dotted ``path`` inside ``value`` (``MISSING`` when absent).

    A segment that is a whole number indexes a list; an empty path or ``None``
    returns ``value`` itself. A key that itself contains dots is found too
    (``{"a.b": 1}`` at ``"a.b"``).
    """
    if not path:
        return value
    if isinstance(value, dict) and path in value:
        return value[path]
    head, _, rest = path.partition(".")
    if isinstance(value, dict):
        if head not in value:
            return MISSING
        return lookup(value[head], rest)
    if isinstance(value, list) and head.lstrip("-").isdigit():
        index = int(head)
        if -len(value) <= index < len(value):
            return lookup(value[index], rest)
    return MISSING


def field_path(*parts: str | int | None) -> str:
    """Join path parts for problem messages: ``field_path("data.items", 3, "traj")`` -> ``"data.items[3].traj"``."""
    out = ""
    for part in parts:
        if part is None or part == "":
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def stable_id(values: Iterable[Any], *, length: int = 32) -> str:
    """Lower-case hex id: the first ``length`` hex digits of SHA-256 over the values' JSON."""
    payload = orjson.dumps(list(values), default=str, option=orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(payload).hexdigest()[:length]


def expand(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[Path]:
    """Files named by paths, directories and globs (see ``workbench.load.api.expand_paths``)."""
    from workbench.load.api import expand_paths

    return expand_paths(paths)


def load_files(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    read_one: Callable[[str], ReaderResult],
) -> LoadResult:
    """Run ``read_one`` on every file and assemble the tables (traces and sessions are rolled up).

    A file that cannot be opened becomes a problem (``LoadError`` from
    ``read_one`` propagates, so ``strict`` readers still raise).
    """
    parts: list[tuple[ReaderResult, dict]] = []
    extra: list[Problem] = []
    for path in expand(paths):
        started = time.perf_counter()
        source = str(path)
        try:
            size = path.stat().st_size
            result = read_one(source)
        except LoadError:
            raise
        except OSError as exc:
            extra.append(Problem(source, None, None, "unreadable file", detail=str(exc)))
            continue
        parts.append((result, {"path": source, "detected": False, "bytes": size,
                               "seconds": time.perf_counter() - started, "cached": False}))
    return assemble(parts, extra_problems=extra)
