"""Fitting a classifier on embedding vectors, predicting, and scoring predictions.

The frozen transfer strategy: the encoders are the workspace's embedders and their vectors
come from the cache, so a model trains in seconds to minutes on a CPU. Training keeps the
epoch with the best validation hierarchical F1.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.metrics import f1_score
from torch import nn
from tqdm.auto import tqdm

from discover.classify.labels import LabelTree
from discover.classify.model import MultimodalClassifier, NgramBag
from discover.classify.ngrams import TitleNgrams, as_bag
from discover.evaluate.metrics import expected_calibration_error, hierarchical_prf, macro_f1_by_support

if TYPE_CHECKING:
    from discover.classify.ensemble import Classifier

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """How one model is built and trained (``classify`` in the config)."""

    fusion: str = "gated"
    head: str = "hierarchical"
    dim: int = 256
    dropout: float = 0.2
    epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    teacher_forcing: bool = True
    decoding: str = "path"  # "path": the most probable whole path; "greedy": level by level
    class_weights: bool = False
    logit_adjustment: float = 0.0  # τ: predictions subtract τ·log(leaf prior) from the leaf logits only
    patience: int = 6
    seed: int = 0
    members: int = 1  # discover.classify.ensemble.fit_members: models from seeds seed, seed + 1, ...
    mix: bool = False  # members after the first take other fusions and heads in turn (ensemble.MIX)


@dataclass
class Inputs:
    """Aligned image vectors, title vectors, (for training and scoring) path codes and,
    optionally, the titles' sparse n-grams (discover.classify.ngrams)."""

    image: np.ndarray
    text: np.ndarray
    codes: np.ndarray | None = None
    ngrams: sp.csr_matrix | None = None

    def take(self, rows: np.ndarray) -> Inputs:
        return Inputs(
            self.image[rows],
            self.text[rows],
            None if self.codes is None else self.codes[rows],
            None if self.ngrams is None else self.ngrams[rows],
        )

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.as_tensor(self.image, dtype=torch.float32), torch.as_tensor(self.text, dtype=torch.float32)

    def with_title_ngrams(self, titles: Sequence[str], train_rows: np.ndarray) -> tuple[Inputs, TitleNgrams]:
        """These inputs with every title's n-grams, in a vocabulary learnt from `train_rows`
        alone (so held-out titles teach it nothing), and that vectoriser."""
        grams = TitleNgrams().fit([titles[i] for i in train_rows])
        return Inputs(self.image, self.text, self.codes, grams.transform(titles)), grams

    def bag(self, rows: np.ndarray | slice) -> NgramBag | None:
        """The n-grams of `rows` as EmbeddingBag input, or None without n-grams."""
        return None if self.ngrams is None else as_bag(self.ngrams[rows])


def _loss(
    model: MultimodalClassifier, image, text, codes, settings: TrainSettings, weights, ngrams: NgramBag | None = None
) -> torch.Tensor:
    """Cross-entropy at every level (masked by the true or the predicted parent), plus each
    modality's own loss in late fusion."""
    logits = model(image, text, ngrams)
    if model.head_kind == "flat":
        return nn.functional.cross_entropy(logits[0], codes[:, -1], weight=weights)
    masked = model.heads.masked(logits, codes if settings.teacher_forcing else None)
    leaf = len(masked) - 1
    loss = sum(
        nn.functional.cross_entropy(level, codes[:, i], weight=weights if i == leaf else None)
        for i, level in enumerate(masked)
    )
    scores = getattr(model.fusion, "modality_scores", None)
    if scores is not None:
        for modality in scores:
            parts = modality.split(model.tree.sizes(), dim=1)
            loss = loss + sum(nn.functional.cross_entropy(p, codes[:, i]) for i, p in enumerate(parts))
    return loss


def fit_classifier(
    train: Inputs, tree: LabelTree, settings: TrainSettings, validation: Inputs | None = None, progress: bool = False
) -> MultimodalClassifier:
    """Train a model on `train`; keep the epoch with the best validation hF1 (or the last)."""
    torch.manual_seed(settings.seed)
    ngram_features = 0 if train.ngrams is None else train.ngrams.shape[1]
    model = MultimodalClassifier(
        tree,
        train.image.shape[1],
        train.text.shape[1],
        settings.fusion,
        settings.head,
        settings.dim,
        settings.dropout,
        ngram_features,
        settings.logit_adjustment,
        settings.decoding,
    )
    model.set_class_prior(train.codes[:, -1])  # before training: early stopping scores adjusted predictions
    # fused: one pass over each weight per step instead of one per operation. The title n-grams'
    # vote is a dense features × classes matrix (34,000 × 214 on fashion-small) that every
    # step updates; unfused, that update was 63 % of the training time
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay, fused=True
    )
    image, text = train.tensors()
    codes = torch.as_tensor(train.codes, dtype=torch.long)
    weights = None
    if settings.class_weights:
        from discover.classify.data import class_weights

        weights = torch.as_tensor(class_weights(train.codes[:, -1], tree.sizes()[-1]))
    generator = torch.Generator().manual_seed(settings.seed)
    best, best_state, waited = -1.0, None, 0
    desc = f"classify {settings.fusion} (seed {settings.seed})"
    for epoch in tqdm(range(settings.epochs), desc=desc, unit="epoch", disable=not progress):
        model.train()
        for batch in torch.randperm(len(codes), generator=generator).split(settings.batch_size):
            ngrams = train.bag(batch.numpy())
            loss = _loss(model, image[batch], text[batch], codes[batch], settings, weights, ngrams)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if validation is None:
            continue
        score = evaluate_classifier(model, validation)["hierarchical_f1"]
        if score > best:
            best, best_state, waited = score, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
        log.debug("classify: epoch %d, loss %.3f, validation hF1 %.4f", epoch + 1, loss.item(), score)
        if waited >= settings.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return model


@dataclass
class Predictions:
    """Predicted paths (n × depth codes), each path's probability, and p(leaf) for every leaf."""

    paths: np.ndarray
    probability: np.ndarray
    leaf_probabilities: np.ndarray

    def take(self, rows: np.ndarray) -> Predictions:
        return Predictions(self.paths[rows], self.probability[rows], self.leaf_probabilities[rows])


@torch.inference_mode()
def predict(model: Classifier, inputs: Inputs, batch_size: int = 4096) -> Predictions:
    model.eval()
    image, text = inputs.tensors()
    paths, leaf = [], []
    for start in range(0, len(image), batch_size):
        chunk = slice(start, start + batch_size)
        ngrams = inputs.bag(chunk)
        chosen, log_probs = model.decide(image[chunk], text[chunk], ngrams)
        paths.append(chosen.numpy())
        leaf.append(log_probs.exp().numpy())
    paths_codes, leaf_probs = np.concatenate(paths), np.concatenate(leaf)
    probability = leaf_probs[np.arange(len(paths_codes)), paths_codes[:, -1]]
    return Predictions(paths_codes, probability, leaf_probs)


def score_predictions(tree: LabelTree, truth: np.ndarray, predicted: Predictions) -> dict[str, Any]:
    """Accuracy and macro-F1 per level, hierarchical P/R/F1, leaf macro-F1 (and where it is
    lost, by test products per class), calibration (ECE) and the confusion of the largest
    leaf classes."""
    names = [f"level_{i + 1}" for i in range(tree.depth)]
    per_level = {}
    for i, name in enumerate(names):
        true, guess = truth[:, i], predicted.paths[:, i]
        per_level[name] = {
            "accuracy": float(np.mean(true == guess)),
            "macro_f1": float(f1_score(true, guess, labels=np.unique(true), average="macro", zero_division=0)),
        }
    precision, recall, f1 = hierarchical_prf(tree.decode(predicted.paths), tree.decode(truth))
    correct = predicted.paths[:, -1] == truth[:, -1]
    return {
        "n": len(truth),
        "hierarchical_precision": precision,
        "hierarchical_recall": recall,
        "hierarchical_f1": f1,
        "leaf_accuracy": float(correct.mean()),
        "leaf_macro_f1": per_level[names[-1]]["macro_f1"],
        "leaf_macro_f1_by_support": macro_f1_by_support(truth[:, -1], predicted.paths[:, -1]),
        "ece": expected_calibration_error(predicted.probability, correct),
        "per_level": per_level,
        "largest_confusions": largest_confusions(tree, truth, predicted),
    }


def evaluate_classifier(model: Classifier, inputs: Inputs) -> dict[str, Any]:
    return score_predictions(model.tree, inputs.codes, predict(model, inputs))


def largest_confusions(tree: LabelTree, truth: np.ndarray, predicted: Predictions, classes: int = 10) -> dict[str, Any]:
    """How the `classes` most frequent true leaves are predicted among themselves: their paths
    and the counts (row: true leaf, column: predicted leaf), for metrics.json."""
    leaves = tree.sizes()[-1]
    largest = np.argsort(-np.bincount(truth[:, -1], minlength=leaves), kind="stable")[:classes]
    position = np.full(leaves, -1)
    position[largest] = np.arange(len(largest))
    true, guess = position[truth[:, -1]], position[predicted.paths[:, -1]]
    both = (true >= 0) & (guess >= 0)
    counts = np.zeros((len(largest), len(largest)), dtype=np.int64)
    np.add.at(counts, (true[both], guess[both]), 1)
    return {"classes": [tree.classes[-1][c] for c in largest], "counts": counts.tolist()}


def top_confusions(confusions: dict[str, Any], most: int = 5) -> list[tuple[str, str, int]]:
    """The most frequent (true, predicted, count) mix-ups in `largest_confusions`' output."""
    counts = np.array(confusions["counts"])
    np.fill_diagonal(counts, 0)
    order = np.argsort(-counts, axis=None, kind="stable")[:most]
    names = confusions["classes"]
    return [
        (names[i], names[j], int(counts[i, j]))
        for i, j in zip(*np.unravel_index(order, counts.shape), strict=True)
        if counts[i, j]
    ]
