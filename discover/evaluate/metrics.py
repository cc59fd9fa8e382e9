"""Clustering and hierarchical-classification metrics: plain functions over arrays.

Definitions (``../shared/docs/papers.md``): `labels` are cluster ids with ``-1`` for noise,
`truth` the hidden classes.

- purity: (1/N_clustered) Σ_k max_j |c_k ∩ t_j| over clustered items only.
- inverse purity: (1/N_clustered) Σ_j max_k |c_k ∩ t_j|, same items.
- coverage: share of items not left as noise.
- NMI, ARI: over all items, noise counted as one extra cluster.
- Hungarian accuracy: best one-to-one matching of clusters to classes over all items;
  noise and unmatched clusters count as wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, f1_score, normalized_mutual_info_score

NOISE = -1


@dataclass
class ClusterScores:
    """Scores of one clustering against one truth labelling."""

    n: int
    purity: float
    inverse_purity: float
    coverage: float
    nmi: float
    ari: float
    hungarian_accuracy: float
    leaf_clusters: int
    true_classes: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _encode(values: Sequence) -> np.ndarray:
    return np.unique(np.asarray(values).astype(str), return_inverse=True)[1]


def contingency(labels: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Counts of (cluster, class) over clustered items; rows are clusters ≥ 0."""
    clustered = labels != NOISE
    clusters = np.unique(labels[clustered])
    classes, class_index = np.unique(truth, return_inverse=True)
    table = np.zeros((len(clusters), len(classes)), dtype=np.int64)
    cluster_index = np.searchsorted(clusters, labels[clustered])
    np.add.at(table, (cluster_index, class_index[clustered]), 1)
    return table


def purity(labels: np.ndarray, truth: np.ndarray) -> float:
    table = contingency(np.asarray(labels), _encode(truth))
    return float(table.max(axis=1).sum() / table.sum()) if table.sum() else 0.0


def inverse_purity(labels: np.ndarray, truth: np.ndarray) -> float:
    table = contingency(np.asarray(labels), _encode(truth))
    return float(table.max(axis=0).sum() / table.sum()) if table.sum() else 0.0


def coverage(labels: np.ndarray) -> float:
    labels = np.asarray(labels)
    return float(np.mean(labels != NOISE)) if len(labels) else 0.0


def hungarian_accuracy(labels: np.ndarray, truth: np.ndarray) -> float:
    labels = np.asarray(labels)
    table = contingency(labels, _encode(truth))
    if table.size == 0:
        return 0.0
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / len(labels))


def cluster_scores(labels: Sequence[int], truth: Sequence) -> ClusterScores:
    """Every clustering score of `labels` (noise = -1) against `truth`."""
    labels = np.asarray(labels, dtype=np.int64)
    truth_codes = _encode(truth)
    return ClusterScores(
        n=len(labels),
        purity=purity(labels, truth_codes),
        inverse_purity=inverse_purity(labels, truth_codes),
        coverage=coverage(labels),
        nmi=float(normalized_mutual_info_score(truth_codes, labels)) if len(labels) else 0.0,
        ari=float(adjusted_rand_score(truth_codes, labels)) if len(labels) else 0.0,
        hungarian_accuracy=hungarian_accuracy(labels, truth_codes),
        leaf_clusters=int(len(np.unique(labels[labels != NOISE]))),
        true_classes=int(len(np.unique(truth_codes))),
    )


def weighted_mean(scores: Sequence[ClusterScores]) -> dict[str, float | int]:
    """Product-weighted mean of rates over parents; counts (n, clusters, classes) are summed."""
    total = sum(s.n for s in scores)
    if not total:
        return {}
    summed = ("n", "leaf_clusters", "true_classes")
    out: dict[str, float | int] = {k: sum(getattr(s, k) for s in scores) for k in summed}
    for key in ("purity", "inverse_purity", "coverage", "nmi", "ari", "hungarian_accuracy"):
        out[key] = float(sum(getattr(s, key) * s.n for s in scores) / total)
    return out


def hierarchical_prf(predicted: Sequence[Sequence[str]], true: Sequence[Sequence[str]]) -> tuple[float, float, float]:
    """Hierarchical precision, recall, F1 (Kiritchenko et al.) over paths (root first).

    Each path stands for the node and its ancestors; a node is identified by its prefix.
    """
    overlap = predicted_total = true_total = 0
    for p, t in zip(predicted, true, strict=True):
        p_nodes = {tuple(p[: i + 1]) for i in range(len(p))}
        t_nodes = {tuple(t[: i + 1]) for i in range(len(t))}
        overlap += len(p_nodes & t_nodes)
        predicted_total += len(p_nodes)
        true_total += len(t_nodes)
    precision = overlap / predicted_total if predicted_total else 0.0
    recall = overlap / true_total if true_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 15) -> float:
    """ECE: the mean gap between confidence and accuracy over equal-width confidence bins,
    weighted by how many predictions fall in each.

    Example:
        >>> round(expected_calibration_error(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0])), 3)
        0.1
    """
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=float)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gap = 0.0
    for b in np.unique(which):
        inside = which == b
        gap += inside.sum() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(gap / max(len(confidence), 1))


SUPPORT_BANDS = ((1, 1), (2, 4), (5, 19), (20, None))  # test products per class


def macro_f1_by_support(true: np.ndarray, predicted: np.ndarray) -> list[dict[str, Any]]:
    """Macro-F1 split by how many test products each true class has, and what each band costs.

    Macro-F1 weighs a class of one test product as much as one of a thousand, and a class of
    one is scored 0 or 1: a few such classes, often products the catalog itself files
    inconsistently, can move it more than everything else. ``cost`` is the band's share of
    1 − macro-F1 (the costs sum to it), so a reader sees where the F1 is lost.

    Example:
        >>> bands = macro_f1_by_support(np.array([0, 1, 1, 2, 2]), np.array([1, 1, 1, 2, 2]))
        >>> [(b["band"], b["classes"], round(b["cost"], 3)) for b in bands]
        [('1', 1, 0.333), ('2–4', 2, 0.067)]
    """
    true, predicted = np.asarray(true), np.asarray(predicted)
    labels, support = np.unique(true, return_counts=True)
    scores = f1_score(true, predicted, labels=labels, average=None, zero_division=0)
    bands = []
    for low, high in SUPPORT_BANDS:
        inside = (support >= low) & (support <= (high or np.inf))
        if not inside.any():
            continue
        name = str(low) if low == high else (f"{low}–{high}" if high is not None else f"≥ {low}")
        bands.append(
            {
                "band": name,
                "classes": int(inside.sum()),
                "products": int(support[inside].sum()),
                "macro_f1": float(scores[inside].mean()),
                "cost": float((1 - scores[inside]).sum() / len(labels)),
            }
        )
    return bands
