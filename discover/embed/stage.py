"""The embed stage: every configured modality through the cache, then fusion."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from discover.config import Config, EmbedderSpec, is_file_reference
from discover.embed.base import Embedder, create_embedder
from discover.embed.cache import (
    CacheFill,
    EmbeddingCache,
    load_aligned,
    one_batch_at_a_time,
    save_aligned,
    text_key,
)
from discover.embed.corpus import CorpusSvdEmbedder
from discover.embed.fuse import fuse_views
from discover.embed.in_processes import PIECE, compute_in_processes, worker_count
from discover.embed.on_ray import compute_on_ray
from discover.memory import keep_freed_memory
from discover.tree import known_labels
from discover.workspace import Workspace

log = logging.getLogger(__name__)

SLOTS = {"image": "image", "text": "text", "words": "text"}  # config slot → what its embedder reads


@dataclass
class ModalityPart:
    """One modality's aligned vectors and how they were obtained."""

    name: str
    slot: str
    fingerprint: str
    dim: int
    computed: int
    cached: int
    failed: dict[int, str]
    path: Path
    vectors: np.ndarray


@dataclass
class Features:
    """Fused vectors aligned with `product_ids`, plus each view's own block (by config slot)."""

    product_ids: np.ndarray
    vectors: np.ndarray
    parts: list[ModalityPart]

    def block(self, slot: str) -> np.ndarray:
        return next(p.vectors for p in self.parts if p.slot == slot)

    def type_view(self) -> np.ndarray | None:
        """The known-level words block (title words weighted by how much they say about type), if embedded."""
        return next((p.vectors for p in self.parts if p.slot == "words"), None)


def _image_key(path: str) -> str:
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest() if path else ""
    except OSError:
        return ""


def build_embedder(spec: EmbedderSpec, modality: str, config: Config) -> Embedder:
    params = spec.model_dump(exclude={"name", "weight"})
    for key in ("pretrained", "checkpoint"):
        value = params.get(key)
        if value and is_file_reference(value):
            params[key] = str(config.resolve(value))
    if params.get("checkpoints"):
        params["checkpoints"] = [str(config.resolve(c)) for c in params["checkpoints"]]
    return create_embedder(spec.name, modality, seed=config.seed, **params)


def content_keys(embedder: Embedder, catalog: pd.DataFrame) -> list[str]:
    """The cache key of each row's input: a hash of the photo's bytes or of the title ("" if none)."""
    if embedder.modality == "image":
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(_image_key, catalog["image_path"].tolist(), chunksize=256))
    return [text_key(t) if t.strip() else "" for t in catalog["title"].fillna("").tolist()]


def _aligned_meta(
    embedder: Embedder, slot: str, catalog: pd.DataFrame, config: Config, keys: list[str], failed: dict
) -> dict:
    ids = catalog["product_id"].tolist()
    return {
        "model": embedder.name,
        "modality": embedder.modality,
        "slot": slot,
        "fingerprint": embedder.fingerprint,
        "dim": embedder.dim,
        "params": config.embed.model_dump(mode="json"),
        "product_ids": ids,
        "content_hashes": keys,
        "failed": {ids[p]: e for p, e in failed.items()},
    }


def cached_vectors(
    embedder: Embedder,
    catalog: pd.DataFrame,
    config: Config,
    workspace: Workspace,
    progress: bool = True,
    factory: Callable[[], Embedder] | None = None,
) -> tuple[CacheFill, list[str]]:
    """Vectors for every row of `catalog` from the workspace cache, computing only what is
    missing (and caching it); the content keys. Writes no aligned array, so any catalog,
    e.g. new products to classify, can be embedded without touching the workspace's own.

    With a `factory` that builds the embedder, the missing items are embedded by workers,
    each building its own: Ray Data workers with ``engine: ray``, else ``embed.n_jobs``
    processes on this machine; corpus embedders (tf-idf, known-level words) are fitted on the
    whole catalog and transform it here, a sparse product."""
    keep_freed_memory()  # also when called as a library: batches' activations are not unmapped and faulted again
    settings = config.embed
    keys = content_keys(embedder, catalog)
    paths, titles = catalog["image_path"].tolist(), catalog["title"].fillna("").tolist()
    if isinstance(embedder, CorpusSvdEmbedder):
        corpus_id = hashlib.sha1("\n".join(keys).encode()).hexdigest()
        embedder.fit(titles, corpus_id, known_labels(catalog, config.discovery.level))
    cache = EmbeddingCache(workspace.embeddings_dir, embedder.fingerprint, embedder.dim)
    n_missing = len({k for k in keys if k} - set(cache.load_index()))
    bar = tqdm(total=n_missing, desc=f"embed {embedder.name}", unit="item", disable=not progress or n_missing == 0)

    items = paths if embedder.modality == "image" else titles

    def compute(positions: list[int]) -> tuple[np.ndarray, dict[int, str]]:
        outcome = embedder.embed_items([items[p] for p in positions], settings.batch_size, settings.num_workers)
        bar.update(len(positions))
        return outcome.vectors, {positions[i]: e for i, e in outcome.failed.items()}

    on_workers = factory is not None and not isinstance(embedder, CorpusSvdEmbedder)
    processes = min(worker_count(settings.n_jobs), -(-n_missing // PIECE)) if n_missing >= settings.workers_from else 1
    if config.engine == "ray" and on_workers:
        run_batches = compute_on_ray(factory, items, settings, config.ray, bar.update)
    elif processes > 1 and on_workers:
        run_batches = compute_in_processes(factory, items, settings, processes, bar.update)
    else:
        run_batches = one_batch_at_a_time(compute)
    filled = cache.fill(keys, run_batches, settings.chunk_size)
    bar.close()
    for position, error in list(filled.failed.items())[:20]:
        log.warning("embed %s: product %s skipped: %s", embedder.name, catalog["product_id"].iat[position], error)
    return filled, keys


def embed_modality(
    embedder: Embedder,
    catalog: pd.DataFrame,
    config: Config,
    workspace: Workspace,
    progress: bool = True,
    slot: str | None = None,
    factory: Callable[[], Embedder] | None = None,
) -> ModalityPart:
    """Serve one modality from the cache, computing only what is missing; write the aligned array."""
    started = time.perf_counter()
    filled, keys = cached_vectors(embedder, catalog, config, workspace, progress, factory)
    slot = slot or embedder.modality
    meta = _aligned_meta(embedder, slot, catalog, config, keys, filled.failed)
    path = save_aligned(workspace.embeddings_dir, embedder.fingerprint, filled.vectors, meta)
    vectors, _ = load_aligned(workspace.embeddings_dir, embedder.fingerprint)
    seconds = time.perf_counter() - started
    log.info(
        "embed %s: %d computed, %d from cache, %d failed in %.1f s",
        *(embedder.fingerprint, filled.computed, filled.cached, len(filled.failed), seconds),
    )
    return ModalityPart(
        *(embedder.name, slot, embedder.fingerprint, embedder.dim),
        *(filled.computed, filled.cached, filled.failed, path, vectors),
    )


def embed_catalog(config: Config, workspace: Workspace, progress: bool = True) -> Features:
    """Embed every configured view (image, text, words) of the workspace's catalog and fuse them."""
    torch.set_num_threads(config.embed.torch_threads or os.cpu_count() or 1)
    catalog = workspace.load_catalog()
    parts = []
    for slot, modality in SLOTS.items():
        spec: EmbedderSpec | None = getattr(config.embed, slot)
        if spec is None:
            continue
        embedder = build_embedder(spec, modality, config)
        factory = partial(build_embedder, spec, modality, config)
        parts.append(embed_modality(embedder, catalog, config, workspace, progress, slot, factory))
    if not parts:
        raise ValueError("embed: configure at least one of embed.image and embed.text")
    vectors = fuse_views({p.slot: p.vectors for p in parts}, catalog, config)
    return Features(catalog["product_id"].to_numpy(), vectors, parts)
