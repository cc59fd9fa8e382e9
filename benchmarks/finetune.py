"""Transfer strategies on a CPU budget: frozen, partial and full fine-tuning side by side.

The same products for every strategy: 2,400 training, 400 validation and 1,000 test
products drawn from one grouped split of fashion-small (by image_md5), three levels
(masterCategory > subCategory > articleType). Photos at 64 px, at most 4 epochs and
`MINUTES` minutes of training per strategy; the epoch with the best validation hF1 is kept.
The from-scratch baseline is ResNet-18 from random init (trained fully) beside frozen MiniLM.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks.common import REPO, WORKSPACE, markdown_table, write_section
from discover.classify.data import grouped_splits
from discover.classify.finetune import FineTuneSettings, Products, evaluate_end_to_end, fine_tune
from discover.classify.labels import LabelTree
from discover.classify.stage import label_paths, train_settings
from discover.config import load_config
from discover.data.ingest import ingest
from discover.workspace import Workspace

MINUTES = 2.0
VARIANTS = {
    "frozen encoders (heads only)": {"image_strategy": "frozen", "text_strategy": "frozen"},
    "partial, joint (top 2 blocks each)": {"image_strategy": "partial", "text_strategy": "partial"},
    "partial, staged (heads first)": {"image_strategy": "partial", "text_strategy": "partial", "staged": True},
    "full, joint": {"image_strategy": "full", "text_strategy": "full"},
    "ResNet-18 from scratch (full) + frozen MiniLM": {
        "image_encoder": "resnet18-scratch",
        "image_strategy": "full",
        "text_strategy": "frozen",
    },
}


def sample(config, workspace: Workspace) -> tuple[Products, Products, Products, LabelTree]:
    catalog = workspace.load_catalog()
    paths, complete = label_paths(catalog, config)
    catalog = catalog[complete].reset_index(drop=True)
    paths = [p for p, ok in zip(paths, complete, strict=True) if ok]
    tree = LabelTree.from_paths(paths)
    codes = tree.encode(paths)
    splits = grouped_splits(codes[:, -1], catalog["group"].to_numpy(), seed=config.seed)
    rng = np.random.default_rng(config.seed)
    everything = Products(catalog["image_path"].tolist(), catalog["title"].tolist(), codes)
    pick = [rng.choice(rows, n, replace=False) for rows, n in ((splits.train, 2400), (splits.validation, 400))]
    test = rng.choice(splits.test, 1000, replace=False)
    return everything.take(pick[0]), everything.take(pick[1]), everything.take(test), tree


def main() -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    train, validation, test, tree = sample(config, workspace)
    settings = train_settings(config)
    rows = []
    for name, choice in VARIANTS.items():
        tuning = FineTuneSettings(minutes=MINUTES, **choice)
        started = time.perf_counter()
        model, history = fine_tune(train, validation, tree, settings, tuning)
        seconds = time.perf_counter() - started
        scores = evaluate_end_to_end(model, test, tree, tuning.image_size)[1]
        rows.append(
            {
                "strategy": name,
                "hF1": scores["hierarchical_f1"],
                "leaf acc": scores["leaf_accuracy"],
                "leaf macro-F1": scores["leaf_macro_f1"],
                "epochs": len(history),
                "seconds": seconds,
            }
        )
        print(rows[-1], flush=True)
    body = (
        f"Train {len(train.paths):,} / validation {len(validation.paths):,} / test {len(test.paths):,} products "
        f"(one grouped split, {tree.sizes()} classes per level), photos at 64 px, {MINUTES:g} CPU minutes and at "
        f"most 4 epochs per strategy, {settings.fusion} fusion with hierarchical heads, encoders learning at 1e-4. "
        "Small samples and a CPU budget: these figures compare strategies under that budget, not their ceilings.\n\n"
        + markdown_table(pd.DataFrame(rows), "{:.4f}")
    )
    write_section("finetune", "Classifier: transfer strategies on a CPU budget", body)


if __name__ == "__main__":
    main()
