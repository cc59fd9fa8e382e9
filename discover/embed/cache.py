"""A content-addressed, resumable store of vectors for one embedder fingerprint.

Vectors are keyed by the item's content hash (photo bytes or title text), so identical
photos are embedded once, an unchanged catalog computes nothing, and a changed photo is
recomputed alone. New vectors are appended in chunk files written atomically, so a run
killed half-way keeps every finished chunk and the next run continues from there.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from discover.workspace import atomic_path, read_json, write_json

log = logging.getLogger(__name__)


Computed = tuple[list[int], np.ndarray, dict[int, str]]  # positions, their vectors, failures by position


def text_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


@dataclass
class CacheFill:
    """How a request was served: vectors in request order, counts, and failed items."""

    vectors: np.ndarray
    computed: int
    cached: int
    failed: dict[int, str] = field(default_factory=dict)


class EmbeddingCache:
    """Chunks under ``<root>/<fingerprint>.chunks/``; each holds ``keys`` and ``vectors``."""

    def __init__(self, root: Path, fingerprint: str, dim: int) -> None:
        self.chunks_dir = Path(root) / f"{fingerprint}.chunks"
        self.dim = dim

    def _chunk_files(self) -> list[Path]:
        if not self.chunks_dir.exists():
            return []
        return sorted(self.chunks_dir.glob("chunk-*.npz"))

    def load_index(self) -> dict[str, np.ndarray]:
        """Every cached vector by content key; an unreadable chunk is discarded (and recomputed)."""
        index: dict[str, np.ndarray] = {}
        for path in self._chunk_files():
            try:
                with np.load(path) as chunk:
                    keys, vectors = chunk["keys"].tolist(), chunk["vectors"]
                if vectors.shape != (len(keys), self.dim):
                    raise ValueError(f"vectors of shape {vectors.shape} for {len(keys)} keys of dim {self.dim}")
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
                log.warning("cache: %s is unreadable (%s); discarded, its vectors will be recomputed", path, error)
                path.unlink(missing_ok=True)
                continue
            index.update(zip(keys, vectors, strict=True))
        return index

    def _append(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        # numbered after the highest chunk, so a discarded chunk's number is never reused over a good one
        numbers = [int(p.stem.removeprefix("chunk-")) for p in self._chunk_files()]
        target = self.chunks_dir / f"chunk-{max(numbers, default=-1) + 1:06d}.npz"
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, keys=np.asarray(keys, dtype=str), vectors=vectors.astype(np.float32))

    def fill(
        self,
        keys: Sequence[str],
        compute: Callable[[list[list[int]]], Iterable[Computed]],
        chunk_size: int,
    ) -> CacheFill:
        """Return vectors for `keys`, computing only the missing ones, `chunk_size` at a time.

        `compute(batches)` embeds the items at those request positions, one batch after
        another or all at once on workers (:func:`one_batch_at_a_time`, or the Ray engine),
        and yields ``(positions, vectors, failures by position)`` as each batch is done, in
        any order; each finished batch is written as a chunk before the next is taken, so a
        killed run keeps it. Failed items are not cached (a fixed file is retried next run)
        and their rows are zeros. An item a retried worker hands back twice is kept once.
        """
        index = self.load_index()
        missing_keys = list(dict.fromkeys(k for k in keys if k and k not in index))
        first_position: dict[str, int] = {}
        for position, key in enumerate(keys):
            first_position.setdefault(key, position)
        failed: dict[int, str] = {}
        failed_keys: dict[str, str] = {}
        batches = [
            [first_position[k] for k in missing_keys[start : start + chunk_size]]
            for start in range(0, len(missing_keys), chunk_size)
        ]
        for positions, vectors, batch_failed in compute(batches):
            fresh = [i for i, p in enumerate(positions) if keys[p] not in index and keys[p] not in failed_keys]
            good = [i for i in fresh if positions[i] not in batch_failed]
            failed_keys.update({keys[positions[i]]: batch_failed[positions[i]] for i in fresh if i not in good})
            if good:
                good_keys = [keys[positions[i]] for i in good]
                self._append(good_keys, vectors[good])
                index.update(zip(good_keys, vectors[good], strict=True))
            log.debug("cache: chunk of %d written to %s", len(good), self.chunks_dir)
        out = np.zeros((len(keys), self.dim), dtype=np.float32)
        for position, key in enumerate(keys):
            if key in index:
                out[position] = index[key]
            else:
                failed[position] = failed_keys.get(key, "no content")
        computed = len(missing_keys) - len(failed_keys)
        return CacheFill(out, computed=computed, cached=len(keys) - len(failed) - computed, failed=failed)


def one_batch_at_a_time(
    compute: Callable[[list[int]], tuple[np.ndarray, dict[int, str]]],
) -> Callable[[list[list[int]]], Iterator[Computed]]:
    """Adapt ``compute(positions) -> (vectors, failures)`` to :meth:`EmbeddingCache.fill`, in this process."""

    def batches(all_batches: list[list[int]]) -> Iterator[Computed]:
        for positions in all_batches:
            yield (positions, *compute(positions))

    return batches


def save_aligned(root: Path, fingerprint: str, vectors: np.ndarray, meta: dict) -> Path:
    """Write ``<fingerprint>.npy`` aligned with the catalog rows, plus its ``.json``."""
    target = Path(root) / f"{fingerprint}.npy"
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        np.save(handle, vectors.astype(np.float32))
    write_json(target.with_suffix(".json"), meta)
    return target


def load_aligned(root: Path, fingerprint: str) -> tuple[np.ndarray, dict]:
    """Memory-mapped vectors and their metadata."""
    target = Path(root) / f"{fingerprint}.npy"
    return np.load(target, mmap_mode="r"), read_json(target.with_suffix(".json"))
