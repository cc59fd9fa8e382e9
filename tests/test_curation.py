"""Curation decisions on a real small run: stored in SQLite, replayed, exported."""

import json
import shutil

import pytest

from discover.curate.apply import apply_decisions
from discover.curate.split_preview import preview_split
from discover.curate.store import CurationStore
from discover.curate.views import history
from discover.errors import DiscoverError
from discover.outputs.export import export_run
from discover.outputs.run_data import RunData
from discover.workspace import Workspace


@pytest.fixture
def workspace(small_run, tmp_path) -> tuple[Workspace, str]:
    """A private copy of the shared run's workspace, so decisions do not leak between tests."""
    result, _ = small_run
    copy = tmp_path / "ws"
    shutil.copytree(result.run_dir.parent.parent, copy)
    return Workspace(copy), result.run_id


def _leaf_proposals(run: RunData):
    return sorted((n for n in run.tree.proposals() if not n.children), key=lambda n: -n.size)


def test_rename_survives_a_restart_and_is_exported(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    node = _leaf_proposals(run)[0]
    CurationStore(ws.curation_path).record(run_id, "rename", {"node": node.id, "name": "Polo Shirts"}, "clear type")
    reopened = CurationStore(ws.curation_path).decisions(run_id)
    assert [(d.action, d.payload["name"], d.comment) for d in reopened] == [("rename", "Polo Shirts", "clear type")]
    tree_path, rows_path, diff_path = export_run(ws, run_id, curated=True)
    curated = json.loads(tree_path.read_text())
    assert any(n["id"] == node.id and n["name"] == "Polo Shirts" for n in curated["nodes"])
    assert json.loads(diff_path.read_text())["renamed"] == [{"id": node.id, "from": node.name, "to": "Polo Shirts"}]
    rows = json.loads(rows_path.read_text())
    assert sum(r["proposed_path"].endswith("Polo Shirts") for r in rows) == node.size


def test_merge_moves_products_and_removes_the_node(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    parent = run.tree.parents_with_proposals()[0]
    first, second = [n for n in _leaf_proposals(run) if run.tree.existing_parent(n.id).id == parent.id][:2]
    store = CurationStore(ws.curation_path)
    store.record(run_id, "merge", {"into": first.id, "node": second.id})
    tree, rows, skipped = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert not skipped and second.id not in tree
    assert tree[first.id].size == first.size + second.size
    assert (rows["leaf_id"] == first.id).sum() == first.size + second.size
    diff = json.loads(export_run(ws, run_id, curated=True)[2].read_text())
    assert diff["merged"] == [{"into": first.id, "node": second.id, "comment": ""}]


def test_reject_returns_products_to_the_parent_and_undo_restores(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    node = _leaf_proposals(run)[0]
    store = CurationStore(ws.curation_path)
    store.record(run_id, "reject", {"node": node.id})
    tree, rows, _ = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert node.id not in tree and (rows["leaf_id"] == node.parent).sum() >= node.size
    assert store.undo(run_id).action == "reject"
    tree, rows, _ = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert node.id in tree and tree[node.id].size == node.size


def test_move_selected_products(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    source, target = _leaf_proposals(run)[:2]
    products = run.assignments.loc[run.assignments["leaf_id"] == source.id, "product_id"].head(3).tolist()
    store = CurationStore(ws.curation_path)
    store.record(run_id, "move", {"products": products, "target": target.id})
    _, rows, _ = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert rows.set_index("product_id").loc[products, "leaf_id"].eq(target.id).all()


def test_a_move_that_rejects_its_proposal_sends_what_stays_home_and_is_exported_as_both(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    source, target = _leaf_proposals(run)[:2]
    held = run.assignments.loc[run.assignments["leaf_id"] == source.id, "product_id"]
    products, stay = held.head(3).tolist(), held.iloc[3:].tolist()
    store = CurationStore(ws.curation_path)
    store.record(run_id, "move", {"products": products, "target": target.id, "reject": source.id})
    tree, rows, skipped = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert not skipped and source.id not in tree
    by_product = rows.set_index("product_id")["leaf_id"]
    assert by_product.loc[products].eq(target.id).all() and by_product.loc[stay].eq(source.parent).all()
    diff = json.loads(export_run(ws, run_id, curated=True)[2].read_text())
    assert [m["reject"] for m in diff["moved"]] == [source.id]
    assert diff["rejected"] == [{"node": source.id, "comment": ""}]
    described = history(store.decisions(run_id), run.tree)
    assert described == [f"moved 3 products to “{target.name}” and rejected “{source.name}”"]


def test_split_preview_then_accept_creates_children(workspace):
    ws, run_id = workspace
    run = RunData(ws, run_id)
    node = _leaf_proposals(run)[0]
    preview = preview_split(run, node.id, strictness=4.0, by_type=False)  # its clusters as found
    assert len(preview.names) >= 2 and sum(preview.sizes) == len(preview.members) == node.size
    store = CurationStore(ws.curation_path)
    store.record(run_id, "split", preview.payload())
    flagged = run.tree
    flagged[node.id].flags = ["brand-dominated: 90% “Acme”", "mixed titles: 40% “Shirt”, 35% “Tshirts”"]
    tree, rows, _ = apply_decisions(flagged, run.assignments, store.decisions(run_id))
    assert tree[node.id].flags == ["brand-dominated: 90% “Acme”"]  # its children part its types now
    children = tree.children(node.id)
    assert [c.name for c in children] == preview.names
    assert sum(c.size for c in children) == node.size
    assert json.loads(export_run(ws, run_id, curated=True)[2].read_text())["split"][0]["node"] == node.id


def test_a_split_preview_merges_clusters_of_one_type_as_discovery_does(workspace):
    """The photos part a proposal by colour first: a preview of the T-shirt leaf proposed
    T-shirts by colour. Merged by type, as discovery merges, it says the clusters all name one
    type; a proposal or a category of several types splits by type (the largest leaf mixes
    casual, sports and formal shoes: merged through a generic "Shoes" cluster, single
    linkage said they all named one type)."""
    ws, run_id = workspace
    run = RunData(ws, run_id)
    (tshirt,) = [n for n in _leaf_proposals(run) if n.name == "T-Shirt"]
    by_colour = preview_split(run, tshirt.id, strictness=4.0, by_type=False)
    assert len(by_colour.names) >= 2  # the clusters as found
    with pytest.raises(DiscoverError, match="its clusters all name one type"):
        preview_split(run, tshirt.id, strictness=4.0)
    (whole,) = [n for n in run.tree.nodes.values() if n.kind == "existing" and n.flags]  # mixed titles
    truth = run.catalog.set_index("product_id")["truth"]

    def majority_types(preview) -> list[str]:
        return [
            truth.loc[[p for p, c in preview.members.items() if c == i]].mode()[0] for i in range(len(preview.names))
        ]

    assert len(set(majority_types(preview_split(run, _leaf_proposals(run)[0].id, strictness=4.0)))) >= 2
    by_type = majority_types(preview_split(run, whole.id, strictness=4.0))
    assert len(by_type) >= 2 and len(set(by_type)) == len(by_type)  # each child another type


def test_a_split_replaces_the_proposals_below_and_loses_no_product(workspace):
    """Splitting a proposal the cascade had split (or a curator had), as a curator does who
    finds the split too coarse: its children are the new split's alone, none left empty, and a
    product moved below it after the preview stays in it."""
    ws, run_id = workspace
    run = RunData(ws, run_id)
    node = max((n for n in run.tree.proposals() if n.children), key=lambda n: n.size)
    store = CurationStore(ws.curation_path)
    store.record(run_id, "split", preview_split(run, node.id, strictness=4.0, by_type=False).payload())
    tree, rows, _ = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert {c.id for c in tree.children(node.id)}.isdisjoint(run.tree[node.id].children)
    again = preview_split(run, node.id, strictness=3.0, assignments=rows, by_type=False)
    other = next(n for n in _leaf_proposals(run) if not n.id.startswith(node.id + "/"))
    moved = rows.loc[rows["leaf_id"] == other.id, "product_id"].head(2).tolist()
    store.record(run_id, "move", {"products": moved, "target": tree.children(node.id)[0].id})
    store.record(run_id, "split", again.payload())
    tree, rows, skipped = apply_decisions(run.tree, run.assignments, store.decisions(run_id))
    assert not skipped and [c.name for c in tree.children(node.id)] == again.names
    assert all(c.size > 0 for c in tree.children(node.id))
    assert rows["leaf_id"].isin(list(tree.nodes)).all()  # every product sits on a node of the tree
    assert rows.set_index("product_id").loc[moved, "leaf_id"].eq(node.id).all()
    assert tree[node.id].size == node.size + len(moved)


def _rename_the_largest_leaf(ws: Workspace, run_id: str) -> str:
    """Record a curator's rename of the run's largest leaf proposal; its node id."""
    node = _leaf_proposals(RunData(ws, run_id))[0]
    CurationStore(ws.curation_path).record(run_id, "rename", {"node": node.id, "name": "Kept"})
    return node.id


def _curated_name(ws: Workspace, run_id: str, node_id: str) -> str:
    """The node's name once every decision of the run is applied (none may be skipped)."""
    run = RunData(ws, run_id)
    tree, _, skipped = apply_decisions(run.tree, run.assignments, CurationStore(ws.curation_path).decisions(run_id))
    assert not skipped
    return tree[node_id].name


def test_decisions_reattach_after_a_rerun_of_the_same_config(workspace, small_run):
    from discover.pipeline import run

    (ws, run_id), (_, config) = workspace, small_run
    node_id = _rename_the_largest_leaf(ws, run_id)
    shutil.rmtree(ws.run_dir(run_id))
    again = run(config, ws, show_progress=False)
    assert again.run_id == run_id and not again.reused
    assert _curated_name(ws, again.run_id, node_id) == "Kept"


def test_a_copied_catalog_with_new_file_times_keeps_its_run_and_curation(workspace, small_run, tmp_path):
    import os

    from discover.pipeline import run

    (ws, run_id), (_, config) = workspace, small_run
    node_id = _rename_the_largest_leaf(ws, run_id)
    moved = tmp_path / "moved"  # the same files elsewhere, as a copy, a re-fetch or a checkout leaves them
    shutil.copytree(config.catalog_path.parent, moved)
    for photo in (moved / "images").iterdir():
        os.utime(photo, (1e9, 1e9))
    elsewhere = config.model_copy(update={"catalog": config.catalog.model_copy(update={"data_dir": str(moved)})})
    again = run(elsewhere, ws, show_progress=False)
    assert again.run_id == run_id and again.reused  # nothing discovered again
    assert RunData(ws, run_id).catalog["image_path"].str.startswith(str(moved)).all()  # the photos where they are now
    assert _curated_name(ws, run_id, node_id) == "Kept"


def test_a_finished_run_is_reused_only_by_the_version_of_discover_that_made_it(workspace, small_run):
    from discover import __version__
    from discover.pipeline import run

    (ws, run_id), (_, config) = workspace, small_run
    assert run(config, ws, show_progress=False).reused  # same config, catalog and code: nothing to redo
    tree_file = ws.run_dir(run_id) / "tree.json"
    made = json.loads(tree_file.read_text())
    assert made["meta"]["discover_version"] == __version__
    made["meta"]["discover_version"] = "0.0.1"  # as an older discover left it
    made["nodes"][-1]["name"] = "Stale name"
    tree_file.write_text(json.dumps(made))
    again = run(config, ws, show_progress=False)
    assert again.run_id == run_id and not again.reused
    remade = json.loads(tree_file.read_text())
    assert remade["meta"]["discover_version"] == __version__
    assert "Stale name" not in {n["name"] for n in remade["nodes"]}
