"""Merging leaf proposals of one type: by the direction of their titles' type words, never by labels."""

import numpy as np

from discover.cluster.type_merge import merge_same_name, merge_same_type, one_type_left_whole
from discover.tree import Node, SubcategoryTree
from discover.words import WordConcentration


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
    assert tree["root/P/c0"].split == "not split: clusters of its type were merged into it"  # not its old reason


def test_a_generic_leaf_near_two_types_does_not_chain_them_into_one() -> None:
    """A "Casual Shoes" and a "Formal Shoes" leaf both sit near a generic "Shoes" leaf whose
    titles mix them; merging through it would join the two types, which are far apart."""
    rng = np.random.default_rng(3)
    tree = _tree([("root/P/casual", "root/P", 30), ("root/P/shoes", "root/P", 40), ("root/P/formal", "root/P", 20)])
    leaves = np.array(["root/P/casual"] * 30 + ["root/P/shoes"] * 40 + ["root/P/formal"] * 20, dtype=object)
    view = _view([0] * 30 + [0, 1] * 20 + [1] * 20, rng)  # the generic leaf: half of each type
    noise = np.zeros(90, dtype=bool)
    _, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), noise, view, 0.65)
    assert merged == 1 and len(set(merged_leaves)) == 2  # the generic leaf joins one of the two types
    assert merged_leaves[0] != merged_leaves[-1]  # casual and formal shoes stay apart
    assert "root/P/shoes" in merged_leaves and tree["root/P/shoes"].size in (70, 60)  # the largest keeps


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
    tree["root/P/c0"].split = "split"
    leaves = np.array(["root/P/c0/c0"] * 25 + ["root/P/c0/c1"] * 15 + ["root/P/c1"] * 35, dtype=object)
    view = _view([0] * 25 + [1] * 15 + [1] * 35, rng)  # c0/c1 is the type of c1
    nodes, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), np.zeros(75, bool), view, 0.7)
    assert merged == 1
    assert set(tree.nodes) == {"root", "root/P", "root/P/c0", "root/P/c1"}  # c0 took its last child's products
    assert list(merged_leaves).count("root/P/c0") == 25 and list(merged_leaves).count("root/P/c1") == 50
    assert tree["root/P/c0"].children == [] and tree["root/P/c0"].size == 25
    assert tree["root/P/c0"].split.startswith("not split: the merges")  # a leaf says why it has no children


def test_nothing_merges_below_the_threshold_or_across_categories():
    rng = np.random.default_rng(2)
    tree = _tree([("root/P/c0", "root/P", 10), ("root/P/c1", "root/P", 10)])
    tree.add(Node("root/Q", "root", "existing", "Q", ["Q"]))
    tree.add(Node("root/Q/c0", "root/Q", "proposed", "c0", [], size=10))
    leaves = np.array(["root/P/c0"] * 10 + ["root/P/c1"] * 10 + ["root/Q/c0"] * 10, dtype=object)
    view = _view([0] * 10 + [1] * 10 + [0] * 10, rng)  # Q's leaf shares P/c0's direction, but not its category
    _, merged_leaves, merged = merge_same_type(tree, leaves.copy(), leaves.copy(), np.zeros(30, bool), view, 0.7)
    assert merged == 0 and (merged_leaves == leaves).all()


def _known(weights: dict[str, float]) -> WordConcentration:
    titles, categories = [], []
    for word, weight in weights.items():  # a word in one category (weight ~1) or in both (~0)
        titles += [f"x {word}"] * 20
        categories += ["a"] * 20 if weight > 0.5 else ["a", "b"] * 10
    return WordConcentration().fit(titles, categories)


def test_leaves_whose_names_say_one_type_merge_and_a_name_without_a_type_word_stays() -> None:
    known = _known({"belt": 1, "belts": 1, "leather": 1, "black": 0, "men": 0})
    assert known.weights_["belt"] > 0.5 > known.weights_["black"]
    names = {"c0": "Belt", "c1": "Black Belt", "c2": "Belts", "c3": "Leather Belt", "c4": "Men", "c5": "Black Men"}
    tree = _tree([(f"root/P/{c}", "root/P", 10 + i) for i, c in enumerate(names)])
    tree.add(Node("root/Q", "root", "existing", "Q", ["Q"]))
    tree.add(Node("root/Q/c0", "root/Q", "proposed", "Belt", [], size=5))
    for child, name in names.items():
        tree[f"root/P/{child}"].name = name
    leaves = np.array([f"root/P/{c}" for i, c in enumerate(names) for _ in range(10 + i)] + ["root/Q/c0"] * 5, object)
    nodes, merged_leaves, merged = merge_same_name(tree, leaves.copy(), leaves.copy(), known, 0.5)
    assert merged == 2  # Belt and Black Belt into Belts, the largest of the three
    assert [c.name for c in tree.children("root/P")] == ["Belts", "Leather Belt", "Men", "Black Men"]
    assert tree["root/P/c2"].size == 10 + 11 + 12
    assert (merged_leaves == "root/P/c2").sum() == 33 and (nodes == merged_leaves).all()
    assert tree["root/Q/c0"].size == 5  # another category's "Belt" is not merged across


def test_a_name_that_adds_its_category_word_says_the_same_type() -> None:
    """Under Watches, "Digital Watch" is the "Digital" its sibling is; "Watch" and "Black
    Watches" say only the category, one type still; "Analogue Watch" says another."""
    known = _known({"watch": 1, "watches": 1, "digital": 1, "analogue": 1, "black": 0, "men": 0})
    assert known.weights_["watch"] > 0.5 > known.weights_["black"]
    names = {"c0": "Digital", "c1": "Digital Watch", "c2": "Watch", "c3": "Black Watches", "c4": "Analogue Watch"}
    tree = SubcategoryTree()
    tree.add(Node("root/Watches", "root", "existing", "Watches", ["Watches"]))
    for i, (child, name) in enumerate(names.items()):
        tree.add(Node(f"root/Watches/{child}", "root/Watches", "proposed", name, [], size=10 + i))
    leaves = np.array([f"root/Watches/{c}" for i, c in enumerate(names) for _ in range(10 + i)], object)
    _, merged_leaves, merged = merge_same_name(tree, leaves.copy(), leaves.copy(), known, 0.5)
    assert merged == 2
    assert [c.name for c in tree.children("root/Watches")] == ["Digital Watch", "Black Watches", "Analogue Watch"]
    assert (merged_leaves == "root/Watches/c1").sum() == 10 + 11


def test_an_intermediate_emptied_by_merges_goes_and_its_noise_moves_up() -> None:
    known = _known({"belt": 1, "black": 0, "brown": 0})
    tree = _tree([("root/P/c0", "root/P", 30), ("root/P/c1", "root/P", 14)])
    tree.add(Node("root/P/c1/c0", "root/P/c1", "proposed", "Black Belt", [], size=5))
    tree.add(Node("root/P/c1/c1", "root/P/c1", "proposed", "Brown Belt", [], size=5))
    tree["root/P/c0"].name, tree["root/P/c1"].name = "Belt", "Belts"
    leaves = np.array(["root/P/c0"] * 30 + ["root/P/c1/c0"] * 7 + ["root/P/c1/c1"] * 7, dtype=object)
    nodes = leaves.copy()
    nodes[[30, 37]] = "root/P/c1"  # two noise products left at the intermediate proposal
    nodes, merged_leaves, merged = merge_same_name(tree, nodes, leaves, known, 0.5)
    assert merged == 2 and set(tree.nodes) == {"root", "root/P", "root/P/c0"}
    assert (merged_leaves == "root/P/c0").all() and tree["root/P/c0"].size == 44
    assert list(nodes[[30, 37]]) == ["root/P", "root/P"] and set(nodes) == {"root/P", "root/P/c0"}


def test_a_category_the_merges_leave_with_one_proposal_is_left_whole() -> None:
    """Every cluster of Belts said "Belt": the merges joined them into one proposal holding
    the whole category, which proposed nothing. The category is left whole, as one never
    split (its noise too), and says why; a category with two proposals keeps them."""
    known = _known({"belt": 1, "black": 0, "brown": 0})
    tree = _tree([("root/P/c0", "root/P", 30), ("root/P/c1", "root/P", 14)])
    tree["root/P"].split = "split"
    tree["root/P/c0"].name, tree["root/P/c1"].name = "Belt", "Black Belt"
    tree.add(Node("root/Q", "root", "existing", "Q", ["Q"], split="split"))
    for child in ("c0", "c1"):
        tree.add(Node(f"root/Q/{child}", "root/Q", "proposed", child, [], size=5))
    leaves = np.array(["root/P/c0"] * 30 + ["root/P/c1"] * 14 + ["root/Q/c0"] * 5 + ["root/Q/c1"] * 5, dtype=object)
    nodes = leaves.copy()
    nodes[[3, 40]] = "root/P"  # two of P's products HDBSCAN left as noise
    noise = nodes == "root/P"
    nodes, leaves, _ = merge_same_name(tree, nodes, leaves, known, 0.5)
    assert [c.id for c in tree.children("root/P")] == ["root/P/c0"]  # one proposal: all of P
    nodes, leaves, noise, probability, whole = one_type_left_whole(tree, nodes, leaves, noise, np.full(54, 0.8))
    assert whole == 1 and tree.children("root/P") == [] and "root/P/c0" not in tree
    assert (leaves[:44] == "root/P").all() and (nodes[:44] == "root/P").all()
    assert not noise.any() and (probability[:44] == 1.0).all()
    assert tree["root/P"].split == "not split: its clusters all name one type, “Belt”, and the merges joined them"
    assert [c.id for c in tree.children("root/Q")] == ["root/Q/c0", "root/Q/c1"] and (probability[44:] == 0.8).all()
