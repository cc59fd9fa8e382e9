"""CascadeClusterer as a scikit-learn estimator: recursion, swappable parts, every product kept."""

import subprocess
import sys

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score

from discover.cluster.cascade import CascadeClusterer
from discover.cluster.reduce import UmapReducer


def blobs_inside_blobs(seed: int = 0, inner: float = 6.0, outer: float = 40.0, n: int = 100):
    """4 far-apart groups of 3 blobs each (16-d, unit noise); blob centres on orthogonal axes.

    Inner blobs sit `inner` units from their group centre along their own axis, so they are
    well separated inside a group yet tiny next to the `outer` distance between groups.
    """
    rng = np.random.default_rng(seed)
    axes = np.eye(16)
    points, outer_labels, inner_labels = [], [], []
    for group in range(4):
        for blob in range(3):
            centre = outer * axes[group] + inner * axes[4 + 3 * group + blob]
            points.append(centre + rng.normal(size=(n, 16)))
            outer_labels += [group] * n
            inner_labels += [3 * group + blob] * n
    return np.vstack(points).astype(np.float32), np.array(outer_labels), np.array(inner_labels)


def leaves_per_group(model: CascadeClusterer, groups: np.ndarray) -> list[int]:
    return [len(set(model.leaf_[groups == g])) for g in np.unique(groups)]


# PCA as the reducer: deterministic to the last bit on every machine, so the test asserts the
# cascade's own logic (min_cluster_size relative to each node), not UMAP's layout.
EXACT = {
    "reducer": PCA(n_components=4),
    "pca_components": None,
    "min_cluster_fraction": 0.12,
    "metric": "euclidean",
    "merge_threshold": 0.05,
    "merge_neighbors": 15,
}


@pytest.mark.parametrize("seed", [0, 1])
def test_cascade_finds_the_inner_blobs_that_one_flat_level_cannot(seed):
    X, groups, blobs = blobs_inside_blobs(seed)
    parents = [("p",)] * len(X)
    # at the top, min_cluster_size = 0.12 × 1200 = 144 > a blob of 100: only the groups are clusters
    flat = CascadeClusterer(max_depth=1, **EXACT).fit(X, parents)
    cascade = CascadeClusterer(max_depth=2, **EXACT).fit(X, parents)
    assert leaves_per_group(flat, groups) == [1, 1, 1, 1]
    assert leaves_per_group(cascade, groups) == [3, 3, 3, 3]
    assert adjusted_rand_score(blobs, cascade.leaf_) > 0.95
    assert len(cascade.tree_.children("root/p")) == 4


def test_default_umap_and_hdbscan_separate_three_distinct_types():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(150, 16)) + 30 * np.eye(16)[k] for k in range(3)]).astype(np.float32)
    model = CascadeClusterer(max_depth=1, metric="euclidean").fit(X, [("p",)] * len(X))
    truth = np.repeat([0, 1, 2], 150)
    assert len(model.tree_.children("root/p")) == 3
    assert adjusted_rand_score(truth, model.leaf_) > 0.95


def test_clone_and_get_params_round_trip_even_after_fit():
    model = CascadeClusterer(reducer=UmapReducer(n_neighbors=30), min_cluster_fraction=0.05, max_depth=3)
    X = np.random.default_rng(0).normal(size=(80, 4)).astype(np.float32)
    model.fit(X, [("p",)] * 80)
    copy = clone(model)
    assert not hasattr(copy, "tree_")
    params, copied = model.get_params(), copy.get_params()
    assert params.keys() == copied.keys()
    assert copied["reducer"] is not params["reducer"] and copied["reducer__n_neighbors"] == 30
    assert {k: v for k, v in copied.items() if k != "reducer"} == {k: v for k, v in params.items() if k != "reducer"}
    copy.set_params(max_depth=1, reducer__n_neighbors=5)
    assert copy.max_depth == 1 and copy.reducer.n_neighbors == 5 and model.reducer.n_neighbors == 30


def test_kmeans_can_replace_hdbscan_as_the_clusterer():
    X, groups, _ = blobs_inside_blobs(0)
    kmeans = KMeans(n_clusters=4, n_init=4, random_state=0)
    model = CascadeClusterer(**{**EXACT, "clusterer": kmeans}, max_depth=1).fit(X, [("p",)] * len(X))
    assert adjusted_rand_score(groups, model.leaf_) > 0.99
    assert not model.is_noise_.any() and (model.probability_ == 1).all()
    assert all(node.stability is None for node in model.tree_.proposals())


def test_a_reducer_without_fit_transform_is_refused_at_fit():
    X = np.zeros((30, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="reducer must have a fit_transform"):
        CascadeClusterer(reducer=object()).fit(X, [("p",)] * 30)


def test_every_product_keeps_a_node_and_a_most_likely_leaf():
    X, _, _ = blobs_inside_blobs(1, inner=3.0)
    model = CascadeClusterer(max_depth=2, min_cluster_fraction=0.12, metric="euclidean").fit(X, [("p",)] * len(X))
    leaves = {n.id for n in model.tree_.leaves()}
    assert set(model.leaf_) <= leaves
    assert ((model.probability_ >= 0) & (model.probability_ <= 1)).all()
    assert set(model.labels_[model.is_noise_]).isdisjoint(leaves)
    sizes = {n.id: n.size for n in model.tree_.leaves()}
    assert sum(sizes.values()) == len(X)


def test_small_parent_and_identical_embeddings_are_reported_not_split():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(12, 8)), np.ones((200, 8))]).astype(np.float32)
    parents = [("tiny",)] * 12 + [("same",)] * 200
    model = CascadeClusterer(min_parent_size=20).fit(X, parents)
    assert model.tree_["root/tiny"].split.startswith("not split: 12 products")
    assert model.tree_["root/same"].split == "not split: identical embeddings"
    assert set(model.labels_) == {"root/tiny", "root/same"} and not model.is_noise_.any()


@pytest.mark.parametrize("reducer", ["pca", "umap"])
def test_parents_in_parallel_processes_give_exactly_the_sequential_result(reducer):
    X, groups, _ = blobs_inside_blobs(2, n=60)
    parents = [("Shoes", "Heels") if g % 2 else ("Tops", f"T{g}") for g in groups]  # three parents, two levels
    parents[:40] = [("Small", f"S{i % 20}") for i in range(40)]  # and many tiny ones, sent to workers in batches
    ids = [f"p{i}" for i in range(len(X))]
    settings = {**EXACT, "reducer": UmapReducer(random_state=3)} if reducer == "umap" else EXACT
    sequential = CascadeClusterer(max_depth=2, **settings).fit(X, parents, ids)
    parallel = CascadeClusterer(max_depth=2, n_jobs=2, **settings).fit(X, parents, ids)
    assert parallel.tree_.to_json() == sequential.tree_.to_json()
    for attribute in ("labels_", "leaf_", "is_noise_", "probability_"):
        np.testing.assert_array_equal(getattr(parallel, attribute), getattr(sequential, attribute))
    assert len(sequential.tree_.leaves("root/Shoes/Heels")) >= 2  # there was something to split
    with pytest.raises(ValueError, match="n_jobs"):
        CascadeClusterer(n_jobs=0).fit(X, parents)


def test_the_2d_map_is_the_same_with_parents_in_parallel():
    from discover.cluster.stage import plot_coordinates
    from discover.config import DiscoveryConfig

    X, groups, _ = blobs_inside_blobs(3, n=40)
    parent_ids = np.array([f"root/p{g}" for g in groups], dtype=object)
    one = plot_coordinates(X, parent_ids, DiscoveryConfig(n_jobs=1), seed=0)
    two = plot_coordinates(X, parent_ids, DiscoveryConfig(n_jobs=2), seed=0)
    np.testing.assert_array_equal(one, two)
    assert np.ptp(one, axis=0).min() > 0  # a real layout, not zeros


_REDUCE = """
import hashlib
import numpy as np
import umap.umap_
from discover.cluster.reduce import UmapReducer
X = np.random.default_rng(3).normal(size=(300, 12)).astype(np.float32)
embedding = UmapReducer(random_state=0).fit_transform(X)
print(sum(umap.umap_.smooth_knn_dist.stats.cache_hits.values()), hashlib.sha1(embedding.tobytes()).hexdigest())
"""


def test_umap_kernels_compiled_in_one_process_are_loaded_by_the_next_with_the_same_result():
    runs = [
        subprocess.run([sys.executable, "-c", _REDUCE], capture_output=True, text=True, check=True).stdout.split()
        for _ in range(2)
    ]
    assert int(runs[1][0]) > 0, "the second process loads UMAP's compiled kernels from numba's file cache"
    assert runs[0][1] == runs[1][1]


def test_a_small_parent_keeps_its_small_types_apart():
    """Six types of 12 products in pairs of neighbours: the merge's graph must not have more
    neighbours per product than the smallest cluster holds, or each type's surplus edges fall
    on its neighbour and the two read as one (it merged them into 3 leaves before)."""
    rng = np.random.default_rng(0)
    axes = np.eye(16)
    centres = [40 * axes[pair] + side * 5 * axes[3 + pair] for pair in range(3) for side in (-1, 1)]
    X = np.vstack([c + rng.normal(size=(12, 16)) for c in centres]).astype(np.float32)
    truth = np.repeat(np.arange(6), 12)
    settings = {**EXACT, "reducer": PCA(n_components=6), "min_cluster_fraction": 0.01, "min_cluster_size_floor": 10}
    model = CascadeClusterer(max_depth=1, **settings).fit(X, [("p",)] * len(X))
    assert model.merge_neighbours(len(X)) < 12 <= settings["merge_neighbors"] + 1
    assert len(model.tree_.children("root/p")) == 6
    assert adjusted_rand_score(truth, model.leaf_) > 0.95


def bulk_beside_small_types(seed: int, bulk: int = 4000, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """One large Gaussian bulk (no structure inside) and three small tight types far from it."""
    rng = np.random.default_rng(seed)
    types = [30 * np.eye(dim)[k] + 0.5 * rng.normal(size=(15, dim)) for k in range(3)]
    X = np.vstack([rng.normal(size=(bulk, dim)), *types]).astype(np.float32)
    return X, np.repeat([0, 1, 2, 3], [bulk, 15, 15, 15])


# k-means cuts the bulk into pieces whatever it holds: the silhouette gate alone decides
GATE_ONLY = {"reducer": PCA(n_components=8), "pca_components": None, "max_depth": 1, "metric": "euclidean"}


@pytest.mark.parametrize("seed", [0, 1])
def test_types_that_stand_apart_are_split_off_a_large_bulk_cut_into_pieces(seed):
    """The Topwear shape: a bulk cut into overlapping pieces (silhouette ≈ 0.02 each) beside
    types that stand apart (≈ 0.9). Weighted by products the bulk outvotes them (≈ 0.03 <
    0.05) and the whole parent stayed one leaf; per cluster, they count."""
    X, truth = bulk_beside_small_types(seed)
    model = CascadeClusterer(clusterer=KMeans(8, n_init=3, random_state=0), merge_threshold=0.0, **GATE_ONLY)
    model.fit(X, [("p",)] * len(X))
    assert model.tree_["root/p"].split == "split"
    leaves = [set(model.leaf_[truth == t]) for t in (1, 2, 3)]
    assert all(len(leaf) == 1 for leaf in leaves) and len(set.union(*leaves)) == 3  # each type its own leaf
    assert not set.union(*leaves) & set(model.leaf_[truth == 0])


@pytest.mark.parametrize("seed", [0, 1])
def test_a_homogeneous_bulk_cut_into_pieces_is_not_split(seed):
    X, truth = bulk_beside_small_types(seed)
    bulk = X[truth == 0]
    model = CascadeClusterer(clusterer=KMeans(8, n_init=3, random_state=0), merge_threshold=0.0, **GATE_ONLY)
    model.fit(bulk, [("p",)] * len(bulk))
    assert model.tree_["root/p"].split.startswith("not split: silhouette")
    assert len(set(model.leaf_)) == 1
