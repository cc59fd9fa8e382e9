"""What the explorer shows, computed here so the Streamlit app stays a thin view.

Everything takes a run's (curated) tree and assignments and returns plain tables.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image

from discover.tree import SubcategoryTree, in_subtree

QUALITY_BANDS = ((0.85, "high"), (0.6, "mixed"), (0.0, "low"))  # plain words: render in every font
QUALITY_COLOURS = {"high": "#d3f0d8", "mixed": "#fff1bf", "low": "#ffd6d6"}


def quality_style(label: str) -> str:
    """CSS for a quality cell, for pandas Styler."""
    colour = QUALITY_COLOURS.get(label)
    return f"background-color: {colour}" if colour else ""


def quality_label(purity: float | None) -> str:
    if purity is None or np.isnan(purity):
        return "–"
    return next(label for bound, label in QUALITY_BANDS if purity >= bound)


def parent_options(tree: SubcategoryTree) -> list[str]:
    """Existing parents that have proposals, largest first."""
    return [n.id for n in sorted(tree.parents_with_proposals(), key=lambda n: (-n.size, n.id))]


def node_purity(assignments: pd.DataFrame, truth: pd.Series | None, node_id: str) -> float | None:
    """Share of the node's clustered products that carry its most common truth label."""
    if truth is None:
        return None
    inside = in_subtree(assignments["leaf_id"], node_id) & ~assignments["is_noise"]
    labels = truth[inside.to_numpy()]
    return float(labels.value_counts(normalize=True).iloc[0]) if len(labels) else None


def proposal_table(
    tree: SubcategoryTree, assignments: pd.DataFrame, parent_id: str, truth: pd.Series | None
) -> pd.DataFrame:
    """One row per proposal under `parent_id`, in tree order, with size, keywords and quality."""
    rows = []
    for node in tree.descendants(parent_id):
        if node.kind != "proposed":
            continue
        purity = node_purity(assignments, truth, node.id)
        depth = node.id.count("/") - parent_id.count("/") - 1
        rows.append(
            {
                "id": node.id,
                "proposal": "\u2003" * depth + ("└ " if depth else "") + node.name,
                "size": node.size,
                "quality": quality_label(purity),
                "purity": purity,
                "keywords": ", ".join(node.keywords[:6]),
                "stability": node.stability,
                "leaf": not node.children,
            }
        )
    return pd.DataFrame(rows)


def nearest_sibling(tree: SubcategoryTree, coords: pd.DataFrame, assignments: pd.DataFrame, node_id: str) -> str | None:
    """The sibling proposal whose 2-D centroid is closest to this one's."""
    node = tree[node_id]
    siblings = [c for c in tree[node.parent].children if c != node_id and tree[c].kind == "proposed"]
    if not siblings:
        return None
    xy = coords[["x", "y"]].to_numpy()

    def centroid(nid: str) -> np.ndarray:
        inside = in_subtree(assignments["leaf_id"], nid).to_numpy()
        return xy[inside].mean(axis=0) if inside.any() else np.full(2, np.inf)

    here = centroid(node_id)
    return min(siblings, key=lambda s: float(np.linalg.norm(centroid(s) - here)))


def search_products(frame: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows whose title or product id contains every word of `query` (case-insensitive)."""
    if not query.strip():
        return frame
    text = (frame["product_id"].astype(str) + " " + frame["title"].astype(str)).str.lower()
    keep = np.ones(len(frame), dtype=bool)
    for word in query.lower().split():
        keep &= text.str.contains(word, regex=False).to_numpy()
    return frame[keep]


def page(frame: pd.DataFrame, number: int, size: int) -> pd.DataFrame:
    pages = max(1, -(-len(frame) // size))
    number = min(max(1, number), pages)
    return frame.iloc[(number - 1) * size : number * size]


@lru_cache(maxsize=4096)
def thumbnail_png(path: str, side: int = 96) -> bytes | None:
    """A small PNG of a product photo (None for an unreadable file)."""
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            return buffer.getvalue()
    except OSError:
        return None
