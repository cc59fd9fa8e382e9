"""Merging proposals of one product type that the photos split apart.

Photos separate a red T-shirt from a grey one more than from a red shirt, so the cascade
often proposes one T-shirt per colour. The titles know better: the *type view* (the
known-level words, :mod:`discover.embed.known_levels`) weighs each title word by how
concentrated it is across the catalog's known categories, so colours, genders and brands
count for little and type nouns for much. Two leaf proposals of one existing category
whose mean type-view vectors point the same way (cosine ≥ `threshold`) name the same type
of product: they are merged, largest first, and the tree is tidied (an intermediate
proposal left with one child absorbs it; one left empty goes). No label is read.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from discover.tree import SubcategoryTree
from discover.vectors import l2_normalise

log = logging.getLogger(__name__)


def merge_same_type(
    tree: SubcategoryTree,
    node_ids: np.ndarray,
    leaf_ids: np.ndarray,
    noise: np.ndarray,
    view: np.ndarray,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """`node_ids` and `leaf_ids` (per product) after the merges, and how many leaves merged away.

    `tree` is changed in place (merged leaves removed, sizes recounted).
    """
    node_ids, leaf_ids = node_ids.astype(object).copy(), leaf_ids.astype(object).copy()
    view = l2_normalise(np.asarray(view, dtype=np.float64))
    merged = 0
    for parent in sorted(tree.parents_with_proposals(), key=lambda n: n.id):
        for keeper, gone in _groups(tree, parent.id, leaf_ids, noise, view, threshold):
            moved = np.isin(leaf_ids, gone)
            leaf_ids[moved] = keeper
            node_ids[np.isin(node_ids, gone)] = keeper
            for node_id in gone:
                tree[tree[node_id].parent].children.remove(node_id)
                del tree.nodes[node_id]
            merged += len(gone)
        _tidy(tree, parent.id, node_ids, leaf_ids)
    tree.recount_sizes(pd.Series(leaf_ids))
    if merged:
        log.info("discover: %d leaf proposals merged into another of their type (cosine ≥ %.2f)", merged, threshold)
    return node_ids, leaf_ids, merged


def _groups(tree, parent_id, leaf_ids, noise, view, threshold) -> list[tuple[str, list[str]]]:
    """Greedy single-linkage groups of the parent's leaves, strongest pair first; keeper = largest."""
    leaves = [n for n in tree.descendants(parent_id) if n.kind == "proposed" and not n.children]
    centroids = {}
    for leaf in leaves:
        rows = (leaf_ids == leaf.id) & ~noise
        if rows.any():
            centroids[leaf.id] = l2_normalise(view[rows].mean(axis=0, keepdims=True))[0]
    ids = sorted(centroids)
    root = {i: i for i in ids}

    def find(i: str) -> str:
        while root[i] != i:
            i = root[i]
        return i

    pairs = sorted(
        ((-float(centroids[a] @ centroids[b]), a, b) for k, a in enumerate(ids) for b in ids[k + 1 :]),
    )
    for similarity, a, b in pairs:
        if -similarity < threshold:
            break
        ra, rb = find(a), find(b)
        if ra != rb:
            root[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = {}
    for i in ids:
        members.setdefault(find(i), []).append(i)
    groups = []
    for group in members.values():
        if len(group) > 1:
            keeper = sorted(group, key=lambda i: (-tree[i].size, i))[0]
            groups.append((keeper, sorted(i for i in group if i != keeper)))
    return groups


def _tidy(tree: SubcategoryTree, parent_id: str, node_ids: np.ndarray, leaf_ids: np.ndarray) -> None:
    """Remove emptied intermediate proposals; one left with a single leaf child absorbs it."""
    changed = True
    while changed:
        changed = False
        for node in [n for n in tree.descendants(parent_id) if n.kind == "proposed"]:
            if node.id not in tree.nodes:
                continue
            if len(node.children) == 1 and not tree[node.children[0]].children:
                child = node.children.pop()
                leaf_ids[leaf_ids == child] = node.id
                node_ids[node_ids == child] = node.id
                del tree.nodes[child]
                changed = True
            elif not node.children and not ((leaf_ids == node.id).any() or (node_ids == node.id).any()):
                tree[node.parent].children.remove(node.id)
                del tree.nodes[node.id]
                changed = True
