"""Fixtures: small real catalogs cut from ../shared/datasets/fashion-small, built per test."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from discover.config import Config, config_from_dict

REPO = Path(__file__).resolve().parent.parent
FASHION = Path(os.environ.get("DISCOVER_DATA", REPO.parent / "shared" / "datasets" / "fashion-small"))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CLI = [sys.executable, "-m", "discover.cli"]  # the `discover` command, from this interpreter


def fashion_rows(n: int, subcategories: tuple[str, ...] = ("Topwear", "Shoes", "Bags"), seed: int = 0) -> pd.DataFrame:
    styles = pd.read_csv(FASHION / "styles.csv", dtype=str, keep_default_na=False)
    chosen = styles[styles["subCategory"].isin(subcategories)]
    return chosen.sample(n, random_state=seed).sort_values("id", key=lambda s: s.astype(int)).reset_index(drop=True)


def write_catalog(directory: Path, rows: pd.DataFrame) -> Path:
    """A catalog directory with styles.csv and copies of the rows' photos."""
    (directory / "images").mkdir(parents=True, exist_ok=True)
    for image in rows["image"]:
        source = FASHION / image
        if image.startswith("images/") and ".." not in image and source.exists():
            shutil.copyfile(source, directory / image)
    rows.to_csv(directory / "styles.csv", index=False)
    return directory / "styles.csv"


def config_dict(catalog_dir: Path, **overrides: object) -> dict:
    raw = yaml.safe_load((REPO / "configs" / "fashion-small.yaml").read_text())
    raw["catalog"]["data_dir"] = str(catalog_dir)
    raw["embed"]["image"]["image_size"] = 64
    raw["embed"]["num_workers"] = 0
    raw["embed"]["n_jobs"] = 1  # the suite already runs a process per core; tests of embed.n_jobs set it
    for dotted, value in overrides.items():
        target = raw
        *parents, last = dotted.split("__")
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return raw


def make_config(catalog_dir: Path, **overrides: object) -> Config:
    return config_from_dict(config_dict(catalog_dir, **overrides), REPO / "configs")


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    """120 real products (Topwear, Shoes, Bags) with their photos, in tmp_path/catalog."""
    return write_catalog(tmp_path / "catalog", fashion_rows(120)).parent


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """A real pipeline run on 360 fashion-small products; shared, treat as read-only."""
    from discover.pipeline import run
    from discover.workspace import Workspace

    root = tmp_path_factory.mktemp("small-run")
    rows = fashion_rows(360, subcategories=("Topwear", "Shoes", "Bags", "Bottomwear"), seed=1)
    directory = write_catalog(root / "catalog", rows).parent
    config = make_config(directory, discovery__min_parent_size=20)
    result = run(config, Workspace(root / "ws"), show_progress=False)
    return result, config


@pytest.fixture
def workspace(small_run, tmp_path, monkeypatch):
    """A copy of `small_run`'s workspace that a test may change, named in $DISCOVER_WORKSPACE
    (where the explorer looks); returns (Workspace, run id)."""
    from discover.workspace import Workspace

    result, _ = small_run
    shutil.copytree(result.run_dir.parent.parent, tmp_path / "ws")
    monkeypatch.setenv("DISCOVER_WORKSPACE", str(tmp_path / "ws"))
    return Workspace(tmp_path / "ws"), result.run_id
