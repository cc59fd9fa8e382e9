"""Title TF-IDF + truncated SVD: the cheap text baseline."""

from __future__ import annotations

from collections.abc import Sequence

import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from discover.embed.base import register
from discover.embed.corpus import CorpusSvdEmbedder


@register("tfidf")
class TfidfSvd(CorpusSvdEmbedder):
    """Word uni/bi-gram TF-IDF reduced by a seeded truncated SVD (latent semantic analysis).

    Fitted on the catalog's titles (the known categories are not used); the fingerprint
    names that corpus.
    """

    name = "tfidf"

    def __init__(self, modality: str = "text", components: int = 256, seed: int = 0, **_: object) -> None:
        super().__init__(components, seed)

    def fit_matrix(self, corpus: Sequence[str], known: Sequence[str]) -> sp.spmatrix:
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        return self.vectorizer_.fit_transform(corpus)

    def matrix(self, texts: Sequence[str]) -> sp.spmatrix:
        return self.vectorizer_.transform(texts)
