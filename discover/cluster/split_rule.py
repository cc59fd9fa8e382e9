"""The cascade's split rule: when a node is tried, and when a clustering of it is accepted.

A node is split when all of these hold, and otherwise recorded as ``not split: <reason>``:

1. it holds at least `min_split_size` products and the depth limit allows another level;
2. its embeddings are not (near-)identical;
3. the clusterer finds at least two clusters (for HDBSCAN, with ``min_cluster_size =
   max(min_cluster_size_floor, ceil(min_cluster_fraction × node size))``), still two or
   more after clusters that are strongly linked in the input-space neighbour graph are
   merged (:mod:`discover.cluster.merge`, `merge_threshold`, `merge_neighbors`);
4. at most `max_noise_fraction` of the node is left as noise;
5. the clusters are separated in the *original* feature space, not only in the reduced
   one: their silhouette (on up to 2,000 clustered products, with `metric`; each
   cluster's mean, averaged over the clusters) is at least `min_silhouette`. UMAP
   followed by HDBSCAN finds "clusters" even in one Gaussian blob (silhouette ≈ 0.01–0.04
   in the input space, ≈ 0.25 in UMAP space); real sub-types stand apart in the input
   space too. This check stops the cascade from shattering homogeneous clusters.

   The mean is taken per cluster, then over clusters, so that a large bulk cut into
   overlapping pieces does not outvote the types that do stand apart: fashion-small's
   Topwear (12,259 products, 46 % Tshirts) came out as five clean clusters of Kurtas,
   Shirts, Tops and Tshirts (silhouette 0.43–0.54) beside big mixed ones (−0.25–0.01);
   weighted by products that read 0.034, and the largest category of the catalog was left
   unsplit, or split, by how the floating point of one machine fell. A blob cut into
   pieces still scores low per cluster, so it is still refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.metrics import silhouette_samples

if TYPE_CHECKING:
    from discover.cluster.cascade import CascadeClusterer

SILHOUETTE_SAMPLE = 2000


def why_not(model: CascadeClusterer, X: np.ndarray, rows: np.ndarray, depth: int) -> str:
    """Why a node cannot be split at all (rules 1 and 2), "" when it may be tried."""
    if depth > model.max_depth:
        return f"not split: depth limit {model.max_depth}"
    if len(rows) < max(model.min_split_size, 2 * model.min_cluster_size_floor):
        # "clustered here": the node's size also counts the noise placed in it afterwards
        return f"not split: {len(rows)} products clustered here < min_split_size {model.min_split_size}"
    if float(np.ptp(X[rows], axis=0).max()) < 1e-6:
        return "not split: identical embeddings"
    return ""


def silhouette(model: CascadeClusterer, X: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of the clustered rows in the input space, on a seeded sample: each
    cluster's mean, averaged over the clusters the sample holds (rule 5)."""
    clustered = np.flatnonzero(labels >= 0)
    if len(clustered) > SILHOUETTE_SAMPLE:
        rng = np.random.default_rng(model.random_state)
        clustered = np.sort(rng.choice(clustered, SILHOUETTE_SAMPLE, replace=False))
    sampled = labels[clustered]
    clusters = np.unique(sampled)
    if len(clusters) < 2:  # the sample missed every cluster but one: nothing to compare
        return 0.0
    scores = silhouette_samples(X[clustered], sampled, metric=model.metric)
    return float(np.mean([scores[sampled == c].mean() for c in clusters]))


def rejection(model: CascadeClusterer, X: np.ndarray, labels: np.ndarray, found: int) -> str:
    """Why a clustering of a node is not accepted as a split ("" when it is); `found` is how
    many clusters the clusterer found before the linkage merge joined any.

    Example:
        >>> from discover.cluster.cascade import CascadeClusterer, default_clusterer
        >>> model = CascadeClusterer()
        >>> model.clusterer_ = default_clusterer()
        >>> rejection(model, np.zeros((4, 2)), np.array([0, 0, 0, -1]), found=7)
        'not split: the linkage merge joined the 7 clusters HDBSCAN found'
        >>> rejection(model, np.zeros((4, 2)), np.array([0, 0, 0, -1]), found=1)
        'not split: HDBSCAN found fewer than two clusters'
    """
    clusters = int(len(np.unique(labels[labels >= 0])))
    noise_share = float(np.mean(labels < 0))
    if clusters < 2:
        name = "HDBSCAN" if type(model.clusterer_).__name__ == "HDBSCAN" else "the clusterer"
        if found >= 2:  # the clusters were there: the merge judged them one
            return f"not split: the linkage merge joined the {found} clusters {name} found"
        return f"not split: {name} found fewer than two clusters"
    if noise_share > model.max_noise_fraction:
        return f"not split: {noise_share:.0%} noise > max_noise_fraction {model.max_noise_fraction:.0%}"
    separation = silhouette(model, X, labels)
    if separation < model.min_silhouette:
        return f"not split: silhouette {separation:.3f} < min_silhouette {model.min_silhouette}"
    return ""
