"""The most likely leaf of each noise product: a vote of its nearest clustered neighbours.

A product the clusterer leaves as noise at some node still belongs *somewhere* below that
node for a curator; its nearest clustered products (in the input space) vote, and the vote
share is its probability. Noise at a node with no clustered product below keeps that node.
"""

from __future__ import annotations

import numpy as np
from sklearn.neighbors import KNeighborsClassifier

from discover.tree import SubcategoryTree
from discover.vectors import l2_normalise


def vote_noise_leaves(
    X: np.ndarray,
    labels: np.ndarray,
    is_noise: np.ndarray,
    tree: SubcategoryTree,
    neighbors: int = 10,
    metric: str = "cosine",
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: its most likely leaf and that leaf's vote share (0 for clustered rows).

    `labels` holds each row's node id; noise rows vote among clustered rows whose node lies
    below their own. Cosine vectors are L2-normalised so Euclidean neighbours are cosine ones.

    Example:
        >>> tree = SubcategoryTree()
        >>> _ = tree.ensure_existing(["p"])
        >>> from discover.tree import Node
        >>> for c in ("c1", "c2"):
        ...     _ = tree.add(Node(f"root/p/{c}", "root/p", "proposed", c))
        >>> X = np.array([[0.0, 1], [0, 1.1], [5, 0], [5.1, 0], [0.1, 1]])
        >>> labels = np.array(["root/p/c1", "root/p/c1", "root/p/c2", "root/p/c2", "root/p"])
        >>> noise = np.array([False, False, False, False, True])
        >>> leaf, share = vote_noise_leaves(X, labels, noise, tree, neighbors=2, metric="euclidean")
        >>> str(leaf[-1]), float(share[-1])
        ('root/p/c1', 1.0)
    """
    space = l2_normalise(X) if metric == "cosine" else np.asarray(X, dtype=np.float32)
    leaf = np.asarray(labels, dtype=object).copy()
    share = np.zeros(len(labels), dtype=np.float32)
    for node_id in sorted(set(labels[is_noise])):
        noise_rows = np.flatnonzero(is_noise & (labels == node_id))
        leaf_ids = [n.id for n in tree.leaves(node_id)]
        voters = np.flatnonzero(np.isin(labels, leaf_ids) & ~is_noise)
        if len(voters) == 0:
            continue
        vote = KNeighborsClassifier(n_neighbors=min(neighbors, len(voters))).fit(space[voters], labels[voters])
        probabilities = vote.predict_proba(space[noise_rows])
        leaf[noise_rows] = vote.classes_[probabilities.argmax(axis=1)]
        share[noise_rows] = probabilities.max(axis=1)
    return leaf.astype(str), share
