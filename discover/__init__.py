"""discover: find the subcategories a product catalog is missing."""

from __future__ import annotations

__version__ = "0.1.0"


def run(config, workspace=None, **kwargs):
    """Run the whole pipeline (ingest → embed → discover → evaluate → export); see discover.pipeline."""
    from discover.pipeline import run as _run

    return _run(config, workspace, **kwargs)
