"""Two-stage inference (paper A's production set-up): a text-only model reads every title, and
only the products it is unsure of go on to the multimodal model.

The title is cheap (its vector and n-grams), the photo is not: it has to be read, decoded
and run through a CNN. A product whose text-stage path probability is at least
``classify.two_stage_threshold`` keeps the text stage's prediction, and its photo is never
embedded; the rest have their photos embedded and are predicted by the multimodal model. The
text stage is trained beside the multimodal model by ``classify train`` (same split, same
title n-grams) and saved in its folder as ``text-stage/``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from discover.classify.ensemble import load_classifier
from discover.classify.labels import LabelTree
from discover.classify.model import MultimodalClassifier
from discover.classify.training import Inputs, Predictions, TrainSettings, fit_classifier, score_predictions

log = logging.getLogger(__name__)
TEXT_STAGE = "text-stage"  # the text stage's folder inside the saved model's


def text_stage_settings(settings: TrainSettings) -> TrainSettings:
    """The multimodal model's settings with text-only fusion, one model."""
    return dataclasses.replace(settings, fusion="text-only", members=1, mix=False)


def fit_text_stage(
    inputs: Inputs,
    tree: LabelTree,
    settings: TrainSettings,
    train: np.ndarray,
    validation: np.ndarray | None,
    progress: bool = False,
) -> MultimodalClassifier:
    """A text-only model of `inputs`' titles (vectors and n-grams): learns `train`, stops on `validation`."""
    stops = None if validation is None else inputs.take(validation)
    return fit_classifier(inputs.take(train), tree, text_stage_settings(settings), stops, progress)


def save_text_stage(model: MultimodalClassifier, model_dir: Path, text_fingerprint: str) -> None:
    """The text stage in `model_dir`'s ``text-stage/``, with the title embedder it reads."""
    meta = {"model_id": f"{model_dir.name}/{TEXT_STAGE}", "fingerprints": {"text": text_fingerprint}}
    model.save(model_dir / TEXT_STAGE, meta | {"trained_at": time.time()})


def load_text_stage(model_dir: Path) -> MultimodalClassifier | None:
    """The text stage saved beside a multimodal model, or None (trained without one)."""
    if not (model_dir / TEXT_STAGE / "model.json").exists():
        return None
    model, _ = load_classifier(model_dir / TEXT_STAGE)
    assert isinstance(model, MultimodalClassifier)
    return model


def titles_only(text: np.ndarray, ngrams: sp.csr_matrix | None, model: MultimodalClassifier) -> Inputs:
    """Inputs for the text stage: the photo slot is zeros (text-only fusion never reads it)."""
    return Inputs(np.zeros((len(text), model.dims["image_dim"]), dtype=np.float32), text, ngrams=ngrams)


def sent_on(text: Predictions, titles: Sequence[str], threshold: float) -> np.ndarray:
    """Which products go to the multimodal model: those whose text-stage path probability is
    below `threshold`, and those without a title (``on_invalid: keep`` keeps them), which the
    text stage has nothing to be sure of."""
    untitled = np.array([not title.strip() for title in titles], dtype=bool)
    return (text.probability < threshold) | untitled


def combine(text: Predictions, multimodal: Predictions, sent: np.ndarray) -> Predictions:
    """The text stage's predictions, with the multimodal model's (one per sent product, in
    order) in place of the sent products'."""
    paths, probability, leaf = text.paths.copy(), text.probability.copy(), text.leaf_probabilities.copy()
    paths[sent], probability[sent], leaf[sent] = multimodal.paths, multimodal.probability, multimodal.leaf_probabilities
    return Predictions(paths, probability, leaf)


def two_stage_predictions(
    text: Predictions, multimodal: Predictions, titles: Sequence[str], threshold: float
) -> tuple[Predictions, np.ndarray]:
    """What two-stage inference at `threshold` predicts where the multimodal model's predictions
    exist for every product (scoring, benchmarks), and which products it sent on."""
    sent = sent_on(text, titles, threshold)
    return combine(text, multimodal.take(sent), sent), sent


def two_stage_scores(
    tree: LabelTree,
    truth: np.ndarray,
    titles: Sequence[str],
    text: Predictions,
    multimodal: Predictions,
    threshold: float,
) -> dict[str, float]:
    """What two-stage inference at `threshold` gives on scored products (`multimodal`: the
    multimodal model's predictions for all of them), and the text stage alone's hF1."""
    combined, sent = two_stage_predictions(text, multimodal, titles, threshold)
    both = score_predictions(tree, truth, combined)
    return {
        "threshold": threshold,
        "multimodal_share": float(sent.mean()),
        **{key: both[key] for key in ("hierarchical_f1", "leaf_accuracy", "leaf_macro_f1", "ece")},
        "text_only_hierarchical_f1": score_predictions(tree, truth, text)["hierarchical_f1"],
    }
