"""Cascade clustering: cluster inside every existing category, then inside each cluster.

For each existing node at the configured level, its products are reduced and clustered
(by default PCA, UMAP, HDBSCAN); each resulting cluster is then reduced *again on its
own* (so its internal structure is no longer squashed by the rest of the category) and
split again.

Whether a node is tried and whether its clustering is accepted is the split rule of
:mod:`discover.cluster.split_rule` (every refusal is recorded as ``not split: <reason>``).

Products the clusterer calls noise stay at the node where that happened (``is_noise_``)
and also get their most likely leaf below it (:mod:`discover.cluster.noise`). No product
disappears.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, clone
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from discover.cluster.merge import merge_connected
from discover.cluster.noise import vote_noise_leaves
from discover.cluster.parallel import fit_parents_in_parallel, fit_subtrees_as_tasks
from discover.cluster.reduce import UmapReducer
from discover.cluster.split_rule import rejection, why_not
from discover.tree import Node, SubcategoryTree

log = logging.getLogger(__name__)


def default_clusterer(min_samples: int | None = 3, selection: str = "eom") -> BaseEstimator:
    """HDBSCAN as the cascade uses it: single-threaded, so results never depend on cores."""
    import hdbscan

    return hdbscan.HDBSCAN(min_samples=min_samples, cluster_selection_method=selection, core_dist_n_jobs=1)


class CascadeClusterer(ClusterMixin, BaseEstimator):
    """Recursive reduce + cluster inside each existing category: a scikit-learn estimator.

    Parameters are stored unchanged and checked in :meth:`fit`, so ``clone``,
    ``get_params`` and ``set_params`` work as for any estimator.

    Parameters:
        reducer: any object with ``fit_transform`` (cloned per node, ``random_state`` set
            when it has one). Default: ``UmapReducer()`` (5-d cosine UMAP).
        clusterer: any object with ``fit_predict`` returning labels (``-1`` = noise), cloned
            per node. When it has ``min_cluster_size`` it is set relative to the node; a
            ``cluster_persistence_`` becomes each proposal's stability. Default: HDBSCAN
            (``min_samples=3``, excess of mass).
        pca_components: PCA fitted once per node before the reducer, the merge and the
            noise vote use the same projection (None: no PCA).
        min_cluster_fraction, min_cluster_size_floor: the clusterer's minimum cluster size
            at a node of n products, ``max(floor, ceil(fraction × n))``.
        max_depth, min_split_size, max_noise_fraction, min_silhouette: the split rule
            (:mod:`discover.cluster.split_rule`).
        merge_threshold, merge_neighbors: PAGA connectivity threshold and the neighbour
            count of the graph it is measured on, capped below a node's smallest cluster
            (:meth:`merge_neighbours`; a threshold of 0 disables the merge).
        metric: distance in the input space, for the merge, silhouette and noise vote.
        min_parent_size: existing categories smaller than this are not split.
        noise_neighbors: neighbours that vote on a noise product's most likely leaf.
        random_state: seed for PCA, the reducer and the silhouette sample.
        progress: show a progress bar over products.
        n_jobs: parents clustered in parallel processes (joblib; -1: every core). The result
            is identical to ``n_jobs=1``: a parent's clustering reads only its own rows.
        engine: ``"local"`` (processes, `n_jobs`) or ``"ray"`` (one task per parent on the
            connected cluster, same result).
        task_min_size: with ``engine="ray"``, a proposal of at least this many products is
            split further in a Ray task of its own (same result), so one huge category does
            not keep a single worker busy while the others idle.

    Attributes:
        tree_: the :class:`SubcategoryTree` (existing nodes + proposals, names still empty).
        labels_: per row, the id of the node the product sits at (a leaf, or the node where
            it was called noise).
        leaf_: per row, its most likely leaf (equal to `labels_` for clustered products).
        probability_: per row, the clusterer's membership strength (1 when it gives none),
            or the neighbour vote share for noise.
        is_noise_: per row, whether it was left unassigned at some level.
        ids_: the product ids given to :meth:`fit` (row numbers by default).

    Example:
        >>> X = np.random.default_rng(0).normal(size=(300, 8)).astype("float32")
        >>> model = CascadeClusterer(min_split_size=50).fit(X, [("A",)] * 300)
        >>> split = model.tree_["root/A"].split  # one blob: UMAP + HDBSCAN cut it, the merge joins it again
        >>> len(model.labels_), split.startswith("not split: the linkage merge joined the")
        (300, True)
    """

    def __init__(
        self,
        reducer: object | None = None,
        clusterer: object | None = None,
        pca_components: int | None = 64,
        min_cluster_fraction: float = 0.02,
        min_cluster_size_floor: int = 10,
        max_depth: int = 2,
        min_split_size: int = 60,
        max_noise_fraction: float = 0.5,
        min_silhouette: float = 0.05,
        merge_threshold: float = 0.2,
        merge_neighbors: int = 15,
        metric: str = "cosine",
        min_parent_size: int = 20,
        noise_neighbors: int = 10,
        random_state: int = 0,
        progress: bool = False,
        n_jobs: int = 1,
        engine: str = "local",
        task_min_size: int = 20_000,
    ) -> None:
        self.reducer = reducer
        self.clusterer = clusterer
        self.pca_components = pca_components
        self.min_cluster_fraction = min_cluster_fraction
        self.min_cluster_size_floor = min_cluster_size_floor
        self.max_depth = max_depth
        self.min_split_size = min_split_size
        self.max_noise_fraction = max_noise_fraction
        self.min_silhouette = min_silhouette
        self.merge_threshold = merge_threshold
        self.merge_neighbors = merge_neighbors
        self.metric = metric
        self.min_parent_size = min_parent_size
        self.noise_neighbors = noise_neighbors
        self.random_state = random_state
        self.progress = progress
        self.n_jobs = n_jobs
        self.engine = engine
        self.task_min_size = task_min_size

    def _validate(self) -> None:
        if not 0 < self.min_cluster_fraction < 1:
            raise ValueError(f"min_cluster_fraction must be in (0, 1), got {self.min_cluster_fraction}")
        if self.max_depth < 1:
            raise ValueError(f"max_depth must be at least 1, got {self.max_depth}")
        if self.n_jobs == 0:
            raise ValueError("n_jobs must be a positive number of processes or -1 (every core), got 0")
        if self.engine not in ("local", "ray"):
            raise ValueError(f"engine must be 'local' or 'ray', got {self.engine!r}")
        if self.merge_neighbors < 1:
            raise ValueError(f"merge_neighbors must be at least 1, got {self.merge_neighbors}")
        for name, part, method in (
            ("reducer", self.reducer, "fit_transform"),
            ("clusterer", self.clusterer, "fit_predict"),
        ):
            if part is not None and not hasattr(part, method):
                raise ValueError(f"{name} must have a {method} method, got {type(part).__name__}")

    def fit(self, X: np.ndarray, parents: list[tuple[str, ...]], ids: list[str] | None = None) -> CascadeClusterer:
        """Cluster `X` (n × d) inside each existing parent path in `parents` (length n).

        BLAS runs on one thread here: PCA and distances then sum in one order, so a seed gives
        the same clusters whatever `OMP_NUM_THREADS` says (UMAP with a seed and HDBSCAN with
        ``core_dist_n_jobs=1`` are single-threaded already).
        """
        with threadpool_limits(limits=1):
            return self._fit(X, parents, ids)

    def _start(self, X: np.ndarray, ids: list[str] | None) -> None:
        self.ids_ = np.asarray([str(i) for i in (ids if ids is not None else range(len(X)))])
        self.reducer_ = self.reducer if self.reducer is not None else UmapReducer(random_state=self.random_state)
        self.clusterer_ = self.clusterer if self.clusterer is not None else default_clusterer()
        self.tree_ = SubcategoryTree()
        self.labels_ = np.empty(len(X), dtype=object)
        self.is_noise_ = np.zeros(len(X), dtype=bool)
        self.probability_ = np.ones(len(X), dtype=np.float32)

    def _fit(self, X: np.ndarray, parents: list[tuple[str, ...]], ids: list[str] | None) -> CascadeClusterer:
        self._validate()
        X = np.asarray(X, dtype=np.float32)
        if len(parents) != len(X):
            raise ValueError(f"X has {len(X)} rows but parents has {len(parents)}")
        self._start(X, ids)
        keys = pd.Series([tuple(p) for p in parents])
        rows_by_parent = keys.groupby(keys).indices
        order = sorted(rows_by_parent)
        with tqdm(total=len(X), desc="cascade", unit="product", disable=not self.progress) as bar:
            if (self.n_jobs == 1 and self.engine == "local") or len(order) < 2:
                for key in order:
                    self._fit_parent(X, np.asarray(rows_by_parent[key]), list(key))
                    bar.update(len(rows_by_parent[key]))
            else:
                fit_parents_in_parallel(self, X, order, rows_by_parent, bar)
        self.tree_.reorder_depth_first()  # subtrees fitted as tasks are adopted after their siblings
        self.labels_ = self.labels_.astype(str)
        self.leaf_, vote_share = vote_noise_leaves(
            X, self.labels_, self.is_noise_, self.tree_, self.noise_neighbors, self.metric
        )
        self.probability_ = np.where(self.is_noise_, vote_share, self.probability_).astype(np.float32)
        self.tree_.recount_sizes(pd.Series(self.leaf_))
        return self

    def fit_predict(self, X: np.ndarray, parents: list[tuple[str, ...]], ids: list[str] | None = None) -> np.ndarray:
        """Fit, then return each row's most likely leaf id."""
        return self.fit(X, parents, ids).leaf_

    def _fit_parent(self, X: np.ndarray, rows: np.ndarray, path: list[str]) -> None:
        started = time.perf_counter()
        node = self.tree_.ensure_existing(path)
        node.size = len(rows)
        if len(rows) < self.min_parent_size:
            node.split = f"not split: {len(rows)} products < min_parent_size {self.min_parent_size}"
            self.labels_[rows] = node.id
        else:
            self._split(X, rows, node, 1)
        leaves = len(self.tree_.leaves(node.id)) if node.children else 0
        log.info(
            "cascade %s: %d products → %d leaves (%.1f s)", node.id, len(rows), leaves, time.perf_counter() - started
        )

    def min_cluster_size(self, n: int) -> int:
        """The smallest cluster allowed at a node of `n` products."""
        return max(self.min_cluster_size_floor, math.ceil(self.min_cluster_fraction * n))

    def merge_neighbours(self, n: int) -> int:
        """Neighbours per product in the merge's graph at a node of `n` products: at most
        ``merge_neighbors``, and fewer than the node's smallest cluster holds. A product of a
        cluster of m products has m - 1 neighbours inside it, so with more than that even a
        cluster that stands apart sends edges out, and the connectivity reads them as links:
        with 15, Bottomwear in a 30 % sample of fashion-small (299 products of 15 types,
        smallest cluster 10) came out as 2 proposals."""
        return max(1, min(self.merge_neighbors, self.min_cluster_size(n) - 1))

    def _project(self, X: np.ndarray) -> np.ndarray:
        """The node's PCA projection, fitted once and shared by the reducer and the merge."""
        if self.pca_components is None or self.pca_components >= min(X.shape):
            return X
        return PCA(self.pca_components, random_state=self.random_state).fit_transform(X).astype(np.float32)

    def _node_clusterer(self, n: int) -> object:
        clusterer = clone(self.clusterer_)
        params = clusterer.get_params()
        if "min_cluster_size" in params:
            size = self.min_cluster_size(n)
            clusterer.set_params(min_cluster_size=size, min_samples=min(params.get("min_samples") or size, size))
        return clusterer

    def _cluster(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, int]:
        """Reduce then cluster one node's rows: labels, membership strengths, persistence, and
        how many clusters the clusterer found before the linkage merge."""
        projected = self._project(X)
        reducer = clone(self.reducer_)
        if "random_state" in reducer.get_params():
            reducer.set_params(random_state=self.random_state)
        reduced = np.asarray(reducer.fit_transform(projected), dtype=np.float64)
        clusterer = self._node_clusterer(len(X))
        labels = np.asarray(clusterer.fit_predict(reduced))
        strength = np.asarray(getattr(clusterer, "probabilities_", np.ones(len(X))), dtype=np.float32)
        persistence = getattr(clusterer, "cluster_persistence_", None)
        persistence = None if persistence is None else np.asarray(persistence)
        found = int(labels.max()) + 1
        if self.merge_threshold > 0 and labels.max() >= 1:
            neighbours = self.merge_neighbours(len(X))
            merged = merge_connected(projected, labels, self.merge_threshold, neighbours, self.metric)
            if persistence is not None:  # a merged cluster keeps the largest persistence of its parts
                persistence = np.array(
                    [persistence[np.unique(labels[merged == c])].max() for c in range(merged.max() + 1)]
                )
            labels = merged
        return labels, strength, persistence, found

    def _split(self, X: np.ndarray, rows: np.ndarray, node: Node, depth: int) -> None:
        self.labels_[rows] = node.id
        node.split = why_not(self, X, rows, depth)
        if node.split:
            return
        labels, strength, persistence, found = self._cluster(X[rows])
        node.split = rejection(self, X[rows], labels, found) or "split"
        if node.split != "split":
            return
        noise_rows = rows[labels < 0]
        self.is_noise_[noise_rows] = True
        self.probability_[noise_rows] = 0.0
        clusters = [c for c in np.unique(labels) if c >= 0]
        order = sorted(clusters, key=lambda c: (-int(np.sum(labels == c)), min(self.ids_[rows[labels == c]])))
        deferred: list[tuple[Node, np.ndarray, int]] = []
        for rank, cluster in enumerate(order, start=1):
            members = rows[labels == cluster]
            child = self.tree_.add(
                Node(f"{node.id}/c{rank}", node.id, "proposed", f"c{rank}", path=[*node.path, f"c{rank}"])
            )
            child.size = len(members)
            child.stability = None if persistence is None else float(persistence[cluster])
            self.probability_[members] *= strength[labels == cluster]
            if self.engine == "ray" and len(members) >= self.task_min_size and depth < self.max_depth:
                deferred.append((child, members, depth + 1))
            else:
                self._split(X, members, child, depth + 1)
        if deferred:
            fit_subtrees_as_tasks(self, X, deferred)
