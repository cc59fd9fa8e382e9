"""Exemplars: the products a curator sees first, those nearest each proposal's medoid."""

from __future__ import annotations

import numpy as np
import pandas as pd

from discover.tree import SubcategoryTree, in_subtree
from discover.vectors import l2_normalise


def medoid_exemplars(X: np.ndarray, ids: np.ndarray, k: int = 8) -> list[str]:
    """Ids of the `k` rows nearest the medoid by cosine, medoid first.

    The medoid is the member closest to the normalised centroid, so exemplars are real
    products, not an average no one registered.

    Example:
        >>> X = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]])
        >>> medoid_exemplars(X, np.array(["a", "b", "c"]), k=2)
        ['b', 'a']
    """
    vectors = l2_normalise(X)
    centroid = l2_normalise(vectors.mean(axis=0, keepdims=True))[0]
    medoid = vectors[np.argmax(vectors @ centroid)]
    nearest = np.argsort(-(vectors @ medoid), kind="stable")[:k]
    return [str(i) for i in ids[nearest]]


def add_exemplars(
    tree: SubcategoryTree, X: np.ndarray, ids: np.ndarray, node_ids: pd.Series, is_noise: np.ndarray, k: int = 8
) -> None:
    """Set `exemplars` on every proposal from its clustered (non-noise) members."""
    for node in tree.proposals():
        members = np.flatnonzero(in_subtree(node_ids, node.id).to_numpy() & ~is_noise)
        if len(members):
            node.exemplars = medoid_exemplars(X[members], ids[members], k)
