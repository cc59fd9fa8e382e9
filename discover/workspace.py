"""On-disk layout of a workspace and its runs; every write is atomic (temp file + rename)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from discover.errors import WorkspaceError


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


class Workspace:
    """One directory per project; nothing outside it is written.

    Layout::

        catalog.parquet, ingest_report.json, ingest_meta.json
        embeddings/<fingerprint>.npy + .json, embeddings/<fingerprint>.chunks/
        models/
        runs/<run-id>/config.yaml, assignments.parquet, tree.json, metrics.json,
                      coords.parquet, report.html
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

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def run_ids(self) -> list[str]:
        """Finished runs (those with a tree.json), newest first."""
        if not self.runs_dir.exists():
            return []
        done = [p for p in self.runs_dir.iterdir() if (p / "tree.json").exists()]
        return [p.name for p in sorted(done, key=lambda p: p.stat().st_mtime, reverse=True)]

    def load_catalog(self) -> pd.DataFrame:
        if not self.catalog_path.exists():
            raise WorkspaceError(
                f"{self.catalog_path} does not exist: run `discover ingest CONFIG --workspace {self.root}` first"
            )
        return pd.read_parquet(self.catalog_path)
