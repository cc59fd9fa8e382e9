"""Leave-one-group-out evaluation: how the classifier does on a domain it never saw.

A marketplace's shops (or seasons, or audiences) differ in photos and wording; a random split
hides that, because every domain is in training. Here each value of a chosen column (a shop
id where the catalog has one; ``gender`` or ``year`` bands where it does not) is held out
in turn: the model trains on the other domains and is scored on that one. Classes that the
other domains never show cannot be predicted; the table says how many test products have one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from discover.classify.data import stopping_split
from discover.classify.labels import LabelTree
from discover.classify.training import Inputs, TrainSettings, fit_classifier, predict, score_predictions


def leave_one_group_out(
    inputs: Inputs,
    tree: LabelTree,
    settings: TrainSettings,
    domains: np.ndarray,
    groups: np.ndarray | None = None,
    min_size: int = 50,
    progress: bool = False,
    titles: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per domain of at least `min_size` products: its scores when held out.

    `groups` (e.g. image hashes) keep near-duplicates on one side of the validation split
    used for early stopping inside the training domains. With `titles`, the models read the
    titles' n-grams too, their vocabulary learnt from the training domains' titles only.
    """
    domains = np.asarray(domains).astype(str)
    groups = np.arange(len(domains)) if groups is None else np.asarray(groups)
    rows = []
    for domain in sorted(set(domains)):
        held = np.flatnonzero(domains == domain)
        if len(held) < min_size:
            continue
        rest = np.flatnonzero(domains != domain)
        train, validation = stopping_split(inputs.codes[:, -1], groups, rest, 0.05, seed=0)
        used = inputs if titles is None else inputs.with_title_ngrams(titles, train)[0]
        model = fit_classifier(used.take(train), tree, settings, used.take(validation), progress)
        scores = score_predictions(tree, inputs.codes[held], predict(model, used.take(held)))
        unseen = ~np.isin(inputs.codes[held, -1], inputs.codes[train, -1])
        rows.append(
            {
                "held-out domain": domain,
                "products": len(held),
                "hF1": scores["hierarchical_f1"],
                "leaf acc": scores["leaf_accuracy"],
                "leaf macro-F1": scores["leaf_macro_f1"],
                "with a class unseen in training": float(unseen.mean()),
            }
        )
    return pd.DataFrame(rows)
