"""The explorer's look-ups: find any product, see why it sits where it does, compare two proposals."""

import numpy as np
import pandas as pd
import pytest

from discover.curate import lookup, views
from discover.outputs.run_data import RunData
from tests.test_explorer import _app, _category, _select_largest_leaf


def _clustered_member(run: RunData) -> tuple[str, str]:
    """A clustered product of the largest leaf with a sibling leaf in its category, and that leaf."""
    leaves = [n for n in run.tree.proposals() if not n.children]
    parents = [run.tree.existing_parent(n.id).id for n in leaves]
    leaf = max((n for n, p in zip(leaves, parents, strict=True) if parents.count(p) > 1), key=lambda n: n.size)
    members = run.assignments[(run.assignments["leaf_id"] == leaf.id) & ~run.assignments["is_noise"]]
    return str(members["product_id"].iloc[0]), leaf.id


def test_why_here_ranks_neighbours_by_similarity_inside_the_category(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    X = run.features()
    product_id, leaf = _clustered_member(run)
    why = lookup.why_here(X, run.catalog, run.assignments, run.tree, product_id, k=8)
    assert why.leaf_id == leaf and len(why.neighbours) == 8
    assert product_id not in why.neighbours["product_id"].tolist()
    assert why.neighbours["similarity"].is_monotonic_decreasing
    parent = run.assignments.set_index("product_id").loc[product_id, "parent_id"]
    where = run.assignments.set_index("product_id").loc[why.neighbours["product_id"], "parent_id"]
    assert (where == parent).all()
    # a duplicate of the product's own vector placed in another proposal is its nearest neighbour
    other = run.assignments[(run.assignments["parent_id"] == parent) & (run.assignments["leaf_id"] != leaf)]
    twin = other.index[0]
    X = np.array(X)
    X[twin] = X[run.assignments.index[run.assignments["product_id"] == product_id][0]]
    why = lookup.why_here(X, run.catalog, run.assignments, run.tree, product_id, k=8)
    assert why.neighbours["product_id"].iloc[0] == run.assignments["product_id"].iloc[twin]
    assert not why.neighbours["same"].iloc[0] and why.agreement < 1
    assert set(why.exemplars["product_id"]) <= set(run.tree[leaf].exemplars)


def test_find_a_product_shows_where_it_sits_and_opens_its_proposal(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    product_id, leaf = _clustered_member(run)
    app = _app()
    app.sidebar.text_input(key="find-query").set_value(product_id).run()  # from the Proposals view
    assert not app.exception, app.exception
    assert app.sidebar.radio(key="view").value == "Find a product"  # the query opens the Find view
    found = app.dataframe[0].value
    assert product_id in found["product_id"].tolist()
    row = found.set_index("product_id").loc[product_id]
    assert row["place"] == " > ".join(run.tree[leaf].path)
    texts = " ".join(t.value for t in app.text)
    assert "Sits in: " + " > ".join(run.tree[leaf].path) in texts
    assert any(m.label == "Nearest products in the same proposal" for m in app.metric)
    app.button(key=f"open:{product_id}").click().run()
    assert not app.exception, app.exception
    assert app.sidebar.radio(key="view").value == "Proposals"
    assert next(b for b in app.sidebar.selectbox if b.label == "Proposal").value == leaf
    assert any(h.value == run.tree[leaf].name for h in app.subheader)


def test_title_words_find_products_across_categories(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    found = lookup.locate(run.catalog, run.assignments, run.tree, "men")
    expected = views.search_products(run.catalog, "men")
    assert len(found) == min(200, len(expected)) and found["place"].str.len().gt(0).all()
    assert found["place"].str.split(" > ").str[1].nunique() >= 2  # the whole catalog, not one category
    assert lookup.locate(run.catalog, run.assignments, run.tree, "  ").empty


def test_a_closer_look_belongs_to_its_proposal(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    app = _app()
    node_id = _select_largest_leaf(app, run)
    members = run.assignments[run.assignments["leaf_id"] == node_id]["product_id"]
    app.selectbox(key=f"closer-members:{node_id}").set_value(members.iloc[0]).run()
    assert not app.exception, app.exception
    assert any(t.value.startswith(f"{members.iloc[0]} · ") for t in app.text)
    others = [n for n in run.tree.proposals(run.tree[node_id].parent) if n.id != node_id and not n.children]
    next(b for b in app.sidebar.selectbox if b.label == "Proposal").set_value(others[0].id).run()
    assert not app.exception, app.exception
    assert app.selectbox(key=f"closer-members:{others[0].id}").value is None
    assert not any(t.value.startswith(f"{members.iloc[0]} · ") for t in app.text)


def test_compare_shows_two_proposals_side_by_side(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    app = _app()
    app.sidebar.radio(key="view").set_value("Compare").run()
    assert not app.exception, app.exception
    proposals = run.tree.proposals()
    app.selectbox(key="compare-b").set_value(proposals[-1].id).run()
    headers = [h.value for h in app.subheader]
    assert views.plain(" > ".join(proposals[0].path[1:])) in headers
    assert views.plain(" > ".join(proposals[-1].path[1:])) in headers
    assert sum(t.value.startswith(f"{p.size:,} products") for t in app.text for p in (proposals[0], proposals[-1])) >= 2


def test_purity_in_a_category_of_one_true_type_is_called_trivial(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    node_id = max((n for n in run.tree.proposals() if not n.children), key=lambda n: n.size).id
    truth = run.catalog["truth"].astype(str)
    assert views.trivial_purity(run.assignments, truth, node_id) is None  # real categories hold several types
    parent = run.assignments.set_index("leaf_id").loc[node_id, "parent_id"].iloc[0]
    snapshot = ws.catalog_snapshot_path(run.tree.meta["catalog_signature"])  # what the run reads
    catalog = pd.read_parquet(snapshot)
    in_parent = catalog["product_id"].isin(run.assignments.loc[run.assignments["parent_id"] == parent, "product_id"])
    catalog.loc[in_parent, "truth"] = "Tshirts"
    catalog.to_parquet(snapshot)
    app = _app()
    _category(app).set_value(parent).run()
    next(b for b in app.sidebar.selectbox if b.label == "Proposal").set_value(node_id).run()
    assert not app.exception, app.exception
    expected = views.trivial_purity(
        RunData(ws, run_id).assignments,
        catalog.set_index("product_id")
        .loc[RunData(ws, run_id).assignments["product_id"], "truth"]
        .reset_index(drop=True),
        node_id,
    )
    assert expected and "Tshirts" in expected
    assert views.plain(expected) in [i.value for i in app.info]


def test_a_catalog_without_a_truth_column_shows_flags_not_an_empty_quality(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    snapshot = ws.catalog_snapshot_path(run.tree.meta["catalog_signature"])
    pd.read_parquet(snapshot).drop(columns=["truth"]).to_parquet(snapshot)  # a real catalog: no hidden types
    app = _app()
    parent = _category(app).value
    table = app.dataframe[0].value
    assert "flags" in table.columns and "quality" not in table.columns and "purity" not in table.columns
    leaf = max((n for n in run.tree.proposals(parent) if not n.children), key=lambda n: n.size)
    next(b for b in app.sidebar.selectbox if b.label == "Proposal").set_value(leaf.id).run()
    assert not app.exception, app.exception
    metrics = {m.label: m.value for m in app.metric}
    assert "Purity" not in metrics and 0 < float(metrics["Titles agree"]) <= 1  # purity's label-free stand-in
    assert table["titles agree"].min() > 0 and table["titles agree"].max() <= 1
    app.sidebar.radio(key="view").set_value("Compare").run()  # beside another proposal, the same stand-in
    app.selectbox(key="compare-a").set_value(leaf.id).run()
    assert not app.exception, app.exception
    facts = [t.value for t in app.text if " products · stability " in t.value]
    assert f"{leaf.size:,} products · stability {leaf.stability:.3f} · titles agree {metrics['Titles agree']}" in facts
    assert len(facts) == 2 and not any("purity" in f for f in facts)


def test_the_table_says_how_much_each_proposal_s_titles_agree_as_its_flag_does(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    titles, known = run.catalog["title"], run.known_words
    for parent in views.parent_options(run.tree):
        table = views.proposal_table(run.tree, run.assignments, parent, None, titles, known).set_index("id")
        for node in run.tree.proposals(parent):
            alone = views.title_agreement(run.assignments, titles, known, node.id)  # the card's, node by node
            assert table.loc[node.id, "titles agree"] == pytest.approx(alone), node.id
            if not node.children:  # discovery flagged the leaves whose titles agree under half
                assert any(f.startswith("mixed titles") for f in node.flags) == (alone < 0.5), node.id
