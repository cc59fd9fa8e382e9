"""Split preview: re-run the cascade on one proposal with a stricter setting.

The curator sees the preview and only then records a ``split`` decision, which stores the
resulting membership so that replaying decisions never re-clusters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone

from discover.cluster.exemplars import medoid_exemplars
from discover.cluster.naming import name_siblings
from discover.cluster.stage import build_clusterer, merge_types
from discover.cluster.type_merge import ONE_TYPE
from discover.config import DiscoveryConfig
from discover.errors import DiscoverError
from discover.outputs.run_data import RunData
from discover.tree import in_subtree


@dataclass
class SplitPreview:
    """A proposed split: which product goes to which new child, and each child's description."""

    node: str
    members: dict[str, int]
    names: list[str]
    sizes: list[int]
    unassigned: int
    keywords: list[list[str]] = field(default_factory=list)
    exemplars: list[list[str]] = field(default_factory=list)
    stability: list[float | None] = field(default_factory=list)
    flags: list[list[str]] = field(default_factory=list)

    def payload(self) -> dict:
        """What the ``split`` decision stores: enough to rebuild the children without clustering."""
        return {
            "node": self.node,
            "members": self.members,
            "names": self.names,
            "keywords": self.keywords,
            "exemplars": self.exemplars,
            "stability": self.stability,
            "flags": self.flags,
        }


PREVIEW_EPOCHS = 200  # UMAP's default is 500 below 10,000 rows; a preview the curator judges needs fewer


EXACT_NEIGHBOURS_BELOW = 4096  # UMAP finds neighbours exactly below this many rows, by NN-descent above


def warm_up(largest_node: int = EXACT_NEIGHBOURS_BELOW) -> None:
    """Compile UMAP's and HDBSCAN's numba code on a tiny problem, so that the first preview a
    curator asks for does not wait for the compiler (the explorer calls this in a thread).

    NN-descent, which UMAP uses from `EXACT_NEIGHBOURS_BELOW` rows, is compiled too only when
    a node of the run (`largest_node` products) is that large: it is about 55 of the 80 s on
    2 cores, and a run whose parents are all smaller never needs it.
    """
    X = np.random.default_rng(0).normal(size=(120, 8)).astype(np.float32)
    clusterer = build_clusterer(DiscoveryConfig(), 0)
    clusterer.set_params(min_split_size=4, min_silhouette=-1).fit(X, [("warm",)] * 120)
    if largest_node >= EXACT_NEIGHBOURS_BELOW:
        clone(clusterer.reducer).set_params(force_approximation=True, n_epochs=10).fit(X)


def preview_split(
    run: RunData,
    node_id: str,
    strictness: float = 2.0,
    features: np.ndarray | None = None,
    assignments: pd.DataFrame | None = None,
    progress: Callable[[str], None] = lambda step: None,
    type_view: np.ndarray | None = None,
    by_type: bool = True,
) -> SplitPreview:
    """Cluster one node's products again, with `min_cluster_fraction` divided by `strictness`
    and the linkage merge `strictness` times less eager; no silhouette gate; UMAP runs
    `PREVIEW_EPOCHS` epochs. `progress(step)` is told what is being done.

    With `by_type`, the new clusters that name one type are merged as discovery merges them
    (:func:`discover.cluster.stage.merge_types`, reading the run's known-level words,
    `type_view`, rows as `features`): the photos part a category by colour first, and a preview
    of "Black Belt", "Brown Belt" and "Purple Belt" proposed colours, not subcategories.

    `assignments` are the curated ones (the run's own by default), so a proposal that a
    merge enlarged is split with all its products. Products the new clustering leaves as
    noise join the nearest new child (by neighbour vote), so a split moves every product
    of the node. Children get names, keywords, exemplars and stability like any proposal.
    """
    assignments = run.assignments if assignments is None else assignments
    rows = np.flatnonzero(in_subtree(assignments["leaf_id"], node_id).to_numpy())
    if len(rows) < 4:
        raise DiscoverError(f"{node_id} has {len(rows)} products: too few to split")
    base = build_clusterer(run.config.discovery, run.config.seed)
    clusterer = clone(base).set_params(
        reducer=clone(base.reducer).set_params(n_epochs=PREVIEW_EPOCHS),
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
    if features is None:
        progress("Loading the run's features")
        features, type_view = run.features_and_type_view()
    X = features[rows]
    ids = assignments["product_id"].to_numpy()[rows]
    progress(f"Clustering {len(rows):,} products (PCA, UMAP, HDBSCAN)")
    model = clusterer.fit(X, [("node",)] * len(rows), ids.tolist())
    titles = run.catalog["title"].fillna("").to_numpy()[rows]
    leaf, noise = np.asarray(model.leaf_, dtype=object), model.is_noise_
    split = model.tree_["root/node"].split
    if by_type and split == "split":
        progress("Merging the clusters that name one type")
        view = None if type_view is None else type_view[rows]
        _, leaf, noise, _ = merge_types(
            model.tree_,
            model.labels_,
            leaf,
            noise,
            model.probability_,
            view,
            pd.Series(titles),
            run.known_words,
            run.config.discovery,
        )
        split = model.tree_["root/node"].split
    children = [n for n in model.tree_.children("root/node")]
    if len(children) < 2:
        why = split.removeprefix("not split: ") if split.startswith(ONE_TYPE) else "the data holds no split"
        raise DiscoverError(f"{node_id}: even with strictness {strictness}, {why}")
    index = {child.id: i for i, child in enumerate(children)}
    members = {str(pid): index[one] for pid, one in zip(ids, leaf, strict=True) if one in index}
    progress(f"Naming {len(children)} new proposals")
    groups = [titles[leaf == child.id].tolist() for child in children]
    category = run.tree[assignments["parent_id"].iloc[rows[0]]].name  # a curated node may be new to run.tree
    named = name_siblings(groups, run.config.discovery.keywords, run.known_words, category)
    clustered = ~noise
    exemplars = [
        medoid_exemplars(X[(leaf == c.id) & clustered], ids[(leaf == c.id) & clustered], run.config.discovery.exemplars)
        for c in children
    ]
    return SplitPreview(
        node_id,
        members,
        [n.name for n in named],
        [len(g) for g in groups],
        int(model.is_noise_.sum()),
        keywords=[n.keywords for n in named],
        flags=[n.flags for n in named],
        exemplars=exemplars,
        stability=[c.stability for c in children],
    )
