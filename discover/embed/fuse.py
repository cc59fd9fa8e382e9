"""Fusion of modalities into one vector per product — the one place this is defined.

Each modality is L2-normalised row-wise, multiplied by its config weight and concatenated;
a product missing one modality (a broken photo) keeps a zero block there. An optional
seeded PCA then reduces the result. With weights w_i, the squared distance between two
products is Σ w_i² · (cosine distance in modality i) · 2, so weights trade modalities off
directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import PCA

from discover.vectors import l2_normalise


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
