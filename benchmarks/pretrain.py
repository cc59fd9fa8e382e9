"""SimCLR features against ImageNet features on the rediscovery task, same CPU budget each.

Variants: ImageNet EfficientNet-Lite0 as is; SimCLR refined from ImageNet; SimCLR from
scratch. Each SimCLR variant trains for `DISCOVER_BENCH_PRETRAIN_MINUTES` (default 10) on
the catalog's photos at 64 px, then all three embed an evaluation sample of the qualifying
parents (seeded, `DISCOVER_BENCH_PRETRAIN_SAMPLE` products, default 6,000) and run the same
discovery on image-only and on fused (image + MiniLM) features.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import DATA, REPO, markdown_table, write_section
from discover.config import load_config
from discover.discovery import discover
from discover.embed.fuse import fuse
from discover.embed.pipeline import build_embedder, embed_modality
from discover.evaluate import evaluate, qualifies
from discover.ingest import ingest
from discover.pretrain import pretrain
from discover.workspace import Workspace

MINUTES = float(os.environ.get("DISCOVER_BENCH_PRETRAIN_MINUTES", "10"))
SAMPLE = int(os.environ.get("DISCOVER_BENCH_PRETRAIN_SAMPLE", "6000"))
COLUMNS = ["coverage", "purity", "hungarian_accuracy", "nmi", "leaf_clusters", "true_classes"]


def evaluation_catalog(root: Path) -> Path:
    styles = pd.read_csv(DATA / "styles.csv", dtype=str, keep_default_na=False)
    qualifying = [s for s, rows in styles.groupby("subCategory") if qualifies(rows["articleType"])]
    chosen = styles[styles["subCategory"].isin(qualifying)].sample(SAMPLE, random_state=0)
    directory = root / "catalog"
    directory.mkdir(parents=True)
    (directory / "images").symlink_to(DATA / "images")
    chosen.to_csv(directory / "styles.csv", index=False)
    return directory


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(REPO / "configs" / "fashion-small-simclr.yaml")
        config.catalog.data_dir = str(evaluation_catalog(Path(tmp)))
        workspace = Workspace(Path(tmp) / "ws")
        ingest(config, workspace, show_progress=False)
        catalog = workspace.load_catalog()
        text = embed_modality(build_embedder(config.embed.text, "text", config), catalog, config, workspace, False)
        rows = []
        variants = [
            ("ImageNet EfficientNet-Lite0", None),
            ("SimCLR from ImageNet", "imagenet"),
            ("SimCLR from scratch", "scratch"),
        ]
        for label, init in variants:
            started = time.perf_counter()
            if init is None:
                spec = config.embed.image.model_copy(update={"name": "efficientnet-lite0", "checkpoint": None})
                note = "no training"
            else:
                config.pretrain.init = init
                result = pretrain(config, workspace, minutes=MINUTES)
                spec = config.embed.image.model_copy(update={"checkpoint": str(result.best_path)})
                note = (
                    f"{result.steps} steps, loss {result.losses[0]:.2f}→{result.losses[-1]:.2f}, "
                    f"val NN {result.initial_score:.3f}→{result.best_score:.3f}"
                )
            image = embed_modality(build_embedder(spec, "image", config), catalog, config, workspace, False)
            for features, vectors in (
                ("image only", image.vectors),
                ("fused", fuse([image.vectors, text.vectors], [1, 1])),
            ):
                found = discover(vectors, catalog, config.discovery, config.seed)
                weighted = evaluate(found.assignments, catalog)["weighted"]
                rows.append(
                    {
                        "image features": label,
                        "features": features,
                        **{k: weighted[k] for k in COLUMNS},
                        "training": note,
                        "minutes": f"{(time.perf_counter() - started) / 60:.1f}",
                    }
                )
    body = (
        f"SimCLR budget {MINUTES:g} CPU minutes per variant at {config.pretrain.image_size} px, "
        f"batch {config.pretrain.batch_size}, first {config.pretrain.freeze_blocks} blocks frozen; evaluated on "
        f"{SAMPLE:,} products of the qualifying parents with the discover stage of configs/fashion-small.yaml.\n\n"
        + markdown_table(pd.DataFrame(rows))
    )
    write_section("pretrain", "SimCLR pretraining: what it adds", body)


if __name__ == "__main__":
    main()
