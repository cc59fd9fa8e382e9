"""Training data: grouped and stratified splits, a per-class cap, class weights, and how
imbalanced the classes are.

Splits are grouped (fashion-small: by ``image_md5``) so that the same photo never lands in
both training and test, and stratified by leaf so that every split sees every class it can.
Training comes first: a class too rare to be in every split is in training before it is
tested, since a class the model never saw can only be scored as wrong. Under-sampling caps
each class's training rows and never drops a class entirely.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

RARE_CLASS = 5  # the imbalance summary counts the classes learnt from fewer products than this


@dataclass
class Splits:
    """Row indices of each split."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def _one_fold(labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, held) with held ≈ 1/folds of the rows, grouped and stratified."""
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # classes rarer than the folds: `_train_sees_every_class` places them
        warnings.filterwarnings("ignore", "The least populated class in y", UserWarning)
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


def imbalance_report(labels: np.ndarray, splits: Splits, learnt: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Every class's products in each split, most trained-on first: how skewed training is,
    what the per-class cap set aside (`train` against `learnt`), and how few test products
    score the rarest classes. `share` is the class's part of the learnt rows; `names` are the
    full paths, since one leaf name can sit under two parents.

    Example:
        >>> labels = np.array([0] * 6 + [1] * 3 + [2])
        >>> splits = Splits(np.array([0, 1, 2, 3, 6, 7, 9]), np.array([4, 8]), np.array([5]))
        >>> report = imbalance_report(labels, splits, np.array([0, 1, 6, 7, 9]), ["A > a", "A > b", "B > c"])
        >>> report[["train", "learnt", "validation", "test"]].values.tolist()
        [[4, 2, 1, 1], [2, 2, 1, 0], [1, 1, 0, 0]]
    """

    def count(rows: np.ndarray) -> np.ndarray:
        return np.bincount(labels[rows], minlength=len(names))

    frame = pd.DataFrame(
        {
            "train": count(splits.train),
            "learnt": count(learnt),
            "validation": count(splits.validation),
            "test": count(splits.test),
        },
        index=pd.Index(names, name="class"),
    )
    frame = frame[frame.sum(axis=1) > 0]
    frame["share"] = frame["learnt"] / max(int(frame["learnt"].sum()), 1)
    return frame.sort_values(["learnt", "train"], ascending=False, kind="stable")


def imbalance_summary(report: pd.DataFrame, cap: int | None) -> list[str]:
    """The report in three lines: the largest and smallest class, the ratio, the rare tail,
    and what the cap did.

    Example:
        >>> report = pd.DataFrame({"train": [40, 3, 1], "learnt": [10, 3, 1]}, index=["A > a", "A > b", "B > c"])
        >>> for line in imbalance_summary(report, cap=10):
        ...     print(line)
        3 leaf classes, 14 products learnt: largest A > a 10 (71.4 %), smallest B > c 1; 10:1
        2 classes learnt from fewer than 5 products
        classify.max_per_class 10: 1 class capped, 30 training products set aside
    """
    learnt = report["learnt"]
    largest, smallest = learnt.idxmax(), learnt[learnt > 0].idxmin()
    share = 100 * learnt[largest] / learnt.sum()
    lines = [
        f"{len(report)} leaf classes, {learnt.sum():,} products learnt: largest {largest} {learnt[largest]:,} "
        f"({share:.1f} %), smallest {smallest} {learnt[smallest]:,}; {learnt[largest] // learnt[smallest]:,}:1"
    ]
    rare = int((learnt < RARE_CLASS).sum())
    lines.append(f"{rare} class{'es' if rare != 1 else ''} learnt from fewer than {RARE_CLASS} products")
    if cap is not None:
        capped = int((report["train"] > report["learnt"]).sum())
        aside = int((report["train"] - report["learnt"]).sum())
        lines.append(
            f"classify.max_per_class {cap}: {capped} class{'es' if capped != 1 else ''} capped, "
            f"{aside:,} training products set aside"
        )
    return lines
