"""The titles' word and character n-grams as a sparse view beside the dense encoders.

A dense sentence encoder blurs the few tokens that name a product's type ("Kurti",
"Flats", "3/4th"); TF-IDF over word (1-2) and character (2-5, inside word boundaries)
n-grams keeps them, including spellings the encoder never saw. Measured on fashion-small
(BENCHMARKS.md "Classifier"), a linear model on these n-grams alone matches the best
fused dense model, and adding them to the fused model lifts leaf macro-F1 most.

The vectoriser is fitted on the training split's titles only and saved with the model
(its vocabulary and idf weights, as JSON), so `predict` turns new titles into the same
columns. Rows are unit length (each of the two blocks contributes half).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.feature_extraction.text import TfidfVectorizer

from discover.workspace import write_json

WORD = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "dtype": np.float32}
CHAR = {"analyzer": "char_wb", "ngram_range": (2, 5), "min_df": 3, "sublinear_tf": True, "dtype": np.float32}


class TitleNgrams:
    """Fit on training titles, then map any titles to an n × features sparse matrix.

    Example:
        >>> grams = TitleNgrams().fit(["Nike Men Running Shoes", "Puma Women Running Shoes", "W Women Kurti"] * 3)
        >>> X = grams.transform(["Adidas Men Running Shoes", "an unseen title"])
        >>> X.shape[0], round(float(X[0].multiply(X[0]).sum()), 4), grams.features == X.shape[1]
        (2, 1.0, True)
    """

    def __init__(self) -> None:
        self.word, self.char = TfidfVectorizer(**WORD), TfidfVectorizer(**CHAR)

    @property
    def features(self) -> int:
        return len(self.word.vocabulary_) + len(self.char.vocabulary_)

    def fit(self, titles: Sequence[str]) -> TitleNgrams:
        titles = [str(t) for t in titles]
        self.word.fit(titles)
        self.char.fit(titles)
        return self

    def transform(self, titles: Sequence[str]) -> sp.csr_matrix:
        titles = [str(t) for t in titles]
        blocks = sp.hstack([self.word.transform(titles), self.char.transform(titles)], format="csr")
        return (blocks * np.float32(0.5**0.5)).astype(np.float32)

    def save(self, path: Path) -> None:
        write_json(path, {name: _state(vectoriser) for name, vectoriser in (("word", self.word), ("char", self.char))})

    @classmethod
    def load(cls, path: Path) -> TitleNgrams:
        state = json.loads(path.read_text(encoding="utf-8"))
        grams = cls()
        for name in ("word", "char"):
            vectoriser = getattr(grams, name)
            vectoriser.vocabulary_ = state[name]["vocabulary"]
            vectoriser.idf_ = np.asarray(state[name]["idf"], dtype=np.float64)
        return grams


def _state(vectoriser: TfidfVectorizer) -> dict:
    return {"vocabulary": {k: int(v) for k, v in vectoriser.vocabulary_.items()}, "idf": vectoriser.idf_.tolist()}


def as_bag(matrix: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(column indices, row offsets, values): the input of `torch.nn.EmbeddingBag`, which
    multiplies the sparse rows by its weight without building a dense n × features matrix."""
    return (
        torch.as_tensor(matrix.indices, dtype=torch.long),
        torch.as_tensor(matrix.indptr[:-1], dtype=torch.long),
        torch.as_tensor(matrix.data, dtype=torch.float32),
    )
