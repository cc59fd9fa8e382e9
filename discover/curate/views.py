"""What the explorer shows, computed here so the Streamlit app stays a thin view.

Everything takes a run's (curated) tree and assignments and returns plain tables or ids.
"""

from __future__ import annotations

import io
import re
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from discover.classify import placement
from discover.cluster.title_types import MIXED, agreement, type_stems, whole_category_flags
from discover.curate.store import Decision
from discover.tree import Node, SubcategoryTree, in_subtree
from discover.words import WordConcentration, words

QUALITY_BANDS = ((0.85, "high"), (0.6, "mixed"), (0.0, "low"))  # plain words: render in every font
QUALITY_COLOURS = {"high": "#d3f0d8", "mixed": "#fff1bf", "low": "#ffd6d6"}


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


def plain(text: object) -> str:
    """Catalog or curator text made inert for Streamlit's Markdown: every Markdown character
    backslash-escaped and newlines flattened, so a title like ``![x](http://host/x.png)`` shows
    as written and never makes the curator's browser fetch anything.

    Example:
        >>> print(plain("**Nike** ![x](http://h/x.png)"))
        \\*\\*Nike\\*\\* \\!\\[x\\]\\(http\\://h/x\\.png\\)
    """
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


METRIC_HELP = (
    "Weighted over categories holding two or more true types of 20+ products. "
    "Purity: share of clustered products in their proposal's majority type. "
    "Coverage: share not left as noise. NMI and ARI: agreement with the true types (noise as one group; 1 is perfect). "
    "Hungarian accuracy: share of products right under the best one-to-one pairing of proposals and types."
)


CARD_HELP = {
    "Products": "Products whose most likely proposal is this one or lies below it, noise included.",
    "Stability": "HDBSCAN persistence of the cluster: how long it holds as the density threshold rises. "
    "Higher is more trustworthy; compare with siblings.",
    "Purity": "Share of its clustered products that carry its most common true type. Needs a truth column.",
    "Nearest sibling": "The sibling proposal whose centre on the 2-D map is closest: the likeliest merge.",
    "Titles agree": "Share of its products' titles that name its commonest type word (the title's "
    "telling word nearest the type end); under half, the proposal is flagged “mixed titles”. Needs no truth column.",
}


def concentration(members: pd.DataFrame, attributes: list[str]) -> list[str]:
    """Truth-free signals: how much of a proposal shares one value of each attribute, and one
    leading title word (often the brand). "100 % Women" says a proposal may follow gender."""
    signals = []
    columns = [(c, members[c].astype(str)) for c in attributes if c in members]
    columns.append(("first title word", members["title"].astype(str).str.split().str[0].fillna("")))
    for name, values in columns:
        if len(values):
            shares = values.value_counts(normalize=True)
            signals.append(f"{shares.iloc[0]:.0%} {shares.index[0]} ({name})")
    return signals


def attribute_table(metrics: dict) -> pd.DataFrame:
    """Purity, NMI and Hungarian accuracy against the truth and against each attribute column."""
    rows = {"type (truth)": metrics["weighted"], **{a: s for a, s in metrics.get("attributes", {}).items() if s}}
    columns = ["purity", "nmi", "hungarian_accuracy", "true_classes"]
    return pd.DataFrame({name: {c: scores[c] for c in columns} for name, scores in rows.items()}).T


def describe(decision: Decision, names: dict[str, str]) -> str:
    """A decision in a curator's words: proposal names (as they were then), not node ids."""
    p = decision.payload

    def name(node_id: str) -> str:
        return f"“{names[node_id]}”" if node_id in names else node_id.rsplit("/", 1)[-1]

    text = {
        "rename": lambda: f"renamed {name(p['node'])} to “{p['name']}”",
        "merge": lambda: f"merged {name(p['node'])} into {name(p['into'])}",
        "split": lambda: f"split {name(p['node'])} into " + ", ".join(f"“{n}”" for n in p["names"]),
        "reject": lambda: f"rejected {name(p['node'])}",
        "move": lambda: (
            f"moved {len(p['products'])} products to {name(p['target'])}"
            + (f" and rejected {name(p['reject'])}" if p.get("reject") else "")
        ),
    }[decision.action]()
    return text + (f" ({decision.comment})" if decision.comment else "")


def history(decisions: list[Decision], tree: SubcategoryTree) -> list[str]:
    """Every decision described with the names its proposals had at that moment.

    Example:
        >>> from discover.tree import Node
        >>> tree = SubcategoryTree()
        >>> _ = tree.add(Node("root/a", "root", "proposed", "Tees"))
        >>> history([Decision(1, "r", "rename", {"node": "root/a", "name": "Polos"}, "", 0.0),
        ...          Decision(2, "r", "reject", {"node": "root/a"}, "", 0.0)], tree)
        ['renamed “Tees” to “Polos”', 'rejected “Polos”']
    """
    names = {n.id: n.name for n in tree.nodes.values()}
    described = []
    for decision in decisions:
        described.append(describe(decision, names))
        if decision.action == "rename":
            names[decision.payload["node"]] = decision.payload["name"]
        elif decision.action == "split":
            node = decision.payload["node"]
            names.update({f"{node}/s{i}": n for i, n in enumerate(decision.payload["names"], start=1)})
    return described


def export_summary(diff: dict[str, Any]) -> str:
    """One line of what an export hands the catalog team (counts from `taxonomy_diff`), and
    how many of its subcategories the classifier calls mislabelled where the run is placed.

    Example:
        >>> unplaced = [{"verdict": ""}] * 3
        >>> export_summary({"new": unplaced, "renamed": [{}], "merged": [], "split": [], "rejected": [], "moved": []})
        '3 subcategories · 1 renamed · 0 merged · 0 split · 0 rejected · 0 moved'
        >>> placed = [{"verdict": "new subtype"}, {"verdict": "mislabelled: 82% Accessories > Watches"}]
        >>> export_summary({"new": placed, "renamed": [], "merged": [], "split": [], "rejected": [], "moved": []})
        '2 subcategories · 0 renamed · 0 merged · 0 split · 0 rejected · 0 moved · 1 probably mislabelled'
    """
    kinds = ("renamed", "merged", "split", "rejected", "moved")
    counts = [f"{len(diff['new']):,} subcategories", *(f"{len(diff[k]):,} {k}" for k in kinds)]
    verdicts = [n["verdict"] for n in diff["new"]]
    if any(verdicts):  # the run is placed
        counts.append(f"{sum(v.startswith(placement.SHORT_MISLABELLED) for v in verdicts):,} probably mislabelled")
    return " · ".join(counts)


def export_table(diff: dict[str, Any]) -> pd.DataFrame:
    """The subcategories an export writes, one row each, largest first; a renamed one says
    what it was called, and each its verdict where the run was placed (new subtype or
    mislabelled?). Shown as a table (data, never Markdown)."""
    was = {r["id"]: r["from"] for r in diff["renamed"]}
    rows = [
        {
            "category": " > ".join(n["path"][:-1]),
            "subcategory": n["path"][-1],
            "products": n["size"],
            "verdict": n["verdict"],
            "renamed from": was.get(n["id"], ""),
            "keywords": ", ".join(n["keywords"][:6]),
        }
        for n in diff["new"]
    ]
    columns = ["category", "subcategory", "products", "verdict", "renamed from", "keywords"]
    frame = pd.DataFrame(rows, columns=columns)
    if not frame["verdict"].astype(bool).any():  # not placed: no empty column
        frame = frame.drop(columns="verdict")
    return frame.sort_values(["products", "category"], ascending=[False, True], kind="stable").reset_index(drop=True)


def quality_style(label: str) -> str:
    """CSS for a quality cell, for pandas Styler."""
    colour = QUALITY_COLOURS.get(label)
    return f"background-color: {colour}" if colour else ""


def verdict_style(verdict: str) -> str:
    """CSS for a verdict cell: a proposal probably mislabelled into its category stands out.

    Example:
        >>> verdict_style("mislabelled: 82% Accessories > Watches"), verdict_style("new subtype")
        ('background-color: #fff1bf', '')
    """
    return f"background-color: {QUALITY_COLOURS['mixed']}" if verdict.startswith(placement.SHORT_MISLABELLED) else ""


def flag_kinds(flags: list[str]) -> str:
    """A proposal's flags in a table cell: their kinds only.

    Example:
        >>> flag_kinds(["brand-dominated: 90% “Acme”", "mixed titles: 40% “Kajal”, 20% “Blush”"])
        'brand-dominated; mixed titles'
    """
    return "; ".join(flag.split(":")[0] for flag in flags)


def flag_text(flag: str, split_hint: str = "The Split tab below can part them.") -> str:
    """A proposal's flag as its card says it, with what the curator can do about it.

    Example:
        >>> flag_text("mixed titles: 40% “Kajal”, 20% “Blush”")
        'Mixed titles: 40% “Kajal”, 20% “Blush”. The Split tab below can part them.'
    """
    text = flag[:1].upper() + flag[1:]
    return f"{text}. {split_hint}" if flag.startswith(MIXED) else text


def quality_label(purity: float | None) -> str:
    if purity is None or np.isnan(purity):
        return "–"
    return next(label for bound, label in QUALITY_BANDS if purity >= bound)


def parent_options(tree: SubcategoryTree) -> list[str]:
    """Existing parents that have proposals, largest first."""
    return [n.id for n in sorted(tree.parents_with_proposals(), key=lambda n: (-n.size, n.id))]


def category_label(node: Node, whole: bool) -> str:
    """A category as the sidebar's box lists it: its path and size and, for one with no
    proposals, that and the flags discovery gave it ("mixed titles" says a split helps there).

    Example:
        >>> flags = ["mixed titles: 42% “Pencil”, 33% “Mascara”"]
        >>> eyes = Node("root/Eyes", "root", "existing", "Eyes", ["Personal Care", "Eyes"], size=24, flags=flags)
        >>> category_label(eyes, whole=True)
        'Personal Care > Eyes (24) · no proposals · mixed titles'
    """
    label = f"{' > '.join(node.path)} ({node.size:,})"
    return " · ".join([label, "no proposals", *(flag.split(":")[0] for flag in node.flags)]) if whole else label


def whole_categories(tree: SubcategoryTree, assignments: pd.DataFrame) -> list[str]:
    """The categories products are proposed in that hold no proposal, largest first: those
    discovery left whole (too small, or no split found) and those whose proposals the curator
    rejected. A curator may still split them."""
    with_proposals = {n.id for n in tree.parents_with_proposals()}
    ids = [i for i in pd.unique(assignments["parent_id"]) if i in tree and i not in with_proposals]
    return [n.id for n in sorted((tree[i] for i in ids), key=lambda n: (-n.size, n.id))]


def title_flags(members: pd.DataFrame, known: WordConcentration | None, smallest: int) -> list[str]:
    """The "mixed titles" flag of a category left whole, by the rule discovery flags it with
    (:func:`discover.cluster.title_types.whole_category_flags`), of the products it holds now."""
    return whole_category_flags([words(title) for title in members["title"].fillna("").astype(str)], known, smallest)


def whole_reason(node: Node) -> str:
    """Why a category holds no proposal, in a curator's words.

    Example:
        >>> eyes = Node("root/Eyes", "root", "existing", "Eyes", split="not split: 24 products < min_parent_size 30")
        >>> whole_reason(eyes).split(". ")[0]
        'Discovery left this category whole (24 products < min_parent_size 30)'
    """
    if node.split.startswith("not split: "):
        why = f"Discovery left this category whole ({node.split.removeprefix('not split: ')})."
    else:  # discovery split it; the curator's decisions took its proposals away
        why = "This category has no proposals left: curation rejected, merged or moved them away."
    return why + " Split it below to propose subcategories."


def node_purity(assignments: pd.DataFrame, truth: pd.Series | None, node_id: str) -> float | None:
    """Share of the node's clustered products that carry its most common truth label."""
    if truth is None:
        return None
    inside = in_subtree(assignments["leaf_id"], node_id) & ~assignments["is_noise"]
    labels = truth[inside.to_numpy()]
    return float(labels.value_counts(normalize=True).iloc[0]) if len(labels) else None


def trivial_purity(assignments: pd.DataFrame, truth: pd.Series | None, node_id: str) -> str | None:
    """A warning when the node's category holds a single truth value: any proposal there is
    100 % pure, so its purity says nothing about the clustering."""
    if truth is None:
        return None
    inside = in_subtree(assignments["leaf_id"], node_id).to_numpy()
    parents = assignments.loc[inside, "parent_id"].unique()
    values = truth[assignments["parent_id"].isin(parents).to_numpy()].unique()
    if len(values) != 1:
        return None
    return f"Purity is trivially 1.00 here: every product of this category has the same truth value “{values[0]}”."


def title_agreement(
    assignments: pd.DataFrame, titles: pd.Series, known: WordConcentration, node_id: str
) -> float | None:
    """How much the titles of the node's products agree on their type: the commonest type
    word's share (:func:`discover.cluster.title_types.agreement`), purity's label-free
    stand-in, over the products the "mixed titles" flag read (noise placed in it too)."""
    inside = in_subtree(assignments["leaf_id"], node_id).to_numpy()
    return agreement(type_stems([words(t) for t in titles[inside].fillna("").astype(str)], known))


def proposal_table(
    tree: SubcategoryTree,
    assignments: pd.DataFrame,
    parent_id: str,
    truth: pd.Series | None,
    titles: pd.Series | None = None,
    known: WordConcentration | None = None,
) -> pd.DataFrame:
    """One row per proposal under `parent_id`, in tree order, with size, flags, keywords, its
    quality against the truth where the catalog has a truth column, and the classifier's
    verdict where the run was placed (`discover classify place-proposals`); with the `titles`
    and `known` words, how much its titles agree on its type (:func:`title_agreement`)."""
    rows = []
    placed = any(n.placement for n in tree.nodes.values())
    agrees = known is not None and titles is not None
    if agrees:  # each title read once, not once per node above it
        here = (assignments["parent_id"] == parent_id).to_numpy()
        stems = np.array(type_stems([words(t) for t in titles[here].fillna("").astype(str)], known), dtype=object)
        leaves = assignments["leaf_id"][here]
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
                "flags": flag_kinds(node.flags),
                **({"titles agree": agreement(stems[in_subtree(leaves, node.id).to_numpy()])} if agrees else {}),
                **({"quality": quality_label(purity), "purity": purity} if truth is not None else {}),
                **({"verdict": placement.short(node.placement, last_name=True)} if placed else {}),
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


def page_count(rows: int, size: int) -> int:
    """Pages needed for `rows` rows, at least one (an empty table is one empty page)."""
    return max(1, -(-rows // size))


def page(frame: pd.DataFrame, number: int, size: int) -> pd.DataFrame:
    """Rows of page `number` (1-based, clamped to the pages there are)."""
    number = min(max(1, number), page_count(len(frame), size))
    return frame.iloc[(number - 1) * size : number * size]


def proposal_label(tree: SubcategoryTree, node_id: str) -> str:
    """A proposal's name, then where it sits if another proposal holds it: what tells apart a
    proposal and a child of the same name, name first, so that a narrow box that cuts the
    label short still shows it.

    Example:
        >>> from discover.tree import Node
        >>> tree = SubcategoryTree()
        >>> shoes = tree.ensure_existing(["Footwear", "Shoes"])
        >>> _ = tree.add(Node(shoes.id + "/c1", shoes.id, "proposed", "Heels & Flats"))
        >>> _ = tree.add(Node(shoes.id + "/c1/c1", shoes.id + "/c1", "proposed", "Heels"))
        >>> tree.refresh_paths()
        >>> proposal_label(tree, shoes.id + "/c1"), proposal_label(tree, shoes.id + "/c1/c1")
        ('Heels & Flats', 'Heels · in Heels & Flats')
    """
    node, category = tree[node_id], tree.existing_parent(node_id)
    above = node.path[len(category.path) : -1]
    return node.name + (" · in " + " > ".join(above) if above else "")


def merge_targets(tree: SubcategoryTree, parent_id: str, node_id: str) -> list[str]:
    """Proposals of the same existing parent that `node_id` may merge into (not itself or below)."""
    return [n.id for n in tree.proposals(parent_id) if n.id != node_id and not n.id.startswith(node_id + "/")]


def move_targets(tree: SubcategoryTree, parent_id: str, node_id: str) -> list[str]:
    """Where products of `node_id` may move: the existing parent or another of its proposals."""
    return [parent_id] + [n.id for n in tree.proposals(parent_id) if n.id != node_id]


def member_products(catalog: pd.DataFrame, assignments: pd.DataFrame, node_id: str) -> pd.DataFrame:
    """Catalog rows whose most likely leaf lies in `node_id`'s subtree, with probability and noise flag."""
    inside = in_subtree(assignments["leaf_id"], node_id).to_numpy()
    members = catalog[inside].copy()
    members["probability"] = assignments.loc[members.index, "probability"]
    members["noise"] = assignments.loc[members.index, "is_noise"]
    return members


def unplaced_products(catalog: pd.DataFrame, assignments: pd.DataFrame, parent_id: str) -> pd.DataFrame:
    """Catalog rows of `parent_id` that sit in no proposal: those HDBSCAN left unassigned (with
    their most likely proposal and its vote share), and those in the category itself, where a
    reject returns a proposal's products and where a curator may move some. Without this list
    the latter were on no page of their category.

    Example:
        >>> catalog = pd.DataFrame({"product_id": ["1", "2", "3"], "title": ["a", "b", "c"]})
        >>> assignments = pd.DataFrame({"parent_id": ["T"] * 3, "leaf_id": ["T/c0", "T/c0", "T"],
        ...     "is_noise": [False, True, False], "probability": [1.0, 0.4, 0.0],
        ...     "proposed_path": ["T > Tee", "T > Tee", "T"]})
        >>> unplaced_products(catalog, assignments, "T")[["product_id", "noise", "most_likely"]].to_dict("list")
        {'product_id': ['2', '3'], 'noise': [True, False], 'most_likely': ['T > Tee', '']}
    """
    here = assignments["parent_id"] == parent_id
    in_category = here & (assignments["leaf_id"] == parent_id)
    chosen = (here & assignments["is_noise"]) | in_category
    rows = catalog[chosen.to_numpy()].copy()
    rows["probability"] = assignments.loc[rows.index, "probability"]
    rows["noise"] = assignments.loc[rows.index, "is_noise"]
    rows["most_likely"] = assignments.loc[rows.index, "proposed_path"].where(~in_category[rows.index], "")
    return rows


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
