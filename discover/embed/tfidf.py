"""Title TF-IDF + truncated SVD: the cheap text baseline."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from discover.embed.base import Embedder, EmbedOutcome, register


@register("tfidf")
class TfidfSvd(Embedder):
    """Word uni/bi-gram TF-IDF reduced by a seeded truncated SVD (latent semantic analysis).

    Unlike the neural embedders it is fitted on a corpus, so :meth:`fit` must be called with
    the catalog's titles first; the fingerprint then names that corpus.
    """

    name = "tfidf"
    modality = "text"

    def __init__(self, modality: str = "text", components: int = 256, seed: int = 0, **_: object) -> None:
        self.components = components
        self.seed = seed
        self.dim = components
        self._corpus_id: str | None = None

    def fit(self, corpus: Sequence[str], corpus_id: str) -> TfidfSvd:
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        matrix = self.vectorizer_.fit_transform(corpus)
        self.dim = max(2, min(self.components, matrix.shape[1] - 1, matrix.shape[0] - 1))
        self.svd_ = TruncatedSVD(self.dim, random_state=self.seed).fit(matrix)
        self._corpus_id = corpus_id
        return self

    @property
    def fingerprint(self) -> str:
        if self._corpus_id is None:
            raise RuntimeError("call fit(corpus) before using the tfidf embedder")
        return f"{self.name}-{self.dim}-{self.seed}-{self._corpus_id[:12]}"

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        reduced = self.svd_.transform(self.vectorizer_.transform(list(texts)))
        norms = np.linalg.norm(reduced, axis=1, keepdims=True)
        return EmbedOutcome((reduced / np.maximum(norms, 1e-12)).astype(np.float32))
