"""Merging leaf proposals of one type: by the direction of their titles' type words, never by labels."""

import numpy as np

from discover.cluster.type_merge import merge_same_type
from discover.tree import Node, SubcategoryTree


def _tree(nodes: list[tuple[str, str, int]]) -> SubcategoryTree:
    tree = SubcategoryTree()
    tree.add(Node("root/P", "root", "existing", "P", ["P"]))
    for node_id, parent, size in nodes:
        tree.add(Node(node_id, parent, "proposed", node_id.rsplit("/", 1)[1], [], size=size))
    return tree


def _view(directions: list[int], rng) -> np.ndarray:
    basis = np.eye(4)
    return np.vstack([basis[d] + rng.normal(0, 0.05, 4) for d in directions])


def test_leaves_whose_type_words_agree_merge_into_the_largest_and_others_stay():
    rng = np.random.default_rng(0)
    tree = _tree([("root/P/c0", "root/P", 30), ("root/P/c1", "root/P", 20), ("root/P/c2", "root/P", 25)])
    leaves = np.array(["root/P/c0"] * 30 + ["root/P/c1"] * 20 + ["root/P/c2"] * 25, dtype=object)
    view = _view([0] * 30 + [0] * 20 + [1] * 25, rng)  # c0 and c1: one type (say, T-shirts of two colours)
    noise = np.zeros(75, dtype=bool)
    nodes, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), noise, view, 0.7)
    assert merged == 1 and "root/P/c1" not in tree.nodes
    assert set(merged_leaves) == {"root/P/c0", "root/P/c2"} and (nodes == merged_leaves).all()
    assert tree["root/P/c0"].size == 50 and tree["root/P/c2"].size == 25
    assert tree["root/P"].children == ["root/P/c0", "root/P/c2"]


def test_an_intermediate_proposal_left_with_one_child_absorbs_it():
    rng = np.random.default_rng(1)
    tree = _tree(
        [
            ("root/P/c0", "root/P", 40),
            ("root/P/c0/c0", "root/P/c0", 25),
            ("root/P/c0/c1", "root/P/c0", 15),
            ("root/P/c1", "root/P", 35),
        ]
    )
    leaves = np.array(["root/P/c0/c0"] * 25 + ["root/P/c0/c1"] * 15 + ["root/P/c1"] * 35, dtype=object)
    view = _view([0] * 25 + [1] * 15 + [1] * 35, rng)  # c0/c1 is the type of c1
    nodes, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), np.zeros(75, bool), view, 0.7)
    assert merged == 1
    assert set(tree.nodes) == {"root", "root/P", "root/P/c0", "root/P/c1"}  # c0 took its last child's products
    assert list(merged_leaves).count("root/P/c0") == 25 and list(merged_leaves).count("root/P/c1") == 50
    assert tree["root/P/c0"].children == [] and tree["root/P/c0"].size == 25


def test_nothing_merges_below_the_threshold_or_across_categories():
    rng = np.random.default_rng(2)
    tree = _tree([("root/P/c0", "root/P", 10), ("root/P/c1", "root/P", 10)])
    tree.add(Node("root/Q", "root", "existing", "Q", ["Q"]))
    tree.add(Node("root/Q/c0", "root/Q", "proposed", "c0", [], size=10))
    leaves = np.array(["root/P/c0"] * 10 + ["root/P/c1"] * 10 + ["root/Q/c0"] * 10, dtype=object)
    view = _view([0] * 10 + [1] * 10 + [0] * 10, rng)  # Q's leaf shares P/c0's direction, but not its category
    _, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), np.zeros(30, bool), view, 0.7)
    assert merged == 0 and (merged_leaves == leaves).all()
