"""Merging proposals of one product type that the photos split apart.

Photos separate a red T-shirt from a grey one more than from a red shirt, so the cascade
often proposes one T-shirt per colour. The titles know better: the *type view* (the
known-level words, :mod:`discover.embed.known_levels`) weighs each title word by how
concentrated it is across the catalog's known categories, so colours, genders and brands
count for little and type nouns for much. Leaf proposals of one existing category whose
mean type-view vectors point the same way name the same type of product: they are grouped
by average linkage (cosine ≥ `threshold`) and merged into the largest, and the tree is
tidied (an intermediate proposal left with one child absorbs it; one left empty goes). No
label is read.

After naming, :func:`merge_same_name` merges the leaves whose names say one type ("Belt",
"Belts", "Black Belt"), through the same merge and tidy.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from discover.tree import SubcategoryTree
from discover.vectors import l2_normalise
from discover.words import WordConcentration, stem, stems, words

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
    view = l2_normalise(np.asarray(view, dtype=np.float64))
    node_ids, leaf_ids, merged = _merge(
        tree, node_ids, leaf_ids, lambda leaves, ids: _groups(tree, leaves, ids, noise, view, threshold)
    )
    if merged:
        log.info("discover: %s merged into another of their type (cosine ≥ %.2f)", _leaves(merged), threshold)
    return node_ids, leaf_ids, merged


def name_key(name: str, known: WordConcentration, threshold: float, category: str = "") -> frozenset[str]:
    """The type a name says: the stems of its words that carry type (known-level weight ≥
    `threshold`), so "Black Belt", "Belts" and "Belt" say one type, "Sports Shoes" another.
    The words of its `category`'s name say nothing a sibling does not, so they count only
    when the name says nothing else: under Watches, "Digital Watch" is "Digital".

    Example:
        >>> known = WordConcentration()
        >>> known.weights_ = {"black": 0.1, "belt": 0.9, "belts": 0.9, "leather": 0.6}
        >>> [sorted(name_key(n, known, 0.5, "Belts")) for n in ("Black Belt", "Belts", "Leather Belt")]
        [['belt'], ['belt'], ['leather']]
    """
    key = frozenset(stem(w) for w in words(name) if known.weights_.get(w, 0.0) >= threshold)
    return (key - stems(category)) or key


def merge_same_name(
    tree: SubcategoryTree,
    node_ids: np.ndarray,
    leaf_ids: np.ndarray,
    known: WordConcentration,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Merge the leaf proposals of one existing category whose names say the same type
    (:func:`name_key`; a name with no type word is left alone), into the largest.

    The names are the titles' own phrases, chosen against the siblings, so two proposals
    the titles call "Belt" and "Black Belt" differ by a colour the type view already
    discounted but the photos did not. Returns as :func:`merge_same_type`; rename after.
    """

    def groups(leaves: list, _ids: np.ndarray) -> list[tuple[str, list[str]]]:
        by_key: dict[frozenset[str], list[str]] = {}
        for leaf in leaves:
            key = name_key(leaf.name, known, threshold, tree.existing_parent(leaf.id).name)
            if key:
                by_key.setdefault(key, []).append(leaf.id)
        return [_keeper(tree, group) for group in by_key.values() if len(group) > 1]

    node_ids, leaf_ids, merged = _merge(tree, node_ids, leaf_ids, groups)
    if merged:
        log.info("discover: %s merged into a sibling of the same name's type", _leaves(merged))
    return node_ids, leaf_ids, merged


MERGED_TO_ONE = "not split: the merges left one cluster of its split"
# a category whose clusters the merges joined into one proposal, left whole: how its reason starts
ONE_TYPE = "not split: its clusters all name one type"
# a leaf that took in others of its type: its own reason ("not split: 37 products < ...") was
# about the cluster it was before, and read wrong beside the size it has now
MERGED_INTO = "not split: clusters of its type were merged into it"


def _merge(tree: SubcategoryTree, node_ids: np.ndarray, leaf_ids: np.ndarray, grouping) -> tuple:
    """Apply `grouping(leaves, leaf_ids)` → [(keeper, gone)] to the leaves of every existing category."""
    node_ids, leaf_ids = node_ids.astype(object).copy(), leaf_ids.astype(object).copy()
    merged = 0
    for parent in sorted(tree.parents_with_proposals(), key=lambda n: n.id):
        leaves = [n for n in tree.descendants(parent.id) if n.kind == "proposed" and not n.children]
        for keeper, gone in grouping(leaves, leaf_ids):
            leaf_ids[np.isin(leaf_ids, gone)] = keeper
            tree[keeper].split = MERGED_INTO
            node_ids[np.isin(node_ids, gone)] = keeper
            for node_id in gone:
                tree[tree[node_id].parent].children.remove(node_id)
                del tree.nodes[node_id]
            merged += len(gone)
        _tidy(tree, parent.id, node_ids, leaf_ids)
    tree.recount_sizes(pd.Series(leaf_ids))
    return node_ids, leaf_ids, merged


def _keeper(tree: SubcategoryTree, group: list[str]) -> tuple[str, list[str]]:
    keeper = sorted(group, key=lambda i: (-tree[i].size, i))[0]
    return keeper, sorted(i for i in group if i != keeper)


def _groups(tree, leaves, leaf_ids, noise, view, threshold) -> list[tuple[str, list[str]]]:
    """Average-linkage groups of the leaves: the two groups whose leaves' mean pairwise cosine
    is highest merge first, while it is ≥ `threshold`; keeper = largest.

    Not single linkage: a generic leaf ("Shoes", titles of several kinds) sits near each
    type it mixes, and linking through it chained "Casual Shoes" and "Formal Shoes", 0.51
    apart, into one proposal. Averaged, a group joins another only if its leaves agree with
    theirs on the whole.
    """
    centroids = {}
    for leaf in leaves:
        rows = (leaf_ids == leaf.id) & ~noise
        if rows.any():
            centroids[leaf.id] = view[rows].mean(axis=0)
    ids = sorted(centroids)
    directions = l2_normalise(np.array([centroids[i] for i in ids]).reshape(len(ids), view.shape[1]))
    groups = average_linkage(directions @ directions.T, threshold)
    return [_keeper(tree, [ids[i] for i in group]) for group in groups if len(group) > 1]


def average_linkage(similarity: np.ndarray, threshold: float) -> list[list[int]]:
    """Groups of the items of a symmetric `similarity` matrix, merged by average linkage
    (UPGMA, scipy's) while the closest two groups average ≥ `threshold`; in index order.

    Example:
        >>> chain = np.array([[1.0, 0.75, 0.5], [0.75, 1.0, 0.75], [0.5, 0.75, 1.0]])
        >>> average_linkage(chain, 0.7)  # single linkage would chain all three
        [[0, 1], [2]]
    """
    if len(similarity) < 2:
        return [[i] for i in range(len(similarity))]
    distance = np.clip(1.0 - similarity, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    tree = linkage(squareform(distance, checks=False), method="average")
    labels = fcluster(tree, t=1.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for item, label in enumerate(labels):
        groups.setdefault(int(label), []).append(item)
    return list(groups.values())


def _tidy(tree: SubcategoryTree, parent_id: str, node_ids: np.ndarray, leaf_ids: np.ndarray) -> None:
    """Remove emptied intermediate proposals (the noise left at one goes to its parent); one
    left with a single leaf child absorbs it and says why it has no children (its `split`
    said "split", and the explorer showed a proposal with neither children nor a reason)."""
    changed = True
    while changed:
        changed = False
        for node in [n for n in tree.descendants(parent_id) if n.kind == "proposed"]:
            if node.id not in tree.nodes:
                continue
            if len(node.children) == 1 and not tree[node.children[0]].children:
                child = node.children.pop()
                node.split = MERGED_TO_ONE
                leaf_ids[leaf_ids == child] = node.id
                node_ids[node_ids == child] = node.id
                del tree.nodes[child]
                changed = True
            elif not node.children and not (leaf_ids == node.id).any():
                node_ids[node_ids == node.id] = node.parent  # its noise stays noise, one level up
                tree[node.parent].children.remove(node.id)
                del tree.nodes[node.id]
                changed = True


def one_type_left_whole(
    tree: SubcategoryTree, node_ids: np.ndarray, leaf_ids: np.ndarray, noise: np.ndarray, probability: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Leave whole each existing category whose clusters the merges joined into one leaf
    proposal: that proposal held the whole category ("Belt", 625 products, under Belts: 625)
    and proposed nothing a curator could use. Its products go back to the category, clustered
    as in a category never split (no noise, membership 1), and the category says why it is
    whole. Returns `node_ids`, `leaf_ids`, `noise`, `probability` and how many categories.

    Example:
        >>> from discover.tree import Node
        >>> tree = SubcategoryTree()
        >>> belts = tree.ensure_existing(["Belts"])
        >>> belt = tree.add(Node(f"{belts.id}/c1", belts.id, "proposed", "Belt"))
        >>> ids = np.array([belt.id, belt.id, belts.id])
        >>> out = one_type_left_whole(tree, ids, ids.copy(), np.array([False, False, True]), np.ones(3))
        >>> [part.tolist() for part in out[1:4]], belt.id in tree
        ([['root/Belts', 'root/Belts', 'root/Belts'], [False, False, False], [1.0, 1.0, 1.0]], False)
        >>> belts.split
        'not split: its clusters all name one type, “Belt”, and the merges joined them'
    """
    node_ids, leaf_ids = node_ids.astype(object).copy(), leaf_ids.astype(object).copy()
    noise, probability = noise.copy(), probability.copy()
    whole = 0
    for parent in sorted(tree.parents_with_proposals(), key=lambda n: n.id):
        (only, *others) = tree.children(parent.id)
        if others or only.kind != "proposed" or only.children:
            continue
        rows = np.isin(leaf_ids, [only.id, parent.id]) | np.isin(node_ids, [only.id, parent.id])
        node_ids[rows], leaf_ids[rows], noise[rows], probability[rows] = parent.id, parent.id, False, 1.0
        parent.split = f"{ONE_TYPE}, “{only.name}”, and the merges joined them"
        parent.children.remove(only.id)
        del tree.nodes[only.id]
        whole += 1
    if whole:
        log.info("discover: %d categories left whole: the merges joined their clusters into one type", whole)
    return node_ids, leaf_ids, noise, probability, whole


def _leaves(count: int) -> str:
    return f"{count} leaf proposal{'' if count == 1 else 's'}"
