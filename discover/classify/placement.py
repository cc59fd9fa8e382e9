"""New subtype or mislabelled? What the classifier says about each discovery proposal.

A proposal groups products that look alike inside one existing category. Two different
things look like that: a type the taxonomy lacks (a new subtype), and products sellers put
in the wrong category, which cluster together because they resemble each other and not
their neighbours. A classifier trained on the existing categories tells them apart when it
scores every product out of fold (by a model that never saw it): if it confidently places
most of a proposal's products in one *other* existing category, the proposal is probably
mislabelled into this one; if it cannot, or keeps them where they are, nothing in the
taxonomy fits them, and the proposal is a candidate new subtype, unless it is the only
proposal of its category and holds all its products (a curator merged what discovery found;
discovery itself leaves such a category whole): then it is the whole category, not a subtype.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from discover.tree import SubcategoryTree, in_subtree

MISLABELLED = "probably mislabelled"
NEW_SUBTYPE = "candidate new subtype"
WHOLE_CATEGORY = "the whole category"
# said after a verdict on a proposal whose products a curator's decision has changed since, on
# a run placed before its probabilities were kept (PROBABILITIES_FILE), where it cannot be said again
STALE = "(Said of the proposal as discovery made it: your decisions have changed its products since.)"
# the out-of-fold probabilities a run was placed with, in its folder: curated proposals are placed from them
PROBABILITIES_FILE = "placement_probabilities.parquet"
SHORT_MISLABELLED = "mislabelled"  # how `short` starts a mislabelled verdict (tables, exports, the diff)


def place_proposals(
    tree: SubcategoryTree,
    assignments: pd.DataFrame,
    probabilities: pd.DataFrame,
    confidence: float = 0.8,
    majority: float = 0.5,
) -> dict[str, dict]:
    """A placement for every proposal of `tree`, set as ``node.placement`` (None where none of
    its clustered products was scored), from the products each holds in `assignments`: a
    run's, or a curated copy's, whose merges, splits and moves then count.

    `probabilities`: one row per product id, one column per existing category path
    (``"Footwear > Shoes"``), out-of-fold. A product is *placed* in its most likely
    category when that probability is at least `confidence`; a proposal is mislabelled
    when at least `majority` of its clustered products are placed in one other category.

    Example:
        >>> from discover.tree import Node
        >>> tree = SubcategoryTree()
        >>> _ = tree.add(Node("root/A", "root", "existing", "A", ["A"]))
        >>> _ = tree.add(Node("root/A/c0", "root/A", "proposed", "x", ["A", "x"]))
        >>> rows = pd.DataFrame({"product_id": ["1", "2"], "leaf_id": "root/A/c0", "is_noise": False})
        >>> p = pd.DataFrame({"A": [0.05, 0.1], "B": [0.95, 0.9]}, index=["1", "2"])
        >>> place_proposals(tree, rows, p)["root/A/c0"]["verdict"], tree["root/A/c0"].placement["category"]
        ('probably mislabelled', 'B')
    """
    placed: dict[str, dict] = {}
    values, columns = probabilities.to_numpy(), np.asarray(probabilities.columns)
    position = probabilities.index.get_indexer(assignments["product_id"].astype(str))  # −1: not scored
    clustered = ~assignments["is_noise"].to_numpy() & (position >= 0)
    leaves, rows = assignments["leaf_id"].to_numpy()[clustered], position[clustered]
    order = np.argsort(leaves, kind="stable")
    found, starts = np.unique(leaves[order], return_index=True)
    by_leaf = dict(zip(found, np.split(rows[order], starts[1:]), strict=True)) if len(found) else {}  # scored rows
    leaf_ids = set(assignments["leaf_id"])  # holds a category's id where a curator put products back there
    for node in tree.nodes.values():
        if node.kind != "proposed":
            continue
        node.placement = None
        own = " > ".join(tree.existing_parent(node.id).path)
        members = [by_leaf[n.id] for n in [node, *tree.descendants(node.id)] if n.id in by_leaf]
        if not members or own not in probabilities.columns:
            continue
        siblings = [c.id for c in tree.children(node.parent) if c.kind == "proposed"]
        # discovery found no split: the category's one proposal, and it holds all its products
        whole = tree[node.parent].kind == "existing" and siblings == [node.id] and node.parent not in leaf_ids
        node.placement = placement(values[np.concatenate(members)], columns, own, confidence, majority, whole)
        placed[node.id] = node.placement
    return placed


def placement(
    values: np.ndarray, columns: np.ndarray, own: str, confidence: float, majority: float, whole: bool = False
) -> dict:
    """The verdict for one proposal's products: `values`, their probabilities (rows) over the
    existing categories `columns`; `whole`: the proposal is the whole of its category."""
    placed = placed_where(values, columns, confidence)
    shares = pd.Series(placed[placed != ""]).value_counts() / len(values)
    elsewhere = shares.drop(own, errors="ignore")
    category = str(elsewhere.idxmax()) if len(elsewhere) else None
    share = float(elsewhere.max()) if len(elsewhere) else 0.0
    mislabelled = share >= majority
    return {
        "verdict": MISLABELLED if mislabelled else WHOLE_CATEGORY if whole else NEW_SUBTYPE,
        "category": category if mislabelled else None,
        "share_elsewhere": round(share, 4),
        "most_likely_elsewhere": category,
        "share_kept": round(float(shares.get(own, 0.0)), 4),
        "products": len(values),
        "confidence": confidence,
    }


def placed_where(values: np.ndarray, columns: np.ndarray, confidence: float) -> np.ndarray:
    """Each row's most likely category where its probability is at least `confidence`, else ""."""
    return np.where(values.max(axis=1) >= confidence, columns[values.argmax(axis=1)], "")


def placed_in(
    assignments: pd.DataFrame, probabilities: pd.DataFrame, node_id: str, category: str, confidence: float
) -> list[str]:
    """The clustered products of proposal `node_id` (and its children) that the classifier
    places in `category` (its most likely, at probability ≥ `confidence`): what a curator
    moves there when the proposal is probably mislabelled.

    Example:
        >>> rows = pd.DataFrame({"product_id": ["1", "2", "3"], "leaf_id": "root/A/c0", "is_noise": False})
        >>> p = pd.DataFrame({"A": [0.05, 0.6, 0.1], "B": [0.95, 0.4, 0.9]}, index=["1", "2", "3"])
        >>> placed_in(rows, p, "root/A/c0", "B", 0.8)
        ['1', '3']
    """
    held = assignments[in_subtree(assignments["leaf_id"], node_id).to_numpy() & ~assignments["is_noise"].to_numpy()]
    ids = held["product_id"].astype(str).to_numpy()
    position = probabilities.index.get_indexer(ids)
    scored = position >= 0
    placed = placed_where(probabilities.to_numpy()[position[scored]], np.asarray(probabilities.columns), confidence)
    return ids[scored][placed == category].tolist()


def short(placement: dict | None, last_name: bool = False) -> str:
    """The verdict in a few words, for a table of proposals ("" where there is none); with
    `last_name`, the other category by its own name only (a narrow column).

    Example:
        >>> mislabelled = {"verdict": MISLABELLED, "category": "Accessories > Watches", "share_elsewhere": 0.82}
        >>> short(mislabelled), short(mislabelled, last_name=True)
        ('mislabelled: 82% Accessories > Watches', 'mislabelled: 82% Watches')
    """
    if placement is None:
        return ""
    if placement["verdict"] == MISLABELLED:
        category = placement["category"].split(" > ")[-1] if last_name else placement["category"]
        return f"{SHORT_MISLABELLED}: {placement['share_elsewhere']:.0%} {category}"
    return "whole category" if placement["verdict"] == WHOLE_CATEGORY else "new subtype"


def describe(placement: dict, own: str) -> str:
    """One sentence for a curator (plain text, category names as written); a share elsewhere
    too small for a whole percent is said as a count, never "at most 0%".

    Example:
        >>> kept = {"verdict": NEW_SUBTYPE, "share_kept": 0.99, "products": 3498, "most_likely_elsewhere": "Flip Flops"}
        >>> describe({**kept, "share_elsewhere": 0.0003}, "Shoes").split("the classifier ")[1]
        'keeps 99% of its products in Shoes and places at most 1 of them in any one other category (Flip Flops).'
        >>> describe({**kept, "share_elsewhere": 0.03}, "Shoes").split("the classifier ")[1]
        'keeps 99% of its products in Shoes and places at most 3% in Flip Flops.'
    """
    if placement["verdict"] == MISLABELLED:
        return (
            f"Probably mislabelled into {own}: the classifier places {placement['share_elsewhere']:.0%} of its "
            f"{placement['products']:,} products in {placement['category']} "
            f"(probability ≥ {placement['confidence']:.2f})."
        )
    kept = f"keeps {placement['share_kept']:.0%} of its products in {own}"
    other = placement["most_likely_elsewhere"]
    share, products = placement["share_elsewhere"], placement["products"]
    if not other:
        rest = ""
    elif share >= 0.005:
        rest = f" and places at most {share:.0%} in {other}"
    else:  # a product or a few: their count
        rest = f" and places at most {max(1, round(share * products)):,} of them in any one other category ({other})"
    if placement["verdict"] == WHOLE_CATEGORY:
        found = f"The whole category, not a subtype: it holds every product of {own}"
        return f"{found}; the classifier {kept}{rest}."
    return f"A candidate new subtype: no existing category claims it; the classifier {kept}{rest}."
