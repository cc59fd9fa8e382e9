"""The supervised side: a multimodal hierarchical classifier of the catalog's own categories.

Trained on the cached image and title embeddings (the *frozen* transfer strategy: seconds
on a CPU). `labels` turns category paths into per-level classes; `data` makes grouped,
stratified splits and caps large classes; `fusion` holds one small module per way of
combining the two modalities (concatenation, sum, product, gated, cross-modal attention,
late); `heads` predicts one level after another with dynamic masking, so every prediction
is a valid path; `training` fits and scores a model; `mislabels` ranks products whose
registered category the classifier finds unlikely; `stage` is what `discover classify`
runs on a workspace.

What each `discover classify` command does is one call here (the command only prints):

    >>> from discover import classify  # doctest: +SKIP
    >>> trained = classify.train("configs/fashion-small.yaml", "ws")  # doctest: +SKIP
    >>> trained.metrics["hierarchical_f1"], trained.model_dir  # doctest: +SKIP
    >>> frame = classify.predict("configs/fashion-small.yaml", "ws", "new-products.csv")  # doctest: +SKIP

Each call reads the config (a path or a :class:`~discover.config.Config`), ingests the
catalog into the workspace if it changed, and runs inside the config's engine (Ray
workers embed what the cache lacks with ``engine: ray``). Imports are lazy: importing this
package does not import torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from discover.classify.stage import Trained
    from discover.config import Config
    from discover.tree import SubcategoryTree
    from discover.workspace import Workspace

# where predict and find_mislabels write unless told, inside the workspace (the explorer reads the second)
PREDICTIONS_CSV = Path("classify") / "predictions.csv"
MISLABELS_CSV = Path("classify") / "mislabels.csv"


def output_path(workspace: Workspace | str | Path, out: str | Path | None, default: Path) -> Path:
    """`out`, or `default` inside the workspace."""
    from discover.workspace import Workspace

    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    return Path(out) if out else root / default


def _config(config: Config | str | Path) -> Config:
    from discover.config import Config, load_config

    return config if isinstance(config, Config) else load_config(config)


@contextlib.contextmanager
def _session(config: Config | str | Path, workspace: Workspace | str | Path) -> Iterator[tuple[Config, Workspace]]:
    """The config and the ingested workspace, inside the config's engine session."""
    from discover.data.ingest import ingest
    from discover.engine import engine_session
    from discover.workspace import Workspace

    config = _config(config)
    workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    ingest(config, workspace)
    with engine_session(config):
        yield config, workspace


def train(config: Config | str | Path, workspace: Workspace | str | Path = "workspace") -> Trained:
    """`discover classify train`: split, fit, save the model (and its text stage), score it on
    its test split (``metrics``) and report the classes' imbalance (``imbalance``)."""
    from discover.classify import stage

    with _session(config, workspace) as (config, workspace):
        return stage.train(config, workspace)


def evaluate(
    config: Config | str | Path, workspace: Workspace | str | Path = "workspace", model: str | None = None
) -> dict:
    """`discover classify evaluate`: the saved model (the latest, or `model`) scored on its own
    test split again; metrics.json rewritten."""
    from discover.classify import stage

    with _session(config, workspace) as (config, workspace):
        return stage.evaluate(config, workspace, model)


def evaluate_by(config: Config | str | Path, workspace: Workspace | str | Path, column: str) -> pd.DataFrame:
    """`discover classify evaluate --by COLUMN`: leave one value of `column` out in turn."""
    from discover.classify import stage

    with _session(config, workspace) as (config, workspace):
        return stage.cross_evaluate(config, workspace, column)


def new_products(config: Config | str | Path, path: str | Path):
    """A catalog file of new products validated with the config's column mapping (a
    :class:`~discover.data.catalog.Catalog`: ``table`` and ``report``); bad rows are reported
    and skipped as at ingest."""
    from discover.data.catalog import load_catalog
    from discover.errors import DiscoverError

    catalog = load_catalog(_config(config).catalog, Path(path).resolve(), new_products=True)
    if catalog.table.empty:
        raise DiscoverError(f"{path}: no usable product to classify; {catalog.report.summary()}")
    return catalog


def predict(
    config: Config | str | Path,
    workspace: Workspace | str | Path,
    catalog: str | Path | pd.DataFrame,
    out: str | Path | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """`discover classify predict`: each product's predicted path and its probability, and its
    registered category checked where the file has one. `catalog`: a file of new products, or
    the ``table`` of :func:`new_products`. Written to `out` (default
    ``<workspace>/classify/predictions.csv``) and returned."""
    from discover.classify import stage

    config = _config(config)
    table = catalog if not isinstance(catalog, (str, Path)) else new_products(config, catalog).table
    with _session(config, workspace) as (config, workspace):
        return stage.predict_catalog(config, workspace, table, output_path(workspace, out, PREDICTIONS_CSV), model)


def find_mislabels(
    config: Config | str | Path, workspace: Workspace | str | Path = "workspace", out: str | Path | None = None
) -> pd.DataFrame:
    """`discover classify find-mislabels`: every product ranked by how unlikely out-of-fold
    models find its registered category; written to `out` (default
    ``<workspace>/classify/mislabels.csv``) and returned."""
    from discover.classify import stage

    with _session(config, workspace) as (config, workspace):
        return stage.find_mislabels(config, workspace, output_path(workspace, out, MISLABELS_CSV))


def place_proposals(
    config: Config | str | Path, workspace: Workspace | str | Path = "workspace", run: str | None = None
) -> SubcategoryTree:
    """`discover classify place-proposals`: new subtype or mislabelled? for every proposal of
    a run (the latest finished one unless `run` is given), written into its tree.json."""
    from discover.classify import stage

    with _session(config, workspace) as (config, workspace):
        run_id = run or workspace.latest_run_id()
        return stage.place_run_proposals(config, workspace, run_id)
