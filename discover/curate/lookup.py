"""Where a product sits now, and why: catalog-wide search, and a product's nearest
exemplars and neighbours in the features the run clustered.

A curator who finds a product in an odd proposal asks whether it resembles that proposal
(its exemplars are close, most of its neighbours sit there) or was pushed there by a weak
vote (noise, few neighbours agree), which decides between moving it and leaving it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from discover.curate.views import search_products
from discover.tree import SubcategoryTree
from discover.vectors import l2_normalise


def _place(tree: SubcategoryTree, node_id: str) -> str:
    return " > ".join(tree[node_id].path)


COLUMNS = ["product_id", "title", "image_path", "place", "noise", "probability", "leaf_id"]


def locate(
    catalog: pd.DataFrame, assignments: pd.DataFrame, tree: SubcategoryTree, query: str, limit: int = 200
) -> pd.DataFrame:
    """Products whose id or title holds every word of `query`, with where each sits now."""
    if not query.strip():
        return pd.DataFrame(columns=COLUMNS)
    found = search_products(catalog[["product_id", "title"]], query).head(limit)
    return locate_ids(catalog, assignments, tree, found["product_id"].tolist())


def locate_ids(
    catalog: pd.DataFrame, assignments: pd.DataFrame, tree: SubcategoryTree, product_ids: list[str]
) -> pd.DataFrame:
    """The given products (in that order) with title, photo and where each sits now."""
    found = catalog.set_index("product_id").loc[product_ids, ["title", "image_path"]].reset_index()
    where = assignments.set_index("product_id").loc[product_ids]
    return found.assign(
        place=[_place(tree, leaf) for leaf in where["leaf_id"]],
        noise=where["is_noise"].to_numpy(),
        probability=where["probability"].round(2).to_numpy(),
        leaf_id=where["leaf_id"].to_numpy(),
    )[COLUMNS]


@dataclass
class Why:
    """Why a product sits in its proposal."""

    product_id: str
    leaf_id: str
    agreement: float  # share of its nearest neighbours (same category) in the same proposal
    neighbours: pd.DataFrame  # product_id, title, image_path, place, similarity, same
    exemplars: pd.DataFrame  # product_id, title, image_path, similarity


def why_here(
    X: np.ndarray, catalog: pd.DataFrame, assignments: pd.DataFrame, tree: SubcategoryTree, product_id: str, k: int = 8
) -> Why:
    """The `k` products most similar to `product_id` (cosine, inside its category) and its
    proposal's exemplars, each with its similarity; rows of `X` follow `assignments`."""
    ids = assignments["product_id"].astype(str)
    position = pd.Series(np.arange(len(ids)), index=ids.to_numpy())
    row = int(position[str(product_id)])
    leaf = assignments["leaf_id"].iat[row]
    same_parent = np.flatnonzero(assignments["parent_id"].to_numpy() == assignments["parent_id"].iat[row])
    same_parent = same_parent[same_parent != row]
    unit = l2_normalise(np.asarray(X[np.r_[row, same_parent]], dtype=np.float32))
    similarity = unit[1:] @ unit[0]
    order = np.argsort(-similarity, kind="stable")[:k]
    near = same_parent[order]
    titles = catalog.set_index(catalog["product_id"].astype(str))
    neighbours = pd.DataFrame(
        {
            "product_id": ids.iloc[near].to_numpy(),
            "title": titles.loc[ids.iloc[near], "title"].to_numpy(),
            "image_path": titles.loc[ids.iloc[near], "image_path"].to_numpy(),
            "place": [_place(tree, n) for n in assignments["leaf_id"].iloc[near]],
            "similarity": similarity[order].round(3),
            "same": assignments["leaf_id"].iloc[near].to_numpy() == leaf,
        }
    )
    exemplar_ids = [e for e in tree[leaf].exemplars if e in position.index and e != str(product_id)]
    exemplar_rows = position.loc[exemplar_ids].to_numpy()
    exemplar_unit = l2_normalise(np.asarray(X[exemplar_rows], dtype=np.float32)) if len(exemplar_rows) else unit[:0]
    exemplars = pd.DataFrame(
        {
            "product_id": exemplar_ids,
            "title": titles.loc[exemplar_ids, "title"].to_numpy(),
            "image_path": titles.loc[exemplar_ids, "image_path"].to_numpy(),
            "similarity": (exemplar_unit @ unit[0]).round(3),
        }
    ).sort_values("similarity", ascending=False, kind="stable")
    agreement = float(neighbours["same"].mean()) if len(neighbours) else 0.0
    return Why(str(product_id), leaf, agreement, neighbours, exemplars.reset_index(drop=True))
