"""The discover stage: cascade clustering inside existing categories, then names,
exemplars and 2-D coordinates for plots, for every product of a catalog."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from discover.cluster.cascade import CascadeClusterer, default_clusterer
from discover.cluster.exemplars import add_exemplars
from discover.cluster.ignore import Removal, remove_attributes
from discover.cluster.naming import name_from_children, name_siblings
from discover.cluster.reduce import UmapReducer
from discover.cluster.title_types import whole_category_flags, without_mixed
from discover.cluster.type_merge import merge_same_name, merge_same_type, one_type_left_whole
from discover.config import DiscoveryConfig
from discover.engine import ordered_map
from discover.tree import Node, SubcategoryTree, category_paths, existing_id, in_subtree
from discover.words import WordConcentration, known_words, words

log = logging.getLogger(__name__)

NAME_MERGE_ROUNDS = 3


@dataclass
class Proposals:
    """A proposed tree, one assignment row per product, and 2-D coordinates for plots."""

    tree: SubcategoryTree
    assignments: pd.DataFrame
    coords: pd.DataFrame
    removals: list[Removal] = field(default_factory=list)


def build_clusterer(
    config: DiscoveryConfig, seed: int, progress: bool = False, engine: str = "local"
) -> CascadeClusterer:
    """The cascade a config describes: UMAP reducer and HDBSCAN clusterer from their sections."""
    umap = config.umap.model_dump(exclude={"pca_components"})
    return CascadeClusterer(
        reducer=UmapReducer(**umap, random_state=seed),
        clusterer=default_clusterer(config.hdbscan.min_samples, config.hdbscan.selection),
        pca_components=config.umap.pca_components,
        min_cluster_fraction=config.hdbscan.min_cluster_fraction,
        min_cluster_size_floor=config.hdbscan.min_cluster_size_floor,
        metric=config.umap.metric,
        min_parent_size=config.min_parent_size,
        random_state=seed,
        progress=progress,
        n_jobs=config.n_jobs,
        engine=engine,
        **config.cascade.model_dump(),
    )


def name_tree(
    tree: SubcategoryTree,
    leaf_by_product: pd.Series,
    titles: pd.Series,
    keywords: int,
    known: WordConcentration | None = None,
    beyond_category: bool = True,
) -> None:
    """Name every group of sibling proposals from the titles under each sibling, saying more
    than their existing category's name (unless `beyond_category` is False: the titles' own
    names, which the name merge reads), then every proposal that holds proposals after them
    (:func:`name_parent`), deepest first."""
    parents = []
    for node in list(tree.nodes.values()):
        children = [c for c in tree.children(node.id) if c.kind == "proposed"]
        if not children:
            continue
        groups = [titles[in_subtree(leaf_by_product, child.id).to_numpy()].tolist() for child in children]
        category = tree.existing_parent(node.id).name if beyond_category else ""
        for child, named in zip(children, name_siblings(groups, keywords, known, category), strict=True):
            child.name, child.keywords, child.flags = named.name, named.keywords, named.flags
            if any(c.kind == "proposed" for c in tree.children(child.id)):  # its children already part its types
                child.flags = without_mixed(child.flags)
        if node.kind == "proposed":
            parents.append((node, children, groups))
    for node, children, groups in sorted(parents, key=lambda p: -p[0].id.count("/")):
        name_parent(tree, node, children, groups)
    tree.refresh_paths()


def flag_whole_categories(
    tree: SubcategoryTree,
    leaf_by_product: pd.Series,
    titles: pd.Series,
    known: WordConcentration | None,
    smallest: int,
) -> None:
    """Give each category discovery left whole the "mixed titles" flag its titles earn, as a
    leaf proposal has it (:func:`discover.cluster.title_types.mixed_flags`): a category of
    several types that no split parted is where a curator's split helps most, and without
    a truth column nothing else says which one it is. One of fewer products than `smallest`
    (the smallest proposal discovery makes) is not worth a split: three products of three
    types are not flagged."""
    for node in tree.nodes.values():
        if node.kind == "existing" and node.split.startswith("not split") and not node.children:
            said = titles[(leaf_by_product == node.id).to_numpy()]
            node.flags = whole_category_flags([words(t) for t in said], known, smallest)


def name_parent(tree: SubcategoryTree, node: Node, children: list[Node], titles: list[list[str]]) -> None:
    """Name a proposal after its child proposals (largest first; `titles` are theirs), unless
    they are all kinds of it (:func:`discover.cluster.naming.name_from_children`); a name a
    sibling holds is not taken."""
    order = sorted(range(len(children)), key=lambda i: -len(titles[i]))
    name = name_from_children(node.name, [children[i].name for i in order], [titles[i] for i in order])
    if name not in {s.name for s in tree.children(node.parent) if s.id != node.id}:
        node.name = name


def merge_types(
    tree: SubcategoryTree,
    labels: np.ndarray,
    leaves: np.ndarray,
    noise: np.ndarray,
    probability: np.ndarray,
    type_view: np.ndarray | None,
    titles: pd.Series,
    known: WordConcentration,
    config: DiscoveryConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge the leaf proposals of one type that the photos split apart (by colour, mostly):
    those whose titles' type words point one way (``type_merge``, with a `type_view`), then
    those whose names say one type (``name_merge``); a category left with one proposal is
    left whole. Rows of `labels`, `leaves`, `noise`, `probability` and `titles` align; all
    four arrays come back as the merges left them, `tree` is changed in place."""
    if type_view is not None and config.type_merge > 0:
        labels, leaves, _ = merge_same_type(tree, labels, leaves, noise, type_view, config.type_merge)
    # the merges read the titles' own names: two clusters both called after their category
    # ("Belt", "Belts") are one type; only the final names must say more than the category
    name_tree(tree, pd.Series(leaves, index=titles.index), titles, config.keywords, known, beyond_category=False)
    for _ in range(NAME_MERGE_ROUNDS if config.name_merge else 0):  # new names can say one type again
        labels, leaves, merged = merge_same_name(tree, labels, leaves, known, config.name_merge)
        if not merged:
            break
        name_tree(tree, pd.Series(leaves, index=titles.index), titles, config.keywords, known, beyond_category=False)
    labels, leaves, noise, probability, _ = one_type_left_whole(tree, labels, leaves, noise, probability)
    return labels, leaves, noise, probability


def plot_coordinates(
    X: np.ndarray, parent_ids: np.ndarray, config: DiscoveryConfig, seed: int, engine: str = "local"
) -> np.ndarray:
    """2-D UMAP per existing parent, for the report and the explorer; parents in parallel
    (`config.n_jobs` processes, or Ray tasks), each on one BLAS thread, so the result never
    depends on either."""
    coords = np.zeros((len(X), 2), dtype=np.float32)
    groups = [np.flatnonzero(parent_ids == parent) for parent in np.unique(parent_ids)]
    groups.sort(key=len, reverse=True)  # largest first keeps the workers busy
    jobs = ((X[rows], config, seed) for rows in groups)
    for rows, reduced in zip(groups, ordered_map(_coordinates, jobs, engine, config.n_jobs), strict=True):
        coords[rows, : reduced.shape[1]] = reduced[:, :2]
    return coords


def _coordinates(X: np.ndarray, config: DiscoveryConfig, seed: int) -> np.ndarray:
    umap = config.umap
    reducer = UmapReducer(2, umap.n_neighbors, 0.1, umap.metric, umap.pca_components, n_epochs=200, random_state=seed)
    with threadpool_limits(limits=1):
        return reducer.fit_transform(X)


def propose_subcategories(
    X: np.ndarray,
    catalog: pd.DataFrame,
    config: DiscoveryConfig,
    seed: int,
    progress: bool = False,
    coordinates: bool = True,
    known: WordConcentration | None = None,
    engine: str = "local",
    type_view: np.ndarray | None = None,
) -> Proposals:
    """Propose subcategories inside every existing node at `config.level` (and 2-D plot
    coordinates unless `coordinates` is False). Names weigh words by `known`, by default
    learnt from `catalog`'s own known levels. `engine` "ray" runs the parents as Ray tasks
    on the connected cluster (:func:`discover.engine.engine_session`). With a `type_view`
    (rows as `X`: the known-level words), leaf proposals of one type are merged
    (``discovery.type_merge``, :mod:`discover.cluster.type_merge`); then those whose names
    say one type (``discovery.name_merge``), and the rest renamed, each final name saying
    more than its category's (:func:`discover.cluster.phrases.ranked_phrases`)."""
    started = time.perf_counter()
    X, removals = remove_attributes(X, catalog, config.ignore, seed)
    parents = category_paths(catalog, config.level)
    ids = catalog["product_id"].to_numpy()
    model = build_clusterer(config, seed, progress, engine).fit(X, parents, ids.tolist())
    tree, labels, leaves = model.tree_, model.labels_, model.leaf_
    known = known or known_words(catalog, config.level)
    titles = catalog["title"].fillna("")
    labels, leaves, noise, probability = merge_types(
        tree, labels, leaves, model.is_noise_, model.probability_, type_view, titles, known, config
    )
    name_tree(tree, pd.Series(leaves, index=catalog.index), titles, config.keywords, known)
    smallest = config.hdbscan.min_cluster_size_floor
    flag_whole_categories(tree, pd.Series(leaves, index=catalog.index), titles, known, smallest)
    add_exemplars(tree, X, model.ids_, pd.Series(labels), noise, config.exemplars)
    parent_ids = np.array([existing_id(p) for p in parents], dtype=object)
    assignments = pd.DataFrame(
        {
            "product_id": ids,
            "parent_id": parent_ids,
            "node_id": labels,
            "leaf_id": leaves,
            "proposed_path": [" > ".join(tree[n].path) for n in leaves],
            "probability": probability.astype(np.float32),
            "is_noise": noise,
        }
    )
    log.info("discover: clustering and naming took %.1f s", time.perf_counter() - started)
    plot_started = time.perf_counter()
    xy = plot_coordinates(X, parent_ids, config, seed, engine) if coordinates else np.zeros((len(X), 2), np.float32)
    coords = pd.DataFrame({"product_id": ids, "x": xy[:, 0], "y": xy[:, 1]})
    log.info("discover: 2-D coordinates took %.1f s", time.perf_counter() - plot_started)
    return Proposals(tree, assignments, coords, removals)
