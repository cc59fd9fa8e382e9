from pathlib import Path

from discover.data.ingest import ingest
from discover.workspace import Workspace, read_json
from tests.conftest import FASHION, REPO, make_config


def test_ingest_writes_workspace_and_skips_an_unchanged_catalog(small_catalog: Path, tmp_path: Path):
    config = make_config(small_catalog)
    workspace = Workspace(tmp_path / "ws")
    first = ingest(config, workspace, show_progress=False)
    assert not first.skipped and len(first.table) == 120
    assert read_json(workspace.ingest_report_path)["rows_out"] == 120
    stamp = workspace.catalog_path.stat().st_mtime_ns
    second = ingest(config, workspace, show_progress=False)
    assert second.skipped and workspace.catalog_path.stat().st_mtime_ns == stamp


def test_changed_catalog_or_photo_is_detected(small_catalog: Path, tmp_path: Path):
    config = make_config(small_catalog)
    workspace = Workspace(tmp_path / "ws")
    ingest(config, workspace, show_progress=False)
    photo = next((small_catalog / "images").iterdir())
    photo.write_bytes(b"")
    changed = ingest(config, workspace, show_progress=False)
    assert not changed.skipped and changed.report.counts == {"empty_file": 1}
    assert len(workspace.load_catalog()) == 119


def test_real_fashion_small_ingests_completely(tmp_path: Path):
    from discover.config import load_config

    config = load_config(REPO / "configs" / "fashion-small.yaml")
    assert config.catalog_path.parent == FASHION.resolve()
    result = ingest(config, Workspace(tmp_path / "ws"), show_progress=False)
    assert (result.report.rows_in, result.report.rows_out, result.report.dropped) == (35132, 35132, 0)
    assert read_json(Workspace(tmp_path / "ws").ingest_report_path)["problems"] == []
    assert result.table["product_id"].is_unique


def test_a_catalog_changed_again_before_any_run_leaves_no_snapshot_behind(small_catalog: Path, tmp_path: Path):
    """Each ingest keeps a snapshot of the catalog for the runs made on it; one no run reads
    (the catalog changed again first) is removed, so a catalog edited daily does not fill the disk."""
    from discover.outputs.run_data import RunData
    from discover.pipeline import run

    config = make_config(small_catalog)
    workspace = Workspace(tmp_path / "ws")
    first = run(config, workspace, show_progress=False)  # a run reads the first catalog's snapshot
    snapshots = workspace.root / "catalogs"
    (kept,) = snapshots.iterdir()
    photos = sorted((small_catalog / "images").iterdir())
    for photo in photos[:2]:  # two edits in a row, no run between them
        photo.write_bytes(b"")
        ingest(config, workspace, show_progress=False)
    current = workspace.catalog_snapshot_path(read_json(workspace.ingest_meta_path)["content"])
    assert sorted(snapshots.iterdir()) == sorted([kept, current])  # the in-between one is gone
    assert len(RunData(workspace, first.run_id).catalog) == 120  # the run still reads its own catalog
