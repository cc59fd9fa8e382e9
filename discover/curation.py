"""Curator decisions, stored in SQLite, applied to a run's tree and assignments.

Decisions are kept per run id and node id. A run id is derived from the config, features
and catalog (see :func:`discover.pipeline.default_run_id`) and node ids are paths, so a
re-run of the same config finds the same nodes and the decisions re-attach. Applying is
pure: the run's own files are never changed; the curated tree is computed on demand.

Actions (payload fields):
- ``rename`` (node, name)
- ``merge`` (into, node): `node`'s products join `into`; `node` and its subtree go away
- ``split`` (node, members: {product_id: child index}, names): new children ``<node>/s<k>``
- ``reject`` (node): the node and its subtree go away; its products return to the parent
- ``move`` (products, target): products become members of `target`
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from discover.errors import DiscoverError
from discover.tree import Node, SubcategoryTree, in_subtree

ACTIONS = ("rename", "merge", "split", "reject", "move")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
)
"""


@dataclass(frozen=True)
class Decision:
    id: int
    run_id: str
    action: str
    payload: dict[str, Any]
    comment: str
    created_at: float

    def describe(self) -> str:
        p = self.payload
        text = {
            "rename": lambda: f"renamed {p['node']} to “{p['name']}”",
            "merge": lambda: f"merged {p['node']} into {p['into']}",
            "split": lambda: f"split {p['node']} into {len(set(p['members'].values()))}",
            "reject": lambda: f"rejected {p['node']}",
            "move": lambda: f"moved {len(p['products'])} products to {p['target']}",
        }[self.action]()
        return text + (f" — {self.comment}" if self.comment else "")


class CurationStore:
    """The decisions of every run in one SQLite file (``workspace/curation.sqlite``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as connection:
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, run_id: str, action: str, payload: dict[str, Any], comment: str = "") -> Decision:
        if action not in ACTIONS:
            raise DiscoverError(f"unknown curation action {action!r}; one of {', '.join(ACTIONS)}")
        created = time.time()
        with self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO decisions (run_id, action, payload, comment, created_at) VALUES (?, ?, ?, ?, ?)",
                (run_id, action, json.dumps(payload, sort_keys=True), comment, created),
            )
        return Decision(int(cursor.lastrowid), run_id, action, payload, comment, created)

    def decisions(self, run_id: str) -> list[Decision]:
        """Active (not undone) decisions of a run, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT id, run_id, action, payload, comment, created_at FROM decisions "
                "WHERE run_id = ? AND undone = 0 ORDER BY id",
                (run_id,),
            ).fetchall()
        return [Decision(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def undo(self, run_id: str) -> Decision | None:
        """Withdraw the last active decision of a run; return it (None if there was none)."""
        active = self.decisions(run_id)
        if not active:
            return None
        with self._connect() as connection:
            connection.execute("UPDATE decisions SET undone = 1 WHERE id = ?", (active[-1].id,))
        return active[-1]


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
        for rank, name in enumerate(p["names"], start=1):
            tree.add(Node(f"{node.id}/s{rank}", node.id, "proposed", name))
        members = assignments["product_id"].map(p["members"])
        chosen = members.notna()
        child_ids = node.id + "/s" + members[chosen].astype(int).add(1).astype(str)
        assignments.loc[chosen, "node_id"] = child_ids
        assignments.loc[chosen, "leaf_id"] = child_ids
        assignments.loc[chosen, "is_noise"] = False
    elif decision.action == "reject":
        node = _require(tree, p["node"])
        back = in_subtree(nodes, node.id) | in_subtree(leaves, node.id)
        assignments.loc[back, ["node_id", "leaf_id"]] = node.parent
        _remove_subtree(tree, node.id)
    elif decision.action == "move":
        target = _require(tree, p["target"], proposed=False)
        chosen = assignments["product_id"].isin(p["products"])
        assignments.loc[chosen, ["node_id", "leaf_id"]] = target.id
        assignments.loc[chosen, "is_noise"] = False


def _refresh(tree: SubcategoryTree, assignments: pd.DataFrame) -> None:
    """Recompute paths and sizes after decisions changed the structure."""
    counts = assignments["leaf_id"].value_counts()
    for node in sorted(tree.nodes.values(), key=lambda n: n.id.count("/")):
        if node.kind == "proposed":
            node.path = [*tree[node.parent].path, node.name]
    for node in sorted(tree.nodes.values(), key=lambda n: -n.id.count("/")):
        if node.kind != "root":
            node.size = int(counts.get(node.id, 0)) + sum(tree[c].size for c in node.children)


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
    _refresh(curated, rows)
    rows["proposed_path"] = [" > ".join(curated[n].path) if n in curated else "" for n in rows["leaf_id"]]
    return curated, rows, skipped


def taxonomy_diff(original: SubcategoryTree, curated: SubcategoryTree, decisions: list[Decision]) -> dict[str, Any]:
    """What changed against the original taxonomy: what a curator hands to the catalog team."""
    new = [
        {"id": n.id, "path": n.path, "size": n.size, "keywords": n.keywords}
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
    return {
        "new": new,
        "renamed": sorted(renamed, key=lambda r: r["id"]),
        "merged": by_action["merge"],
        "split": by_action["split"],
        "rejected": by_action["reject"],
        "moved": by_action["move"],
    }
