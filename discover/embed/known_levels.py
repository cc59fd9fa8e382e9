"""Title words weighted by what the catalog's known levels say about them (protocol A).

:class:`KnownLevelWords` turns each title into a bag of its words and adjacent pairs, each
valued ``concentration ** power × position weight`` (:class:`discover.words.WordConcentration`,
learnt from the titles and the existing category of each product, never the hidden
level), reduced by a seeded truncated SVD to dense unit vectors: a text view like any
other embedder, fingerprinted by its corpus and the fitted weights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD

from discover.embed.base import Embedder, EmbedOutcome, register
from discover.vectors import l2_normalise
from discover.words import WordConcentration, words


@register("known-level-words")
class KnownLevelWords(Embedder):
    """The titles' words and word pairs weighted by their concentration in the known levels.

    Fitted on the catalog (titles and known categories) before use, like ``tfidf``; the
    fingerprint names the fitted weights, so the cache never mixes two fits.
    """

    name = "known-level-words"
    modality = "text"
    uses_known_levels = True

    def __init__(
        self, modality: str = "text", components: int = 256, power: float = 2.0, seed: int = 0, **_: object
    ) -> None:
        self.components = components
        self.power = power
        self.seed = seed
        self.dim = components
        self._corpus_id: str | None = None

    def fit(self, corpus: Sequence[str], corpus_id: str, known: Sequence[str] | None = None) -> KnownLevelWords:
        if known is None:
            raise ValueError("known-level-words needs the known category of every title")
        self.concentration_ = WordConcentration().fit(corpus, known)
        self.vocabulary_ = {term: i for i, term in enumerate(self.concentration_.weights_)}
        matrix = self._bag(corpus)
        self.dim = max(2, min(self.components, matrix.shape[1] - 1, matrix.shape[0] - 1))
        self.svd_ = TruncatedSVD(self.dim, random_state=self.seed).fit(matrix)
        self._corpus_id = hashlib.sha1((corpus_id + self.concentration_.digest()).encode()).hexdigest()
        return self

    def _bag(self, titles: Sequence[str]) -> sp.csr_matrix:
        """Each title's terms valued concentration ** power × the weight of their position
        (a pair takes its position nearer the anchor); a repeated term keeps its best value."""
        model, rows, cols, values = self.concentration_, [], [], []
        for row, title in enumerate(titles):
            tokens = words(title)
            where = model.position_weight(len(tokens))
            terms = [*zip(tokens, where, strict=True)]
            terms += [((a, b), max(w1, w2)) for a, b, w1, w2 in zip(tokens, tokens[1:], where, where[1:], strict=False)]
            cells: dict[int, float] = {}
            for term, position in terms:
                column = self.vocabulary_.get(term)
                if column is not None:
                    value = model.weights_[term] ** self.power * position
                    cells[column] = max(cells.get(column, 0.0), value)
            rows += [row] * len(cells)
            cols += list(cells)
            values += list(cells.values())
        return sp.csr_matrix((values, (rows, cols)), shape=(len(titles), len(self.vocabulary_)))

    @property
    def fingerprint(self) -> str:
        if self._corpus_id is None:
            raise RuntimeError("call fit(corpus, corpus_id, known) before using the known-level-words embedder")
        return f"{self.name}-{self.dim}-p{self.power:g}-{self.seed}-{self._corpus_id[:12]}"

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        reduced = self.svd_.transform(self._bag(list(texts)))
        return EmbedOutcome(l2_normalise(reduced.astype(np.float32)))
