"""Parents of a :class:`~discover.cluster.cascade.CascadeClusterer` in parallel: local
processes or one Ray task per parent (:func:`discover.engine.ordered_map`).

A parent's clustering reads only its own rows and the estimator's settings, so each parent
runs alone in a worker (largest first, to keep the workers busy) and the results are
adopted in the sequential order: the tree and every label are identical to ``n_jobs=1``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import clone
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from discover.engine import ordered_map

if TYPE_CHECKING:
    from discover.cluster.cascade import CascadeClusterer


def fit_parents_in_parallel(
    model: CascadeClusterer, X: np.ndarray, order: list, rows_by_parent: dict, bar: tqdm
) -> None:
    """Fill `model`'s tree, labels, noise flags and probabilities parent by parent, `n_jobs` at a time."""
    by_size = sorted(order, key=lambda key: -len(rows_by_parent[key]))
    template = clone(model).set_params(n_jobs=1, progress=False)  # a Ray parent may split large proposals as tasks
    jobs = ((template, X[rows_by_parent[key]], list(key), model.ids_[rows_by_parent[key]]) for key in by_size)
    parts = {}
    results = ordered_map(_fit_one_parent, jobs, model.engine, model.n_jobs)
    for key, part in zip(by_size, results, strict=True):
        parts[key] = part
        bar.update(len(rows_by_parent[key]))  # as each parent finishes, so rate and ETA are honest
    for key in order:
        _adopt(model, parts.pop(key), np.asarray(rows_by_parent[key]))


def _adopt(model: CascadeClusterer, part: CascadeClusterer, rows: np.ndarray) -> None:
    """Take a worker's result for `rows`: the nodes `model` lacks (in the worker's creation
    order), the rows' labels and noise flags, and their probabilities (multiplied, as the
    sequential fit multiplies membership strengths down the cascade)."""
    for node in list(part.tree_.nodes.values())[1:]:
        if node.id not in model.tree_.nodes:
            model.tree_.add(dataclasses.replace(node, children=[]))
    model.labels_[rows] = part.labels_
    model.is_noise_[rows] = part.is_noise_
    model.probability_[rows] *= part.probability_


def _fit_one_parent(template: CascadeClusterer, X: np.ndarray, path: list[str], ids: np.ndarray) -> CascadeClusterer:
    """One parent's cascade in a worker process (BLAS on one thread, as in :meth:`CascadeClusterer.fit`).

    The template is cloned here: joblib sends small tasks in batches that share one
    unpickled template, so fitting it in place would hand every task of a batch the last
    task's result.
    """
    model = clone(template)
    with threadpool_limits(limits=1):
        model._validate()
        model._start(X, list(ids))
        model._fit_parent(X, np.arange(len(X)), path)
    return model


def fit_subtrees_as_tasks(model: CascadeClusterer, X: np.ndarray, deferred: list) -> None:
    """Split each deferred proposal ``(node, rows, depth)`` further in a Ray task of its own and
    adopt the result: the nodes below it, and its rows' labels, noise flags and probabilities."""
    template = clone(model).set_params(n_jobs=1, progress=False)
    jobs = (
        (template, X[rows], dataclasses.replace(node, children=[]), depth, model.ids_[rows])
        for node, rows, depth in deferred
    )
    for (node, rows, _), part in zip(deferred, ordered_map(_fit_subtree, jobs, "ray"), strict=True):
        node.split = part.tree_[node.id].split  # decided in the worker
        _adopt(model, part, rows)


def _fit_subtree(template: CascadeClusterer, X: np.ndarray, node, depth: int, ids: np.ndarray) -> CascadeClusterer:
    """One proposal's further splits in a worker: a fresh model whose tree holds the node alone."""
    from discover.tree import ROOT_ID

    model = clone(template)
    with threadpool_limits(limits=1):
        model._validate()
        model._start(X, list(ids))
        seeded = model.tree_.add(dataclasses.replace(node, parent=ROOT_ID))
        model._split(X, np.arange(len(X)), seeded, depth)
    return model
