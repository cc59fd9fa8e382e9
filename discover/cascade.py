"""Cascade HDBSCAN: cluster inside every existing category, then inside each cluster.

For each existing node at the configured level, its products are reduced with UMAP and
clustered with HDBSCAN; each resulting cluster is then reduced *again on its own* (so its
internal structure is no longer squashed by the rest of the category) and split again.

Split rule: a node is split when all of these hold, and otherwise recorded as
``not split: <reason>``:

1. it holds at least `min_split_size` products and the depth limit allows another level;
2. its embeddings are not (near-)identical;
3. HDBSCAN, with ``min_cluster_size = max(min_cluster_size_floor,
   ceil(min_cluster_fraction × node size))``, finds at least two clusters, still two or
   more after clusters that are strongly linked in the input-space neighbour graph are
   merged (:mod:`discover.linkage`, `merge_threshold`);
4. HDBSCAN leaves at most `max_noise_fraction` of the node as noise;
5. the clusters are separated in the *original* feature space, not only in UMAP's: their
   silhouette (on up to 2,000 clustered products, with the reducer's metric) is at least
   `min_silhouette`. UMAP followed by HDBSCAN finds "clusters" even in one Gaussian blob
   (silhouette ≈ 0.01–0.04 in the input space, ≈ 0.25 in UMAP space); real sub-types
   stand apart in the input space too. This check is what stops the cascade from
   shattering homogeneous clusters.

Products HDBSCAN calls noise stay at the node where that happened (``is_noise``) and are
also given their most likely leaf below it, by a vote of their nearest clustered neighbours
in feature space, with the vote share as probability. No product disappears.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from tqdm.auto import tqdm

from discover.linkage import merge_connected
from discover.reduce import UmapReducer
from discover.tree import Node, SubcategoryTree

log = logging.getLogger(__name__)


@dataclass
class ParentTiming:
    parent: str
    size: int
    seconds: float
    leaves: int


@dataclass
class _Placement:
    """Where each row ended up while the cascade runs."""

    node: np.ndarray
    noise: np.ndarray
    strength: np.ndarray
    timings: list[ParentTiming] = field(default_factory=list)


def _l2(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


class CascadeClusterer:
    """Recursive UMAP + HDBSCAN inside each existing category (scikit-learn style).

    Parameters mirror :class:`discover.config.DiscoveryConfig`; they are stored unchanged
    and checked in :meth:`fit`.

    Attributes:
        tree_: the :class:`SubcategoryTree` (existing nodes + proposals, names still empty).
        labels_: per row, the id of the node the product sits at (a leaf, or the node where
            HDBSCAN called it noise).
        leaf_: per row, its most likely leaf (equal to `labels_` for clustered products).
        probability_: per row, HDBSCAN membership strength, or the neighbour vote share for noise.
        is_noise_: per row, whether HDBSCAN left it unassigned at some level.
        timings_: per existing parent, its size, seconds and leaf count.

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8)).astype("float32")
        >>> model = CascadeClusterer(min_split_size=50).fit(X, [("A",)] * 300)
        >>> len(model.labels_)
        300
    """

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        min_dist: float = 0.0,
        metric: str = "cosine",
        pca_components: int | None = None,
        min_cluster_fraction: float = 0.02,
        min_cluster_size_floor: int = 10,
        min_samples: int | None = 3,
        selection: str = "eom",
        max_depth: int = 2,
        min_split_size: int = 60,
        max_noise_fraction: float = 0.5,
        min_silhouette: float = 0.05,
        merge_threshold: float = 0.2,
        min_parent_size: int = 20,
        exemplars: int = 8,
        noise_neighbors: int = 10,
        random_state: int = 0,
        progress: bool = False,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.min_dist = min_dist
        self.metric = metric
        self.pca_components = pca_components
        self.min_cluster_fraction = min_cluster_fraction
        self.min_cluster_size_floor = min_cluster_size_floor
        self.min_samples = min_samples
        self.selection = selection
        self.max_depth = max_depth
        self.min_split_size = min_split_size
        self.max_noise_fraction = max_noise_fraction
        self.min_silhouette = min_silhouette
        self.merge_threshold = merge_threshold
        self.min_parent_size = min_parent_size
        self.exemplars = exemplars
        self.noise_neighbors = noise_neighbors
        self.random_state = random_state
        self.progress = progress

    def _validate(self) -> None:
        if self.selection not in ("eom", "leaf"):
            raise ValueError(f"selection must be 'eom' or 'leaf', got {self.selection!r}")
        if not 0 < self.min_cluster_fraction < 1:
            raise ValueError(f"min_cluster_fraction must be in (0, 1), got {self.min_cluster_fraction}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")

    def fit(self, X: np.ndarray, parents: list[tuple[str, ...]], ids: list[str] | None = None) -> CascadeClusterer:
        """Cluster `X` (n × d) inside each existing parent path in `parents` (length n)."""
        self._validate()
        X = np.asarray(X, dtype=np.float32)
        if len(parents) != len(X):
            raise ValueError(f"X has {len(X)} rows but parents has {len(parents)}")
        ids = [str(i) for i in (ids if ids is not None else range(len(X)))]
        self.ids_ = np.asarray(ids)
        tree = SubcategoryTree()
        placement = _Placement(np.empty(len(X), dtype=object), np.zeros(len(X), bool), np.ones(len(X), np.float32))
        parent_keys = pd.Series([tuple(p) for p in parents])
        rows_by_parent = parent_keys.groupby(parent_keys).indices
        bar = tqdm(total=len(X), desc="cascade", unit="product", disable=not self.progress)
        for key in sorted(rows_by_parent):
            rows = np.asarray(rows_by_parent[key])
            node = tree.ensure_existing(list(key))
            node.size = len(rows)
            started = time.perf_counter()
            if len(rows) < self.min_parent_size:
                node.split = f"not split: {len(rows)} products < min_parent_size {self.min_parent_size}"
                placement.node[rows] = node.id
            else:
                self._split(X, rows, node, 1, tree, placement)
            leaves = len(tree.leaves(node.id)) if node.children else 0
            seconds = time.perf_counter() - started
            placement.timings.append(ParentTiming(node.id, len(rows), seconds, leaves))
            log.info("cascade %s: %d products → %d leaves (%.1f s)", node.id, len(rows), leaves, seconds)
            bar.update(len(rows))
        bar.close()
        for node in tree.nodes.values():
            if node.kind == "existing" and node.size == 0:
                node.size = sum(c.size for c in tree.children(node.id))
        self.tree_ = tree
        self.labels_ = placement.node.astype(str)
        self.is_noise_ = placement.noise
        self.timings_ = placement.timings
        self.leaf_, self.probability_ = self._most_likely_leaves(X, placement)
        self._count_products()
        self._add_exemplars(X)
        return self

    def _min_cluster_size(self, n: int) -> int:
        return max(self.min_cluster_size_floor, math.ceil(self.min_cluster_fraction * n))

    def _cluster(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """UMAP then HDBSCAN on one node's rows: labels, membership strengths, persistence."""
        import hdbscan

        reduced = UmapReducer(
            self.n_components,
            self.n_neighbors,
            self.min_dist,
            self.metric,
            self.pca_components,
            random_state=self.random_state,
        ).fit_transform(X)
        size = self._min_cluster_size(len(X))
        model = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=min(self.min_samples or size, size),
            cluster_selection_method=self.selection,
            core_dist_n_jobs=1,
        ).fit(reduced.astype(np.float64))
        labels = model.labels_
        persistence = np.asarray(model.cluster_persistence_)
        if self.merge_threshold > 0 and labels.max() >= 1:
            space = (
                X
                if self.pca_components is None or self.pca_components >= min(X.shape)
                else (PCA(self.pca_components, random_state=self.random_state).fit_transform(X))
            )
            merged = merge_connected(space, labels, self.merge_threshold, self.n_neighbors, self.metric)
            # a merged cluster keeps the largest persistence of its parts
            persistence = np.array([persistence[np.unique(labels[merged == c])].max() for c in range(merged.max() + 1)])
            labels = merged
        return labels, model.probabilities_.astype(np.float32), persistence

    def _why_not(self, X: np.ndarray, rows: np.ndarray, depth: int) -> str:
        if depth > self.max_depth:
            return f"not split: depth limit {self.max_depth}"
        if len(rows) < max(self.min_split_size, 2 * self.min_cluster_size_floor):
            return f"not split: {len(rows)} products < min_split_size {self.min_split_size}"
        if float(np.ptp(X[rows], axis=0).max()) < 1e-6:
            return "not split: identical embeddings"
        return ""

    def _silhouette(self, X: np.ndarray, labels: np.ndarray) -> float:
        """Silhouette of the clustered rows in the input space, on a seeded sample."""
        clustered = np.flatnonzero(labels >= 0)
        if len(clustered) > 2000:
            clustered = np.sort(np.random.default_rng(self.random_state).choice(clustered, 2000, replace=False))
        return float(silhouette_score(X[clustered], labels[clustered], metric=self.metric))

    def _split(
        self, X: np.ndarray, rows: np.ndarray, node: Node, depth: int, tree: SubcategoryTree, placement: _Placement
    ) -> None:
        placement.node[rows] = node.id
        reason = self._why_not(X, rows, depth)
        if reason:
            node.split = reason
            return
        labels, strength, persistence = self._cluster(X[rows])
        clusters = [c for c in np.unique(labels) if c >= 0]
        noise_share = float(np.mean(labels < 0))
        if len(clusters) < 2:
            node.split = "not split: HDBSCAN found fewer than two clusters"
            return
        if noise_share > self.max_noise_fraction:
            node.split = f"not split: {noise_share:.0%} noise > max_noise_fraction {self.max_noise_fraction:.0%}"
            return
        separation = self._silhouette(X[rows], labels)
        if separation < self.min_silhouette:
            node.split = f"not split: silhouette {separation:.3f} < min_silhouette {self.min_silhouette}"
            return
        node.split = "split"
        noise_rows = rows[labels < 0]
        placement.noise[noise_rows] = True
        placement.strength[noise_rows] = 0.0
        ids = self.ids_
        order = sorted(clusters, key=lambda c: (-int(np.sum(labels == c)), min(ids[rows[labels == c]])))
        for rank, cluster in enumerate(order, start=1):
            members = rows[labels == cluster]
            child = tree.add(Node(f"{node.id}/c{rank}", node.id, "proposed", f"c{rank}", path=[*node.path, f"c{rank}"]))
            child.size = len(members)
            child.stability = float(persistence[cluster])
            placement.strength[members] = placement.strength[members] * strength[labels == cluster]
            self._split(X, members, child, depth + 1, tree, placement)
        node.size = len(rows)

    def _most_likely_leaves(self, X: np.ndarray, placement: _Placement) -> tuple[np.ndarray, np.ndarray]:
        """Give each noise product the leaf most of its nearest clustered neighbours are in."""
        tree = self.tree_
        leaf = self.labels_.copy()
        probability = placement.strength.copy()
        normed = _l2(X)
        for node_id in sorted(set(self.labels_[placement.noise])):
            noise_rows = np.flatnonzero(placement.noise & (self.labels_ == node_id))
            leaf_ids = {n.id for n in tree.leaves(node_id)}
            candidates = np.flatnonzero(np.isin(self.labels_, list(leaf_ids)) & ~placement.noise)
            if len(candidates) == 0:
                continue
            k = min(self.noise_neighbors, len(candidates))
            neighbours = NearestNeighbors(n_neighbors=k).fit(normed[candidates])
            _, nearest = neighbours.kneighbors(normed[noise_rows])
            for row, hits in zip(noise_rows, nearest, strict=True):
                votes = self.labels_[candidates[hits]]
                values, counts = np.unique(votes, return_counts=True)
                leaf[row] = values[np.argmax(counts)]
                probability[row] = counts.max() / k
        return leaf, probability

    def _count_products(self) -> None:
        """A proposal's size: products whose most likely leaf lies in its subtree (noise included)."""
        counts = pd.Series(self.leaf_).value_counts()
        for node in sorted(self.tree_.proposals(), key=lambda n: -n.id.count("/")):
            node.size = int(counts.get(node.id, 0)) + sum(c.size for c in self.tree_.children(node.id))

    def _add_exemplars(self, X: np.ndarray) -> None:
        """The products nearest each proposal's medoid (by cosine), medoid first."""
        normed = _l2(X)
        labels = self.labels_.astype(str)
        clustered = ~self.is_noise_
        for node in self.tree_.proposals():
            inside = (labels == node.id) | np.char.startswith(labels, node.id + "/")
            members = np.flatnonzero(inside & clustered)
            if len(members) == 0:
                continue
            vectors = normed[members]
            centroid = _l2(vectors.mean(axis=0, keepdims=True))[0]
            medoid = vectors[np.argmax(vectors @ centroid)]
            nearest = np.argsort(-(vectors @ medoid), kind="stable")[: self.exemplars]
            node.exemplars = self.ids_[members[nearest]].tolist()
