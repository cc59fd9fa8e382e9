"""Title words weighted by what the catalog's known levels say about them (protocol A).

:class:`KnownLevelWords` turns each title into a bag of its words and adjacent pairs, each
valued ``concentration ** power × position weight`` (:class:`discover.words.WordConcentration`,
learnt from the titles and the existing category of each product, never the hidden
level), reduced by a seeded truncated SVD to dense unit vectors: a text view like any
other embedder, fingerprinted by its corpus and the fitted weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import scipy.sparse as sp

from discover.embed.base import register
from discover.embed.corpus import CorpusSvdEmbedder
from discover.words import WordConcentration, words


@register("known-level-words")
class KnownLevelWords(CorpusSvdEmbedder):
    """The titles' words and word pairs weighted by their concentration in the known levels."""

    name = "known-level-words"

    def __init__(
        self, modality: str = "text", components: int = 256, power: float = 2.0, seed: int = 0, **_: object
    ) -> None:
        super().__init__(components, seed)
        self.power = power

    def fit_matrix(self, corpus: Sequence[str], known: Sequence[str]) -> sp.csr_matrix:
        self.concentration_ = WordConcentration().fit(corpus, known)
        self.vocabulary_ = {term: i for i, term in enumerate(self.concentration_.weights_)}
        return self.matrix(corpus)

    def fit_digest(self) -> str:
        return self.concentration_.digest()

    def settings_tag(self) -> str:
        return f"-p{self.power:g}"

    def matrix(self, titles: Sequence[str]) -> sp.csr_matrix:
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
