"""Directions of the photo and title embeddings that separate sibling leaves (protocol B).

Where a catalog's taxonomy is already fine (``known_leaf`` filled), it shows what tells
sibling types apart: Heels from Flats, Kurtas from Shirts. :class:`SiblingDirections` learns
those directions with a linear discriminant whose between-class scatter is taken among
siblings only (each known leaf's mean against its parent's mean), so that it learns what
separates types inside one parent rather than Footwear from Apparel. The within-class
scatter (colour, gender, a brand's style: what varies inside one known leaf) is shrunk
towards a multiple of the identity, and the directions whiten it. Products under a parent
whose leaves are unknown are then projected onto what separates types elsewhere. Rows
without a known leaf never take part in the fit, so the parent being discovered teaches
nothing about itself.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
from threadpoolctl import threadpool_limits

from discover.errors import ConfigError
from discover.tree import category_paths, known_labels
from discover.vectors import l2_normalise

log = logging.getLogger(__name__)

FIT_ROWS = 20_000  # rows of known leaves used to fit: enough for the scatter matrices, bounded cost
CHUNK = 4096


def stacked(blocks: Sequence[np.ndarray]) -> np.ndarray:
    """The row-normalised photo and title blocks side by side, the input of the directions."""
    return np.concatenate([l2_normalise(np.asarray(b, dtype=np.float32)) for b in blocks], axis=1)


@dataclass
class SiblingDirections:
    """A sibling-discriminant projection learnt from the products whose leaf is known.

    Attributes (after :meth:`fit`):
        mean_: the centre of the fitted rows.
        components_: ``(features, k)`` directions, most discriminative first.
        ratios_: the between/within scatter ratio along each direction.
        leaves_: how many known leaves (with at least one sibling) it learnt from.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 6)) * [0.2, 3, 3, 3, 3, 3]  # type on column 0, big noise elsewhere
        >>> leaf = np.where(np.arange(400) % 2 == 0, "a > x", "a > y")
        >>> X[:, 0] += np.where(leaf == "a > x", 1.0, -1.0)
        >>> model = SiblingDirections(components=1).fit(X, leaf, np.ones(400, bool))
        >>> int(np.abs(model.components_[:, 0]).argmax())
        0
    """

    components: int = 64
    shrinkage: float = 0.1
    seed: int = 0

    def fit(self, X: np.ndarray, labels: Sequence[str], leaf_known: np.ndarray) -> SiblingDirections:
        """Fit on the rows of `X` whose `labels` (paths joined by `` > ``) end in a known leaf."""
        rows = np.flatnonzero(leaf_known)
        if len(rows) > FIT_ROWS:
            rows = np.sort(np.random.default_rng(self.seed).choice(rows, FIT_ROWS, replace=False))
        names, codes = np.unique(np.asarray(labels, dtype=object)[rows].astype(str), return_inverse=True)
        parents = np.array([name.rsplit(" > ", 1)[0] if " > " in name else "" for name in names], dtype=object)
        with threadpool_limits(limits=1):  # the same directions on any number of cores
            within, means, counts = self._scatter(np.asarray(X, dtype=np.float64)[rows], codes, len(names))
            between, leaves, rank = self._between(means, counts, parents)
            if rank == 0:
                raise ValueError("sibling directions need two known leaves under one parent; none has")
            scale = np.trace(within) / len(within)
            within = (1 - self.shrinkage) * within + self.shrinkage * scale * np.eye(len(within))
            ratios, vectors = scipy.linalg.eigh(between, within)
        order = np.argsort(ratios)[::-1][: min(self.components, rank)]
        self.mean_ = (counts @ means) / counts.sum()
        self.components_ = vectors[:, order] * np.sign(vectors[np.abs(vectors[:, order]).argmax(0), order])
        self.ratios_ = ratios[order]
        self.leaves_ = leaves
        return self

    @staticmethod
    def _scatter(X: np.ndarray, codes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled within-leaf covariance, each leaf's mean and size, in chunks of rows."""
        counts = np.bincount(codes, minlength=n_classes).astype(np.float64)
        sums = np.zeros((n_classes, X.shape[1]))
        np.add.at(sums, codes, X)
        means = sums / counts[:, None]
        within = np.zeros((X.shape[1], X.shape[1]))
        for start in range(0, len(X), CHUNK):
            centred = X[start : start + CHUNK] - means[codes[start : start + CHUNK]]
            within += centred.T @ centred
        return within / len(X), means, counts

    @staticmethod
    def _between(means: np.ndarray, counts: np.ndarray, parents: np.ndarray) -> tuple[np.ndarray, int, int]:
        """Scatter of each leaf's mean around its parent's (leaves without a sibling add nothing);
        the leaves that took part, and the rank (leaves minus parents) of the scatter."""
        between, leaves, rank = np.zeros((means.shape[1], means.shape[1])), 0, 0
        for parent in pd.unique(parents):
            siblings = np.flatnonzero(parents == parent)
            if len(siblings) < 2:
                continue
            centre = counts[siblings] @ means[siblings] / counts[siblings].sum()
            spread = (means[siblings] - centre) * np.sqrt(counts[siblings])[:, None]
            between += spread.T @ spread
            leaves += len(siblings)
            rank += len(siblings) - 1
        return between / counts.sum(), leaves, rank

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Each row's coordinates along the directions (float32)."""
        with threadpool_limits(limits=1):
            return ((np.asarray(X, dtype=np.float64) - self.mean_) @ self.components_).astype(np.float32)


def sibling_directions(
    blocks: Sequence[np.ndarray], catalog: pd.DataFrame, level: int, components: int, shrinkage: float, seed: int
) -> np.ndarray:
    """The photo and title `blocks` of every product of `catalog` projected onto the directions
    that separate its known sibling leaves (``embed.directions``)."""
    has_leaf = (
        catalog["known_leaf"].fillna("").astype(str).ne("").to_numpy()  # stripped on ingest
        if "known_leaf" in catalog.columns
        else np.zeros(len(catalog), dtype=bool)
    )
    if not has_leaf.any():
        raise ConfigError(
            "embed.directions learns from the leaves a catalog already knows: "
            "set catalog.columns.known_leaf to a column filled for some products"
        )
    X = stacked(blocks)
    labels = known_labels(catalog, level)
    model = SiblingDirections(components, shrinkage, seed).fit(X, labels, has_leaf)
    log.info(
        "embed directions: %d directions from %d known leaves of %d products (%d parents without known leaves)",
        *(model.components_.shape[1], model.leaves_, int(has_leaf.sum()), _unknown_parents(catalog, level, has_leaf)),
    )
    return model.transform(X)


def _unknown_parents(catalog: pd.DataFrame, level: int, has_leaf: np.ndarray) -> int:
    paths = pd.Series([" > ".join(p) for p in category_paths(catalog, level)])
    return int((~pd.Series(has_leaf).groupby(paths).any()).sum())
