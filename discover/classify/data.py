"""Training data: grouped and stratified splits, a per-class cap, class weights, and how
imbalanced the classes are.

Splits are grouped (fashion-small: by ``image_md5``) so that the same photo never lands in
both training and test, and stratified by leaf so that every split sees every class it can.
Training comes first: a class too rare to be in every split is in training before it is
tested, since a class the model never saw can only be scored as wrong. Under-sampling caps
each class's training rows and never drops a class entirely.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold


@dataclass
class Splits:
    """Row indices of each split."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _one_fold(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held) with held ≈ 1/folds of the rows, grouped and stratified."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return next(splitter.split(np.zeros(len(labels)), labels, groups))


def grouped_splits(
    labels: np.ndarray, groups: np.ndarray | None, test_size: float = 0.2, validation_size: float = 0.1, seed: int = 0
) -> Splits:
    """Train / validation / test rows, no group in two splits, classes spread evenly.

    Example:
        >>> labels = np.repeat([0, 1], 50)
        >>> splits = grouped_splits(labels, np.arange(100) // 2, seed=0)
        >>> len(splits.train) + len(splits.validation) + len(splits.test)
        100
        >>> rare = grouped_splits(np.r_[labels, 2], np.r_[np.arange(100) // 2, 99], seed=0)
        >>> 100 in rare.train  # a class of one product is trained on, never only tested
        True
    """
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    rest, test = _one_fold(labels, groups, max(2, round(1 / test_size)), seed)
    share = validation_size / (1 - test_size)
    train, validation = _one_fold(labels[rest], groups[rest], max(2, round(1 / share)), seed)
    return _train_sees_every_class(labels, groups, Splits(rest[train], rest[validation], test), seed)


def stopping_split(
    labels: np.ndarray, groups: np.ndarray | None, rows: np.ndarray, share: float, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`rows` cut into (rows to learn, ≈ `share` of them to stop training on), grouped and
    stratified as `grouped_splits` cuts, every class of `rows` among those learnt.

    Example:
        >>> labels = np.r_[np.repeat([0, 1], 50), 2]
        >>> learns, stops = stopping_split(labels, None, np.arange(101), 0.1)
        >>> len(stops), 100 in learns
        (10, True)
    """
    groups = np.arange(len(labels)) if groups is None else np.asarray(groups)
    inner_labels, inner_groups = labels[rows], groups[rows]
    learns, stops = _one_fold(inner_labels, inner_groups, max(2, round(1 / share)), seed)
    kept = _train_sees_every_class(inner_labels, inner_groups, Splits(learns, stops, np.array([], int)), seed)
    return rows[kept.train], rows[kept.validation]


def _train_sees_every_class(labels: np.ndarray, groups: np.ndarray, splits: Splits, seed: int) -> Splits:
    """Move one group (seeded) of each class that training lacks from validation or test into
    training. Stratified group folds cannot spread a class of one or two groups over three
    splits; they put it anywhere, and a class only in test is unlearnable."""
    side = np.full(len(labels), 0)
    side[splits.validation], side[splits.test] = 1, 2
    rng = np.random.default_rng(seed)
    for label in np.unique(labels):
        members = labels == label
        if (side[members] == 0).any():
            continue
        candidates = np.unique(groups[members])
        side[groups == rng.choice(candidates)] = 0
    return Splits(*(np.flatnonzero(side == part) for part in (0, 1, 2)))


def undersample(labels: np.ndarray, rows: np.ndarray, cap: int | None, seed: int = 0) -> np.ndarray:
    """At most `cap` rows of each class among `rows` (seeded); every class keeps at least one.

    Example:
        >>> labels = np.array([0] * 10 + [1] * 2)
        >>> np.bincount(labels[undersample(labels, np.arange(12), cap=3)]).tolist()
        [3, 2]
    """
    if cap is None:
        return rows
    rng = np.random.default_rng(seed)
    kept = [
        rng.choice(members, min(len(members), max(cap, 1)), replace=False)
        for members in (rows[labels[rows] == c] for c in np.unique(labels[rows]))
    ]
    return np.sort(np.concatenate(kept))


def class_weights(labels: np.ndarray, classes: int) -> np.ndarray:
    """Inverse-frequency weights (mean 1 over the rows), 0 for a class absent from `labels`."""
    counts = np.bincount(labels, minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, len(labels) / np.maximum(counts, 1) / max((counts > 0).sum(), 1), 0.0)
    return weights.astype(np.float32)


def imbalance_report(labels: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Class sizes, largest first, with their share and the ratio to the smallest class."""
    counts = pd.Series(np.bincount(labels, minlength=len(names)), index=names, name="products")
    counts = counts[counts > 0].sort_values(ascending=False)
    return pd.DataFrame({"products": counts, "share": counts / counts.sum(), "x smallest": counts / counts.min()})
