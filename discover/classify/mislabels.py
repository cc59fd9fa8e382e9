"""Finding products whose registered category is unlikely: out-of-fold probabilities, ranked.

Confident learning (Northcutt et al., 2021) in its simplest form: every product is scored
by a model that never saw it (k grouped folds), and products are ranked by the probability
the model gives their *registered* leaf, lowest first. A product is flagged when that
probability is below its class's threshold (the mean probability the class's own products
get), and the leaf the model prefers is its suggestion.

New products (`classify predict` on a catalog that carries categories) need no folds: the
saved model never saw them. Each registered category gets the probability the model gives
it, at the depth it is registered, and a product is flagged where the model prefers another.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from discover.classify.data import stopping_split
from discover.classify.labels import LabelTree
from discover.classify.training import Inputs, Predictions, TrainSettings, fit_classifier, predict


def out_of_fold_probabilities(
    inputs: Inputs,
    tree: LabelTree,
    settings: TrainSettings,
    groups: np.ndarray,
    folds: int = 5,
    progress: bool = False,
    titles: Sequence[str] | None = None,
    stop_share: float | None = 0.1,
) -> np.ndarray:
    """n × leaves: p(leaf) for every product from the model of the fold that held it out.

    Each fold's model stops early on `stop_share` of its own training rows (grouped and
    stratified; None: it trains for all of `settings.epochs`), as `classify train` stops on
    its validation split. The registered labels it stops on are as noisy as those it learns,
    but they still say when it starts to learn the noise: on the classify benchmark's 5 %
    flips (probed with 1/8 of the groups), precision@k 0.847 in 136 s against 0.843 after
    20 epochs (192 s) and 0.843 after 40 (374 s, what `find-mislabels` ran).

    With `titles`, each fold's model also learns from the titles' n-grams, their vocabulary
    fitted on that fold's training titles only.
    """
    probabilities = np.zeros((len(inputs.image), tree.sizes()[-1]), dtype=np.float32)
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=settings.seed)
    for train, held in splitter.split(inputs.image, groups=groups):
        learns, stops = train, None
        if stop_share is not None:
            learns, stops = stopping_split(inputs.codes[:, -1], groups, train, stop_share, settings.seed)
        fold = inputs if titles is None else inputs.with_title_ngrams(titles, learns)[0]
        validation = None if stops is None else fold.take(stops)
        model = fit_classifier(fold.take(learns), tree, settings, validation, progress=progress)
        probabilities[held] = predict(model, fold.take(held)).leaf_probabilities
    return probabilities


def rank_mislabels(probabilities: np.ndarray, registered: np.ndarray, tree: LabelTree) -> pd.DataFrame:
    """One row per product, least likely registered leaf first, with the suggested leaf.

    Example:
        >>> tree = LabelTree.from_paths([("A", "a"), ("A", "b")])
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.95, 0.05]])
        >>> rank_mislabels(p, np.array([0, 1, 1]), tree)["row"].tolist()
        [2, 1, 0]
    """
    rows = np.arange(len(registered))
    self_confidence = probabilities[rows, registered]
    counts = np.bincount(registered, minlength=probabilities.shape[1])
    thresholds = np.bincount(registered, weights=self_confidence, minlength=len(counts)) / np.maximum(counts, 1)
    suggested = probabilities.argmax(axis=1)
    frame = pd.DataFrame(
        {
            "row": rows,
            "registered": [tree.classes[-1][c] for c in registered],
            "suggested": [tree.classes[-1][c] for c in suggested],
            "p_registered": self_confidence,
            "p_suggested": probabilities[rows, suggested],
            "flagged": (self_confidence < thresholds[registered]) & (suggested != registered),
        }
    )
    return frame.sort_values(["p_registered", "row"], kind="stable").reset_index(drop=True)


def precision_recall_at_k(ranked_rows: np.ndarray, flipped: np.ndarray, k: int) -> tuple[float, float]:
    """Precision and recall of the top `k` ranked rows against the rows known to be flipped."""
    hits = np.isin(ranked_rows[:k], flipped).sum()
    return float(hits / max(k, 1)), float(hits / max(len(flipped), 1))


def check_registered(
    registered: Sequence[Sequence[str] | None], tree: LabelTree, predicted: Predictions
) -> pd.DataFrame:
    """New products' registered categories against the model's predictions, one row each.

    A registered path may stop above the leaves (a catalog without the finest level): it is
    checked at its own depth, against the predicted path's category there; one deeper than
    the model's levels is checked down to the model's leaves.
    ``registered_path`` ("" without one), ``p_registered`` (the probability the model gives
    the registered category: its leaves' sum; empty where the model was never trained on
    that category) and ``flagged`` (the model prefers another category at that depth: sort
    by p_registered to read the least likely first).

    Example:
        >>> tree = LabelTree.from_paths([("A", "a"), ("A", "b"), ("B", "c")])
        >>> leaf = np.array([[0.9, 0.05, 0.05], [0.6, 0.3, 0.1], [0.2, 0.1, 0.7]])
        >>> guess = Predictions(np.array([[0, 0], [0, 0], [1, 2]]), leaf.max(axis=1), leaf)
        >>> checked = check_registered([("A", "a", "a1"), ("A", "b"), ("A",)], tree, guess)
        >>> checked["flagged"].tolist(), [round(float(p), 2) for p in checked["p_registered"]]
        ([False, True, True], [0.9, 0.3, 0.3])
    """
    registered = [tuple(path[: tree.depth]) if path else () for path in registered]
    depths = np.array([len(path) for path in registered])
    names = [" > ".join(path) for path in registered]
    p_registered = np.full(len(names), np.nan, dtype=np.float32)
    flagged = np.zeros(len(names), dtype=bool)
    leaves = tree.ancestors(np.arange(tree.sizes()[-1]))  # every leaf's category at each level
    for level in range(tree.depth):
        index = {name: i for i, name in enumerate(tree.classes[level])}
        code = np.array([index.get(n, -1) if d == level + 1 else -1 for n, d in zip(names, depths, strict=True)])
        rows = np.flatnonzero(code >= 0)
        if not len(rows):
            continue
        inside = np.eye(tree.sizes()[level], dtype=np.float32)[leaves[:, level]]  # leaves × categories of the level
        p_level = predicted.leaf_probabilities[rows] @ inside  # each category's probability: its leaves' sum
        p_registered[rows] = p_level[np.arange(len(rows)), code[rows]]
        flagged[rows] = predicted.paths[rows, level] != code[rows]
    return pd.DataFrame({"registered_path": names, "p_registered": p_registered, "flagged": flagged})


def check_summary(checked: pd.DataFrame) -> str:
    """One line on `check_registered`'s output: how many were checked, flagged, and registered
    under a category the model was never trained on."""
    known = checked["p_registered"].notna()
    unknown = int(((checked["registered_path"] != "") & ~known).sum())
    return (
        f"registered categories: {int(known.sum()):,} checked, {int(checked['flagged'].sum()):,} flagged "
        "(the model prefers another)"
        + (f"; {unknown:,} under a category the model was never trained on" if unknown else "")
    )
