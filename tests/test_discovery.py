"""The discover stage and `discover run` end to end on real products."""

import dataclasses
import html
import subprocess
import sys

import pandas as pd

from discover.cluster.stage import propose_subcategories
from discover.outputs.report import flagged_table, write_report
from discover.outputs.run_data import RunData
from discover.tree import SubcategoryTree, in_subtree
from discover.words import stems
from tests.conftest import REPO


def test_same_seed_gives_byte_identical_tree_and_stable_node_ids(small_run):
    result, config = small_run
    run = RunData(_workspace(result), result.run_id)
    fused, type_view = run.discovery_inputs()
    again = propose_subcategories(fused, run.catalog, config.discovery, config.seed, type_view=type_view)
    again.tree.meta = run.tree.meta
    from discover.evaluate.scoring import attach_metrics

    attach_metrics(again.tree, run.metrics)
    assert again.tree.to_json() == (result.run_dir / "tree.json").read_text()
    pd.testing.assert_frame_equal(again.assignments, run.assignments)


def _workspace(result):
    from discover.workspace import Workspace

    return Workspace(result.run_dir.parent.parent)


def test_run_end_to_end_writes_every_output(small_run):
    result, _ = small_run
    run_dir = result.run_dir
    for name in ("config.yaml", "tree.json", "assignments.parquet", "coords.parquet", "metrics.json", "report.html"):
        assert (run_dir / name).exists(), name
    run = RunData(_workspace(result), result.run_id)
    assignments = run.assignments
    assert len(assignments) == 360 and assignments["product_id"].is_unique
    tree = SubcategoryTree.from_json((run_dir / "tree.json").read_text())
    assert set(assignments["leaf_id"]) <= {n.id for n in tree.leaves()}
    proposals = tree.proposals()
    assert proposals and all(p.name and p.keywords and 5 <= len(p.exemplars) <= 12 for p in proposals if p.size >= 12)
    weighted = run.metrics["weighted"]
    # proposals must beat leaving each category whole: purity above the majority type's share
    catalog = run.catalog
    qualifying = catalog[assignments["parent_id"].isin(run.metrics["qualifying_parents"]).to_numpy()]
    whole = qualifying.groupby("category")["truth"].agg(lambda t: t.value_counts().iloc[0]).sum() / len(qualifying)
    assert weighted["purity"] > whole, (weighted["purity"], whole)
    assert 0.5 < weighted["coverage"] <= 1 and weighted["leaf_clusters"] >= 2 * len(run.metrics["qualifying_parents"])
    assert weighted["true_classes"] == qualifying.groupby("category")["truth"].nunique().sum()
    assert set(run.metrics["attributes"]) == {"baseColour", "gender", "usage"}
    assert "Apparel/Topwear" in result.summary() and "report" in result.summary()
    assert "plotly" in (run_dir / "report.html").read_text()[:100_000].lower()


def test_cli_export_and_evaluate(small_run):
    result, _ = small_run
    workspace = str(result.run_dir.parent.parent)
    out = result.run_dir.parent.parent / "exported"
    for fmt in ("json", "csv"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "discover.cli",
                "export",
                "--workspace",
                workspace,
                "--format",
                fmt,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out / "assignments.csv", dtype={"product_id": str})
    assert len(rows) == 360 and {"category", "proposed_path", "probability", "is_noise"} <= set(rows.columns)
    evaluated = subprocess.run(
        [sys.executable, "-m", "discover.cli", "evaluate", "--workspace", workspace],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert evaluated.returncode == 0 and "weighted" in evaluated.stdout


def test_run_id_changes_with_fusion_weights_or_discovery_settings(small_run):
    from discover.pipeline import default_run_id

    _, config = small_run
    base = default_run_id(config, ["f1"], "sig")
    assert default_run_id(config, ["f1"], "sig") == base
    heavier = config.model_copy(deep=True)
    heavier.embed.text.weight = 2.0
    stricter = config.model_copy(deep=True)
    stricter.discovery.cascade.max_depth = 3
    assert len({base, default_run_id(heavier, ["f1"], "sig"), default_run_id(stricter, ["f1"], "sig")}) == 3


def test_a_proposal_split_further_is_named_after_all_its_children(small_run):
    """A parent named after its largest child ("Kurta" over "Kurta" and "Top") reads in the tree
    as if the other children were kinds of it; unless they are (their names or most of their
    titles say the parent's name: Clutch over Silk Clutch), its name lists them."""
    result, _ = small_run
    run = RunData(_workspace(result), result.run_id)
    tree, titles = run.tree, run.catalog["title"].fillna("")
    nested = [n for n in tree.proposals() if n.children]
    assert nested, "the small run has a proposal the cascade split further"

    def says(text: str, name: str) -> bool:
        return stems(name) <= stems(text)

    for node in nested:
        for child in (tree[c] for c in node.children):
            said = titles[in_subtree(run.assignments["leaf_id"], child.id).to_numpy()]
            if not says(child.name, node.name) and said.map(lambda t, name=node.name: says(t, name)).mean() < 0.5:
                assert child.name in node.name, (node.name, child.name)


def test_the_run_summary_counts_the_flagged_proposals(small_run, tmp_path):
    """A catalog without a truth column prints no metrics: the flags say where to look first."""
    result, _ = small_run
    tree = SubcategoryTree.from_json((result.run_dir / "tree.json").read_text())
    proposals = tree.proposals()
    for node in tree.nodes.values():  # the run's own flags, proposals' and categories' left whole
        node.flags = []
    proposals[0].flags = ["mixed titles: 40% “Kajal”, 30% “Compact”"]
    proposals[1].flags = ["brand-dominated: 90% “Acme”", "mixed titles: 45% “Shirt”, 40% “Tshirts”"]
    (tmp_path / "tree.json").write_text(tree.to_json())
    summary = dataclasses.replace(result, run_dir=tmp_path).summary()
    assert f"flags      1 brand-dominated, 2 mixed titles (of {len(proposals)} proposals" in summary
    for node in proposals:
        node.flags = []
    (tmp_path / "tree.json").write_text(tree.to_json())
    assert "flags" not in dataclasses.replace(result, run_dir=tmp_path).summary()
    category = tree.existing_parent(proposals[0].id)  # a category left whole, its titles of several types
    category.flags = ["mixed titles: 42% “Pencil”, 33% “Mascara”"]
    (tmp_path / "tree.json").write_text(tree.to_json())
    summary = dataclasses.replace(result, run_dir=tmp_path).summary()
    assert "flags      none (of" in summary and "1 category left whole whose titles name several types" in summary


def test_the_report_lists_the_flagged_proposals_as_plain_text(small_run, tmp_path):
    result, _ = small_run
    run = RunData(_workspace(result), result.run_id)
    tree = run.tree
    for node in tree.nodes.values():
        node.flags = []
    flagged = max(tree.proposals(), key=lambda n: n.size)
    flagged.flags = ["brand-dominated: 90% “<b>Acme</b>”"]
    whole = min(tree.parents_with_proposals(), key=lambda n: n.size)
    whole.flags = ["mixed titles: 42% “Pencil”, 33% “Mascara”"]  # as a category left whole has it
    write_report(tmp_path / "report.html", tree, run.assignments, run.coords, run.catalog, None)
    page = (tmp_path / "report.html").read_text()
    assert "to look at first" in page and "&lt;b&gt;Acme&lt;/b&gt;" in page and "<b>Acme" not in page
    assert page.count(html.escape(" > ".join(flagged.path))) == 1  # the one flagged proposal, by its path
    table = flagged_table(tree)
    assert table["what"].tolist() == ["proposal", "category left whole"]
    assert table["products"].tolist() == [flagged.size, whole.size]


def test_a_category_left_whole_carries_the_flag_its_titles_earn(small_run):
    """tree.json says which categories discovery left whole name several types (a curator's
    split helps most there), as the explorer's page of such a category says it."""
    from discover.curate import views

    result, config = small_run
    run = RunData(_workspace(result), result.run_id)
    whole = [n for n in run.tree.nodes.values() if n.kind == "existing" and n.split.startswith("not split")]
    assert whole, "the small run leaves a category whole (Bottomwear: 40 products of many types)"
    smallest = config.discovery.hdbscan.min_cluster_size_floor  # smaller: not worth a split, not flagged
    for node in whole:
        members = views.member_products(run.catalog, run.assignments, node.id)
        assert node.flags == views.title_flags(members, run.known_words, smallest), node.id
        assert node.size >= smallest or not node.flags
    assert any(f.startswith("mixed titles") for n in whole for f in n.flags)
    assert not [
        n.id for n in run.tree.parents_with_proposals() if len(run.tree.children(n.id)) < 2
    ]  # never one proposal
