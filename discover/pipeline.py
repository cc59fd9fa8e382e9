"""One call runs ingest → embed → discover → evaluate → export: :func:`run`.

The module is not called ``run.py`` so that ``discover.run`` stays the function (a
submodule of that name would shadow it on import).
"""

from __future__ import annotations

import hashlib
import logging
import resource
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from discover import __version__
from discover.classify.placement import PROBABILITIES_FILE
from discover.config import Config, load_config
from discover.engine import engine_session
from discover.tree import SubcategoryTree
from discover.workspace import FINISHED, Workspace, read_json, write_json, write_parquet, write_text

log = logging.getLogger(__name__)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class StageTimes:
    """Seconds and peak RSS after each stage, in order."""

    rows: list[tuple[str, float, float]] = field(default_factory=list)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.rows.append((name, seconds, peak_rss_mb()))
        log.info("stage %s: %.1f s (peak RSS %.0f MB)", name, seconds, peak_rss_mb())


@dataclass
class RunResult:
    run_id: str
    run_dir: Path
    metrics: dict[str, Any] | None
    times: StageTimes
    ingest_summary: str
    reused: bool

    def summary(self) -> str:
        from discover.evaluate.scoring import format_metrics

        lines = [self.ingest_summary, "", f"{'stage':12s} {'seconds':>8s} {'peak RSS MB':>12s}"]
        lines += [f"{name:12s} {sec:8.1f} {rss:12.0f}" for name, sec, rss in self.times.rows]
        if self.metrics:
            lines += ["", format_metrics(self.metrics)]
        lines += ["", *self.flag_lines()]
        lines += [
            f"run        {self.run_dir}"
            + ("  (discovery reused from an earlier identical run)" if self.reused else ""),
            f"report     {self.run_dir / 'report.html'}",
            f"explore    discover explore --workspace {self.run_dir.parent.parent}",
        ]
        return "\n".join(lines)

    def flag_lines(self) -> list[str]:
        """How many proposals carry each flag, and how many categories left whole name several
        types: where a curator of a catalog without a truth column looks first."""
        tree = SubcategoryTree.from_json((self.run_dir / "tree.json").read_text(encoding="utf-8"))
        counts = Counter(flag.split(":")[0] for node in tree.proposals() for flag in node.flags)
        whole = sum(bool(n.flags) for n in tree.nodes.values() if n.kind == "existing")
        if not counts and not whole:
            return []
        said = ", ".join(f"{count} {flag}" for flag, count in sorted(counts.items())) or "none"
        lines = [f"flags      {said} (of {len(tree.proposals())} proposals: look at them first)"]
        if whole:
            categories = f"{whole} categor{'y' if whole == 1 else 'ies'}"
            lines.append(f"           {categories} left whole whose titles name several types: a split may help")
        return [*lines, ""]


def default_run_id(config: Config, fingerprints: list[str], catalog_content: str) -> str:
    """Same config + same features + same catalog → same run id, so curation re-attaches."""
    settings = config.embed.model_dump_json() + config.discovery.model_dump_json() + str(config.seed)
    payload = settings + "".join(fingerprints) + catalog_content
    return f"{config.name}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"


def _reusable_tree(run_dir: Path, run_id: str) -> SubcategoryTree | None:
    """The run's tree if its discovery can be reused: it finished, and with this version of discover.

    The run id names the config, features and catalog, not the code, so an upgrade that
    changes how proposals are made would otherwise keep serving the old ones under the same
    id. Discovering again keeps the id (node ids are paths), so curation re-attaches."""
    if not ((run_dir / "tree.json").exists() and (run_dir / "assignments.parquet").exists()):
        return None
    tree = SubcategoryTree.from_json((run_dir / "tree.json").read_text(encoding="utf-8"))
    made_by = tree.meta.get("discover_version")
    if made_by != __version__:
        log.info("discover: %s was made by discover %s, this is %s: discovering again", run_id, made_by, __version__)
        return None
    return tree


def run(
    config: Config | str | Path,
    workspace: Workspace | str | Path | None = None,
    run_id: str | None = None,
    show_progress: bool = True,
) -> RunResult:
    """Run the whole pipeline on `config` into `workspace`; resumable at every stage. With
    ``engine: ray`` embedding and discovery run on a Ray cluster, with the same results."""
    if not isinstance(config, Config):
        config = load_config(config)
    workspace = Workspace(workspace or "workspace") if not isinstance(workspace, Workspace) else workspace
    with engine_session(config):
        return _run(config, workspace, run_id, show_progress)


def _run(config: Config, workspace: Workspace, run_id: str | None, show_progress: bool) -> RunResult:
    from discover.cluster.stage import propose_subcategories
    from discover.data.ingest import ingest
    from discover.embed.stage import embed_catalog
    from discover.evaluate.scoring import attach_metrics, evaluate_run_outputs
    from discover.outputs.report import write_report

    times = StageTimes()
    with times.stage("ingest"):
        ingested = ingest(config, workspace, show_progress)
    with times.stage("embed"):
        features = embed_catalog(config, workspace, show_progress)
    catalog = ingested.table
    content = read_json(workspace.ingest_meta_path)["content"]  # the catalog's content, not its files' mtimes
    run_id = run_id or default_run_id(config, [p.fingerprint for p in features.parts], content)
    run_dir = workspace.run_dir(run_id)
    write_text(run_dir / "config.yaml", config.to_yaml())
    tree = _reusable_tree(run_dir, run_id)
    reused = tree is not None
    if tree is not None:
        log.info("discover: %s already finished, reusing its tree and assignments", run_id)
        assignments = pd.read_parquet(run_dir / "assignments.parquet")
        coords = pd.read_parquet(run_dir / "coords.parquet")
    else:
        with times.stage("discover"):
            result = propose_subcategories(
                features.vectors,
                catalog,
                config.discovery,
                config.seed,
                show_progress,
                engine=config.engine,
                type_view=features.type_view(),
            )
        tree, assignments, coords = result.tree, result.assignments, result.coords
        (run_dir / PROBABILITIES_FILE).unlink(missing_ok=True)  # the scores that placed proposals now replaced
        tree.meta = {
            "run_id": run_id,
            "discover_version": __version__,
            "config_name": config.name,
            "seed": config.seed,
            "features": [p.fingerprint for p in features.parts],
            "catalog_signature": content,  # names its snapshot (RunData.catalog)
            "ignored": [asdict(r) for r in result.removals],
        }
    metrics = None
    if "truth" in catalog.columns:
        with times.stage("evaluate"):
            attributes = read_json(workspace.ingest_meta_path).get("attributes", [])
            metrics = evaluate_run_outputs(tree, assignments, catalog, attributes)
            attach_metrics(tree, metrics)
            write_json(run_dir / "metrics.json", metrics)
    with times.stage("export"):
        write_parquet(run_dir / "coords.parquet", coords)
        write_parquet(run_dir / "assignments.parquet", assignments)
        write_text(run_dir / "tree.json", tree.to_json())
        write_report(run_dir / "report.html", tree, assignments, coords, catalog, metrics)
        write_json(run_dir / FINISHED, {"finished_at": time.time()})
    return RunResult(run_id, run_dir, metrics, times, ingested.report.summary(), reused)
