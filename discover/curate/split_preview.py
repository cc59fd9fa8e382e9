"""Split preview: re-run the cascade on one proposal with a stricter setting.

The curator sees the preview and only then records a ``split`` decision, which stores the
resulting membership so that replaying decisions never re-clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import clone

from discover.cluster.naming import name_siblings
from discover.cluster.stage import build_clusterer
from discover.errors import DiscoverError
from discover.outputs.run_data import RunData
from discover.tree import in_subtree


@dataclass
class SplitPreview:
    node: str
    members: dict[str, int]
    names: list[str]
    sizes: list[int]
    unassigned: int

    def payload(self) -> dict:
        return {"node": self.node, "members": self.members, "names": self.names}


def preview_split(
    run: RunData, node_id: str, strictness: float = 2.0, features: np.ndarray | None = None
) -> SplitPreview:
    """Cluster one node's products again, with `min_cluster_fraction` divided by `strictness`
    and the linkage merge `strictness` times less eager; no silhouette gate.

    Products the new clustering leaves as noise join the nearest new child (by neighbour
    vote), so a split moves every product of the node.
    """
    rows = np.flatnonzero(in_subtree(run.assignments["leaf_id"], node_id).to_numpy())
    if len(rows) < 4:
        raise DiscoverError(f"{node_id} has {len(rows)} products: too few to split")
    base = build_clusterer(run.config.discovery, run.config.seed)
    clusterer = clone(base).set_params(
        max_depth=1,
        min_parent_size=2,
        min_split_size=4,
        min_cluster_fraction=base.min_cluster_fraction / strictness,
        min_cluster_size_floor=max(3, base.min_cluster_size_floor // 2),
        max_noise_fraction=1.0,
        # the curator judges the preview, so the automatic gates are relaxed
        min_silhouette=-1.0,
        merge_threshold=min(1.0, base.merge_threshold * strictness),
    )
    X = (features if features is not None else run.features())[rows]
    ids = run.assignments["product_id"].to_numpy()[rows]
    model = clusterer.fit(X, [("node",)] * len(rows), ids.tolist())
    children = sorted({leaf for leaf in model.leaf_ if leaf != "root/node"})
    if len(children) < 2:
        raise DiscoverError(f"{node_id}: even with strictness {strictness} the data holds no split")
    index = {leaf: i for i, leaf in enumerate(children)}
    members = {str(pid): index[leaf] for pid, leaf in zip(ids, model.leaf_, strict=True) if leaf in index}
    titles = run.catalog["title"].to_numpy()[rows]
    groups = [[t for t, leaf in zip(titles, model.leaf_, strict=True) if leaf == child] for child in children]
    names = [name for name, _ in name_siblings(groups)]
    sizes = [len(g) for g in groups]
    return SplitPreview(node_id, members, names, sizes, int(model.is_noise_.sum()))
