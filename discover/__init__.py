"""discover: find the subcategories a product catalog is missing.

The package reads like the data flow: :mod:`discover.data` (catalog, ingest) →
:mod:`discover.embed` (embedders, cache, fusion, SimCLR) → :mod:`discover.cluster`
(cascade, merge, naming) → :mod:`discover.evaluate` (metrics) → :mod:`discover.outputs`
(run files, export, report), with :mod:`discover.curate` for the curators' decisions.
Everything the CLI does is one call away: ``discover.run(config, workspace)``.

Public names (imported lazily, so ``import discover`` stays cheap):
``run``, ``load_config``, ``Config``, ``Workspace``, ``SubcategoryTree``,
``CascadeClusterer``, ``UmapReducer``, ``RunData``, ``CurationStore``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.6"

_PUBLIC = {
    "load_config": "discover.config",
    "Config": "discover.config",
    "Workspace": "discover.workspace",
    "SubcategoryTree": "discover.tree",
    "CascadeClusterer": "discover.cluster.cascade",
    "UmapReducer": "discover.cluster.reduce",
    "RunData": "discover.outputs.run_data",
    "CurationStore": "discover.curate.store",
}
__all__ = ["run", *_PUBLIC]


def run(config, workspace=None, **kwargs):
    """Run the whole pipeline (ingest → embed → discover → evaluate → export); see discover.pipeline."""
    from discover.pipeline import run as _run

    return _run(config, workspace, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'discover' has no attribute {name!r}")
