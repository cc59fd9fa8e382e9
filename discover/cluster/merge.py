"""Merging clusters that the input-space neighbour graph says belong together.

HDBSCAN on a UMAP embedding tends to cut one product type into several fragments (by
colour, brand or photo style) because UMAP exaggerates small gaps. In the input space the
fragments of one type remain each other's nearest neighbours. The *connectivity* of two
clusters a and b is PAGA's (Wolf et al., 2019, Genome Biology 20:59): the number of
k-nearest-neighbour edges between them divided by the number expected if edges fell at
random, so it does not depend on the cluster sizes or on k:

    c(a, b) = e(a, b) / ((k·|a|·|b| + k·|b|·|a|) / (N - 1)),   capped at 1

Two halves of one homogeneous blob stay heavily interlinked (c ≈ 0.2–0.5); two product
types whose neighbourhoods are ~90 % pure share few edges (c ≈ 0.05–0.1). Pairs are merged
greedily, strongest first, while the strongest connectivity is at least `threshold`.
Connectivity is a property of the neighbour graph, not of any label.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import NearestNeighbors


def neighbour_edges(X: np.ndarray, labels: np.ndarray, k: int, metric: str) -> np.ndarray:
    """Symmetric matrix of kNN edge counts between clusters (noise, label < 0, excluded)."""
    clusters = int(labels.max()) + 1
    edges = np.zeros((clusters, clusters), dtype=np.float64)
    if clusters < 2:
        return edges
    k = min(k, len(X) - 1)
    _, nearest = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(X).kneighbors(X)
    source = np.repeat(labels, k)
    target = labels[nearest[:, 1:].ravel()]
    keep = (source >= 0) & (target >= 0) & (source != target)
    np.add.at(edges, (source[keep], target[keep]), 1)
    return edges + edges.T


def merge_connected(
    X: np.ndarray, labels: np.ndarray, threshold: float, k: int = 15, metric: str = "cosine"
) -> np.ndarray:
    """Labels after greedily merging clusters with connectivity ≥ `threshold`, renumbered 0…m-1."""
    labels = np.asarray(labels).copy()
    if threshold <= 0 or labels.max() < 1:
        return labels
    edges = neighbour_edges(X, labels, k, metric)
    sizes = np.bincount(labels[labels >= 0], minlength=len(edges)).astype(np.float64)
    alive = np.ones(len(edges), dtype=bool)
    k = min(k, len(X) - 1)
    total = max(len(X) - 1, 1)
    while alive.sum() > 1:
        expected = 2 * k * np.outer(sizes, sizes) / total
        connectivity = np.where(np.outer(alive, alive), np.minimum(edges / np.maximum(expected, 1e-12), 1), 0)
        np.fill_diagonal(connectivity, 0)
        a, b = np.unravel_index(np.argmax(connectivity), connectivity.shape)
        if connectivity[a, b] < threshold:
            break
        keep, gone = min(a, b), max(a, b)
        labels[labels == gone] = keep
        edges[keep] += edges[gone]
        edges[:, keep] += edges[:, gone]
        edges[keep, keep] = 0
        edges[gone], edges[:, gone] = 0, 0
        sizes[keep] += sizes[gone]
        alive[gone] = False
    _, renumbered = np.unique(labels[labels >= 0], return_inverse=True)
    labels[labels >= 0] = renumbered
    return labels
