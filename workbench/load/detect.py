"""Which reader a file needs: each reader's ``sniff`` is tried in a fixed order.

Readers are imported lazily and a reader module that does not exist (yet) is
skipped, so the registry can name every planned format.

Example
-------
>>> from workbench.load._records import read_head
>>> detect_format("traces.jsonl", read_head("traces.jsonl"))   # doctest: +SKIP
'otlp'
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

# fixed order: the most specific signatures first
READERS: dict[str, str] = {
    "otlp": "workbench.load.otlp",
    "phoenix": "workbench.load.phoenix",
    "langfuse": "workbench.load.langfuse",
    "langsmith": "workbench.load.langsmith",
    "openai_agents": "workbench.load.openai_agents",
    "mlflow": "workbench.load.mlflow",
}


class FormatNotDetected(ValueError):
    """No reader recognised the file."""


def reader_module(name: str) -> ModuleType:
    """The reader module for a format name (``"otlp"``, ``"langfuse"``, ...)."""
    if name not in READERS:
        raise ValueError(f"unknown format {name!r}; known formats: {', '.join(READERS)}")
    try:
        return importlib.import_module(READERS[name])
    except ModuleNotFoundError as exc:
        if exc.name != READERS[name]:
            raise
        raise ValueError(f"format {name!r} has no reader installed ({READERS[name]} is missing)") from exc


def available_readers() -> dict[str, ModuleType]:
    """Format name -> reader module, for every registered reader that exists."""
    found = {}
    for name, module_name in READERS.items():
        try:
            found[name] = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return found


def detect_format(path: str | Path, head: bytes) -> str:
    """The first format whose reader's ``sniff(path, head)`` says yes.

    Raises
    ------
    FormatNotDetected
        Naming the file and the formats that were tried.
    """
    readers = available_readers()
    for name, module in readers.items():
        if module.sniff(str(path), head):
            return name
    raise FormatNotDetected(
        f"{path}: not a recognised trace export (tried {', '.join(readers)}); pass format=... to choose a reader"
    )
