"""Image encoder tuned on the catalog's leaves (``discover classify tune-image``) against
ImageNet's, for the photo-only classifier and for the default multimodal one.

Both rows of each pair use the classify benchmark's split, settings and seed; only the image
vectors differ. The encoder learns from the training split's photos (early stop on
validation), so the test split is unseen by both the encoder and the classifier. The tuning
is resumable: a weights file made with the same settings on the same rows is reused, and its
own record gives the time it took.

Where ``DISCOVER_TUNED_ENCODERS`` names a folder of encoders tuned on a GPU from this
benchmark's pack (``discover classify tune-image CONFIG --pack P``, then ``python -m
discover.classify.image_tuning P --out DIR/enc.safetensors`` once plain and once with
``--folds 3``), those are compared instead: one encoder tuned on all the training photos,
and three cross-fitted ones, each product embedded by the one that never saw its photo.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.classify import DEFAULT, _headline, model_name
from benchmarks.common import REPO, WORKSPACE, markdown_table, write_section
from discover.classify import stage
from discover.classify.data import grouped_splits
from discover.classify.image_tuning import ImageTuning
from discover.classify.stage import catalog_titles, labelled_inputs, train_settings
from discover.classify.training import Predictions, fit_classifier, predict, score_predictions
from discover.config import Config, load_config
from discover.data.ingest import ingest
from discover.workspace import Workspace

# The CLI's defaults at the photos' own size (fashion-small's photos are 60 × 80 px).
TUNING = ImageTuning(image_size=80, seed=0)
IMAGE_ONLY = ("image-only", "hierarchical", False)


def _rows(config: Config, workspace: Workspace, encoder: str, kept: dict | None = None) -> list[dict]:
    """Image-only and the default model on `config`'s vectors; `kept` receives the default
    model's test predictions and what scores them (for the ensemble row)."""
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress=True)
    catalog, inputs, tree = labelled.catalog, labelled.inputs, labelled.tree
    splits = grouped_splits(inputs.codes[:, -1], catalog["group"].to_numpy(), seed=config.seed)
    with_ngrams, _ = inputs.with_title_ngrams(catalog_titles(catalog), splits.train)
    rows = []
    for fusion, head, ngrams in (IMAGE_ONLY, DEFAULT):
        started = time.perf_counter()
        settings = train_settings(config)
        settings.fusion, settings.head = fusion, head
        used = with_ngrams if ngrams else inputs
        model = fit_classifier(used.take(splits.train), tree, settings, used.take(splits.validation))
        predictions = predict(model, used.take(splits.test))
        scores = score_predictions(tree, inputs.codes[splits.test], predictions)
        if kept is not None and (fusion, head, ngrams) == DEFAULT:
            kept[encoder] = (tree, inputs.codes[splits.test], predictions)
        rows.append(
            {
                "image encoder": encoder,
                "model": model_name(fusion, head, ngrams),
                **_headline(scores),
                "seconds": time.perf_counter() - started,
            }
        )
        print(rows[-1])
    return rows


def _ensemble(kept: dict, encoders: list[str]) -> dict:
    """The default models of `encoders` together: their leaf probabilities averaged."""
    tree, truth, _ = kept[encoders[0]]
    leaf = np.mean([kept[e][2].leaf_probabilities for e in encoders], axis=0)
    scores = score_predictions(tree, truth, Predictions(tree.ancestors(leaf.argmax(1)), leaf.max(1), leaf))
    return {
        "image encoder": " and ".join(encoders),
        "model": "both default models, leaf probabilities averaged",
        **_headline(scores),
        "seconds": float("nan"),
    }


def _epochs(record: dict) -> str:
    history = record["history"]
    return (
        f"{len(history)} epochs in {sum(e['s'] for e in history):.0f} s, best validation leaf accuracy "
        f"{record['best']['validation_accuracy']:.4f} (epoch {record['best']['epoch']})"
    )


def _gpu_rows(config: Config, workspace: Workspace, folder: Path) -> tuple[list[dict], str]:
    """ImageNet against the GPU-tuned encoders of `folder`: one on all training photos, and cross-fitted."""
    plain = folder / "enc-all.safetensors"
    folds = sorted(folder.glob("enc-fold*of*.safetensors"))
    record = json.loads(plain.with_name(plain.name + ".json").read_text())
    size = record["tuning"]["image_size"]
    kept: dict = {}
    imagenet = f"ImageNet ({config.embed.image.image_size} px)"
    rows = _rows(config, workspace, imagenet, kept)
    tuned = config.model_copy(deep=True)
    tuned.embed.image.checkpoint, tuned.embed.image.image_size = str(plain), size
    rows += _rows(tuned, workspace, f"tuned on all training photos ({size} px)")
    crossfit = config.model_copy(deep=True)
    crossfit.embed.image.checkpoints, crossfit.embed.image.image_size = [str(f) for f in folds], size
    crossfitted = f"{len(folds)} cross-fitted, each photo by the one blind to it ({size} px)"
    rows += _rows(crossfit, workspace, crossfitted, kept)
    rows.append(_ensemble(kept, [imagenet, crossfitted]))
    tuning = ImageTuning(**record["tuning"])
    records = [json.loads(f.with_name(f.name + ".json").read_text()) for f in folds]
    about = (
        "EfficientNet-Lite0 trained whole to tell the leaf category from the photo alone (linear head, "
        f"label smoothing {tuning.label_smoothing}, AdamW {tuning.learning_rate:g} with warm-up and cosine "
        f"decay, batch {tuning.batch_size}, mirror + shift, {size} px), on the classify benchmark's training "
        f"split (the pack: training and validation photos only), on a GPU ({record.get('device')}); the epoch "
        "with the best validation accuracy kept. Then the catalog embedded with it on this machine and the "
        "frozen classifier trained as in the classify benchmark (same split, settings and seed).\n\n"
        f"- Tuned on all training photos: {_epochs(record)}.\n"
        f"- Cross-fitted (`--folds {len(folds)}`): encoder k trains on the training photos outside fold k "
        "(md5 of the photo's bytes), and every product, in training or not, is embedded by the encoder of its "
        "own fold, so the classifier learns from image vectors as unfamiliar to the encoder as the test "
        "products' are. " + "; ".join(f"fold {r['fold']}: {_epochs(r)}" for r in records) + ".\n\n"
    )
    return rows, about


def main() -> None:
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    gpu = os.environ.get("DISCOVER_TUNED_ENCODERS")
    if gpu:
        rows, about = _gpu_rows(config, workspace, Path(gpu))
        write_section(
            "image_tuning",
            "Classifier: image encoder tuned on the catalog",
            about + markdown_table(pd.DataFrame(rows), "{:.4f}"),
        )
        return
    started = time.perf_counter()
    (checkpoint,) = stage.tune_image(config, workspace, TUNING, "cpu")
    record = json.loads(checkpoint.with_name(checkpoint.name + ".json").read_text())
    reused = time.perf_counter() - started < 60
    rows = _rows(config, workspace, f"ImageNet ({config.embed.image.image_size} px)")
    tuned = config.model_copy(deep=True)
    tuned.embed.image.checkpoint, tuned.embed.image.image_size = str(checkpoint), TUNING.image_size
    rows += _rows(tuned, workspace, f"tuned on the training photos ({TUNING.image_size} px)")
    epochs = record["history"]
    body = (
        "EfficientNet-Lite0 trained whole to tell the leaf category from the photo alone (linear head, "
        f"label smoothing {TUNING.label_smoothing}, AdamW {TUNING.learning_rate:g} with warm-up and cosine "
        f"decay, batch {TUNING.batch_size}, mirror + shift), on the classify benchmark's training split; "
        "the epoch with the best validation accuracy kept; then the catalog embedded with it and the frozen "
        "classifier trained as in the classify benchmark (same split, settings and seed). "
        f"Tuning on this machine's CPU: {len(epochs)} epochs, {sum(e['s'] for e in epochs):.0f} s "
        f"({'reused from the run that made ' + checkpoint.name if reused else 'in this run'}); validation leaf "
        "accuracy per epoch (photo alone): "
        + ", ".join(f"{e['validation_accuracy']:.4f}" for e in epochs)
        + ".\n\n"
        + markdown_table(pd.DataFrame(rows), "{:.4f}")
    )
    write_section("image_tuning", "Classifier: image encoder tuned on the catalog", body)


if __name__ == "__main__":
    main()
