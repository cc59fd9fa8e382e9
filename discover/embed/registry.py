"""Embedders by the names configs use, without importing them.

A config names its embedders, and a typo must be caught when the config loads. Checking a
name must not import torch and every model library (about 10 s on 2 cores, on every
command), so the built-in names map to their modules, and a module is imported only when
its embedder is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from discover.errors import EmbedError

if TYPE_CHECKING:
    from discover.embed.base import Embedder

EmbedderFactory = Callable[..., "Embedder"]
_REGISTRY: dict[str, EmbedderFactory] = {}

BUILT_IN = {  # name → the module of discover.embed that registers it
    "clip": "clip",
    "efficientnet-lite0": "efficientnet",
    "known-level-words": "known_levels",
    "minilm": "minilm",
    "simclr": "simclr",
    "tfidf": "tfidf",
}


def register(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    """Add a constructor to the registry under the name configs use."""

    def decorate(factory: EmbedderFactory) -> EmbedderFactory:
        _REGISTRY[name] = factory
        return factory

    return decorate


def available() -> list[str]:
    """Every embedder name a config may use: the built-in ones and any registered since."""
    return sorted(set(BUILT_IN) | set(_REGISTRY))


def create_embedder(name: str, modality: str, **params: object) -> Embedder:
    """Build the embedder called `name` for `modality` (``"image"`` or ``"text"``)."""
    if name not in _REGISTRY and name in BUILT_IN:
        importlib.import_module(f"discover.embed.{BUILT_IN[name]}")
    if name not in _REGISTRY:
        raise EmbedError(f"unknown embedder `{name}`; available: {', '.join(available())}")
    return _REGISTRY[name](modality=modality, **params)
