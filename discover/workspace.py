"""On-disk layout of a workspace and its runs; every write is atomic (temp file + rename)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from discover.errors import WorkspaceError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only on success.

    A reader never sees a half-written file, and a killed writer leaves the old file intact.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(target: Path, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: Path, payload: Any) -> None:
    write_text(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(target: Path, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_parquet(tmp, index=False)


def write_csv(target: Path, frame: pd.DataFrame) -> None:
    with atomic_path(target) as tmp:
        frame.to_csv(tmp, index=False)


FINISHED = "finished.json"


class Workspace:
    """One directory per project; nothing outside it is written.

    Layout::

        catalog.parquet, ingest_report.json, ingest_meta.json
        embeddings/<fingerprint>.npy + .json, embeddings/<fingerprint>.chunks/
        models/
        catalogs/<signature>.parquet   the catalog each ingest made (runs read their own;
                                       ingest removes those no run reads)
        runs/<run-id>/config.yaml, assignments.parquet, tree.json, metrics.json,
                      coords.parquet, report.html, finished.json
        curation.sqlite
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()

    def create(self) -> Workspace:
        for sub in ("embeddings", "models", "runs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        return self

    @property
    def catalog_path(self) -> Path:
        return self.root / "catalog.parquet"

    @property
    def ingest_report_path(self) -> Path:
        return self.root / "ingest_report.json"

    @property
    def ingest_meta_path(self) -> Path:
        return self.root / "ingest_meta.json"

    @property
    def embeddings_dir(self) -> Path:
        return self.root / "embeddings"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def curation_path(self) -> Path:
        return self.root / "curation.sqlite"

    def catalog_snapshot_path(self, signature: str) -> Path:
        """The validated catalog as one ingest made it, kept so that older runs stay readable."""
        return self.root / "catalogs" / f"{signature[:16]}.parquet"

    def unread_catalog_snapshots(self, current: str) -> list[Path]:
        """The catalog snapshots that neither the `current` catalog nor any run with a tree
        reads: left by catalogs ingested and changed again before a run finished on them.
        Nothing while a run's tree cannot be read (which snapshot it reads is then unknown)."""
        folder = self.root / "catalogs"
        if not folder.exists():
            return []
        read = {self.catalog_snapshot_path(current)}
        for tree in self.runs_dir.glob("*/tree.json") if self.runs_dir.exists() else []:
            try:
                signature = read_json(tree).get("meta", {}).get("catalog_signature")
            except (OSError, ValueError):
                log.warning("%s cannot be read: no catalog snapshot is removed", tree)
                return []
            if signature:
                read.add(self.catalog_snapshot_path(signature))
        return sorted(path for path in folder.glob("*.parquet") if path not in read)

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def latest_run_id(self) -> str:
        """The most recently finished run, for commands given no run."""
        runs = self.run_ids()
        if not runs:
            raise WorkspaceError(f"{self.root}: no finished run; start one with `discover run CONFIG`")
        return runs[0]

    def run_ids(self) -> list[str]:
        """Finished runs (those with a tree.json), most recently finished first.

        Ordered by the finish time each run records, not by file times, so exporting or
        curating an older run never makes it "the latest".
        """
        if not self.runs_dir.exists():
            return []
        done = [p for p in self.runs_dir.iterdir() if (p / "tree.json").exists()]

        def finished_at(run_dir: Path) -> float:
            marker = run_dir / FINISHED
            return (
                float(read_json(marker)["finished_at"]) if marker.exists() else (run_dir / "tree.json").stat().st_mtime
            )

        return [p.name for p in sorted(done, key=lambda p: (finished_at(p), p.name), reverse=True)]

    def load_catalog(self) -> pd.DataFrame:
        if not self.catalog_path.exists():
            raise WorkspaceError(
                f"{self.catalog_path} does not exist: run `discover ingest CONFIG --workspace {self.root}` first"
            )
        return pd.read_parquet(self.catalog_path)
