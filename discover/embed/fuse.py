"""Fusion of modalities into one vector per product — the one place this is defined.

Each modality is L2-normalised row-wise, multiplied by its config weight and concatenated;
a product missing one modality (a broken photo) keeps a zero block there. An optional
seeded PCA then reduces the result. With weights w_i, the squared distance between two
products is Σ w_i² · (cosine distance in modality i) · 2, so weights trade modalities off
directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from sklearn.decomposition import PCA

from discover.embed.directions import sibling_directions
from discover.vectors import l2_normalise

if TYPE_CHECKING:
    import pandas as pd

    from discover.config import Config

log = logging.getLogger(__name__)


def fuse(
    blocks: Sequence[np.ndarray], weights: Sequence[float], pca_components: int | None = None, seed: int = 0
) -> np.ndarray:
    """Weighted concatenation of L2-normalised blocks, optionally PCA-reduced (float32)."""
    if not blocks:
        raise ValueError("fuse needs at least one block")
    fused = np.concatenate(
        [w * l2_normalise(np.asarray(b, dtype=np.float32)) for b, w in zip(blocks, weights, strict=True)], axis=1
    )
    if pca_components and pca_components < fused.shape[1]:
        fused = PCA(pca_components, random_state=seed).fit_transform(fused)
    return fused.astype(np.float32)


def fuse_views(views: Mapping[str, np.ndarray], catalog: pd.DataFrame, config: Config) -> np.ndarray:
    """The vectors a run clusters: each configured view (by config slot: image, text, words)
    at its weight, plus the sibling directions when ``embed.directions`` is set. The embed
    stage and a run's readers (the explorer) both build them here, so they never differ."""
    blocks = list(views.values())
    weights = [getattr(config.embed, slot).weight for slot in views]
    spec = config.embed.directions
    if spec is not None:
        seen = [vectors for slot, vectors in views.items() if slot in ("image", "text")]
        if not seen:
            raise ValueError("embed.directions projects the photo and title blocks: configure image or text")
        started = time.perf_counter()
        level = config.discovery.level
        blocks.append(sibling_directions(seen, catalog, level, spec.components, spec.shrinkage, config.seed))
        weights.append(spec.weight)
        log.info("embed directions: %d products projected in %.1f s", len(catalog), time.perf_counter() - started)
    return fuse(blocks, weights, config.embed.pca_components, config.seed)
