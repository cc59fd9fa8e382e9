"""Embedders by name (the registry), the cache, fusion and the embed stage."""

from discover.embed import clip, efficientnet, minilm, simclr, tfidf  # noqa: F401  (registration)
from discover.embed.base import Embedder, available, create_embedder

__all__ = ["Embedder", "available", "create_embedder"]
