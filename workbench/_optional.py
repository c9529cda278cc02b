"""Lazy imports of heavy or optional dependencies with actionable errors."""

from __future__ import annotations

import importlib
from types import ModuleType

_EXTRAS = {
    "sentence_transformers": "embeddings",
    "presidio_analyzer": "presidio",
    "inspect_ai": "inspect",
    "playwright": "browser",
}


class MissingDependency(ImportError):
    """An optional dependency is not installed."""


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or raise an error that says how to install it.

    Parameters
    ----------
    module
        Dotted module name, e.g. ``"umap"``.
    purpose
        What the caller needs it for, shown in the error.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        extra = _EXTRAS.get(top)
        hint = f"pip install 'workbench[{extra}]'" if extra else f"pip install {top}"
        raise MissingDependency(f"{purpose} needs the {top!r} package: {hint}") from exc
