"""New subtype or mislabelled? The verdict on synthetic proposals, and a real run placed end to end."""

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from discover.classify.placement import MISLABELLED, NEW_SUBTYPE, place_proposals
from discover.cli import main
from discover.outputs.run_data import RunData
from discover.tree import Node, SubcategoryTree
from tests.conftest import REPO


def _tree() -> SubcategoryTree:
    tree = SubcategoryTree()
    tree.add(Node("root/Shoes", "root", "existing", "Shoes", ["Shoes"]))
    for k, name in enumerate(["moved sandals", "loafers", "unclear"]):
        tree.add(Node(f"root/Shoes/c{k}", "root/Shoes", "proposed", name, ["Shoes", name]))
    return tree


def test_confidently_placed_elsewhere_is_mislabelled_kept_or_unsure_is_a_new_subtype():
    rng = np.random.default_rng(0)
    leaves = ["root/Shoes/c0"] * 10 + ["root/Shoes/c1"] * 10 + ["root/Shoes/c2"] * 10
    rows = pd.DataFrame({"product_id": [str(i) for i in range(30)], "leaf_id": leaves, "is_noise": False})
    elsewhere = np.c_[rng.uniform(0, 0.1, 10), rng.uniform(0.9, 1, 10)]  # Sandals, confidently
    kept = np.c_[rng.uniform(0.9, 1, 10), rng.uniform(0, 0.1, 10)]
    unsure = np.c_[rng.uniform(0.4, 0.6, 10), rng.uniform(0.4, 0.6, 10)]
    probabilities = pd.DataFrame(
        np.vstack([elsewhere, kept, unsure]), index=rows["product_id"], columns=["Shoes", "Sandals"]
    )
    rows.loc[0, "is_noise"] = True  # noise products do not vote
    placed = place_proposals(_tree(), rows, probabilities)
    assert placed["root/Shoes/c0"]["verdict"] == MISLABELLED and placed["root/Shoes/c0"]["category"] == "Sandals"
    assert placed["root/Shoes/c0"]["products"] == 9
    assert placed["root/Shoes/c1"]["verdict"] == NEW_SUBTYPE and placed["root/Shoes/c1"]["share_kept"] == 1.0
    assert placed["root/Shoes/c2"]["verdict"] == NEW_SUBTYPE and placed["root/Shoes/c2"]["share_elsewhere"] == 0.0


def test_half_placed_elsewhere_is_not_enough_below_the_majority():
    rows = pd.DataFrame({"product_id": ["a", "b", "c"], "leaf_id": "root/Shoes/c0", "is_noise": False})
    probabilities = pd.DataFrame([[0.05, 0.95], [0.9, 0.1], [0.9, 0.1]], index=["a", "b", "c"])
    probabilities.columns = ["Shoes", "Sandals"]
    placed = place_proposals(_tree(), rows, probabilities, majority=0.5)
    assert placed["root/Shoes/c0"]["verdict"] == NEW_SUBTYPE  # one of three elsewhere
    assert place_proposals(_tree(), rows, probabilities, majority=0.3)["root/Shoes/c0"]["verdict"] == MISLABELLED


def test_a_real_run_is_placed_in_tree_json_and_shown_on_the_proposal(workspace, small_run, tmp_path, capsys):
    ws, run_id = workspace
    _, config = small_run
    config = config.model_copy(deep=True)
    config.classify.epochs, config.classify.folds = 15, 3
    path = tmp_path / "config.yaml"
    path.write_text(config.to_yaml())
    assert main(["classify", "place-proposals", str(path), "--workspace", str(ws.root), "--run", run_id]) == 0
    tree = RunData(ws, run_id).tree  # read back from disk
    proposals = [n for n in tree.nodes.values() if n.kind == "proposed"]
    placed = {n.id: n.placement for n in proposals if n.placement}
    mislabelled = [n for n in placed.values() if n["verdict"] == MISLABELLED]
    printed = capsys.readouterr().out
    assert placed and f"{len(placed):,} proposals placed: {len(mislabelled):,} probably mislabelled" in printed
    assert all(n.placement["verdict"] in (MISLABELLED, NEW_SUBTYPE) for n in proposals if n.placement)
    assert tree.meta["placement"]["levels"] == config.discovery.level
    app = AppTest.from_file(str(REPO / "apps" / "explorer.py"), default_timeout=120)
    app.run()
    shown = " ".join(e.value for e in [*app.info, *app.warning])
    assert "candidate new subtype" in shown or "Probably mislabelled" in shown
