"""The explorer's Mislabels view on a run whose catalog has misfiled products."""

import shutil

import pandas as pd
from streamlit.testing.v1 import AppTest

from discover.classify import MISLABELS_CSV
from discover.classify.stage import find_mislabels
from discover.curate import views
from discover.curate.apply import apply_decisions
from discover.curate.store import CurationStore
from discover.outputs.run_data import RunData
from discover.pipeline import run
from discover.workspace import Workspace
from tests.conftest import REPO


def test_a_misfiled_product_is_listed_and_moved_to_its_suggested_category(small_run, tmp_path, monkeypatch):
    result, config = small_run
    catalog_dir = tmp_path / "catalog"
    shutil.copytree(config.catalog.data_dir, catalog_dir)
    styles = pd.read_csv(catalog_dir / "styles.csv", dtype=str, keep_default_na=False)
    shoes = styles.index[styles["subCategory"] == "Shoes"][:6]
    styles.loc[shoes, ["masterCategory", "subCategory"]] = ["Apparel", "Topwear"]  # a seller's misfiling
    styles.to_csv(catalog_dir / "styles.csv", index=False)
    shutil.copytree(result.run_dir.parent.parent, tmp_path / "ws")  # its embedding cache: nothing re-embedded
    config = config.model_copy(deep=True)
    config.catalog.data_dir = str(catalog_dir)
    config.classify.epochs, config.classify.folds = 10, 2
    ws = Workspace(tmp_path / "ws")
    misfiled_run = run(config, ws, show_progress=False).run_id
    find_mislabels(config, ws, ws.root / MISLABELS_CSV, progress=False)
    monkeypatch.setenv("DISCOVER_WORKSPACE", str(ws.root))

    app = AppTest.from_file(str(REPO / "apps" / "explorer.py"), default_timeout=120)
    app.run()
    app.sidebar.radio(key="view").set_value("Mislabels").run()
    assert not app.exception, app.exception
    misfiled = set(styles.loc[shoes, "id"])
    listed = [b.key.split(":", 1)[1] for b in app.button if b.key and b.key.startswith("mislabel-move:")]
    assert misfiled & set(listed), "the finder's misfiled shoes are offered for a move"
    product = next(p for p in listed if p in misfiled)
    app.button(key=f"mislabel-move:{product}").click().run()
    assert [s.value for s in app.success] == [views.plain(f"Moved {product} to Footwear > Shoes")]
    (move,) = CurationStore(ws.curation_path).decisions(misfiled_run)
    assert move.payload == {"products": [product], "target": "root/Footwear/Shoes"}
    data = RunData(ws, misfiled_run)
    _, curated, skipped = apply_decisions(data.tree, data.assignments, [move])
    row = curated.set_index("product_id").loc[product]
    assert not skipped and row["parent_id"] == row["leaf_id"] == "root/Footwear/Shoes"  # its category changed
    listed_after = [b.key for b in app.button if b.key and b.key.startswith("mislabel-move:")]
    assert f"mislabel-move:{product}" not in listed_after  # moved: no longer offered
