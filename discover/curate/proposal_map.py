"""The explorer's map of one category: every product at its 2-D UMAP place, coloured by proposal.

Each proposal its own colour (noise grey), the chosen proposal drawn opaque and larger
against the others, and each point carrying its product id, so a click or a
lasso on the map tells the explorer which products the curator means. Plotly reads a few
HTML tags in hover text, so catalog text is escaped there: it is shown as written.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative

from discover.tree import SubcategoryTree, in_subtree

PALETTE = qualitative.Dark24 + qualitative.Light24
NOISE_GREY = "#9e9e9e"
# Colours go to Plotly as palette indices on a stepped scale: Plotly checks a list of colour
# strings one by one (1.2 s of every rebuild of Topwear's 12,000-point map); numbers it takes as they are.
STEPPED_PALETTE = {  # palette index i is drawn in PALETTE[i]: one flat step of the scale per colour
    "colorscale": [[(i + edge) / len(PALETTE), c] for i, c in enumerate(PALETTE) for edge in (0, 1)],
    "cmin": -0.5,
    "cmax": len(PALETTE) - 0.5,
}


def _as_text(value: str) -> str:
    """Catalog text for Plotly labels: its tags escaped, so they show as written."""
    return html.escape(str(value), quote=False)


HOVER = "%{customdata[0]}<br>%{customdata[1]}<br><i>%{customdata[2]}</i><extra></extra>"


def category_points(
    tree: SubcategoryTree, parent_id: str, assignments: pd.DataFrame, coords: pd.DataFrame, titles: pd.Series
) -> pd.DataFrame:
    """The category's products with x, y, title, their (most likely) proposal and noise flag."""
    rows = (assignments["parent_id"] == parent_id).to_numpy()
    frame = coords.loc[rows, ["product_id", "x", "y"]].round({"x": 3, "y": 3})  # what a screen resolves
    frame["title"] = titles[rows].to_numpy()
    frame["leaf_id"] = assignments.loc[rows, "leaf_id"].to_numpy()
    frame["noise"] = assignments.loc[rows, "is_noise"].to_numpy()
    return frame


def proposal_map(points: pd.DataFrame, tree: SubcategoryTree, chosen: str | None, height: int = 460) -> go.Figure:
    """Scatter of `points` (from `category_points`), the `chosen` proposal's subtree highlighted.

    Three traces, not one per proposal (a browser redraws a few traces far faster than forty):
    the other proposals, each its own colour; the unassigned products in grey; the chosen
    proposal opaque and larger. Hover names each point's proposal. The drag mode is left to
    Streamlit: pan, where a click selects a point (in lasso or box mode a click selects nothing).
    """
    groups = list(dict.fromkeys(points["leaf_id"]))
    colour = {group: i % len(PALETTE) for i, group in enumerate(groups)}
    names = {g: tree[g].name if g in tree else "(category)" for g in groups}
    noise = points["noise"].to_numpy()
    shown = points.assign(
        proposal=points["leaf_id"].map(names).where(~noise, "unassigned; most likely " + points["leaf_id"].map(names)),
        colour=points["leaf_id"].map(colour).astype(float),
    )
    inside = in_subtree(shown["leaf_id"], chosen).to_numpy() if chosen else np.zeros(len(shown), dtype=bool)
    layers = [
        ("other proposals" if chosen else "proposals", shown[~inside & ~noise], 4, 0.4 if chosen else 0.9, None),
        ("unassigned (noise)", shown[noise & ~inside], 4, 0.6, NOISE_GREY),
        ("▶ " + tree[chosen].name if chosen else "", shown[inside], 7, 1.0, None),
    ]
    figure = go.Figure()
    for name, part, size, opacity, one_colour in layers:
        if part.empty:
            continue
        figure.add_trace(
            go.Scattergl(
                x=part["x"],
                y=part["y"],
                mode="markers",
                name=_as_text(name),
                customdata=part[["product_id", "title", "proposal"]].map(_as_text).to_numpy(),
                hovertemplate=HOVER,
                marker={"size": size, "opacity": opacity}
                | ({"color": one_colour} if one_colour else {"color": part["colour"].to_numpy(), **STEPPED_PALETTE}),
            )
        )
    figure.update_layout(
        height=height,
        margin={"l": 0, "r": 0, "t": 10, "b": 0},
        legend={"orientation": "h", "y": -0.02, "font": {"size": 11}, "itemsizing": "constant"},
        xaxis={"showticklabels": False, "title": None},
        yaxis={"showticklabels": False, "title": None},
    )
    return figure


def selected_products(event: object) -> list[str]:
    """Product ids of the points a click, box or lasso selected on the map (none if no event)."""
    selection = getattr(event, "selection", None) or {}
    ids = (html.unescape(point["customdata"][0]) for point in selection.get("points", []) if "customdata" in point)
    return list(dict.fromkeys(ids))
