"""SimCLR features against ImageNet features on the rediscovery task, same CPU budget each.

Variants: ImageNet EfficientNet-Lite0 as is; SimCLR refined from ImageNet; the same with
colour kept (no hue, saturation or grey-scale augmentation: the ablation behind the default
colour-invariant views); SimCLR from scratch. Each SimCLR variant trains for
`DISCOVER_BENCH_PRETRAIN_MINUTES` (default 15) on the photos of the dev half of the catalog
at 64 px; then all of them embed an evaluation
sample of the qualifying parents drawn from the held-out half (seeded,
`DISCOVER_BENCH_PRETRAIN_SAMPLE` products, default 4,000; photos SimCLR never saw) and run
the same discovery on image-only and on fused (image + MiniLM, the config's weights)
features.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.common import DATA, REPO, held_out, ingest_sample, markdown_table, write_section
from discover.cluster.stage import propose_subcategories
from discover.config import load_config
from discover.embed.fuse import fuse
from discover.embed.pretrain import pretrain
from discover.embed.stage import build_embedder, embed_modality
from discover.evaluate.scoring import evaluate, qualifies
from discover.workspace import Workspace

MINUTES = float(os.environ.get("DISCOVER_BENCH_PRETRAIN_MINUTES", "15"))
SAMPLE = int(os.environ.get("DISCOVER_BENCH_PRETRAIN_SAMPLE", "4000"))
READING = (
    "A variant whose validation score (val NN: nearest-neighbour agreement of the given subCategory on a held-back "
    "slice of the training photos) never rises keeps its starting weights as the best checkpoint and scores exactly "
    "as its start. One cluster per parent scores the largest type's share as Hungarian accuracy with NMI 0, so read "
    "hungarian_accuracy beside nmi and leaf_clusters."
)
COLUMNS = ["coverage", "purity", "hungarian_accuracy", "nmi", "leaf_clusters", "true_classes"]


def write_catalog(directory: Path, rows: pd.DataFrame) -> Path:
    directory.mkdir(parents=True)
    (directory / "images").symlink_to(DATA / "images")
    rows.to_csv(directory / "styles.csv", index=False)
    return directory


def split_catalogs(root: Path) -> tuple[Path, Path]:
    """A training catalog (the dev half) and an evaluation sample of the held-out half.

    SimCLR never sees an evaluation photo: the halves are split by `image_md5`, so even a
    duplicate photo listed under another id stays on its own side.
    """
    styles = pd.read_csv(DATA / "styles.csv", dtype=str, keep_default_na=False)
    held = held_out(styles["image_md5"])
    qualifying = [s for s, rows in styles.groupby("subCategory") if qualifies(rows["articleType"])]
    candidates = styles[held & styles["subCategory"].isin(qualifying)]
    evaluation = candidates.sample(min(SAMPLE, len(candidates)), random_state=0)
    return write_catalog(root / "train", styles[~held]), write_catalog(root / "eval", evaluation)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(REPO / "configs" / "fashion-small-simclr.yaml")
        train_dir, eval_dir = split_catalogs(Path(tmp))
        train_config = config.model_copy(deep=True)
        train_config.catalog.data_dir = str(train_dir)
        config.catalog.data_dir = str(eval_dir)
        workspace = Workspace(Path(tmp) / "ws")
        ingest_sample(config, workspace)
        catalog = workspace.load_catalog()
        text = embed_modality(build_embedder(config.embed.text, "text", config), catalog, config, workspace, False)
        rows = []
        colour_kept = {"hue_jitter": 0.0, "saturation_jitter": 0.0, "grayscale_probability": 0.0}
        variants = [
            ("ImageNet EfficientNet-Lite0", None, {}),
            ("SimCLR from ImageNet", "imagenet", {}),
            ("SimCLR from ImageNet, colour kept (ablation)", "imagenet", colour_kept),
            ("SimCLR from scratch", "scratch", {}),
        ]
        for label, init, changes in variants:
            started = time.perf_counter()
            if init is None:
                spec = config.embed.image.model_copy(update={"name": "efficientnet-lite0", "checkpoint": None})
                note = "no training"
            else:
                variant = train_config.model_copy(deep=True)
                variant.pretrain = config.pretrain.model_copy(update={"init": init, **changes})
                train_workspace = Workspace(Path(tmp) / f"train-ws-{len(rows)}")
                ingest_sample(variant, train_workspace)
                result = pretrain(variant, train_workspace, minutes=MINUTES)
                spec = config.embed.image.model_copy(update={"checkpoint": str(result.best_path)})
                note = (
                    f"{result.steps} steps, loss {result.losses[0]:.2f}→{result.losses[-1]:.2f}, "
                    f"val NN {result.initial_score:.3f}→{result.best_score:.3f}"
                )
            image = embed_modality(build_embedder(spec, "image", config), catalog, config, workspace, False)
            for features, vectors in (
                ("image only", image.vectors),
                ("fused", fuse([image.vectors, text.vectors], [config.embed.image.weight, config.embed.text.weight])),
            ):
                found = propose_subcategories(vectors, catalog, config.discovery, config.seed)
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
        f"{len(catalog):,} held-out products of the qualifying parents (SimCLR trained on the other half's photos) "
        "with the discover stage of configs/fashion-small.yaml; fused = image + MiniLM at the config's weights. "
        f"{READING}\n\n" + markdown_table(pd.DataFrame(rows))
    )
    write_section("pretrain", "SimCLR pretraining: what it adds", body)


if __name__ == "__main__":
    main()
