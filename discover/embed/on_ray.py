"""Embedding on a Ray cluster: Ray Data ``map_batches`` over the products still to embed,
with a pool of actors per embedder so that each worker loads its model once.

The driver keeps the cache: every finished block comes back to it and is written as a
chunk (:meth:`discover.embed.cache.EmbeddingCache.fill`), so the cache format is the local
engine's and a run killed half-way resumes from the chunks already written. A worker that
dies is restarted by Ray and its block retried; a block handed back twice is kept once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

import numpy as np
import torch

from discover.config import EmbedConfig, RayConfig
from discover.embed.base import Embedder
from discover.embed.cache import Computed
from discover.engine import import_ray
from discover.memory import keep_freed_memory

log = logging.getLogger(__name__)


class EmbedActor:
    """One Ray Data worker: builds its embedder once, then embeds chunk after chunk.

    A row is one cache chunk (its positions and items as JSON), so each chunk is embedded
    in the same batches as by the local engine: with equal torch threads the vectors are
    bit for bit the local engine's, and so is everything downstream.
    """

    def __init__(self, make_embedder: Callable[[], Embedder], batch_size: int, torch_threads: int) -> None:
        keep_freed_memory()
        torch.set_num_threads(torch_threads)
        self.embedder = make_embedder()
        self.batch_size = batch_size

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        positions, vectors, errors = [], [], []
        for chunk_positions, chunk_items in zip(rows["positions"], rows["items"], strict=True):
            items = json.loads(chunk_items)
            outcome = self.embedder.embed_items(items, self.batch_size)
            positions += json.loads(chunk_positions)
            vectors.append(outcome.vectors)
            errors += [outcome.failed.get(i, "") for i in range(len(items))]
        return {"position": np.asarray(positions), "vector": np.concatenate(vectors), "error": np.array(errors, object)}


def compute_on_ray(
    make_embedder: Callable[[], Embedder],
    items: list[str],
    embed: EmbedConfig,
    settings: RayConfig,
    on_block: Callable[[int], None] = lambda n: None,
) -> Callable[[list[list[int]]], Iterator[Computed]]:
    """A `compute` for :meth:`EmbeddingCache.fill` that embeds the batches on the connected
    cluster, `settings.actors` workers of `settings.cpus_per_actor` CPUs (and
    `settings.gpus_per_actor` GPUs) each, on `embed.torch_threads` threads (default: their
    CPUs); `on_block(n)` is told as each chunk comes back."""

    def run(batches: list[list[int]]) -> Iterator[Computed]:
        if not batches:
            return
        ray = import_ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the stage's own bar counts items as blocks return
        rows = [{"positions": json.dumps(b), "items": json.dumps([items[p] for p in b])} for b in batches]
        dataset = ray.data.from_items(rows, override_num_blocks=len(batches))
        threads = embed.torch_threads or max(1, int(settings.cpus_per_actor))
        embedded = dataset.map_batches(
            EmbedActor,
            fn_constructor_args=(make_embedder, embed.batch_size, threads),
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=min(settings.actors, len(batches))),
            num_cpus=settings.cpus_per_actor,
            num_gpus=settings.gpus_per_actor,
        )  # Ray Data restarts a dead worker and retries its chunk (max_restarts = max_task_retries = -1)
        for block in embedded.iter_batches(batch_size=None, batch_format="numpy"):
            done = block["position"].tolist()
            failed = {p: str(e) for p, e in zip(done, block["error"], strict=True) if e}
            on_block(len(done))
            yield done, np.asarray(block["vector"], dtype=np.float32), failed

    return run
