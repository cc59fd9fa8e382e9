"""Applying curator decisions to a copy of a run's tree and assignments.

Pure: the run's own files never change. A decision that no longer applies (its node is
gone after an earlier decision, or after a re-run) is skipped and named, never fatal.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from discover.classify.placement import short
from discover.cluster.title_types import without_mixed
from discover.curate.store import Decision
from discover.errors import DiscoverError
from discover.tree import Node, SubcategoryTree, in_subtree


def _remove_subtree(tree: SubcategoryTree, node_id: str) -> None:
    node = tree[node_id]
    for gone in [node, *tree.descendants(node_id)]:
        tree.nodes.pop(gone.id, None)
    tree[node.parent].children.remove(node_id)


def _require(tree: SubcategoryTree, node_id: str, proposed: bool = True) -> Node:
    if node_id not in tree:
        raise DiscoverError(f"node {node_id} does not exist (any more) in this run")
    node = tree[node_id]
    if proposed and node.kind != "proposed":
        raise DiscoverError(f"node {node_id} is part of the existing taxonomy, not a proposal")
    return node


def _apply_one(tree: SubcategoryTree, assignments: pd.DataFrame, decision: Decision) -> None:
    p = decision.payload
    nodes, leaves = assignments["node_id"], assignments["leaf_id"]
    if decision.action == "rename":
        _require(tree, p["node"]).name = p["name"]
    elif decision.action == "merge":
        into, node = _require(tree, p["into"]), _require(tree, p["node"])
        if tree.existing_parent(into.id).id != tree.existing_parent(node.id).id:
            raise DiscoverError("only proposals under the same existing category can be merged")
        moved = in_subtree(nodes, node.id) | in_subtree(leaves, node.id)
        assignments.loc[moved, ["node_id", "leaf_id"]] = into.id
        into.keywords = list(dict.fromkeys(into.keywords + node.keywords))[:12]
        _remove_subtree(tree, node.id)
    elif decision.action == "split":
        node = _require(tree, p["node"], proposed=False)
        node.flags = without_mixed(node.flags)  # its new children part its types
        for child in [c for c in tree.children(node.id) if c.kind == "proposed"]:
            _remove_subtree(tree, child.id)  # the preview re-clustered their products: its children replace them
        for column in ("node_id", "leaf_id"):  # whatever pointed below the node points at it until placed
            assignments.loc[assignments[column].str.startswith(node.id + "/"), column] = node.id
        for rank, name in enumerate(p["names"], start=1):
            child = tree.add(Node(f"{node.id}/s{rank}", node.id, "proposed", name))
            child.keywords = list(p.get("keywords", [[]] * rank)[rank - 1])  # older split decisions lack them
            child.exemplars = list(p.get("exemplars", [[]] * rank)[rank - 1])
            child.stability = p.get("stability", [None] * rank)[rank - 1]
            child.flags = list(p.get("flags", [[]] * rank)[rank - 1])
        members = assignments["product_id"].map(p["members"])
        chosen = members.notna()
        child_ids = node.id + "/s" + members[chosen].astype(int).add(1).astype(str)
        assignments.loc[chosen, "node_id"] = child_ids
        assignments.loc[chosen, "leaf_id"] = child_ids
        assignments.loc[chosen, "is_noise"] = False
    elif decision.action == "reject":
        _reject(tree, assignments, _require(tree, p["node"]))
    elif decision.action == "move":
        target = _require(tree, p["target"], proposed=False)
        chosen = assignments["product_id"].isin(p["products"])
        assignments.loc[chosen, ["node_id", "leaf_id"]] = target.id
        assignments.loc[chosen, "parent_id"] = tree.existing_parent(target.id).id  # a move may change category
        assignments.loc[chosen, "is_noise"] = False
        if p.get("reject") in tree:  # the proposal the products left, judged mislabelled: what stays goes home
            _reject(tree, assignments, tree[p["reject"]])


def _reject(tree: SubcategoryTree, assignments: pd.DataFrame, node: Node) -> None:
    """Remove a proposal; its products return to the node above it."""
    back = in_subtree(assignments["node_id"], node.id) | in_subtree(assignments["leaf_id"], node.id)
    assignments.loc[back, ["node_id", "leaf_id"]] = node.parent
    _remove_subtree(tree, node.id)


def apply_decisions(
    tree: SubcategoryTree, assignments: pd.DataFrame, decisions: Iterable[Decision]
) -> tuple[SubcategoryTree, pd.DataFrame, list[str]]:
    """The curated tree and assignments; decisions that no longer apply are skipped and named."""
    curated, rows = tree.copy(), assignments.copy()
    skipped = []
    for decision in decisions:
        try:
            _apply_one(curated, rows, decision)
        except DiscoverError as error:
            skipped.append(f"decision {decision.id} ({decision.action}): {error}")
    curated.refresh_paths()
    curated.recount_sizes(rows["leaf_id"])
    rows["proposed_path"] = [" > ".join(curated[n].path) if n in curated else "" for n in rows["leaf_id"]]
    return curated, rows, skipped


def taxonomy_diff(original: SubcategoryTree, curated: SubcategoryTree, decisions: list[Decision]) -> dict[str, Any]:
    """What changed against the original taxonomy: what a curator hands to the catalog team."""
    new = [
        {"id": n.id, "path": n.path, "size": n.size, "keywords": n.keywords, "verdict": short(n.placement)}
        for n in sorted(curated.proposals(), key=lambda n: n.id)
    ]
    renamed = [
        {"id": n.id, "from": original[n.id].name, "to": n.name}
        for n in curated.proposals()
        if n.id in original and original[n.id].name != n.name
    ]
    by_action: dict[str, list[dict[str, Any]]] = {a: [] for a in ("merge", "split", "reject", "move")}
    for d in decisions:
        if d.action in by_action:
            entry = {k: v for k, v in d.payload.items() if k != "members"}
            by_action[d.action].append({**entry, "comment": d.comment})
        if d.action == "move" and d.payload.get("reject"):  # a mislabelled proposal moved, and what stayed of it
            by_action["reject"].append({"node": d.payload["reject"], "comment": d.comment})
    return {
        "new": new,
        "renamed": sorted(renamed, key=lambda r: r["id"]),
        "merged": by_action["merge"],
        "split": by_action["split"],
        "rejected": by_action["reject"],
        "moved": by_action["move"],
    }
