"""From photos and titles to vectors: embedders by name (the registry), their cache, fusion.

One module per embedder (`efficientnet`, `minilm`, `tfidf`, `known_levels`, `clip`, `simclr`), all behind
the small :class:`~discover.embed.base.Embedder` protocol; `cache` stores vectors by
content hash so nothing is embedded twice; `fuse` weights and concatenates modalities;
`stage` runs the embed stage of the pipeline; `pretrain` refines the image backbone with
SimCLR on the catalog's own photos.
"""

from discover.embed import clip, efficientnet, known_levels, minilm, simclr, tfidf  # noqa: F401  (registration)
from discover.embed.base import Embedder, available, create_embedder

__all__ = ["Embedder", "available", "create_embedder"]
