"""workbench: close the improvement loop for LLM agents inside a notebook.

load -> review -> cluster -> compare -> export. Heavy modules are imported lazily,
so ``import workbench`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from workbench._blas_threads import shorten_idle_spin

shorten_idle_spin()

__version__ = "0.1.0"

# public name -> "module" or "module:attribute" that defines it (resolved on first access).
# ``review`` itself is a subpackage, so the widget entry point is exported as ``review_traces``.
_LAZY: dict[str, str] = {
    "schema": "workbench.schema",
    # load
    "read_traces": "workbench.load.api",
    "read_chat_transcripts": "workbench.load.chat",
    "read_table": "workbench.load.table",
    "LoadResult": "workbench.load.result",
    "LoadError": "workbench.load._base",
    # review
    "LabelStore": "workbench.review.store",
    "Taxonomy": "workbench.review.taxonomy",
    "review_queue": "workbench.review.queues",
    "ReviewSession": "workbench.review.session",
    "review_traces": "workbench.widgets.review:review",
    "ReviewWidget": "workbench.widgets.review",
    "label_summary": "workbench.review.summary",
    "agreement": "workbench.review.agreement",
    "judge_alignment": "workbench.review.judge",
    "saturation": "workbench.review.taxonomy",
    # compare
    "compare_cohorts": "workbench.compare.api",
    # cluster
    "cluster_traces": "workbench.cluster.pipeline",
    "FailureClusters": "workbench.cluster.result",
    "ClusterMap": "workbench.cluster.map",
    "TfidfSvdEmbedder": "workbench.cluster.embed",
    "warm_up_clustering": "workbench.cluster.warmup:warm_up",
    # export
    "export_eval_set": "workbench.export.dataset",
    "read_export": "workbench.export.readers",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'workbench' has no attribute {name!r}")
    module_name, _, attribute = module_name.partition(":")
    module = importlib.import_module(module_name)
    value = module if module_name == f"workbench.{name}" else getattr(module, attribute or name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
