"""Do the label-free signals on a proposal tell a curator which proposals hold several types?

Scored against the hidden truth column, leaf proposals only (clustered products):
``flagged`` the number of leaves flagged "mixed titles" of ``leaves``;
``purity_flagged`` / ``purity_unflagged`` their product-weighted purity;
``mixed_caught`` the share of mixed leaves (majority type under half their products) that are
flagged, ``flag_precision`` the share of flagged leaves that are mixed; and two rank
correlations with purity over the leaves: of the titles' agreement (the commonest type word's
share, :func:`discover.cluster.title_types.agreement`) and of HDBSCAN's stability, the
signal a curator had before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from discover.cluster.title_types import MIXED, agreement, type_stems
from discover.tree import SubcategoryTree
from discover.words import WordConcentration, words

MIXED_PURITY = 0.5  # a leaf whose majority true type holds fewer of its products is mixed


def flag_scores(
    tree: SubcategoryTree, assignments: pd.DataFrame, catalog: pd.DataFrame, known: WordConcentration
) -> dict[str, Any]:
    """The scores above, over the tree's leaf proposals."""
    clustered = ~assignments["is_noise"].to_numpy()
    frame = pd.DataFrame(
        {
            "leaf": assignments["leaf_id"].to_numpy()[clustered],
            "truth": catalog["truth"].astype(str).to_numpy()[clustered],
            "title": catalog["title"].fillna("").to_numpy()[clustered],
        }
    )
    rows = []
    for leaf, members in frame.groupby("leaf", sort=True):
        node = tree.nodes.get(leaf)
        if node is None or node.kind != "proposed" or node.children:
            continue
        rows.append(
            {
                "size": len(members),
                "purity": members["truth"].value_counts(normalize=True).iloc[0],
                "flagged": any(f.startswith(MIXED) for f in node.flags),
                # titles that name no type at all disagree on nothing: ranked with the agreeing
                "agreement": agreement(type_stems([words(t) for t in members["title"]], known)) or 1.0,
                "stability": np.nan if node.stability is None else node.stability,
            }
        )
    leaves = pd.DataFrame(rows, columns=["size", "purity", "flagged", "agreement", "stability"])
    flagged, mixed = leaves["flagged"].astype(bool), leaves["purity"] < MIXED_PURITY

    def weighted(rows: pd.Series) -> float:
        chosen = leaves[rows]
        return float(np.average(chosen["purity"], weights=chosen["size"])) if len(chosen) else float("nan")

    def ratio(part: pd.Series, whole: pd.Series) -> float:
        return float((part & whole).sum() / whole.sum()) if whole.sum() else float("nan")

    return {
        "leaves": len(leaves),
        "flagged": int(flagged.sum()),
        "purity_flagged": weighted(flagged),
        "purity_unflagged": weighted(~flagged),
        "mixed_caught": ratio(flagged, mixed),
        "flag_precision": ratio(mixed, flagged),
        "agreement_rank_correlation": float(leaves["agreement"].corr(leaves["purity"], method="spearman")),
        "stability_rank_correlation": float(leaves["stability"].corr(leaves["purity"], method="spearman")),
    }
