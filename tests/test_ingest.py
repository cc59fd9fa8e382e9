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
