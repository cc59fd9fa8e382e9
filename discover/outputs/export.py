"""Exports of a run, as produced or as curated: tree JSON, product → path CSV, taxonomy diff."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from discover.classify.placement import short
from discover.curate.apply import apply_decisions, taxonomy_diff
from discover.curate.store import CurationStore
from discover.outputs.run_data import RunData
from discover.workspace import Workspace, write_csv, write_json, write_text

ASSIGNMENT_COLUMNS = ["product_id", "category", "proposed_path", "leaf_id", "probability", "is_noise"]


def product_paths(run: RunData, assignments: pd.DataFrame) -> pd.DataFrame:
    """One row per product: its existing category and its (curated) proposed path."""
    frame = assignments.copy()
    frame["category"] = run.catalog["category"].to_numpy()
    return frame[ASSIGNMENT_COLUMNS]


def export_run(
    workspace: Workspace,
    run_id: str,
    fmt: str = "json",
    out_dir: str | Path | None = None,
    curated: bool = False,
    also: tuple[str, ...] = (),
    run: RunData | None = None,
) -> list[Path]:
    """Write the run's tree and assignments (curated when asked) into `out_dir`, as `fmt` and
    each format in `also`, from one reading of the run (`run`, when the caller has it open);
    return the paths: tree and assignments of each format, then the taxonomy diff."""
    run = run or RunData(workspace, run_id)
    out = Path(out_dir) if out_dir else run.run_dir / "export"
    tree, assignments = run.tree, run.assignments
    written = []
    if curated:
        decisions = CurationStore(workspace.curation_path).decisions(run_id)
        tree, assignments, _ = apply_decisions(tree, assignments, decisions)
        run.place(tree, assignments)  # new subtype or mislabelled? of the products each proposal holds now
        diff_path = out / "taxonomy_diff.json"
        write_json(diff_path, taxonomy_diff(run.tree, tree, decisions))
        written.append(diff_path)
    stem = "curated_" if curated else ""
    rows = product_paths(run, assignments)
    files = [path for each in dict.fromkeys((fmt, *also)) for path in _write(tree, rows, out, stem, each)]
    return [*files, *written]


def _write(tree, rows: pd.DataFrame, out: Path, stem: str, fmt: str) -> list[Path]:
    if fmt == "json":
        tree_path = out / f"{stem}tree.json"
        write_text(tree_path, tree.to_json())
        rows_path = out / f"{stem}assignments.json"
        write_text(rows_path, rows.to_json(orient="records", indent=1))
    else:
        tree_path = out / f"{stem}nodes.csv"
        nodes = pd.DataFrame(
            [
                {
                    "id": n.id,
                    "parent": n.parent,
                    "kind": n.kind,
                    "path": " > ".join(n.path),
                    "name": n.name,
                    "size": n.size,
                    "keywords": " ".join(n.keywords),
                    "stability": n.stability,
                    "verdict": short(n.placement),  # new subtype or mislabelled? ("" where not placed)
                }
                for n in tree.nodes.values()
                if n.kind != "root"
            ]
        )
        write_csv(tree_path, nodes)
        rows_path = out / f"{stem}assignments.csv"
        write_csv(rows_path, rows)
    return [tree_path, rows_path]
