"""How good the proposals' names are, against the hidden truth column.

A curator reads a name before anything else, so a name should say the product type:
``type_word`` is the share of scored proposals whose name holds a word of the name of
their majority true type (stemmed: "Heels" for Heels, "Shoes" for Casual Shoes, "T-Shirt"
for Tshirts); ``type_word_said`` the share where such a word is in at least a quarter of
the proposal's own titles, so a name taken from the titles could hold one: where titles call
Sarees "Sari" and Heels "Flats", no title phrase names the type as the truth column does;
``title_order`` the share whose name is a run of consecutive words of one of
their own titles (never "Flop Flip"); ``duplicate_siblings`` the number of sibling groups
where two proposals share a name; ``repeats_category`` the share of proposals with siblings
whose name says nothing but their category's name ("Watch" under Watches beside "Dial
Watch": it sets nothing apart), ``other`` the share named "Other <category>" instead.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd

from discover.tree import SubcategoryTree
from discover.words import stems, words

SAID = 0.25  # a type word in this share of a proposal's titles is one its name could use


def name_scores(tree: SubcategoryTree, assignments: pd.DataFrame, catalog: pd.DataFrame) -> dict[str, Any]:
    """``type_word``, ``type_word_said``, ``title_order``, ``duplicate_siblings``,
    ``repeats_category``, ``other`` and ``proposals`` scored (clustered products only)."""
    frame = pd.DataFrame(
        {
            "leaf": assignments["leaf_id"].to_numpy(),
            "truth": catalog["truth"].astype(str).to_numpy(),
            "title": catalog["title"].fillna("").to_numpy(),
        }
    )[~assignments["is_noise"].to_numpy()]
    typed, said, ordered, repeats, other, scored = 0, 0, 0, 0, 0, 0
    for leaf, rows in frame.groupby("leaf", sort=True):
        node = tree.nodes.get(str(leaf))
        if node is None or node.kind != "proposed":
            continue
        scored += 1
        type_stems = stems(rows["truth"].value_counts().index[0])  # of the majority type's name
        typed += bool(stems(node.name) & type_stems)
        said += sum(bool(stems(t) & type_stems) for t in rows["title"]) >= SAID * len(rows)
        phrase = " ".join(words(node.name))
        ordered += any(f" {phrase} " in f" {' '.join(words(t))} " for t in rows["title"])
        category = tree.existing_parent(node.id).name
        if sum(c.kind == "proposed" for c in tree.children(node.parent)) > 1:
            repeats += stems(node.name) <= stems(category)
            other += node.name == f"Other {category}"
    duplicates = 0
    for node in tree.nodes.values():
        names = Counter(c.name for c in tree.children(node.id) if c.kind == "proposed")
        duplicates += any(count > 1 for count in names.values())
    return {
        "proposals": scored,
        "type_word": typed / scored if scored else 0.0,
        "type_word_said": said / scored if scored else 0.0,
        "title_order": ordered / scored if scored else 0.0,
        "duplicate_siblings": duplicates,
        "repeats_category": repeats / scored if scored else 0.0,
        "other": other / scored if scored else 0.0,
    }
