"""The ingest stage: validate the catalog into the workspace, skipping unchanged catalogs."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd

from discover.config import DATA_ENV, Config
from discover.data.catalog import IngestReport, catalog_signature, load_catalog, table_signature
from discover.errors import CatalogError, DiscoverError
from discover.workspace import Workspace, read_json, write_json, write_parquet

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    table: pd.DataFrame
    report: IngestReport
    skipped: bool


def require_catalog(config: Config) -> None:
    """One line naming what to do when the config's catalog is not there (no traceback of a
    file not found deep inside a stage)."""
    path = config.catalog_path
    if not path.exists():
        raise DiscoverError(
            f"no catalog at {path}: set ${DATA_ENV} to your copy, or run "
            f"`discover fetch-sample {path.parent}` to download the public sample"
        )


def ingest(config: Config, workspace: Workspace, show_progress: bool = True) -> IngestResult:
    """Write ``catalog.parquet`` and ``ingest_report.json``; do nothing if the catalog is unchanged."""
    started = time.perf_counter()
    require_catalog(config)
    workspace.create()
    path = config.catalog_path
    signature = catalog_signature(config.catalog, path)
    meta_path = workspace.ingest_meta_path
    if meta_path.exists() and workspace.catalog_path.exists():
        meta = read_json(meta_path)
        if meta.get("signature") == signature and meta.get("content"):  # ingested before "content": once more
            report = IngestReport.from_dict(read_json(workspace.ingest_report_path))
            log.info("ingest: catalog unchanged (%s), nothing to do", path)
            return IngestResult(workspace.load_catalog(), report, skipped=True)
    catalog = load_catalog(config.catalog, path, show_progress=show_progress)
    write_json(workspace.ingest_report_path, catalog.report.to_dict())
    if catalog.table.empty:
        report = catalog.report
        why = "the file holds no rows" if report.rows_in == 0 else f"all {report.rows_in:,} rows have problems"
        raise CatalogError(f"{path}: no usable product ({why}); see {workspace.ingest_report_path}")
    write_parquet(workspace.catalog_path, catalog.table)
    content = table_signature(catalog.table)
    # what runs of this content read (RunData.catalog), rewritten: the photos may have moved
    write_parquet(workspace.catalog_snapshot_path(content), catalog.table)
    write_json(
        meta_path,
        {
            "signature": signature,
            "content": content,
            "source": str(path),
            "level_columns": catalog.level_columns,
            "attributes": catalog.attributes,
        },
    )
    unread = workspace.unread_catalog_snapshots(content)
    if unread:
        size = sum(path.stat().st_size for path in unread)
        for path in unread:
            path.unlink(missing_ok=True)
        log.info("ingest: removed %d catalog snapshots no run reads (%.1f MB)", len(unread), size / 2**20)
    log.info("ingest: %d rows written in %.1f s", len(catalog.table), time.perf_counter() - started)
    return IngestResult(catalog.table, catalog.report, skipped=False)
