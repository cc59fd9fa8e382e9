"""The discover stage: cascade clustering inside existing categories, names, exemplars, coords."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from discover.cascade import CascadeClusterer, ParentTiming
from discover.config import DiscoveryConfig
from discover.naming import name_siblings
from discover.reduce import UmapReducer
from discover.tree import SubcategoryTree, in_subtree

log = logging.getLogger(__name__)


@dataclass
class Discovery:
    """A proposed tree, one assignment row per product, and 2-D coordinates for plots."""

    tree: SubcategoryTree
    assignments: pd.DataFrame
    coords: pd.DataFrame
    timings: list[ParentTiming]


def level_columns(catalog: pd.DataFrame, level: int) -> list[str]:
    available = sorted((c for c in catalog.columns if c.startswith("level_")), key=lambda c: int(c.split("_")[1]))
    return available[: min(level, len(available))]


def build_clusterer(config: DiscoveryConfig, seed: int, progress: bool = False) -> CascadeClusterer:
    return CascadeClusterer(
        n_components=config.umap.n_components,
        n_neighbors=config.umap.n_neighbors,
        min_dist=config.umap.min_dist,
        metric=config.umap.metric,
        pca_components=config.umap.pca_components,
        min_cluster_fraction=config.hdbscan.min_cluster_fraction,
        min_cluster_size_floor=config.hdbscan.min_cluster_size_floor,
        min_samples=config.hdbscan.min_samples,
        selection=config.hdbscan.selection,
        max_depth=config.cascade.max_depth,
        min_split_size=config.cascade.min_split_size,
        max_noise_fraction=config.cascade.max_noise_fraction,
        min_silhouette=config.cascade.min_silhouette,
        merge_threshold=config.cascade.merge_threshold,
        min_parent_size=config.min_parent_size,
        exemplars=config.exemplars,
        random_state=seed,
        progress=progress,
    )


def name_tree(tree: SubcategoryTree, leaf_by_product: pd.Series, titles: pd.Series, keywords: int) -> None:
    """Name every group of sibling proposals from the titles under each sibling."""
    for node in list(tree.nodes.values()):
        children = [c for c in tree.children(node.id) if c.kind == "proposed"]
        if not children:
            continue
        groups = []
        for child in children:
            inside = in_subtree(leaf_by_product, child.id)
            groups.append(titles[inside.to_numpy()].tolist())
        for child, (name, terms) in zip(children, name_siblings(groups, keywords), strict=True):
            child.name, child.keywords = name, terms
    for node in tree.nodes.values():
        if node.kind == "proposed":
            parent = tree[node.parent]
            node.path = [*parent.path, node.name]


def plot_coordinates(X: np.ndarray, parent_ids: np.ndarray, config: DiscoveryConfig, seed: int) -> np.ndarray:
    """2-D UMAP per existing parent, for the report and the explorer."""
    coords = np.zeros((len(X), 2), dtype=np.float32)
    for parent in np.unique(parent_ids):
        rows = np.flatnonzero(parent_ids == parent)
        reducer = UmapReducer(
            2,
            config.umap.n_neighbors,
            0.1,
            config.umap.metric,
            config.umap.pca_components,
            n_epochs=200,
            random_state=seed,
        )
        reduced = reducer.fit_transform(X[rows])
        coords[rows, : reduced.shape[1]] = reduced[:, :2]
    return coords


def discover(
    X: np.ndarray, catalog: pd.DataFrame, config: DiscoveryConfig, seed: int, progress: bool = False
) -> Discovery:
    """Propose subcategories inside every existing node at `config.level`."""
    started = time.perf_counter()
    levels = level_columns(catalog, config.level)
    parents = list(catalog[levels].itertuples(index=False, name=None))
    model = build_clusterer(config, seed, progress).fit(X, parents, catalog["product_id"].tolist())
    tree = model.tree_
    leaf = pd.Series(model.leaf_, index=catalog.index)
    name_tree(tree, leaf, catalog["title"].fillna(""), config.keywords)
    parent_ids = np.array(["root/" + "/".join(p) for p in parents], dtype=object)
    assignments = pd.DataFrame(
        {
            "product_id": catalog["product_id"].to_numpy(),
            "parent_id": parent_ids,
            "node_id": model.labels_,
            "leaf_id": model.leaf_,
            "proposed_path": [" > ".join(tree[n].path) for n in model.leaf_],
            "probability": model.probability_.astype(np.float32),
            "is_noise": model.is_noise_,
        }
    )
    log.info("discover: clustering and naming took %.1f s", time.perf_counter() - started)
    plot_started = time.perf_counter()
    xy = plot_coordinates(X, parent_ids, config, seed)
    coords = pd.DataFrame({"product_id": assignments["product_id"], "x": xy[:, 0], "y": xy[:, 1]})
    log.info("discover: 2-D coordinates took %.1f s", time.perf_counter() - plot_started)
    return Discovery(tree, assignments, coords, model.timings_)
