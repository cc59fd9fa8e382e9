"""The rediscovery benchmark (../shared/docs/papers.md) with its baselines, side by side.

`articleType` is hidden; inside every `subCategory` holding two or more article types of
20+ products, proposals are scored against the hidden types, product-weighted over those
parents. All methods run in this process on the same cached embeddings:

- discover: the full `discover` stage (cascade + linkage merge + names + 2-D coords) on
  every parent of the catalog, with configs/fashion-small.yaml;
- flat HDBSCAN: UMAP(5-d, cosine) + HDBSCAN(min_cluster_size = max(10, n/100)), fused;
- k-means with the true k (an oracle for the count), fused, full dimension;
- BERTopic-style text only: MiniLM titles, UMAP(5-d) + HDBSCAN, flat.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from benchmarks.common import REPO, WORKSPACE, markdown_table, peak_rss_mb, write_section
from discover.cascade import CascadeClusterer
from discover.config import load_config
from discover.discovery import discover
from discover.embed.pipeline import embed_catalog
from discover.evaluate import cluster_codes, evaluate, qualifies
from discover.ingest import ingest
from discover.metrics import cluster_scores, weighted_mean
from discover.workspace import Workspace

COLUMNS = ["coverage", "purity", "hungarian_accuracy", "nmi", "ari", "leaf_clusters", "true_classes"]


def flat(X: np.ndarray, seed: int) -> np.ndarray:
    model = CascadeClusterer(
        max_depth=1,
        min_cluster_fraction=0.01,
        min_samples=None,
        pca_components=64,
        merge_threshold=0,
        min_silhouette=-1,
        random_state=seed,
    )
    model.fit(X, [("p",)] * len(X))
    codes = pd.factorize(model.labels_)[0]
    return np.where(model.is_noise_, -1, codes)


def kmeans_true_k(X: np.ndarray, k: int, seed: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(X)


def score(
    method: str, labels_by_parent: dict[str, np.ndarray], truth_by_parent: dict[str, np.ndarray], seconds: float
) -> dict:
    scores = [cluster_scores(labels_by_parent[p], truth_by_parent[p]) for p in truth_by_parent]
    weighted = weighted_mean(scores)
    return {
        "method": method,
        **{k: weighted[k] for k in COLUMNS},
        "seconds": f"{seconds:.0f}",
        "peak RSS MB": f"{peak_rss_mb():.0f}",
    }


def main() -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    stage_times = []
    started = time.perf_counter()
    ingest(config, workspace, show_progress=False)
    features = embed_catalog(config, workspace)
    stage_times.append(("ingest + embed (from cache)", time.perf_counter() - started))
    catalog = workspace.load_catalog()
    parents = ("root/" + catalog["level_1"] + "/" + catalog["level_2"]).to_numpy()
    truth = catalog["truth"].to_numpy()
    qualifying = [p for p in sorted(set(parents)) if qualifies(pd.Series(truth[parents == p]))]
    rows_of = {p: np.flatnonzero(parents == p) for p in qualifying}
    truth_by_parent = {p: truth[r] for p, r in rows_of.items()}
    results = []

    started = time.perf_counter()
    ours = discover(features.vectors, catalog, config.discovery, config.seed)
    seconds = time.perf_counter() - started
    stage_times.append(("discover (all 45 parents: cascade, names, 2-D coords)", seconds))
    metrics = evaluate(ours.assignments, catalog)
    codes = cluster_codes(ours.assignments)
    results.append(
        score(
            "discover (cascade + linkage merge), fused",
            {p: codes[r] for p, r in rows_of.items()},
            truth_by_parent,
            seconds,
        )
    )
    assert abs(metrics["weighted"]["purity"] - results[0]["purity"]) < 1e-9

    for name, X in (
        ("flat UMAP+HDBSCAN, fused", features.vectors),
        ("BERTopic-style UMAP+HDBSCAN, text only", features.block("text")),
        ("flat UMAP+HDBSCAN, image only", features.block("image")),
    ):
        started = time.perf_counter()
        labels = {p: flat(X[r], config.seed) for p, r in rows_of.items()}
        results.append(score(name, labels, truth_by_parent, time.perf_counter() - started))
    started = time.perf_counter()
    labels = {
        p: kmeans_true_k(features.vectors[r], len(set(truth_by_parent[p])), config.seed) for p, r in rows_of.items()
    }
    results.append(
        score("k-means with the true k (oracle), fused", labels, truth_by_parent, time.perf_counter() - started)
    )

    table = pd.DataFrame(results)
    per_parent = pd.DataFrame(metrics["per_parent"]).T.loc[qualifying, ["n", *COLUMNS]]
    per_parent.insert(0, "parent", [p.removeprefix("root/") for p in per_parent.index])
    stages = pd.DataFrame(stage_times, columns=["stage", "seconds"])
    body = (
        f"{len(qualifying)} qualifying parents, {sum(len(r) for r in rows_of.values()):,} products, "
        f"{sum(len(set(t)) for t in truth_by_parent.values())} hidden article types. Product-weighted means; "
        "leaves and true classes are summed over parents.\n\n"
        + markdown_table(table)
        + "\n\nPer parent (discover):\n\n"
        + markdown_table(per_parent.astype({"n": int, "leaf_clusters": int, "true_classes": int}))
        + "\n\nStages:\n\n"
        + markdown_table(stages, "{:.1f}")
        + f"\n\nPeak RSS of the benchmark process: {peak_rss_mb():.0f} MB.\n\n"
        + "Proposals against other attributes (a proposal that follows colour or gender would score high here):\n\n"
        + markdown_table(
            pd.DataFrame(evaluate(ours.assignments, catalog, ["baseColour", "gender", "usage"])["attributes"])
            .T[COLUMNS]
            .reset_index(names="attribute")
        )
    )
    write_section("discovery", "Discovery: the rediscovery benchmark", body)


if __name__ == "__main__":
    main()
