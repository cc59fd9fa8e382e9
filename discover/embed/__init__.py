"""From photos and titles to vectors: embedders by name (the registry), their cache, fusion.

One module per embedder (`efficientnet`, `minilm`, `tfidf`, `known_levels`, `clip`, `simclr`), all behind
the small :class:`~discover.embed.base.Embedder` protocol; `cache` stores vectors by
content hash so nothing is embedded twice; `fuse` weights and concatenates modalities;
`stage` runs the embed stage of the pipeline; `pretrain` refines the image backbone with
SimCLR on the catalog's own photos.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Embedder", "available", "create_embedder"]


def __getattr__(name: str) -> Any:
    """Imported on first use (PEP 562): loading a config or reading cached vectors never imports torch."""
    if name in ("available", "create_embedder"):
        from discover.embed import registry

        return getattr(registry, name)
    if name == "Embedder":
        from discover.embed import base

        return base.Embedder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
