"""report.html: a self-contained page with plotly figures of a run (no network needed to view)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.express as px
import plotly.io as pio

from discover.tree import Node, SubcategoryTree
from discover.workspace import write_text

MAX_SCATTERS = 12


def parent_scatter(
    tree: SubcategoryTree,
    parent_id: str,
    assignments: pd.DataFrame,
    coords: pd.DataFrame,
    titles: pd.Series,
    height: int = 520,
):
    """2-D UMAP of one parent's products coloured by proposal (noise in grey), for the report."""
    rows = (assignments["parent_id"] == parent_id).to_numpy()
    frame = coords[rows].copy()
    leaf = assignments.loc[rows, "leaf_id"]
    frame["proposal"] = [tree[n].name if n in tree else "(parent)" for n in leaf]
    frame.loc[assignments.loc[rows, "is_noise"].to_numpy(), "proposal"] = "(noise)"
    frame["title"] = titles[rows].to_numpy()
    figure = px.scatter(
        frame,
        x="x",
        y="y",
        color="proposal",
        hover_data=["product_id", "title"],
        title=f"{parent_id.removeprefix('root/')}: proposals (2-D UMAP)",
        height=height,
        color_discrete_map={"(noise)": "#bbbbbb"},
    )
    figure.update_traces(marker={"size": 4})
    return figure


def sizes_figure(tree: SubcategoryTree):
    leaves = [n for n in tree.leaves() if n.kind == "proposed"]
    frame = pd.DataFrame(
        {
            "proposal": [" > ".join(n.path) for n in leaves],
            "size": [n.size for n in leaves],
            "parent": [tree.existing_parent(n.id).name for n in leaves],
        }
    ).sort_values("size", ascending=False)
    return px.bar(frame, x="proposal", y="size", color="parent", title="Proposed subcategory sizes", height=480)


METRIC_COLUMNS = ["n", "coverage", "purity", "hungarian_accuracy", "nmi", "ari", "leaf_clusters", "true_classes"]


def per_parent_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per existing parent (ids without ``root/``): the scores and whether it qualifies."""
    frame = pd.DataFrame(metrics["per_parent"]).T
    frame.index = [i.removeprefix("root/") for i in frame.index]
    return frame[[*METRIC_COLUMNS, "qualifies"]]


def metrics_table(metrics: dict[str, Any]) -> str:
    return per_parent_frame(metrics).to_html(float_format=lambda v: f"{v:.3f}", border=0)


def flagged_table(tree: SubcategoryTree) -> pd.DataFrame:
    """The proposals with a flag (brand-dominated, mixed titles), largest first, then the
    categories discovery left whole whose titles name several types."""

    def rows(nodes: list[Node], kind: str) -> list[dict[str, Any]]:
        return [
            {"where": " > ".join(n.path), "what": kind, "products": n.size, "flags": "; ".join(n.flags)}
            for n in sorted(nodes, key=lambda n: (-n.size, n.id))
            if n.flags
        ]

    categories = [n for n in tree.nodes.values() if n.kind == "existing"]
    return pd.DataFrame(
        rows(tree.proposals(), "proposal") + rows(categories, "category left whole"),
        columns=["where", "what", "products", "flags"],
    )


def write_report(
    path: Path,
    tree: SubcategoryTree,
    assignments: pd.DataFrame,
    coords: pd.DataFrame,
    catalog: pd.DataFrame,
    metrics: dict[str, Any] | None,
) -> None:
    parts = [f"<h1>discover run {html.escape(str(tree.meta.get('run_id', '')))}</h1>"]
    if metrics and metrics.get("weighted"):
        w = metrics["weighted"]
        parts.append(
            f"<p>Weighted over qualifying parents: coverage {w['coverage']:.3f}, purity {w['purity']:.3f}, "
            f"Hungarian accuracy {w['hungarian_accuracy']:.3f}, NMI {w['nmi']:.3f}, ARI {w['ari']:.3f}, "
            f"{w['leaf_clusters']} leaves for {w['true_classes']} true classes.</p>"
        )
        parts.append("<h2>Per parent</h2>" + metrics_table(metrics))
    flagged = flagged_table(tree)
    if not flagged.empty:  # catalog text: escaped, never markup
        parts.append(
            "<h2>Proposals and categories to look at first</h2>" + flagged.to_html(index=False, border=0, escape=True)
        )
    figures = [sizes_figure(tree)]
    parents = sorted(tree.parents_with_proposals(), key=lambda n: -n.size)[:MAX_SCATTERS]
    titles = catalog["title"].reset_index(drop=True)
    figures += [parent_scatter(tree, p.id, assignments, coords, titles) for p in parents]
    for index, figure in enumerate(figures):
        parts.append(pio.to_html(figure, full_html=False, include_plotlyjs=index == 0))
    page = "<!doctype html><html><head><meta charset='utf-8'><title>discover report</title>"
    page += (
        "<style>body{font-family:sans-serif;margin:2em} table{border-collapse:collapse} td,th{padding:2px 8px}</style>"
    )
    write_text(path, page + "</head><body>" + "\n".join(parts) + "</body></html>")
