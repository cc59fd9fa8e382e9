"""The explorer's map of one category: every product at its 2-D UMAP place, coloured by proposal.

Each proposal its own colour (noise grey), the chosen proposal drawn opaque and larger
against the others, and each point carrying its product id, so a click or a
lasso on the map tells the explorer which products the curator means. Plotly reads a few
HTML tags in hover text, so catalog text is escaped there: it is shown as written.

A large category is drawn as a sample (`MAP_POINTS`): every proposal keeps its share and
its exemplars, and a box or lasso selects every product inside it, drawn or not.
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


# What a 460-px map can show: past it points hide each other, and the browser pays for each
# one on every rerun (Topwear's 12,259 points: ~1.3 s of each proposal switch or rename; 3,000: ~0.6 s).
MAP_POINTS = 3000
MIN_PER_GROUP = 20  # a small proposal stays visible in a sampled map

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


def drawn_points(points: pd.DataFrame, always: set[str], limit: int = MAP_POINTS, seed: int = 0) -> pd.DataFrame:
    """About `limit` of `points`, the same ones on every rerun: each proposal's clustered and
    unassigned products keep their share (at least `MIN_PER_GROUP`), and `always` (exemplars)
    are drawn whatever the sample."""
    if len(points) <= limit:
        return points
    rng = np.random.default_rng(seed)
    groups = points["leaf_id"] + np.where(points["noise"].to_numpy(), "|noise", "")
    keep = points["product_id"].isin(always).to_numpy().copy()  # pandas may hand out a read-only view
    for rows in groups.groupby(groups, sort=True).indices.values():
        share = min(len(rows), max(MIN_PER_GROUP, round(limit * len(rows) / len(points))))
        keep[rng.choice(rows, share, replace=False)] = True
    return points[keep]


def proposal_map(
    points: pd.DataFrame, tree: SubcategoryTree, chosen: str | None, height: int = 460, limit: int = MAP_POINTS
) -> go.Figure:
    """Scatter of `points` (from `category_points`; above `limit`, a sample: `drawn_points`),
    the `chosen` proposal's subtree highlighted.

    Three traces, not one per proposal (a browser redraws a few traces far faster than forty):
    the other proposals, each its own colour; the unassigned products in grey; the chosen
    proposal opaque and larger. Hover names each point's proposal. The drag mode is left to
    Streamlit: pan, where a click selects a point (in lasso or box mode a click selects nothing).
    """
    groups = list(dict.fromkeys(points["leaf_id"]))
    exemplars = {e for g in groups if g in tree for e in tree[g].exemplars}
    points = drawn_points(points, exemplars, limit)
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


def selected_products(event: object, points: pd.DataFrame | None = None) -> list[str]:
    """Product ids a click, box or lasso selected on the map (none if no event). With the
    category's `points`, a box or lasso selects every product inside it, not only the drawn ones."""
    selection = getattr(event, "selection", None) or {}
    ids = [html.unescape(point["customdata"][0]) for point in selection.get("points", []) if "customdata" in point]
    if points is not None:
        x, y = points["x"].to_numpy(), points["y"].to_numpy()
        for box in selection.get("box", []):
            inside = (x >= min(box["x"])) & (x <= max(box["x"])) & (y >= min(box["y"])) & (y <= max(box["y"]))
            ids += points.loc[inside, "product_id"].tolist()
        for lasso in selection.get("lasso", []):
            ids += points.loc[inside_polygon(x, y, lasso["x"], lasso["y"]), "product_id"].tolist()
    return list(dict.fromkeys(ids))


def inside_polygon(x: np.ndarray, y: np.ndarray, xs: list[float], ys: list[float]) -> np.ndarray:
    """Which points lie inside the polygon (vertices `xs`, `ys`): even-odd ray casting.

    Example:
        >>> inside_polygon(np.array([0.5, 2.0]), np.array([0.5, 0.5]), [0, 1, 1, 0], [0, 0, 1, 1]).tolist()
        [True, False]
    """
    inside = np.zeros(len(x), dtype=bool)
    for i in range(len(xs)):
        (x1, y1), (x2, y2) = (xs[i - 1], ys[i - 1]), (xs[i], ys[i])
        if y1 == y2:
            continue  # a horizontal edge crosses no horizontal ray
        crosses = ((y1 > y) != (y2 > y)) & (x < x1 + (y - y1) * (x2 - x1) / (y2 - y1))
        inside ^= crosses
    return inside
