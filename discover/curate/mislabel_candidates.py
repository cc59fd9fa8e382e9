"""The mislabel finder's candidates as a curator acts on them: where each product sits now,
and the existing category the classifier suggests, as a node of the run's tree to move it to.

`discover classify find-mislabels` ranks products by how unlikely their registered category
is; its categories may go one level deeper than the run's (the truth column, when the
classifier learnt it). A curator moves products between the run's existing categories, so
suggestions are cut to the run's level; a suggestion inside the product's own category is
counted but not offered as a move (there, the proposals' own Move tab applies).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from discover.tree import SubcategoryTree, existing_id


def load_mislabels(path: Path) -> pd.DataFrame:
    """The finder's CSV (product ids as text, as written)."""
    return pd.read_csv(path, dtype={"product_id": str, "title": str, "registered": str, "suggested": str})


def candidates(
    mislabels: pd.DataFrame, catalog: pd.DataFrame, assignments: pd.DataFrame, tree: SubcategoryTree, level: int
) -> tuple[pd.DataFrame, int]:
    """Flagged products whose suggested category (cut to `level`) is another node of `tree`
    than the category they sit in now, least likely registered category first; and how many
    flagged products were left out because the suggestion lies inside their own category."""
    flagged = mislabels[mislabels["flagged"].astype(bool)]
    where = assignments.set_index("product_id")
    flagged = flagged[flagged["product_id"].isin(where.index)]
    target = [existing_id(s.split(" > ")[:level]) for s in flagged["suggested"]]
    current = where.loc[flagged["product_id"], "parent_id"].to_numpy()
    movable = [t in tree.nodes and t != c for t, c in zip(target, current, strict=True)]
    shown = flagged.assign(target=target, now=current)[movable]
    photos = catalog.set_index("product_id")["image_path"]
    shown = shown.assign(
        image_path=photos.loc[shown["product_id"]].to_numpy(),
        place=[" > ".join(tree[leaf].path) for leaf in where.loc[shown["product_id"], "leaf_id"]],
        move_to=[" > ".join(tree[t].path) for t in shown["target"]],
    )
    return shown.reset_index(drop=True), len(flagged) - len(shown)
