"""Scale: the cascade at 100k, 300k and 1M products, and the Ray engine beside the local one.

Clustering side (local engine): synthetic catalogs made from fashion-small's real fused
embeddings. Each real parent (subCategory) is copied into ``round(100 · share)`` synthetic
parents (at least one), so there are about 100 parents whose sizes follow the real ones;
each copy draws the real parent's products with replacement and adds Gaussian jitter of
half the parent's median nearest-neighbour distance, so the density structure is the real
one and no two rows are identical. The fused vectors are first reduced to 128 dimensions by
a seeded PCA fitted on the real catalog (`embed.pca_components: 128`, what a user at this
scale would set: 1M × 1,920 floats alone is 7.7 GB). Time and peak RSS (the process tree,
sampled every 0.2 s) of ``CascadeClusterer.fit`` with the fashion-small config.

Engine side (:func:`engines`, alone: ``python -m benchmarks.scale ray``): embed + discover
through the local and the Ray engine in the same process.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from sklearn.decomposition import PCA
from sklearn.neighbors import NearestNeighbors

from benchmarks.common import REPO, WORKSPACE, ingest_sample, markdown_table, sample_catalog, write_section
from discover.cluster.stage import Proposals, build_clusterer, propose_subcategories
from discover.config import Config, RayConfig, load_config
from discover.data.ingest import ingest
from discover.embed.stage import embed_catalog
from discover.engine import engine_session
from discover.evaluate.metrics import cluster_scores
from discover.tree import category_paths
from discover.workspace import Workspace

SIZES = (100_000, 300_000, 1_000_000)
PARENTS = 100


class PeakRss:
    """Peak resident memory of this process and all its children, sampled in a thread."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.every):
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    continue
            self.peak = max(self.peak, total)

    def __enter__(self) -> PeakRss:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def synthetic(
    X: np.ndarray, parents: list[tuple], truth: np.ndarray, n: int, seed: int
) -> tuple[np.ndarray, list, np.ndarray]:
    """About `PARENTS` jittered copies of the real parents, `n` products in all."""
    rng = np.random.default_rng(seed)
    keys = pd.Series(parents)
    rows_by_parent = keys.groupby(keys).indices
    blocks, paths, truths = [], [], []
    for key, rows in sorted(rows_by_parent.items()):
        share = len(rows) / len(X)
        copies = max(1, round(PARENTS * share))
        size = max(1, round(n * share / copies))
        k = min(2, len(rows))
        distances = NearestNeighbors(n_neighbors=k).fit(X[rows]).kneighbors(X[rows])[0][:, k - 1]
        sigma = 0.5 * float(np.median(distances)) / np.sqrt(X.shape[1])
        for copy in range(copies):
            drawn = rng.choice(rows, size)
            noise = rng.normal(scale=sigma, size=(size, X.shape[1])).astype(np.float32)
            blocks.append(X[drawn] + noise)
            paths += [(*key[:-1], f"{key[-1]} #{copy + 1}")] * size
            truths.append(truth[drawn])
    return np.concatenate(blocks), paths, np.concatenate(truths)


def cascade_at(n: int, X: np.ndarray, parents: list, truth: np.ndarray, config) -> dict:
    Xn, paths, tn = synthetic(X, parents, truth, n, config.seed)
    model = build_clusterer(config.discovery, config.seed, progress=True)
    with PeakRss() as rss:
        started = time.perf_counter()
        model.fit(Xn, paths)
        seconds = time.perf_counter() - started
    per_parent = pd.DataFrame({"parent": paths, "leaf": model.leaf_, "truth": tn}).groupby("parent")
    purity = sum(
        cluster_scores(pd.factorize(g["leaf"])[0], g["truth"].to_numpy()).purity * len(g) for _, g in per_parent
    )
    return {
        "products": len(Xn),
        "parents": len(per_parent),
        "largest parent": max(len(g) for _, g in per_parent),
        "leaves": len(model.tree_.leaves()),
        "seconds": round(seconds),
        "µs per product": round(1e6 * seconds / len(Xn)),
        "peak RSS GB": round(rss.peak / 2**30, 2),
        "purity vs source type": round(purity / len(Xn), 3),
    }


def extrapolation(table: pd.DataFrame) -> str:
    """What the largest measured size says about 10M products on N workers."""
    last = table.iloc[-1]
    cores = os.cpu_count() or 1
    core_ms = 1000 * last["seconds"] * cores / last["products"]
    growth = float(np.log(10_000_000) / np.log(last["products"]))
    core_hours = 10_000_000 * core_ms / 1000 * growth / 3600
    return (
        f"At {int(last['products']):,} products the cascade spends {core_ms:.1f} core-milliseconds per product "
        f"({cores} cores busy). Parents are independent, so the work divides over workers until the largest "
        "parent is the last one running; per parent the cost grows as n log n (UMAP's nearest-neighbour "
        f"descent, HDBSCAN's tree). 10M products in ~1,000 parents of the same sizes: ≈ {core_hours:.0f} "
        f"core-hours (×{growth:.2f} for the log factor), ≈ {core_hours / 32 * 60:.0f} min on 32 cores or "
        f"≈ {core_hours / 128 * 60:.0f} min on 128 (the Ray engine, one task per parent); each worker holds "
        "one parent (10k × 128 floats is 5 MB) and the driver the fused matrix (10M × 128 float32 = 5.1 GB). "
        "The share of products per parent, not the catalog size, sets a worker's time and memory: a single "
        "parent of millions would need the recursive splits as tasks too, which the engine does not do yet."
    )


def clustering(sizes: tuple[int, ...] = SIZES) -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    catalog = workspace.load_catalog()
    fused = embed_catalog(config, workspace, progress=False).vectors
    X = PCA(128, random_state=config.seed).fit_transform(fused).astype(np.float32)
    parents = category_paths(catalog, config.discovery.level)
    truth = catalog["truth"].astype(str).to_numpy()
    rows = []
    for n in sizes:
        rows.append(cascade_at(n, X, parents, truth, config))
        print(rows[-1], flush=True)
    write_scale(rows)


def write_scale(rows: list[dict], note: str = "") -> None:
    table = pd.DataFrame(rows)
    per_n_log_n = table["seconds"] / (table["products"] * np.log(table["products"]))
    table["time ÷ n log n, vs first"] = (per_n_log_n / per_n_log_n.iloc[0]).round(2)
    body = (
        "`CascadeClusterer.fit` (configs/fashion-small.yaml discovery settings, `n_jobs: -1`, local engine) on "
        "synthetic catalogs from fashion-small's fused embeddings (jittered copies of the real parents; see "
        "the module docstring of benchmarks/scale.py). Peak RSS is the whole process tree.\n\n"
        + markdown_table(table)
        + "\n\n"
        + extrapolation(table)
        + (f"\n\n{note}" if note else "")
    )
    write_section("scale", "Scale: the cascade to a million products", body)


def _embed_seconds(config: Config, workspace: Workspace) -> tuple[float, float, np.ndarray]:
    """(cluster start, embedding) seconds and the fused vectors, from an empty cache."""
    ingest_sample(config, workspace)
    started = time.perf_counter()
    with engine_session(config):
        ready = time.perf_counter()
        features = embed_catalog(config, workspace, progress=False)
    return ready - started, time.perf_counter() - ready, features.vectors


def _discover_seconds(config: Config, X: np.ndarray, catalog: pd.DataFrame) -> tuple[float, float, Proposals]:
    started = time.perf_counter()
    with engine_session(config):
        ready = time.perf_counter()
        proposals = propose_subcategories(X, catalog, config.discovery, config.seed, engine=config.engine)
    return ready - started, time.perf_counter() - ready, proposals


def engines(sample: int = 3000) -> None:
    """Embed (empty cache, `sample` products) and discover (the whole catalog, cached
    embeddings) with the local engine and with a local 2-CPU Ray cluster, in this process."""
    base = load_config(REPO / "configs" / "fashion-small.yaml")
    configs = {
        "local": base.model_copy(update={"engine": "local"}),
        "ray": base.model_copy(update={"engine": "ray", "ray": RayConfig(num_cpus=2, actors=2)}),
    }
    embed = base.embed.model_copy(update={"chunk_size": 256})  # several chunks per worker, for both engines
    configs = {name: config.model_copy(update={"embed": embed}) for name, config in configs.items()}
    rows, outputs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        catalog_dir = sample_catalog(Path(tmp) / "catalog", sample, base.seed)
        for name, config in configs.items():
            config = config.model_copy(
                update={"catalog": base.catalog.model_copy(update={"data_dir": str(catalog_dir)})}
            )
            start, seconds, vectors = _embed_seconds(config, Workspace(Path(tmp) / name))
            outputs[f"embed {name}"] = vectors
            rows.append(
                {
                    "stage": f"embed {sample:,} products",
                    "engine": name,
                    "cluster start s": round(start, 1),
                    "seconds": round(seconds, 1),
                }
            )
    workspace = Workspace(WORKSPACE)
    ingest(base, workspace, show_progress=False)
    catalog = workspace.load_catalog()
    X = embed_catalog(base, workspace, progress=False).vectors
    for name, config in configs.items():
        start, seconds, proposals = _discover_seconds(config, X, catalog)
        outputs[f"discover {name}"] = proposals
        rows.append(
            {
                "stage": f"discover {len(X):,} products",
                "engine": name,
                "cluster start s": round(start, 1),
                "seconds": round(seconds, 1),
            }
        )
    table = pd.DataFrame(rows)
    table["Ray overhead"] = ""
    for stage in table["stage"].unique():
        local, ray = table.loc[table["stage"] == stage, "seconds"].tolist()
        table.loc[(table["stage"] == stage) & (table["engine"] == "ray"), "Ray overhead"] = f"{ray / local - 1:+.0%}"
    same_vectors = float(np.abs(outputs["embed local"] - outputs["embed ray"]).max())
    local, ray = outputs["discover local"], outputs["discover ray"]
    same_tree = local.tree.to_json() == ray.tree.to_json() and local.assignments.equals(ray.assignments)
    body = (
        f"The local engine (2 processes / torch threads) and a local Ray cluster of 2 CPUs (2 embedding actors, "
        f"one Ray task per parent), same process, same machine. Embedding starts from an empty cache on {sample:,} "
        "products drawn from fashion-small (photos copied to a temporary catalog); discovery runs on the whole "
        "catalog's cached fused embeddings; `embed.chunk_size: 256` for both. Overhead excludes the cluster "
        "start, shown on its own.\n\n"
        + markdown_table(table, floats="{:.1f}")
        + f"\n\nLargest difference between the engines' fused vectors: {same_vectors:.2e}; "
        f"discovery tree and assignments identical: {same_tree}."
    )
    write_section("scale-engines", "Scale: the Ray engine beside the local one", body)


def main() -> None:
    clustering()
    engines()


if __name__ == "__main__":
    if sys.argv[1:] == ["ray"]:
        engines()
    elif sys.argv[1:]:
        clustering(tuple(int(s) for s in sys.argv[1:]))
    else:
        main()
