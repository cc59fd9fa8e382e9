"""Reading a finished run back: its tree, assignments, coordinates, metrics and features."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import yaml

from discover.classify.placement import PROBABILITIES_FILE, place_proposals
from discover.cluster.ignore import remove_attributes
from discover.config import Config, config_from_dict
from discover.embed.cache import load_aligned
from discover.embed.fuse import fuse_views
from discover.errors import WorkspaceError
from discover.tree import SubcategoryTree
from discover.words import WordConcentration, known_words
from discover.workspace import Workspace, read_json


@dataclass
class RunData:
    """One run's files, loaded lazily."""

    workspace: Workspace
    run_id: str

    @property
    def run_dir(self):
        return self.workspace.run_dir(self.run_id)

    @cached_property
    def tree(self) -> SubcategoryTree:
        path = self.run_dir / "tree.json"
        if not path.exists():
            raise WorkspaceError(f"{path} does not exist: the run {self.run_id} has not finished")
        return SubcategoryTree.from_json(path.read_text(encoding="utf-8"))

    @cached_property
    def assignments(self) -> pd.DataFrame:
        return pd.read_parquet(self.run_dir / "assignments.parquet")

    @cached_property
    def coords(self) -> pd.DataFrame:
        return pd.read_parquet(self.run_dir / "coords.parquet")

    @cached_property
    def metrics(self) -> dict[str, Any] | None:
        path = self.run_dir / "metrics.json"
        return read_json(path) if path.exists() else None

    @cached_property
    def config(self) -> Config:
        raw = yaml.safe_load((self.run_dir / "config.yaml").read_text(encoding="utf-8"))
        return config_from_dict(raw, self.workspace.root)

    @cached_property
    def catalog(self) -> pd.DataFrame:
        """The catalog this run was made from, in the order of its assignments.

        Read from the snapshot its ingest kept, so a later ingest of a changed catalog
        leaves the run readable.
        """
        signature = self.tree.meta.get("catalog_signature")
        snapshot = self.workspace.catalog_snapshot_path(signature) if signature else None
        if snapshot is not None and snapshot.exists():
            catalog = pd.read_parquet(snapshot)
        else:
            catalog = self.workspace.load_catalog()
        catalog = catalog.set_index("product_id", drop=False)
        missing = ~self.assignments["product_id"].isin(catalog.index)
        if missing.any():
            raise WorkspaceError(
                f"run {self.run_id}: {int(missing.sum()):,} of its products are not in the workspace's catalog "
                "any more (it was ingested again from a changed file) and the run has no catalog snapshot; "
                "re-run `discover run` to make a readable run"
            )
        return catalog.loc[self.assignments["product_id"]].reset_index(drop=True)

    @cached_property
    def placement_probabilities(self) -> pd.DataFrame | None:
        """The out-of-fold probabilities `discover classify place-proposals` placed the run's
        proposals with (products × existing categories), or None: not placed, or placed by a
        version that did not keep them. Read only while tree.json says it is placed: the scores
        are written first, so a placing stopped between the two leaves the run unplaced (and
        discovering a run again deletes them)."""
        path = self.run_dir / PROBABILITIES_FILE
        if not path.exists() or "placement" not in self.tree.meta:
            return None
        return pd.read_parquet(path).set_index("product_id")

    def place(self, tree: SubcategoryTree, assignments: pd.DataFrame) -> bool:
        """Place a curated copy of the run's tree by the products its proposals hold now (see
        :func:`~discover.classify.placement.place_proposals`), with the run's own settings;
        False, and the copied placements left as they were, where the run kept no probabilities."""
        probabilities = self.placement_probabilities
        if probabilities is None:
            return False
        settings = self.tree.meta["placement"]  # written with the probabilities
        place_proposals(tree, assignments, probabilities, settings["confidence"], settings["majority"])
        return True

    @cached_property
    def known_words(self) -> WordConcentration:
        """What the run's known categories say about its title words (for naming split children)."""
        return known_words(self.catalog, self.config.discovery.level)

    def _views(self) -> dict[str, np.ndarray]:
        """The run's embedding blocks by slot, rows in the order of its assignments (read
        afresh, not kept: the explorer keeps a RunData open and caches the features apart)."""
        views = {}
        for fingerprint in self.tree.meta.get("features", []):
            vectors, meta = load_aligned(self.workspace.embeddings_dir, fingerprint)
            position = pd.Series(np.arange(len(meta["product_ids"])), index=meta["product_ids"])
            if not self.assignments["product_id"].isin(position.index).all():
                raise WorkspaceError(
                    f"run {self.run_id}: the embeddings {fingerprint} no longer cover all its products "
                    "(the catalog changed since); re-run `discover run` first"
                )
            rows = position.loc[self.assignments["product_id"]].to_numpy()
            views[meta.get("slot", meta["modality"])] = np.asarray(vectors)[rows]
        if not views:
            raise WorkspaceError(f"run {self.run_id} does not name its features in tree.json")
        return views

    def discovery_inputs(self) -> tuple[np.ndarray, np.ndarray | None]:
        """What :func:`~discover.cluster.stage.propose_subcategories` was given to make this
        run: the fused vectors (declared attributes not yet removed) and the known-level words
        block its type merge read, if the run embedded one."""
        views = self._views()
        return fuse_views(views, self.catalog, self.config), views.get("words")

    def features(self) -> np.ndarray:
        """The vectors the run clustered (declared attributes removed)."""
        return self.features_and_type_view()[0]

    def features_and_type_view(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The vectors the run clustered, and the known-level words block its type merge read
        (if it embedded one): what a split preview needs to cluster, then merge by type."""
        fused, type_view = self.discovery_inputs()
        return remove_attributes(fused, self.catalog, self.config.discovery.ignore, self.config.seed)[0], type_view
