"""Text embedders fitted on the catalog itself: a sparse matrix per title, then a seeded SVD.

``tfidf`` and ``known-level-words`` differ only in the matrix; fitting, the fingerprint
(it names the corpus and whatever the fit learnt, so the cache never mixes two fits) and
the reduction to unit vectors live here once. The embed stage fits every such embedder on
the titles and the known category of each product before use.
"""

from __future__ import annotations

import hashlib
from abc import abstractmethod
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from threadpoolctl import threadpool_limits

from discover.embed.base import Embedder, EmbedOutcome
from discover.vectors import l2_normalise


class CorpusSvdEmbedder(Embedder):
    """Fit :meth:`fit_matrix` on a corpus, reduce by truncated SVD to at most `components`."""

    modality = "text"

    def __init__(self, components: int = 256, seed: int = 0) -> None:
        self.components = components
        self.seed = seed
        self.dim = components
        self._corpus_id: str | None = None

    @abstractmethod
    def fit_matrix(self, corpus: Sequence[str], known: Sequence[str]) -> sp.spmatrix:
        """Learn what the matrix needs from the corpus; return the corpus's matrix."""

    @abstractmethod
    def matrix(self, texts: Sequence[str]) -> sp.spmatrix:
        """One row per text, with what :meth:`fit_matrix` learnt."""

    def fit_digest(self) -> str:
        """What the fit learnt beyond the corpus itself (e.g. weights from the known levels)."""
        return ""

    def settings_tag(self) -> str:
        """Settings that change the vectors, for the fingerprint (e.g. ``-p2``)."""
        return ""

    def fit(self, corpus: Sequence[str], corpus_id: str, known: Sequence[str]) -> CorpusSvdEmbedder:
        """Fit the matrix and the SVD; BLAS on one thread, so the vectors never depend on cores."""
        with threadpool_limits(limits=1):
            matrix = self.fit_matrix(corpus, known)
            self.dim = max(2, min(self.components, matrix.shape[1] - 1, matrix.shape[0] - 1))
            self.svd_ = TruncatedSVD(self.dim, random_state=self.seed).fit(matrix)
        self._corpus_id = hashlib.sha1((corpus_id + self.fit_digest()).encode()).hexdigest()
        return self

    @property
    def fingerprint(self) -> str:
        if self._corpus_id is None:
            raise RuntimeError(f"call fit(corpus, corpus_id, known) before using the {self.name} embedder")
        return f"{self.name}-{self.dim}{self.settings_tag()}-{self.seed}-{self._corpus_id[:12]}"

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        with threadpool_limits(limits=1):
            reduced = self.svd_.transform(self.matrix(list(texts)))
        return EmbedOutcome(l2_normalise(reduced.astype(np.float32)))
