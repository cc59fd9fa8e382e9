"""Embedding in worker processes on this machine (``embed.n_jobs``), each on its own torch
thread(s), each building its embedder once.

For a small network on a CPU, N processes of one thread embed more items a second than one
process of N threads: EfficientNet-Lite0 at 128 px on 2 cores, 132 photos/s against 116
(``benchmarks/embed.py``). The work goes out in pieces of `PIECE` items, so no core waits
on the last long chunk; the pieces of a cache chunk come back together and the chunk is
written as one (:meth:`discover.embed.cache.EmbeddingCache.fill`), so a run stopped
half-way resumes from the chunks already written, as in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial

import numpy as np
import torch

from discover.config import EmbedConfig
from discover.embed.base import Embedder
from discover.embed.cache import Computed
from discover.errors import EmbedError
from discover.memory import keep_freed_memory

PIECE = 256  # items per task: four batches of 64, a few seconds of work

_embedder: Embedder | None = None  # each worker's own, built once by _start


def worker_count(n_jobs: int) -> int:
    """Processes for `n_jobs` (-1: one per core)."""
    return max(1, os.cpu_count() or 1) if n_jobs == -1 else max(1, n_jobs)


def _start(make_embedder: Callable[[], Embedder], threads: int, parent: int) -> None:
    global _embedder
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    keep_freed_memory()
    torch.set_num_threads(threads)
    _embedder = make_embedder()


def _exit_when_orphaned(parent: int) -> None:
    """Stop once the parent is gone: a parent killed outright cannot stop its workers itself."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _embed(items: list[str], batch_size: int) -> tuple[np.ndarray, dict[int, str]]:
    assert _embedder is not None, "the worker's embedder is built when it starts"
    outcome = _embedder.embed_items(items, batch_size)
    return outcome.vectors, outcome.failed


def compute_in_processes(
    make_embedder: Callable[[], Embedder],
    items: list[str],
    embed: EmbedConfig,
    processes: int,
    on_piece: Callable[[int], None] = lambda n: None,
) -> Callable[[list[list[int]]], Iterator[Computed]]:
    """A `compute` for :meth:`EmbeddingCache.fill` on `processes` workers started for it and
    stopped with it, `embed.torch_threads` threads each (default: the cores shared out);
    `on_piece(n)` is told as each piece of n items comes back."""
    threads = embed.torch_threads or max(1, (os.cpu_count() or 1) // processes)

    def run(batches: list[list[int]]) -> Iterator[Computed]:
        if not batches:
            return
        context = multiprocessing.get_context("spawn")  # never fork a process that runs torch threads
        with ProcessPoolExecutor(
            processes, context, initializer=_start, initargs=(make_embedder, threads, os.getpid())
        ) as pool:
            try:
                chunks = [_submit(pool, positions, items, embed.batch_size, on_piece) for positions in batches]
                for positions, pieces in zip(batches, chunks, strict=True):
                    yield _gathered(positions, pieces)
            except BrokenProcessPool as error:
                raise EmbedError(
                    f"embed: a worker process died ({error}); the chunks already written are kept, run again to resume"
                ) from error
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    return run


def _submit(
    pool: ProcessPoolExecutor, positions: list[int], items: list[str], batch_size: int, on_piece: Callable[[int], None]
) -> list[Future]:
    pieces = []
    for start in range(0, len(positions), PIECE):
        chosen = [items[p] for p in positions[start : start + PIECE]]
        future = pool.submit(_embed, chosen, batch_size)
        future.add_done_callback(partial(_count, on_piece, len(chosen)))
        pieces.append(future)
    return pieces


def _count(on_piece: Callable[[int], None], n: int, done: Future) -> None:
    if not done.cancelled():
        on_piece(n)


def _gathered(positions: list[int], pieces: list[Future]) -> Computed:
    """One chunk's vectors and failures (by position) from its pieces, in order."""
    vectors, failed = [], {}
    for index, future in enumerate(pieces):
        part, errors = future.result()
        vectors.append(part)
        failed.update({positions[index * PIECE + i]: error for i, error in errors.items()})
    return positions, np.concatenate(vectors), failed
