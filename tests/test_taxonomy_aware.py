"""Taxonomy-aware discovery: known-level word weights, declared attributes removed, names by type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from discover.cluster.ignore import remove_attribute
from discover.cluster.naming import name_siblings
from discover.data.ingest import ingest
from discover.embed import create_embedder
from discover.embed.stage import embed_catalog
from discover.errors import ConfigError
from discover.evaluate.protocols import leave_parent_out
from discover.tree import known_labels
from discover.words import WordConcentration, stems, words
from discover.workspace import Workspace
from tests.conftest import FASHION, fashion_rows, make_config, write_catalog

TYPES = {"footwear": ["heels", "sneakers", "sandals"], "tops": ["shirt", "kurta", "tunic"]}
SPREAD = ["red", "blue", "black", "men", "women", "new"]
BRANDS = ["acme", "zenith", "orbit", "nova"]


def synthetic_titles(n: int, seed: int = 0, type_first: bool = False) -> tuple[list[str], list[str], list[str]]:
    """Titles "brand colour gender type" (or type first) with the type's known category."""
    rng = np.random.default_rng(seed)
    titles, known, types = [], [], []
    for _ in range(n):
        category = str(rng.choice(list(TYPES)))
        kind = str(rng.choice(TYPES[category]))
        middle = list(rng.choice(SPREAD, size=int(rng.integers(1, 4)), replace=False))
        words_ = [kind, *middle, str(rng.choice(BRANDS))] if type_first else [str(rng.choice(BRANDS)), *middle, kind]
        titles.append(" ".join(words_))
        known.append(category)
        types.append(kind)
    return titles, known, types


def test_words_concentrated_in_known_categories_weigh_more_than_evenly_spread_ones() -> None:
    titles, known, _ = synthetic_titles(600)
    model = WordConcentration().fit(titles, known)
    type_words = [model.weights_[w] for kinds in TYPES.values() for w in kinds]
    spread_words = [model.weights_[w] for w in SPREAD + BRANDS]
    assert min(type_words) > 0.7
    assert max(spread_words) < 0.1
    assert model.anchor_ == "end"
    assert model.position_weight(4)[-1] == pytest.approx(1.0)  # the last word is where types sit


def test_where_type_words_sit_is_learnt_not_assumed() -> None:
    titles, known, _ = synthetic_titles(600, type_first=True)
    model = WordConcentration().fit(titles, known)
    assert model.anchor_ == "start"
    assert model.position_weight(4)[0] == pytest.approx(1.0)
    assert model.position_weight(4)[-1] < 0.2


def test_real_titles_weigh_type_nouns_above_colour_and_gender() -> None:
    rows = fashion_rows(600, ("Topwear", "Shoes", "Bags", "Bottomwear"))
    model = WordConcentration().fit(rows["productDisplayName"].tolist(), rows["subCategory"].tolist())
    for type_word in ("shoes", "handbag", "jeans"):
        for spread_word in ("men", "women", "black", "blue"):
            assert model.weights_[type_word] > model.weights_[spread_word] + 0.3, (type_word, spread_word)


def test_known_level_words_embedder_puts_same_type_titles_together() -> None:
    titles, known, types = synthetic_titles(400, seed=1)
    embedder = create_embedder("known-level-words", "text", components=16, seed=0)
    embedder.fit(titles, "synthetic", known)
    vectors = embedder.embed_texts(titles).vectors
    labels = KMeans(len(set(types)), n_init=5, random_state=0).fit_predict(vectors)
    assert adjusted_rand_score(types, labels) > 0.9
    assert embedder.fingerprint.startswith("known-level-words-16-p2-0-")
    other = create_embedder("known-level-words", "text", components=16, seed=0).fit(titles, "synthetic", known[::-1])
    assert other.fingerprint != embedder.fingerprint  # a different fit never shares cached vectors


def test_a_declared_attribute_no_longer_drives_the_clustering_once_removed() -> None:
    rng = np.random.default_rng(0)
    n, dim = 800, 20
    kind = rng.integers(0, 2, n)
    gender = pd.Series(rng.choice(["Men", "Women"], n), name="gender")
    X = rng.normal(0, 0.3, (n, dim))
    X[:, 0] += 2.0 * kind  # the type: a smaller offset
    X[:, 1:4] += 4.0 * (gender == "Men").to_numpy()[:, None]  # gender: a large one over three axes
    before = KMeans(2, n_init=5, random_state=0).fit_predict(X)
    assert adjusted_rand_score(gender, before) > 0.9  # the clustering follows gender

    projected, report = remove_attribute(X, gender, seed=0)
    after = KMeans(2, n_init=5, random_state=0).fit_predict(projected)
    assert adjusted_rand_score(gender, after) < 0.05
    assert adjusted_rand_score(kind, after) > 0.8  # and now finds the type
    assert report.directions >= 1 and report.accuracy_before > 0.95 and report.accuracy_after < 0.6


def test_ignore_must_name_a_mapped_attribute(tmp_path: Path) -> None:
    with pytest.raises((ConfigError, ValueError), match="brand"):
        make_config(tmp_path, discovery__ignore=["brand"])
    assert make_config(tmp_path, discovery__ignore=["gender"]).discovery.ignore == ["gender"]


def test_names_are_type_phrases_in_the_titles_word_order_and_brands_are_flagged() -> None:
    sports = [f"{b} men black sports shoes" for b in BRANDS] * 5
    formal = [f"{b} women brown formal shoes" for b in BRANDS] * 5
    one_brand = ["acme men blue running shoes"] * 18 + ["orbit men running shoes"] * 2
    titles, known, _ = synthetic_titles(600, seed=2)
    model = WordConcentration().fit(titles + sports + formal + one_brand, known + ["footwear"] * 60)
    named = name_siblings([sports, formal, one_brand], known=model)
    assert [n.name for n in named] == ["Sports Shoes", "Formal Shoes", "Running Shoes"]
    assert named[2].flags == ["brand-dominated: 90% “Acme”"] and named[0].flags == []
    for group, n in zip([sports, formal, one_brand], named, strict=True):
        assert any(n.name.lower() in " ".join(words(t)) for t in group)  # a contiguous phrase of a title


def test_sibling_names_are_unique_even_when_the_titles_agree() -> None:
    same = ["acme red sneakers", "orbit blue sneakers"] * 5
    names = [n.name for n in name_siblings([same, same, same])]
    assert len(set(names)) == 3


def test_the_words_view_is_cached_like_any_embedder_and_refit_when_the_known_levels_change(tmp_path: Path) -> None:
    rows = fashion_rows(80, seed=3)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    workspace = Workspace(tmp_path / "ws")
    config = make_config(directory, embed__image=None, embed__text=None)
    ingest(config, workspace, show_progress=False)
    first = embed_catalog(config, workspace, progress=False)
    again = embed_catalog(config, workspace, progress=False)
    assert [p.slot for p in first.parts] == ["words"] and first.parts[0].computed > 0
    assert again.parts[0].computed == 0 and again.parts[0].fingerprint == first.parts[0].fingerprint
    np.testing.assert_array_equal(first.vectors, again.vectors)

    bags = rows["subCategory"] == "Bags"
    rows.loc[bags, ["masterCategory", "subCategory"]] = ["Footwear", "Shoes"]  # bags and shoes now one category
    write_catalog(directory, rows)
    ingest(config, workspace, show_progress=False)
    refit = embed_catalog(config, workspace, progress=False)
    assert refit.parts[0].fingerprint != first.parts[0].fingerprint  # a renamed category alone would not change it


def test_protocol_b_never_fits_on_the_hidden_parents_own_leaves(tmp_path: Path) -> None:
    rows = fashion_rows(300, seed=4)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    workspace = Workspace(tmp_path / "ws")
    ingest(make_config(directory), workspace, show_progress=False)
    catalog = workspace.load_catalog()
    shoes = set(catalog.loc[catalog["level_2"] == "Shoes", "truth"])
    assert len(shoes) >= 2  # the hidden parent has types to hide
    hidden = leave_parent_out(catalog, "root/Footwear/Shoes", level=2)

    embedder = create_embedder("known-level-words", "text", components=16)
    embedder.fit(hidden["title"].tolist(), "b", known_labels(hidden, 2))
    fitted = set(embedder.concentration_.categories_)
    assert "Footwear > Shoes" in fitted
    assert not {c for c in fitted if c.startswith("Footwear > Shoes >")}  # none of its own types
    assert {c.rsplit(" > ", 1)[-1] for c in fitted if c.startswith("Apparel > Topwear >")} == set(
        catalog.loc[catalog["level_2"] == "Topwear", "truth"]
    )  # every other parent's types are known


def test_a_brands_product_line_is_never_a_name_but_a_type_one_brand_sells_is() -> None:
    titles, known, _ = synthetic_titles(600, seed=3)
    line = [f"casio enticer {c} men analogue watch" for c in ("black", "silver", "blue", "red")] * 5
    other = [f"{b} {c} men digital watch" for b in BRANDS for c in ("black", "blue")] * 3
    lacquer = [f"colorbar {c} nail lacquer" for c in ("red", "pink", "blue", "nude")] * 5
    model = WordConcentration().fit(titles + line + other + lacquer, known + ["watches"] * 44 + ["nails"] * 20)
    assert "enticer" in model.line_words_  # always after "casio", away from the type end
    assert "lacquer" not in model.line_words_  # one brand sells it, but it sits where types sit
    assert not {"men", "watch", "black"} & model.line_words_
    named = name_siblings([line, other], known=model)
    assert "enticer" not in named[0].name.lower() and named[0].name.endswith("Watch")


def test_a_unit_of_measure_is_never_a_name_though_it_sits_where_types_sit() -> None:
    titles, known, _ = synthetic_titles(600, seed=5)
    perfume = [f"{b} {c} perfume {ml} ml" for b in BRANDS for c in ("men", "women") for ml in (50, 100)] * 2
    deos = [f"{b} {c} deodorant {ml} ml" for b in BRANDS for c in ("men", "women") for ml in (150,)] * 2
    packs = [f"{b} pack of {n} socks" for b in BRANDS for n in (2, 3)]  # "socks" follows a number, now and then
    model = WordConcentration().fit(
        titles + perfume + deos + packs + [f"{b} black socks" for b in BRANDS] * 4,
        known + ["fragrance"] * (len(perfume) + len(deos)) + ["socks"] * (len(packs) + 4 * len(BRANDS)),
    )
    assert "ml" in model.unit_words_  # always right after a number
    assert not {"socks", "perfume", "pack", "of"} & model.unit_words_
    assert model.weights_["ml"] > 0.5  # concentrated in one known category all the same
    named = name_siblings([perfume, deos], known=model)
    assert [n.name for n in named] == ["Perfume", "Deodorant"]


def test_a_name_never_starts_or_ends_with_a_joining_word() -> None:
    titles, known, _ = synthetic_titles(600, seed=6)
    brand = [f"be for bag women {c} bag" for c in ("black", "pink", "red", "lime")] * 6  # the brand "Be For Bag"
    bags = [f"{b} women {c} bag" for b in BRANDS for c in ("black", "brown", "red")] * 3
    covers = [f"{b} rain cover for backpack" for b in BRANDS] * 2  # "for" after many brands: no product line
    model = WordConcentration().fit(
        titles + brand + bags + covers, known + ["bags"] * (len(brand) + len(bags) + len(covers))
    )
    assert "for" not in model.line_words_
    names = [n.name.lower().split() for n in name_siblings([bags, brand], known=model)]
    assert all(name[0] not in {"be", "for"} and name[-1] != "for" for name in names), names  # was "For Bag"


def test_a_type_word_always_said_with_the_same_type_telling_neighbour_is_named_with_it() -> None:
    titles, known, _ = synthetic_titles(600, seed=4)
    lacquer = [f"{b} {c} nail lacquer" for b in BRANDS for c in ("red", "pink")] * 3
    polish = [f"{b} {c} nail polish" for b in BRANDS for c in ("red", "pink")] * 3
    cutters = [f"{b} steel nail cutter" for b in BRANDS]  # filed in a large category: "nail" tells less
    rings = [f"{b} {c} men ring" for b in BRANDS for c in ("silver", "gold")] * 2  # "men": in every category
    bangles = [f"{b} women gold bangle" for b in BRANDS] * 4
    model = WordConcentration().fit(
        titles + lacquer + polish + cutters + rings + bangles,
        known + ["nails"] * 48 + [known[0]] * 4 + ["jewel"] * 32,
    )
    assert model.weights_["nail"] < model.weights_["lacquer"]
    assert [n.name for n in name_siblings([lacquer, polish], known=model)] == ["Nail Lacquer", "Nail Polish"]
    assert name_siblings([rings, bangles], known=model)[0].name == "Ring"


def sibling_world(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Three parents of two types each. Axis 0 tells types apart in every parent; axes 1-3
    (colour, say) vary far more inside every type. Parent "c" has no known leaves."""
    rng = np.random.default_rng(seed)
    n = 900
    parent = np.repeat(["a", "b", "c"], n // 3)
    kind = rng.integers(0, 2, n)
    X = rng.normal(0, 0.3, (n, 12))
    X[:, 0] += 1.5 * kind
    X[:, 1:4] += rng.normal(0, 3.0, (n, 3))
    X[:, 4] += {"a": 0.0, "b": 5.0, "c": -5.0}[parent[0]] + 5.0 * (parent == "b") - 5.0 * (parent == "c")
    labels = np.array([f"{p} > {p}{k}" if p != "c" else "c" for p, k in zip(parent, kind, strict=True)], dtype=object)
    return X, labels, parent != "c", kind


def test_sibling_directions_learnt_where_leaves_are_known_separate_types_where_they_are_not() -> None:
    from discover.embed.directions import SiblingDirections

    X, labels, known, kind = sibling_world(seed=0)
    unknown = ~known
    raw = KMeans(2, n_init=5, random_state=0).fit_predict(X[unknown])
    assert adjusted_rand_score(kind[unknown], raw) < 0.2  # colour drives the raw clustering

    model = SiblingDirections(components=2).fit(X, labels, known)
    projected = model.transform(X[unknown])
    after = KMeans(2, n_init=5, random_state=0).fit_predict(projected)
    assert adjusted_rand_score(kind[unknown], after) > 0.8
    assert model.leaves_ == 4 and model.components_.shape == (12, 2)  # two parents' sibling pairs: rank 2


def test_sibling_directions_never_read_the_rows_without_a_known_leaf() -> None:
    from discover.embed.directions import SiblingDirections

    X, labels, known, _ = sibling_world(seed=1)
    scrambled = X.copy()
    scrambled[~known] = np.random.default_rng(9).normal(0, 50, (int((~known).sum()), X.shape[1]))
    first = SiblingDirections(components=2).fit(X, labels, known)
    second = SiblingDirections(components=2).fit(scrambled, labels, known)
    np.testing.assert_array_equal(first.components_, second.components_)
    np.testing.assert_array_equal(first.mean_, second.mean_)


def test_directions_need_known_leaves_and_are_fused_when_the_catalog_has_them(tmp_path: Path) -> None:
    rows = fashion_rows(200, seed=5)
    rows["leaf"] = np.where(rows["subCategory"] == "Shoes", "", rows["articleType"])
    directory = write_catalog(tmp_path / "catalog", rows).parent
    workspace = Workspace(tmp_path / "ws")
    plain = make_config(directory, embed__image=None, embed__directions={"components": 8})
    ingest(plain, workspace, show_progress=False)
    with pytest.raises(ConfigError, match="known_leaf"):
        embed_catalog(plain, workspace, progress=False)

    config = make_config(
        directory, embed__image=None, embed__directions={"components": 8}, catalog__columns__known_leaf="leaf"
    )
    ingest(config, workspace, show_progress=False)
    features = embed_catalog(config, workspace, progress=False)
    without = make_config(directory, embed__image=None, catalog__columns__known_leaf="leaf")
    base = embed_catalog(without, workspace, progress=False)
    extra = features.vectors.shape[1] - base.vectors.shape[1]
    assert 1 <= extra <= 8  # at most one direction per known sibling leaf beyond the first
    np.testing.assert_array_equal(features.vectors[:, : base.vectors.shape[1]], base.vectors)
    again = embed_catalog(config, workspace, progress=False)
    np.testing.assert_array_equal(features.vectors, again.vectors)

    from discover.outputs.run_data import RunData
    from discover.pipeline import run

    result = run(config, workspace, show_progress=False)  # the explorer rebuilds what the run clustered
    reread = RunData(workspace, result.run_id).features()
    np.testing.assert_array_equal(reread, features.vectors)


def test_where_leaves_are_known_in_some_branches_a_word_keeps_what_the_shared_level_says_of_it() -> None:
    leaves = {  # branch → its types; the leaves of shoes are hidden
        "footwear > sandal": ["sports sandals", "sports slides", "sports floaters"],
        "footwear > shoes": ["sports shoes", "formal shoes"],
        "apparel > topwear": ["shirt", "kurta", "tunic"],
        "accessories > bags": ["handbag"],
        "accessories > watches": ["watch"],
        "accessories > jewellery": ["ring"],
    }
    rng = np.random.default_rng(4)
    titles, known = [], []
    for branch, kinds in leaves.items():
        for _ in range(200):
            kind = str(rng.choice(kinds))
            titles.append(f"{rng.choice(BRANDS)} {rng.choice(SPREAD)} {kind}")
            known.append(branch if branch == "footwear > shoes" else f"{branch} > {kind}")
    mixed = WordConcentration().fit(titles, known)
    fine_only = WordConcentration().fit(titles, [k if k.count(">") == 2 else f"{k} > ?" for k in known])
    shared = WordConcentration().fit(titles, [" > ".join(k.split(" > ")[:2]) for k in known])
    # "sports" is spread over four fine categories, but the shared level finds it in footwear only
    assert mixed.weights_["sports"] == shared.weights_["sports"] > fine_only.weights_["sports"] + 0.1
    assert mixed.weights_["formal"] > 0.9 and mixed.weights_["red"] < 0.1
    assert set(mixed.categories_) == set(known)  # the finest known categories are what it reports


def test_name_scores_tell_a_name_that_misses_the_type_from_titles_that_never_say_it() -> None:
    import pandas as pd

    from discover.evaluate.names import name_scores
    from discover.tree import Node, SubcategoryTree

    tree = SubcategoryTree()
    parent = tree.ensure_existing(["Apparel", "Saree"])
    for leaf, name in (("a", "Sari"), ("b", "Silk"), ("c", "Saree")):
        tree.add(Node(f"{parent.id}/{leaf}", parent.id, "proposed", name))
    titles = {
        "a": ["fabindia red cotton sari"] * 4,  # the titles never say the type's own word
        "b": ["xoxo silk saree", "xoxo silk saree", "xoxo pure silk", "xoxo silk sari"],  # they do, the name does not
        "c": ["xoxo georgette saree"] * 4,
    }
    leaves = [leaf for leaf in titles for _ in titles[leaf]]
    assignments = pd.DataFrame({"leaf_id": [f"{parent.id}/{leaf}" for leaf in leaves], "is_noise": False})
    catalog = pd.DataFrame({"truth": "Sarees", "title": [t for leaf in titles for t in titles[leaf]]})
    scores = name_scores(tree, assignments, catalog)
    assert scores["proposals"] == 3
    assert scores["type_word"] == pytest.approx(1 / 3)  # only "Saree" holds the type's word
    assert scores["type_word_said"] == pytest.approx(2 / 3)  # "Sari"'s titles never say it
    assert scores["title_order"] == 1.0 and scores["duplicate_siblings"] == 0


def test_a_brand_name_of_several_words_is_never_a_name_though_the_brand_sells_one_category() -> None:
    titles, known, _ = synthetic_titles(600, seed=7)
    kinds = ("pyjama set", "lounge pants", "nightdress", "night suit")  # a brand's range: no one type in most
    dreams = [f"sdl by sweet dreams women {c} {t}" for c in ("pink", "blue", "red") for t in kinds] * 2
    others = [f"{b} women {c} {t}" for b in BRANDS for c in ("pink", "blue") for t in (*kinds[1:], "robe")]
    shoes = [f"{b} men sweet classic shoes" for b in BRANDS] * 2  # other brands say "sweet": no product line
    model = WordConcentration().fit(
        titles + dreams + others + shoes,
        known + ["nightwear"] * (len(dreams) + len(others)) + ["shoes"] * len(shoes),
    )
    assert "sweet" not in model.line_words_ and model.weights_["sweet"] > 0.5  # as telling as a type word
    assert model.brand_names_["sdl"][:3] == ("by", "sweet", "dreams")  # what follows "sdl" in all its titles
    named = name_siblings([dreams, others], known=model)
    assert set(named[0].name.lower().split()) <= set(" ".join(kinds).split()), named[0].name  # was "Sweet"
    assert named[0].flags[0] == "brand-dominated: 100% “Sdl by Sweet Dreams”"  # the brand's whole name
    assert named[0].flags[1].startswith("mixed titles: ")  # and its range names several types


def test_a_brand_dominated_proposal_is_flagged_with_the_brand_its_titles_name() -> None:
    titles, known, _ = synthetic_titles(600, seed=8)
    rose = [f"red rose women {c} {t}" for c in ("pink", "blue", "white") for t in ("nightdress", "robe")] * 2
    tape = [f"red tape men {c} formal shoes" for c in ("black", "brown", "tan")] * 3  # another brand, also "red"
    model = WordConcentration().fit(titles + rose + tape, known + ["nightwear"] * len(rose) + ["shoes"] * len(tape))
    assert model.brand_name("red") == "red"  # the catalog's "red" titles name two brands
    named = name_siblings([rose, tape], known=model)
    assert [n.flags for n in named] == [["brand-dominated: 100% “Red Rose”"], ["brand-dominated: 100% “Red Tape”"]]


def test_a_proposal_whose_titles_say_only_its_category_is_named_the_rest_of_it_not_by_a_colour() -> None:
    styles = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    sample = styles.sample(3000, random_state=0)
    known = WordConcentration().fit(sample["productDisplayName"].tolist(), sample["subCategory"].tolist())
    watches = styles.loc[styles["articleType"] == "Watches", "productDisplayName"]
    said = watches.str.lower().str.contains
    dial = watches[said("dial") & ~said("chronograph")].head(80).tolist()
    chronograph = watches[said("chronograph")].head(60).tolist()
    plain = watches[~said("dial|chronograph|analog|digital|steel|casual|sport")].head(80).tolist()
    assert len(plain) == 80 and len(chronograph) >= 30

    before = name_siblings([dial, chronograph, plain], known=known)
    assert stems(before[2].name) <= stems("Watches")  # titles only: it says nothing its category does not
    named = name_siblings([dial, chronograph, plain], known=known, category="Watches")
    assert [n.name for n in named[:2]] == [n.name for n in before[:2]]
    assert "Dial" in named[0].name and "Chronograph" in named[1].name
    assert named[2].name == "Other Watches"  # not "Black Watch": a colour sets no type apart


def test_a_lone_proposal_keeps_the_name_its_titles_give_it() -> None:
    belts = ["acme men black belt", "orbit men brown belt", "nova women belt"] * 5
    assert name_siblings([belts], category="Belts")[0].name == "Belt"  # the whole category, not "Other Belts"


def test_where_the_rest_of_a_category_is_taken_a_second_such_proposal_keeps_a_phrase_of_its_titles() -> None:
    dial = ["acme dial watch"] * 10
    rest = ["zeta watch"] * 12
    mostly_plain = ["orbit watch"] * 8 + ["orbit white watch"] * 2  # "White Watch": too few of its titles to lead
    names = [n.name for n in name_siblings([dial, rest, mostly_plain], category="Watches")]
    assert names == ["Dial Watch", "Other Watches", "White Watch"]  # in its titles' order, not "Watch White"


def test_keywords_say_what_the_products_are_not_who_made_them() -> None:
    """Keywords came from whole titles, so a handbag proposal read "handbag, women, murcia,
    lino, perros": nearly a third of the demo's keywords were brands (263 of 876)."""
    styles = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    sample = styles.sample(3000, random_state=0)
    known = WordConcentration().fit(sample["productDisplayName"].tolist(), sample["subCategory"].tolist())
    articles = styles.groupby("articleType")["productDisplayName"]
    kinds = [articles.get_group(kind).head(150).tolist() for kind in ("Handbags", "Backpacks", "Clutches")]
    brands = {known.brand_name(words(t)[0], [words(t)]).split()[0] for titles in kinds for t in titles}
    named = name_siblings(kinds, keywords=8, known=known)
    assert all(len(n.keywords) == 8 for n in named)
    assert not {k for n in named for k in n.keywords} & brands  # e.g. "murcia", "lino", "wildcraft"
    assert {"handbag", "backpack"} <= {k for n in named for k in n.keywords}
