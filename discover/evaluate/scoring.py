"""Score proposals against the hidden truth column and against every attribute column.

A parent *qualifies* for the headline (the rediscovery benchmark of papers.md) when it
holds at least two truth classes of `min_class_size` or more products. ``weighted`` is the
product-weighted mean over qualifying parents; ``per_parent`` lists every parent.
``attributes`` repeats the weighted scores against each attribute column, so a user sees
whether proposals follow product type or merely colour or gender.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from discover.errors import WorkspaceError
from discover.evaluate.metrics import NOISE, ClusterScores, cluster_scores, weighted_mean
from discover.evaluate.names import name_scores
from discover.tree import SubcategoryTree
from discover.workspace import Workspace, write_json

MIN_CLASS_SIZE = 20


def cluster_codes(assignments: pd.DataFrame) -> np.ndarray:
    """Integer cluster labels from leaf ids, ``-1`` for noise."""
    codes = pd.factorize(assignments["node_id"])[0]
    return np.where(assignments["is_noise"].to_numpy(), NOISE, codes)


def qualifies(truth: pd.Series, min_class_size: int = MIN_CLASS_SIZE) -> bool:
    return int((truth.value_counts() >= min_class_size).sum()) >= 2


def scores_by_parent(assignments: pd.DataFrame, truth: pd.Series) -> dict[str, ClusterScores]:
    labels = pd.Series(cluster_codes(assignments), index=assignments.index)
    return {
        parent: cluster_scores(labels[rows.index].to_numpy(), truth[rows.index].to_numpy())
        for parent, rows in assignments.groupby("parent_id", sort=True)
    }


def evaluate(assignments: pd.DataFrame, catalog: pd.DataFrame, attributes: Sequence[str] = ()) -> dict[str, Any]:
    """metrics.json content: ``weighted``, ``per_parent`` and ``attributes``."""
    frame = assignments.set_index(catalog.index)
    truth = catalog["truth"].astype(str)
    per_parent = scores_by_parent(frame, truth)
    qualifying = [p for p, rows in frame.groupby("parent_id") if qualifies(truth[rows.index])]
    headline = [per_parent[p] for p in (qualifying or per_parent)]
    per_attribute = {}
    for attribute in attributes:
        scores = scores_by_parent(frame, catalog[attribute].astype(str))
        per_attribute[attribute] = weighted_mean([scores[p] for p in (qualifying or scores)])
    return {
        "weighted": weighted_mean(headline),
        "qualifying_parents": qualifying,
        "per_parent": {p: {**s.to_dict(), "qualifies": p in qualifying} for p, s in per_parent.items()},
        "attributes": per_attribute,
    }


def evaluate_run_outputs(
    tree: SubcategoryTree, assignments: pd.DataFrame, catalog: pd.DataFrame, attributes: Sequence[str] = ()
) -> dict[str, Any]:
    """:func:`evaluate` plus the names' scores (:mod:`discover.evaluate.names`): a run's metrics.json."""
    metrics = evaluate(assignments, catalog, attributes)
    metrics["names"] = name_scores(tree, assignments, catalog)
    return metrics


def attach_metrics(tree: SubcategoryTree, metrics: dict[str, Any]) -> None:
    for parent, scores in metrics["per_parent"].items():
        if parent in tree:
            tree[parent].metrics = scores


def evaluate_run(workspace: Workspace, run_id: str) -> dict[str, Any]:
    """Re-score a finished run from its own files (and its catalog snapshot); rewrite its metrics.json."""
    from discover.outputs.run_data import RunData

    run = RunData(workspace, run_id)
    if "truth" not in run.catalog.columns:
        raise WorkspaceError("the catalog has no truth column: map `truth` in the config to evaluate")
    metrics = evaluate_run_outputs(run.tree, run.assignments, run.catalog, run.config.catalog.columns.attributes)
    write_json(run.run_dir / "metrics.json", metrics)
    return metrics


def format_metrics(metrics: dict[str, Any]) -> str:
    """The per-parent table and the weighted line, for the terminal."""
    names = ("n", "cov", "purity", "hung", "nmi", "ari", "leaves")
    header = f"{'parent':42s} " + " ".join(f"{n:>6s}" for n in names) + f" {'true':>5s}"
    lines = [header]

    def row(name: str, s: dict) -> str:
        return (
            f"{name[:42]:42s} {s['n']:6d} {s['coverage']:6.3f} {s['purity']:6.3f} {s['hungarian_accuracy']:6.3f} "
            f"{s['nmi']:6.3f} {s['ari']:6.3f} {s['leaf_clusters']:6d} {s['true_classes']:5d}"
        )

    for parent, scores in metrics["per_parent"].items():
        if scores.get("qualifies"):
            lines.append(row(parent.removeprefix("root/"), scores))
    if metrics["weighted"]:
        lines.append(row("weighted (qualifying parents)", metrics["weighted"]))
    for attribute, scores in metrics.get("attributes", {}).items():
        if scores:
            lines.append(row(f"  same, against {attribute}", scores))
    if named := metrics.get("names"):
        lines.append(
            f"names: {named['type_word']:.0%} of {named['proposals']} proposals hold a word of their majority "
            f"type (its titles say one in {named['type_word_said']:.0%}), {named['title_order']:.0%} are in "
            "their titles' word order, "
            f"{named['duplicate_siblings']} sibling groups share a name, "
            f"{named['repeats_category']:.0%} say only their category's name beside siblings"
        )
    return "\n".join(lines)
