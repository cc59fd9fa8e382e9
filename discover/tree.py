"""The SubcategoryTree data model: existing taxonomy nodes and proposed subcategories.

Node ids are paths, so they are stable across re-runs of the same config and data:
existing nodes are ``root/<level 1>/<level 2>`` and proposals append ``/c<k>``, where
children are numbered by size (largest first, ties broken by their smallest product id).
The JSON form is versioned (``schema_version``) and written with sorted keys and rounded
floats, so the same run gives byte-identical files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import pandas as pd

SCHEMA_VERSION = 1
ROOT_ID = "root"


def id_segment(name: str) -> str:
    """A category name as one segment of a node id: ``/`` (and ``%``) percent-encoded, so a
    name such as "Tops/Tees" never collides with the path "Tops" > "Tees".

    Example:
        >>> id_segment("Tops/Tees"), id_segment("100% Cotton")
        ('Tops%2FTees', '100%25 Cotton')
    """
    return name.replace("%", "%25").replace("/", "%2F")


def existing_id(levels: Sequence[str]) -> str:
    """The node id of an existing category path, e.g. ``("Apparel", "Topwear")`` → ``root/Apparel/Topwear``."""
    return "/".join([ROOT_ID, *(id_segment(level) for level in levels)])


def level_columns(catalog: pd.DataFrame, level: int) -> list[str]:
    """The catalog's ``level_<i>`` columns down to `level`, root first."""
    available = sorted((c for c in catalog.columns if c.startswith("level_")), key=lambda c: int(c.split("_")[1]))
    return available[: min(level, len(available))]


def category_paths(catalog: pd.DataFrame, level: int) -> list[tuple[str, ...]]:
    """Each row's existing category path cut at `level`; a shorter path stays as it is."""
    rows = catalog[level_columns(catalog, level)].itertuples(index=False, name=None)
    return [tuple(name for name in row if name) for row in rows]


def known_labels(catalog: pd.DataFrame, level: int) -> list[str]:
    """The finest category each product is known to have: its path at `level`, extended by
    its ``known_leaf`` where the catalog has one (protocol B). The hidden truth is never read."""
    paths = [" > ".join(path) for path in category_paths(catalog, level)]
    if "known_leaf" not in catalog.columns:
        return paths
    leaves = catalog["known_leaf"].fillna("").astype(str).tolist()
    return [f"{path} > {leaf}" if leaf else path for path, leaf in zip(paths, leaves, strict=True)]


@dataclass
class Node:
    """One node. `kind` says whether it is part of the existing taxonomy or a proposal.

    Attributes:
        id: stable path id. parent: the parent's id (None for the root).
        path: names from the root's child down to this node.
        name: short display name. keywords: distinctive title terms (c-TF-IDF).
        size: products under this node, noise included. exemplars: product ids near the medoid.
        stability: HDBSCAN persistence of the cluster (proposals only).
        split: why the node was or was not split further ("split", "not split: …").
        flags: warnings a curator should see first (e.g. "brand-dominated: 92% “Nike”").
        metrics: scores against the truth column at this node (existing parents only).
        placement: new subtype or mislabelled? (proposals, after ``discover classify place-proposals``).
    """

    id: str
    parent: str | None
    kind: Literal["root", "existing", "proposed"]
    name: str
    path: list[str] = field(default_factory=list)
    size: int = 0
    keywords: list[str] = field(default_factory=list)
    exemplars: list[str] = field(default_factory=list)
    stability: float | None = None
    split: str = ""
    flags: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    placement: dict[str, Any] | None = None


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


class SubcategoryTree:
    """Nodes by id, rooted at ``root``; leaves under existing parents are the proposals."""

    def __init__(self, nodes: dict[str, Node] | None = None, meta: dict[str, Any] | None = None) -> None:
        self.nodes: dict[str, Node] = nodes or {ROOT_ID: Node(ROOT_ID, None, "root", "root")}
        self.meta: dict[str, Any] = meta or {}

    def __getitem__(self, node_id: str) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: str) -> bool:
        return node_id in self.nodes

    def add(self, node: Node) -> Node:
        if node.id in self.nodes:
            raise ValueError(f"duplicate node id {node.id}")
        self.nodes[node.id] = node
        if node.parent is not None:
            self.nodes[node.parent].children.append(node.id)
        return node

    def reorder_depth_first(self) -> None:
        """Order the nodes as a depth-first walk along each node's children (the order the
        sequential cascade creates them in), whatever order they were added in."""
        ordered, stack = {}, [ROOT_ID]
        while stack:
            node = self.nodes[stack.pop()]
            ordered[node.id] = node
            stack.extend(reversed(node.children))
        ordered.update({k: v for k, v in self.nodes.items() if k not in ordered})
        self.nodes = ordered

    def ensure_existing(self, levels: list[str]) -> Node:
        """The existing-taxonomy node for a path of level names, created on first use."""
        parent = self.nodes[ROOT_ID]
        for depth in range(1, len(levels) + 1):
            node_id = parent.id + "/" + id_segment(levels[depth - 1])
            if node_id not in self.nodes:
                self.add(Node(node_id, parent.id, "existing", levels[depth - 1], path=list(levels[:depth])))
            parent = self.nodes[node_id]
        return parent

    def children(self, node_id: str) -> list[Node]:
        return [self.nodes[c] for c in self.nodes[node_id].children]

    def descendants(self, node_id: str) -> list[Node]:
        out, stack = [], list(reversed(self.nodes[node_id].children))
        while stack:
            node = self.nodes[stack.pop()]
            out.append(node)
            stack.extend(reversed(node.children))
        return out

    def leaves(self, node_id: str = ROOT_ID) -> list[Node]:
        return [n for n in self.descendants(node_id) if not n.children]

    def proposals(self, parent_id: str | None = None) -> list[Node]:
        """Proposed nodes (all, or those under one existing parent)."""
        scope = self.descendants(parent_id) if parent_id else self.nodes.values()
        return [n for n in scope if n.kind == "proposed"]

    def parents_with_proposals(self) -> list[Node]:
        return [
            n
            for n in self.nodes.values()
            if n.kind == "existing" and any(self.nodes[c].kind == "proposed" for c in n.children)
        ]

    def existing_parent(self, node_id: str) -> Node:
        node = self.nodes[node_id]
        while node.kind == "proposed":
            node = self.nodes[node.parent]
        return node

    def recount_sizes(self, leaf_ids: pd.Series) -> None:
        """Set every node's size: products whose most likely leaf is the node or lies below it.

        `leaf_ids` holds one leaf id per product (noise included, at its most likely leaf),
        so a proposal's size is what a curator finds inside it, before and after curation.
        """
        counts = leaf_ids.value_counts()
        for node in sorted(self.nodes.values(), key=lambda n: -n.id.count("/")):
            if node.kind != "root":
                node.size = int(counts.get(node.id, 0)) + sum(self.nodes[c].size for c in node.children)

    def refresh_paths(self) -> None:
        """Recompute each proposal's path from its parent's path and its own (new) name."""
        for node in sorted(self.nodes.values(), key=lambda n: n.id.count("/")):
            if node.kind == "proposed":
                node.path = [*self.nodes[node.parent].path, node.name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "meta": _rounded(self.meta),
            "nodes": [_rounded(asdict(n)) for n in sorted(self.nodes.values(), key=lambda n: n.id)],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> SubcategoryTree:
        version = payload.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"tree schema_version {version} is not supported (expected {SCHEMA_VERSION})")
        nodes = {n["id"]: Node(**n) for n in payload["nodes"]}
        return cls(nodes, payload.get("meta", {}))

    @classmethod
    def from_json(cls, text: str) -> SubcategoryTree:
        return cls.from_dict(json.loads(text))

    def copy(self) -> SubcategoryTree:
        return SubcategoryTree.from_dict(json.loads(self.to_json()))


def in_subtree(node_ids: pd.Series, node_id: str) -> pd.Series:
    """True where a node id is `node_id` or lies below it (ids are slash-separated paths)."""
    return (node_ids == node_id) | node_ids.str.startswith(node_id + "/")
