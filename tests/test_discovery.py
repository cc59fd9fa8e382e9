"""Cascade clustering, the tree, and `discover run` end to end on real products."""

import subprocess
import sys

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from discover.cascade import CascadeClusterer
from discover.discovery import discover
from discover.runs import RunData
from discover.tree import SubcategoryTree
from tests.conftest import REPO


def blobs_inside_blobs(seed: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4 far-apart groups, each made of 3 nearby blobs of 100 points (16-d)."""
    rng = np.random.default_rng(seed)
    points, outer, inner = [], [], []
    for a, centre in enumerate(rng.normal(size=(4, 16)) * 25):
        for b, sub_centre in enumerate(centre + rng.normal(size=(3, 16)) * 1.4):
            points.append(sub_centre + rng.normal(size=(100, 16)))
            outer += [a] * 100
            inner += [a * 3 + b] * 100
    return np.vstack(points).astype(np.float32), np.array(outer), np.array(inner)


def _level(labels: np.ndarray, depth: int) -> np.ndarray:
    """Cut node ids like root/p/c2/c1 to the proposal at `depth` (1 = first level)."""
    return np.array(["/".join(label.split("/")[: 2 + depth]) for label in labels])


def test_cascade_recovers_both_levels_where_flat_misses_the_inner_one():
    X, outer, inner = blobs_inside_blobs()
    # min_cluster_size relative to the node: too large for inner blobs at the top, right one level down
    settings = {"min_cluster_fraction": 0.12, "n_neighbors": 50, "metric": "euclidean", "random_state": 0}
    cascade = CascadeClusterer(max_depth=2, **settings).fit(X, [("p",)] * len(X))
    flat = CascadeClusterer(max_depth=1, **settings).fit(X, [("p",)] * len(X))
    assert adjusted_rand_score(outer, _level(cascade.leaf_, 1)) >= 0.9
    assert adjusted_rand_score(inner, cascade.leaf_) >= 0.9
    assert adjusted_rand_score(inner, flat.leaf_) < 0.7
    assert len(set(cascade.leaf_)) > 2 * len(set(flat.leaf_))


def test_every_product_keeps_a_node_and_a_most_likely_leaf():
    X, _, _ = blobs_inside_blobs(1)
    model = CascadeClusterer(max_depth=2, min_cluster_fraction=0.12, metric="euclidean").fit(X, [("p",)] * len(X))
    leaves = {n.id for n in model.tree_.leaves()}
    assert set(model.leaf_) <= leaves
    assert ((model.probability_ >= 0) & (model.probability_ <= 1)).all()
    noise_nodes = set(model.labels_[model.is_noise_])
    assert noise_nodes.isdisjoint(leaves) or not model.is_noise_.any()


def test_small_parent_and_identical_embeddings_are_reported_not_split():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(12, 8)), np.ones((200, 8))]).astype(np.float32)
    parents = [("tiny",)] * 12 + [("same",)] * 200
    model = CascadeClusterer(min_parent_size=20).fit(X, parents)
    assert model.tree_["root/tiny"].split.startswith("not split: 12 products")
    assert model.tree_["root/same"].split == "not split: identical embeddings"
    assert set(model.labels_) == {"root/tiny", "root/same"} and not model.is_noise_.any()


def test_same_seed_gives_byte_identical_tree_and_stable_node_ids(small_run):
    result, config = small_run
    run = RunData(_workspace(result), result.run_id)
    again = discover(run.features(), run.catalog, config.discovery, config.seed)
    again.tree.meta = run.tree.meta
    from discover.evaluate import attach_metrics

    attach_metrics(again.tree, run.metrics)
    assert again.tree.to_json() == (result.run_dir / "tree.json").read_text()
    pd.testing.assert_frame_equal(again.assignments, run.assignments)


def _workspace(result):
    from discover.workspace import Workspace

    return Workspace(result.run_dir.parent.parent)


def test_run_end_to_end_writes_every_output(small_run):
    result, _ = small_run
    run_dir = result.run_dir
    for name in ("config.yaml", "tree.json", "assignments.parquet", "coords.parquet", "metrics.json", "report.html"):
        assert (run_dir / name).exists(), name
    run = RunData(_workspace(result), result.run_id)
    assignments = run.assignments
    assert len(assignments) == 360 and assignments["product_id"].is_unique
    tree = SubcategoryTree.from_json((run_dir / "tree.json").read_text())
    assert set(assignments["leaf_id"]) <= {n.id for n in tree.leaves()}
    proposals = tree.proposals()
    assert proposals and all(p.name and p.keywords and 5 <= len(p.exemplars) <= 12 for p in proposals if p.size >= 12)
    weighted = run.metrics["weighted"]
    for key in ("purity", "coverage", "hungarian_accuracy", "nmi", "ari", "leaf_clusters", "true_classes"):
        assert key in weighted
    assert set(run.metrics["attributes"]) == {"baseColour", "gender", "usage"}
    assert "Apparel/Topwear" in result.summary() and "report" in result.summary()
    assert "plotly" in (run_dir / "report.html").read_text()[:100_000].lower()


def test_cli_export_and_evaluate(small_run):
    result, _ = small_run
    workspace = str(result.run_dir.parent.parent)
    out = result.run_dir.parent.parent / "exported"
    for fmt in ("json", "csv"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "discover.cli",
                "export",
                "--workspace",
                workspace,
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out / "assignments.csv", dtype={"product_id": str})
    assert len(rows) == 360 and {"category", "proposed_path", "probability", "is_noise"} <= set(rows.columns)
    evaluated = subprocess.run(
        [sys.executable, "-m", "discover.cli", "evaluate", "--workspace", workspace],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert evaluated.returncode == 0 and "weighted" in evaluated.stdout


def test_run_id_changes_with_fusion_weights_or_discovery_settings(small_run):
    from discover.pipeline import default_run_id

    _, config = small_run
    base = default_run_id(config, ["f1"], "sig")
    assert default_run_id(config, ["f1"], "sig") == base
    heavier = config.model_copy(deep=True)
    heavier.embed.text.weight = 2.0
    stricter = config.model_copy(deep=True)
    stricter.discovery.cascade.max_depth = 3
    assert len({base, default_run_id(heavier, ["f1"], "sig"), default_run_id(stricter, ["f1"], "sig")}) == 3
