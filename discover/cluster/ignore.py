"""Removing what predicts attributes the user declares not to be types (``discovery.ignore``).

Iterative null-space projection (INLP, Ravfogel et al., ACL 2020): fit a linear classifier
that predicts the attribute (e.g. gender) from the vectors, project the vectors onto the
null space of its weights, and repeat until a fresh classifier does no better than
guessing the most common value on held-out rows. Proposals then cannot follow gender or
colour through any linear direction, while every direction orthogonal to them (product
type, mostly) is kept exactly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import train_test_split

log = logging.getLogger(__name__)

FIT_ROWS = 20_000  # rows used to fit each classifier: enough for a linear model, bounded cost


@dataclass
class Removal:
    """What one attribute's removal did."""

    attribute: str
    directions: int
    accuracy_before: float
    accuracy_after: float
    majority: float


def _classifier_directions(X: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, float]:
    """Orthonormal basis of a fitted classifier's weight rows, and its held-out accuracy."""
    train_x, test_x, train_y, test_y = train_test_split(X, y, test_size=0.3, random_state=seed)
    model = RidgeClassifier(alpha=1.0).fit(train_x, train_y)
    accuracy = float(model.score(test_x, test_y))
    weights = np.atleast_2d(model.coef_)
    basis, singular, _ = np.linalg.svd(weights.T, full_matrices=False)
    return basis[:, singular > 1e-8 * singular.max()], accuracy


def remove_attribute(
    X: np.ndarray, values: pd.Series, seed: int = 0, max_iterations: int = 20, margin: float = 0.01
) -> tuple[np.ndarray, Removal]:
    """`X` projected so that no linear classifier predicts `values` better than the majority.

    Rows whose value is missing take part in the projection but not in the fitting.
    """
    known = values.notna().to_numpy() & (values.astype(str).str.strip() != "").to_numpy()
    y_all = values.astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    rows = np.flatnonzero(known)
    if len(rows) > FIT_ROWS:
        rows = np.sort(rng.choice(rows, FIT_ROWS, replace=False))
    y = y_all[rows]
    majority = float(pd.Series(y).value_counts(normalize=True).iloc[0]) if len(y) else 1.0
    projected = np.asarray(X, dtype=np.float64).copy()
    if len(np.unique(y)) < 2:
        return projected.astype(np.float32), Removal(str(values.name), 0, majority, majority, majority)
    removed, before, accuracy = 0, None, majority
    for iteration in range(max_iterations):
        basis, accuracy = _classifier_directions(projected[rows], y, seed + iteration)
        before = accuracy if before is None else before
        if accuracy <= majority + margin or basis.shape[1] == 0:
            break
        projected -= (projected @ basis) @ basis.T
        removed += basis.shape[1]
    report = Removal(str(values.name), removed, float(before), accuracy, majority)
    log.info(
        "ignore %s: %d directions removed; a linear classifier's accuracy %.3f → %.3f (majority %.3f)",
        *(report.attribute, removed, report.accuracy_before, accuracy, majority),
    )
    return projected.astype(np.float32), report


def remove_attributes(
    X: np.ndarray, catalog: pd.DataFrame, attributes: list[str], seed: int = 0
) -> tuple[np.ndarray, list[Removal]]:
    """Remove each declared attribute in turn (the later ones see the earlier removals)."""
    reports = []
    for attribute in attributes:
        X, report = remove_attribute(X, catalog[attribute].rename(attribute), seed)
        reports.append(report)
    return X, reports
