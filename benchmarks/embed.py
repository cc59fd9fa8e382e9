"""Embedding speed against the bare forward pass, and nearest-neighbour agreement.

Speed: 2,000 fashion-small products (seeded sample). "pipeline" is the embed stage into an
empty cache (file hashing, decode, letterbox/resize, batching, forward, chunked writes);
"bare" is the same model's forward pass alone on tensors decoded beforehand, same batch
size, same run, in this process. Overhead = pipeline time / bare time - 1. The networks run
both in this process (``embed.n_jobs: 1``, every core's thread) and in a worker process per
core (``embed.n_jobs: -1``, one thread each), each into an empty cache.

Quality: the share of products whose nearest other product (cosine) has the same
`articleType`, over the whole catalog, for each modality and for the fusion.
"""

from __future__ import annotations

import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmarks.common import REPO, WORKSPACE, ingest_sample, markdown_table, peak_rss_mb, sample_catalog, write_section
from discover.config import load_config
from discover.data.ingest import ingest
from discover.embed.base import create_embedder
from discover.embed.fuse import fuse
from discover.embed.in_processes import worker_count
from discover.embed.stage import build_embedder, embed_catalog, embed_modality
from discover.workspace import Workspace

SAMPLE = 2000


def sample_workspace(root: Path, config, size: int = SAMPLE) -> Workspace:
    config.catalog.data_dir = str(sample_catalog(root / "catalog", size, seed=0))
    workspace = Workspace(root / "ws")
    ingest_sample(config, workspace)
    return workspace


def bare_forward(embedder, paths: list[str], texts: list[str], batch_size: int) -> float:
    """Seconds for the model alone: images decoded and transformed before the clock starts."""
    if embedder.modality == "image":
        from PIL import Image

        tensors = []
        for path in paths:
            with Image.open(path) as image:
                tensors.append(embedder.transform(image))
        batch = torch.stack(tensors)
        started = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, len(batch), batch_size):
                embedder.forward(batch[i : i + batch_size])
        return time.perf_counter() - started
    if hasattr(embedder, "model") and hasattr(embedder.model, "encode"):
        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=batch_size, show_progress_bar=False)
        return time.perf_counter() - started
    started = time.perf_counter()
    embedder.embed_texts(texts)
    return time.perf_counter() - started


def speed_rows(config) -> list[dict]:
    """Each embedder into an empty cache; the networks both in this process on every core's
    thread (`embed.n_jobs: 1`) and in a worker process per core, one thread each
    (`embed.n_jobs: -1`, started whatever the size: `embed.workers_from: 1`), on the sample
    and on a sample four times its size for the photos."""
    rows = []
    image = {"image_size": config.embed.image.image_size}
    specs = [
        ("efficientnet-lite0", "image", image, (1, -1), SAMPLE),
        ("efficientnet-lite0", "image", image, (1, -1), 4 * SAMPLE),
        ("minilm", "text", {}, (1, -1), SAMPLE),
        ("tfidf", "text", {"components": 256}, (1,), SAMPLE),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, modality, params, jobs, size in specs:
            for n_jobs in jobs:
                chosen = config.model_copy(deep=True)
                chosen.embed.n_jobs, chosen.embed.workers_from = n_jobs, 1
                workspace = sample_workspace(Path(tmp) / f"{name}-{size}-{n_jobs}", chosen, size)  # an empty cache
                catalog = workspace.load_catalog()
                embedder = create_embedder(name, modality, **params)
                factory = partial(create_embedder, name, modality, **params)
                started = time.perf_counter()
                part = embed_modality(embedder, catalog, chosen, workspace, progress=False, factory=factory)
                pipeline = time.perf_counter() - started
                texts = catalog["title"].tolist()
                bare = bare_forward(embedder, catalog["image_path"].tolist(), texts, config.embed.batch_size)
                where = "one process" if n_jobs == 1 else f"{worker_count(n_jobs)} processes"
                label = f"{name} ({modality}, {part.dim}-d)" + (
                    ", pipeline includes the fit" if name == "tfidf" else ""
                )
                rows.append(
                    {
                        "embedder": label,
                        "embed.n_jobs": f"{n_jobs} ({where})",
                        "items": len(catalog),
                        "pipeline items/s": len(catalog) / pipeline,
                        "bare forward items/s (one process)": len(catalog) / bare,
                        "overhead": f"{pipeline / bare - 1:+.0%}",
                        "peak RSS MB": f"{peak_rss_mb():.0f}",
                    }
                )
                print(rows[-1], flush=True)
    return rows


def neighbour_agreement(vectors: np.ndarray, labels: np.ndarray, chunk: int = 2048) -> float:
    """Share of rows whose nearest other row (cosine) has the same label; exact, chunked."""
    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    normed = normed.astype(np.float32)
    hits = 0
    for start in range(0, len(normed), chunk):
        similarity = normed[start : start + chunk] @ normed.T
        similarity[np.arange(similarity.shape[0]), np.arange(start, start + similarity.shape[0])] = -np.inf
        hits += int(np.sum(labels[similarity.argmax(axis=1)] == labels[start : start + chunk]))
    return hits / len(normed)


def quality_rows(config) -> list[dict]:
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    features = embed_catalog(config, workspace)
    truth = workspace.load_catalog()["truth"].to_numpy()
    rows = [
        {"features": p.fingerprint, "nearest-neighbour same articleType": neighbour_agreement(p.vectors, truth)}
        for p in features.parts
    ]
    tfidf = build_embedder(config.embed.text.model_copy(update={"name": "tfidf"}), "text", config)
    tfidf_part = embed_modality(tfidf, workspace.load_catalog(), config, workspace, progress=False)
    rows.append(
        {
            "features": tfidf_part.fingerprint,
            "nearest-neighbour same articleType": neighbour_agreement(tfidf_part.vectors, truth),
        }
    )
    image, text = features.block("image"), features.block("text")
    for weight in (0.5, 1.0, 2.0):
        rows.append(
            {
                "features": f"fused image + MiniLM (text weight {weight:g})",
                "nearest-neighbour same articleType": neighbour_agreement(fuse([image, text], [1, weight]), truth),
            }
        )
    rows.append(
        {
            "features": "fused image + TF-IDF (text weight 1)",
            "nearest-neighbour same articleType": neighbour_agreement(fuse([image, tfidf_part.vectors], [1, 1]), truth),
        }
    )
    return rows


def main() -> None:
    torch.set_num_threads(torch.get_num_threads())
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    speed = pd.DataFrame(speed_rows(config))
    quality = pd.DataFrame(quality_rows(load_config(REPO / "configs" / "fashion-small.yaml")))
    body = (
        f"Speed on {SAMPLE:,} products, and {4 * SAMPLE:,} for the photos (empty cache for every row; "
        f"batch {config.embed.batch_size}, "
        f"{config.embed.num_workers} loader worker; one process: {torch.get_num_threads()} torch threads, "
        "worker processes: one each):\n\n"
        + markdown_table(speed, "{:.1f}")
        + "\n\nNearest-neighbour agreement over all 35,132 products:\n\n"
        + markdown_table(quality)
    )
    write_section("embed", "Embedding: speed and nearest-neighbour agreement", body)


if __name__ == "__main__":
    main()
