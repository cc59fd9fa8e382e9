"""Proposals whose titles name several product types are flagged, without any label: real
fashion-small titles, the known levels only (articleType stays hidden)."""

from __future__ import annotations

import pandas as pd
import pytest

from discover.cluster.naming import name_siblings
from discover.cluster.stage import name_tree
from discover.cluster.title_types import MIXED, mixed_flags, type_shares
from discover.evaluate.flags import flag_scores
from discover.tree import Node, SubcategoryTree
from discover.words import WordConcentration, words
from tests.conftest import fashion_rows

OTHERS = ("Topwear", "Shoes", "Bags", "Watches", "Fragrance")


@pytest.fixture(scope="module")
def catalog() -> tuple[pd.DataFrame, WordConcentration]:
    parts = [fashion_rows(206, ("Makeup",)), fashion_rows(250, ("Lips",)), fashion_rows(500, OTHERS, seed=3)]
    rows = pd.concat(parts, ignore_index=True)  # every Makeup product: its small types are all there
    known = WordConcentration().fit(
        rows["productDisplayName"].tolist(), (rows["masterCategory"] + " > " + rows["subCategory"]).tolist()
    )
    return rows, known


def _titles(rows: pd.DataFrame, **where: str) -> list[list[str]]:
    chosen = rows
    for column, value in where.items():
        chosen = chosen[chosen[column] == value]
    return [words(t) for t in chosen["productDisplayName"]]


def test_a_proposal_holding_a_category_s_several_types_is_flagged_with_them(catalog) -> None:
    rows, known = catalog
    makeup = _titles(rows, subCategory="Makeup")  # kajal, foundation, compact, blush… as one proposal
    assert len(makeup) >= 30
    (flag,) = mixed_flags(makeup, known)
    assert flag.startswith(f"{MIXED}: ")
    named = [part.split("“")[1].rstrip("”").lower() for part in flag.split(": ", 1)[1].split(", ")]
    assert len(named) == 3 and {"foundation", "compact"} <= set(named)  # the commonest types, as titles say them
    assert type_shares(makeup, known)[0][1] < 0.5


def test_a_proposal_of_one_type_is_not_flagged_nor_one_whose_types_share_their_head_word(catalog) -> None:
    rows, known = catalog
    for article in ("Kajal and Eyeliner", "Tshirts", "Watches", "Lipstick"):
        titles = _titles(rows, articleType=article)
        assert len(titles) >= 10, article
        assert mixed_flags(titles, known) == [], article
    shoes = _titles(rows, subCategory="Shoes")  # casual, sports, formal shoes, heels, flats
    assert type_shares(shoes, known)[0][0] == "shoes"  # "Sports Shoes" and "Formal Shoes" both name shoes
    assert mixed_flags(shoes, known) == []  # the flag is conservative: kinds of one type are not "mixed"


def test_sibling_names_carry_the_flag_and_a_proposal_that_holds_proposals_does_not(catalog) -> None:
    rows, known = catalog
    makeup = rows[rows["subCategory"] == "Makeup"]
    kajal = makeup["articleType"] == "Kajal and Eyeliner"
    named = name_siblings(
        [makeup["productDisplayName"].tolist(), rows[rows["articleType"] == "Lipstick"]["productDisplayName"].tolist()],
        known=known,
    )
    assert any(f.startswith(MIXED) for f in named[0].flags) and not any(f.startswith(MIXED) for f in named[1].flags)

    tree = SubcategoryTree()
    tree.add(Node("root/Makeup", "root", "existing", "Makeup", ["Makeup"]))
    tree.add(Node("root/Makeup/c1", "root/Makeup", "proposed", "c1", [], size=len(makeup)))
    tree.add(Node("root/Makeup/c1/c1", "root/Makeup/c1", "proposed", "c1", [], size=int(kajal.sum())))
    tree.add(Node("root/Makeup/c1/c2", "root/Makeup/c1", "proposed", "c2", [], size=int((~kajal).sum())))
    tree.add(Node("root/Makeup/c2", "root/Makeup", "proposed", "c2", [], size=len(makeup)))
    leaves = pd.Series(
        ["root/Makeup/c1/c1" if k else "root/Makeup/c1/c2" for k in kajal] + ["root/Makeup/c2"] * len(makeup)
    )
    titles = pd.Series(makeup["productDisplayName"].tolist() * 2)
    name_tree(tree, leaves, titles, keywords=5, known=known)
    assert not any(f.startswith(MIXED) for f in tree["root/Makeup/c1"].flags)  # its children part its types
    assert any(f.startswith(MIXED) for f in tree["root/Makeup/c2"].flags)  # the same titles in a leaf
    assert not any(f.startswith(MIXED) for f in tree["root/Makeup/c1/c1"].flags)  # kajal and eyeliner


def test_the_flag_is_scored_against_the_hidden_types(catalog) -> None:
    rows, known = catalog
    makeup = rows[rows["subCategory"] == "Makeup"]
    lipstick = rows[rows["articleType"] == "Lipstick"]
    frame = pd.concat([makeup, lipstick], ignore_index=True)
    tree = SubcategoryTree()
    tree.add(Node("root/P", "root", "existing", "P", ["P"]))
    tree.add(Node("root/P/c1", "root/P", "proposed", "Makeup", [], size=len(makeup), stability=0.9))
    tree.add(Node("root/P/c2", "root/P", "proposed", "Lipstick", [], size=len(lipstick), stability=0.1))
    leaves = ["root/P/c1"] * len(makeup) + ["root/P/c2"] * len(lipstick)
    assignments = pd.DataFrame({"leaf_id": leaves, "is_noise": False})
    catalog_rows = pd.DataFrame({"truth": frame["articleType"], "title": frame["productDisplayName"]})
    name_tree(tree, assignments["leaf_id"], catalog_rows["title"], keywords=5, known=known)
    scores = flag_scores(tree, assignments, catalog_rows, known)
    assert scores["leaves"] == 2 and scores["flagged"] == 1 and scores["flag_precision"] == 1.0
    assert scores["mixed_caught"] == 1.0  # Makeup's types: none holds half its products
    assert scores["purity_flagged"] < 0.5 < scores["purity_unflagged"] == 1.0
    assert scores["agreement_rank_correlation"] == pytest.approx(1.0)  # two leaves: the ranks agree or oppose
    assert scores["stability_rank_correlation"] == pytest.approx(-1.0)
