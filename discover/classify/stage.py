"""What `discover classify` does on a workspace: train, evaluate, predict, find mislabels.

Inputs are the workspace's cached image and title embeddings (each L2-normalised); the
label of a product is its category path, plus the truth column as the finest level when
`classify.include_truth` is set and the catalog maps one. Models live in
``models/classify/<model-id>/``, their test scores in ``classify/<model-id>/metrics.json``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from discover.classify.data import Splits, grouped_splits, imbalance_report, undersample
from discover.classify.ensemble import Classifier, load_classifier
from discover.classify.labels import LabelTree
from discover.classify.mislabels import check_registered, check_summary, out_of_fold_probabilities, rank_mislabels
from discover.classify.ngrams import TitleNgrams
from discover.classify.placement import PROBABILITIES_FILE, place_proposals
from discover.classify.training import (
    Inputs,
    Predictions,
    TrainSettings,
    predict,
    score_predictions,
    top_confusions,
)
from discover.classify.two_stage import (
    TEXT_STAGE,
    combine,
    fit_text_stage,
    load_text_stage,
    save_text_stage,
    sent_on,
    titles_only,
    two_stage_scores,
)
from discover.config import Config
from discover.data.catalog import MISSING_LEVEL
from discover.errors import ConfigError, WorkspaceError
from discover.vectors import l2_normalise
from discover.workspace import Workspace, write_csv, write_json, write_parquet, write_text

if TYPE_CHECKING:
    from discover.classify.image_tuning import ImageTuning
    from discover.classify.model import MultimodalClassifier
    from discover.embed.base import Embedder

log = logging.getLogger(__name__)
NGRAMS_FILE = "ngrams.json"  # beside model.safetensors: the n-gram vocabulary and idf weights


def train_settings(config: Config) -> TrainSettings:
    fields = TrainSettings.__dataclass_fields__
    return TrainSettings(**{k: v for k, v in config.classify.model_dump().items() if k in fields}, seed=config.seed)


def label_paths(
    catalog: pd.DataFrame, config: Config, levels: int | None = None
) -> tuple[list[tuple[str, ...]], np.ndarray]:
    """Each product's label path, and which rows have a complete one (others are not used).

    With `levels`, the existing categories down to that level only (never the truth column).
    """
    columns = sorted((c for c in catalog.columns if c.startswith("level_")), key=lambda c: int(c.split("_")[1]))
    if levels is not None:
        columns = columns[:levels]
    elif config.classify.include_truth and "truth" in catalog.columns:
        columns.append("truth")
    values = catalog[columns].astype(str).to_numpy()
    complete = (values != "").all(axis=1) & (values != MISSING_LEVEL).all(axis=1)
    return [tuple(row) for row in values], complete


def _embedder(config: Config, modality: str) -> Embedder:
    from discover.embed.stage import build_embedder

    spec = getattr(config.embed, modality)
    if spec is None:
        raise ConfigError(f"classify needs both embed.image and embed.text; embed.{modality} is not set")
    return build_embedder(spec, modality, config)


def _vectors(
    config: Config, workspace: Workspace, catalog: pd.DataFrame, embedder: Embedder, progress: bool
) -> np.ndarray:
    """L2-normalised vectors of `catalog` by `embedder`, from the cache; what is missing is
    computed as the embed stage computes it (Ray workers with ``engine: ray``, else
    ``embed.n_jobs`` processes once there are enough items)."""
    from discover.embed.stage import build_embedder, cached_vectors

    factory = partial(build_embedder, getattr(config.embed, embedder.modality), embedder.modality, config)
    filled, _ = cached_vectors(embedder, catalog, config, workspace, progress, factory)
    return l2_normalise(filled.vectors)


def _modalities(config: Config, workspace: Workspace, catalog: pd.DataFrame, progress: bool) -> tuple[Inputs, dict]:
    """L2-normalised image and title vectors of `catalog` from the cache, and their fingerprints."""
    embedders = {modality: _embedder(config, modality) for modality in ("image", "text")}
    blocks = {modality: _vectors(config, workspace, catalog, e, progress) for modality, e in embedders.items()}
    return Inputs(blocks["image"], blocks["text"]), {m: e.fingerprint for m, e in embedders.items()}


def group_column(catalog: pd.DataFrame, each_row_alone: bool = False) -> np.ndarray | None:
    """The catalog's grouping (near-duplicates share a group; fashion-small: image_md5), or with
    none, None (callers that need an array get one group per row with `each_row_alone`)."""
    if "group" in catalog.columns:
        return catalog["group"].to_numpy()
    return np.arange(len(catalog)) if each_row_alone else None


@dataclass
class Labelled:
    """The products with a complete label path, their vectors and codes, and the label tree."""

    catalog: pd.DataFrame
    inputs: Inputs
    tree: LabelTree
    fingerprints: dict[str, str]


def labelled_inputs(
    config: Config,
    workspace: Workspace,
    catalog: pd.DataFrame,
    progress: bool,
    tree: LabelTree | None = None,
    levels: int | None = None,
) -> Labelled:
    """Keep rows with a complete path, embed them, encode their paths (in `tree`, or a tree built from them)."""
    paths, complete = label_paths(catalog, config, levels)
    catalog = catalog[complete].reset_index(drop=True)
    paths = [p for p, ok in zip(paths, complete, strict=True) if ok]
    inputs, fingerprints = _modalities(config, workspace, catalog, progress)
    tree = tree or LabelTree.from_paths(paths)
    inputs.codes = tree.encode(paths)
    return Labelled(catalog, inputs, tree, fingerprints)


def _same_embedders(meta: dict, fingerprints: dict) -> None:
    if fingerprints != meta["fingerprints"]:
        raise ConfigError(
            f"classifier {meta['model_id']} was trained on embeddings {meta['fingerprints']}, "
            f"this config makes {fingerprints}; use the config it was trained with"
        )


@dataclass
class Trained:
    model_id: str
    model_dir: Path
    metrics: dict[str, Any]
    imbalance: pd.DataFrame


def new_model_id(config: Config, fingerprints: dict, rows: int, prefix: str = "") -> str:
    """``<fusion>-<head>-<hash of settings, embedders, rows and seed>`` (fine-tuned: `prefix` first)."""
    # the two-stage threshold is read at prediction; only whether a text stage is trained matters here
    settings = config.classify.model_dump(exclude={"two_stage_threshold"})
    settings["text_stage"] = config.classify.two_stage_threshold is not None
    payload = json.dumps([settings, fingerprints, rows, config.seed], sort_keys=True)
    name = f"{config.classify.fusion}-{config.classify.head}-{hashlib.sha1(payload.encode()).hexdigest()[:8]}"
    return f"{prefix}-{name}" if prefix else name


def train(config: Config, workspace: Workspace, progress: bool = True) -> Trained:
    """Split, under-sample, fit, save; score on the test split and write its metrics.json.
    With ``classify.fine_tune`` set, the encoders train too (discover.classify.end_to_end)."""
    from discover.classify.ensemble import fit_members, learnt_rows

    if config.classify.fine_tune is not None:
        from discover.classify import end_to_end

        return end_to_end.train(config, workspace, progress)

    started = time.perf_counter()
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress)
    if len(labelled.catalog) < 20:
        raise WorkspaceError(f"classify: {len(labelled.catalog)} products have a complete category path; need 20+")
    catalog, inputs, tree, fingerprints = labelled.catalog, labelled.inputs, labelled.tree, labelled.fingerprints
    settings, titles = config.classify, catalog_titles(catalog)
    groups = group_column(catalog)
    splits = grouped_splits(inputs.codes[:, -1], groups, settings.test_size, settings.validation_size, config.seed)
    train_rows = undersample(inputs.codes[:, -1], splits.train, settings.max_per_class, config.seed)
    grams, fitting = None, train_settings(config)
    if settings.title_ngrams:
        learnt = learnt_rows(fitting, train_rows, splits.validation, groups)
        inputs, grams = inputs.with_title_ngrams(titles, learnt)
    model = fit_members(inputs, tree, fitting, train_rows, splits.validation, groups, progress)
    model_id = new_model_id(config, fingerprints, len(catalog))
    model_dir = workspace.models_dir / "classify" / model_id
    test_ids = catalog["product_id"].to_numpy()[splits.test].tolist()
    text_stage = None
    if settings.two_stage_threshold is not None and settings.fusion not in ("image-only", "text-only"):
        text_stage = fit_text_stage(inputs, tree, fitting, train_rows, splits.validation, progress)
        save_text_stage(text_stage, model_dir, fingerprints["text"])
    model.save(
        model_dir,
        {
            "model_id": model_id,
            "fingerprints": fingerprints,
            "test_ids": test_ids,
            "trained_at": time.time(),
            "train_settings": asdict(train_settings(config)),
        },
    )
    if grams is not None:
        grams.save(model_dir / NGRAMS_FILE)
    test = inputs.take(splits.test)
    predicted = predict(model, test)
    metrics = score_predictions(tree, test.codes, predicted)
    metrics.update(two_stage_metrics(config, text_stage, test, [titles[i] for i in splits.test], predicted))
    metrics.update(model_id=model_id, train_rows=len(train_rows), seconds=time.perf_counter() - started)
    write_json(workspace.root / "classify" / model_id / "metrics.json", metrics)
    log.info("classify: %s trained on %d products in %.1f s", model_id, len(train_rows), metrics["seconds"])
    imbalance = write_imbalance(workspace, model_id, inputs.codes[:, -1], splits, train_rows, tree)
    return Trained(model_id, model_dir, metrics, imbalance)


def write_imbalance(
    workspace: Workspace, model_id: str, leaves: np.ndarray, splits: Splits, learnt: np.ndarray, tree: LabelTree
) -> pd.DataFrame:
    """Every leaf class's products per split, written to `classify/<model-id>/imbalance.csv`."""
    report = imbalance_report(leaves, splits, learnt, list(tree.classes[-1]))
    write_csv(imbalance_path(workspace, model_id), report.reset_index())
    return report


def imbalance_path(workspace: Workspace, model_id: str) -> Path:
    return workspace.root / "classify" / model_id / "imbalance.csv"


def saved_ngrams(directory: Path, model: Classifier, catalog: pd.DataFrame) -> sp.csr_matrix | None:
    """The catalog's title n-grams in the columns the model was trained on (None: trained without)."""
    if model.ngrams is None:
        return None
    path = directory / NGRAMS_FILE
    if not path.exists():
        raise WorkspaceError(f"{path}: missing; the classifier was trained with title n-grams, train it again")
    return TitleNgrams.load(path).transform(catalog_titles(catalog))


def catalog_titles(catalog: pd.DataFrame) -> list[str]:
    """Every product's title as text (a missing one is empty: ingest has reported it)."""
    return catalog["title"].fillna("").astype(str).tolist()


def model_dir(workspace: Workspace, model_id: str | None) -> Path:
    """The named model, or the most recently trained one."""
    root = workspace.models_dir / "classify"
    if model_id and (root / model_id / "model.json").is_file():
        return root / model_id
    trained = sorted(root.glob("*/model.json"), key=lambda p: json.loads(p.read_text())["trained_at"])
    if not trained:
        raise WorkspaceError(f"{root}: no trained classifier; run `discover classify train CONFIG` first")
    if model_id:  # not there: name the ones that are
        names = [p.parent.name for p in reversed(trained)]
        close = difflib.get_close_matches(model_id, names, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise WorkspaceError(f"{root}: no model {model_id}; {hint}trained here, newest first: {', '.join(names)}")
    return trained[-1].parent


def evaluate(config: Config, workspace: Workspace, model_id: str | None = None, progress: bool = True) -> dict:
    """Score a saved model on its own test split again; rewrite its metrics.json."""
    from discover.classify import end_to_end

    directory = model_dir(workspace, model_id)
    if end_to_end.is_end_to_end(directory):
        metrics = end_to_end.evaluate(config, workspace, directory)
    else:
        model, meta = load_classifier(directory)
        catalog = workspace.load_catalog()
        test = catalog[catalog["product_id"].isin(meta["test_ids"])].reset_index(drop=True)
        labelled = labelled_inputs(config, workspace, test, progress, tree=model.tree)
        _same_embedders(meta, labelled.fingerprints)
        labelled.inputs.ngrams = saved_ngrams(directory, model, labelled.catalog)
        predicted = predict(model, labelled.inputs)
        scores = score_predictions(model.tree, labelled.inputs.codes, predicted)
        titles = catalog_titles(labelled.catalog)
        two_stage = two_stage_metrics(config, load_text_stage(directory), labelled.inputs, titles, predicted)
        metrics = {**scores, **two_stage, "model_id": meta["model_id"]}
    write_json(workspace.root / "classify" / metrics["model_id"] / "metrics.json", metrics)
    return metrics


def predict_catalog(
    config: Config, workspace: Workspace, catalog: pd.DataFrame, out: Path, model_id: str | None = None
) -> pd.DataFrame:
    """Predictions for every product of a validated catalog: its predicted path and that path's
    probability; where the catalog registers a category, that category checked against them
    (discover.classify.mislabels.check_registered). Written to `out` and returned."""
    from discover.classify import end_to_end

    directory = model_dir(workspace, model_id)
    if end_to_end.is_end_to_end(directory):  # it reads the photos and titles itself
        catalog, tree, predicted, sent = end_to_end.predict(config, workspace, catalog, directory)
    else:
        tree, predicted, sent = _predict_frozen(config, workspace, catalog, directory)
    frame = prediction_frame(catalog, tree, predicted)
    if sent is not None:  # two stages: which one decided
        frame["stage"] = np.where(sent, "multimodal", "text")
    frame = _with_registered(frame, catalog, config, tree, predicted)
    write_csv(out, frame)
    return frame


def _predict_frozen(
    config: Config, workspace: Workspace, catalog: pd.DataFrame, directory: Path
) -> tuple[LabelTree, Predictions, np.ndarray | None]:
    """A frozen model's label tree, its predictions for `catalog` from the cached embeddings,
    and which products went to the multimodal model (None: all, in one stage)."""
    model, meta = load_classifier(directory)
    threshold = config.classify.two_stage_threshold
    text_stage = None if threshold is None else load_text_stage(directory)
    if text_stage is not None:
        return model.tree, *_predict_in_two_stages(
            config, workspace, catalog, directory, model, meta, text_stage, threshold
        )
    inputs, fingerprints = _modalities(config, workspace, catalog, progress=True)
    _same_embedders(meta, fingerprints)
    inputs.ngrams = saved_ngrams(directory, model, catalog)
    return model.tree, predict(model, inputs), None


def _with_registered(
    frame: pd.DataFrame, catalog: pd.DataFrame, config: Config, tree: LabelTree, predicted: Predictions
) -> pd.DataFrame:
    """`frame` with the registered categories checked, where any product registers one."""
    registered = registered_paths(catalog, config)
    if not any(registered):
        log.info("classify predict: no product registers a category; nothing to check")
        return frame
    checked = check_registered(registered, tree, predicted).set_axis(frame.index)  # rows in the frame's order
    log.info("classify predict: %s", check_summary(checked))
    return pd.concat([frame, checked], axis=1)


def registered_paths(catalog: pd.DataFrame, config: Config) -> list[tuple[str, ...] | None]:
    """Each product's registered path down to its last given level (the truth column below
    the levels where `classify.include_truth` says so); None without one, or with a hole."""
    paths, _ = label_paths(catalog, config)
    registered = []
    for path in paths:
        given = list(path)
        while given and given[-1] == "":
            given.pop()
        registered.append(tuple(given) if given and MISSING_LEVEL not in given and "" not in given else None)
    return registered


def _predict_in_two_stages(
    config: Config,
    workspace: Workspace,
    catalog: pd.DataFrame,
    directory: Path,
    model: Classifier,
    meta: dict,
    text_stage: MultimodalClassifier,
    threshold: float,
) -> tuple[Predictions, np.ndarray]:
    """The text stage on every title; photos embedded, and the multimodal model run, only for
    the products it is unsure of. Returns the predictions and which products went on."""
    embedders = {modality: _embedder(config, modality) for modality in ("image", "text")}
    _same_embedders(meta, {m: e.fingerprint for m, e in embedders.items()})
    text, ngrams, first = text_stage_predictions(config, workspace, catalog, directory, text_stage, embedders["text"])
    sent = sent_on(first, catalog_titles(catalog), threshold)
    rows = np.flatnonzero(sent)
    log_sent_on(sent, threshold)
    if not len(rows):
        return first, sent
    image = _vectors(config, workspace, catalog.iloc[rows], embedders["image"], progress=True)
    second = Inputs(image, text[rows], ngrams=None if ngrams is None else ngrams[rows])
    return combine(first, predict(model, second), sent), sent


def log_sent_on(sent: np.ndarray, threshold: float) -> None:
    """How many products the text stage sends on, in predict's log."""
    log.info(
        "classify predict: %d of %d products (%.1f %%) go to the multimodal model (under the text stage's %.2f, "
        "or without a title); only their photos are read",
        sent.sum(),
        len(sent),
        100 * sent.mean(),
        threshold,
    )


def text_stage_predictions(
    config: Config,
    workspace: Workspace,
    catalog: pd.DataFrame,
    directory: Path,
    text_stage: MultimodalClassifier,
    embedder: Embedder,
) -> tuple[np.ndarray, sp.csr_matrix | None, Predictions]:
    """The catalog's title vectors, its n-grams in the saved vocabulary, and the text stage's predictions."""
    text = _vectors(config, workspace, catalog, embedder, progress=True)
    ngrams = saved_ngrams(directory, text_stage, catalog)
    return text, ngrams, predict(text_stage, titles_only(text, ngrams, text_stage))


def fine_tuned_text_stage(config: Config, directory: Path) -> tuple[MultimodalClassifier, Embedder] | None:
    """The text stage a fine-tuned model saved beside it and the embedder it reads titles with
    (the config's, checked against the one it was trained on); None where the config turns
    two-stage inference off or the model was trained without one."""
    text_stage = None if config.classify.two_stage_threshold is None else load_text_stage(directory)
    if text_stage is None:
        return None
    embedder = _embedder(config, "text")
    _same_embedders(json.loads((directory / TEXT_STAGE / "model.json").read_text()), {"text": embedder.fingerprint})
    return text_stage, embedder


def fit_fine_tuned_text_stage(
    config: Config,
    workspace: Workspace,
    catalog: pd.DataFrame,
    tree: LabelTree,
    codes: np.ndarray,
    splits: Splits,
    directory: Path,
    progress: bool = True,
) -> tuple[MultimodalClassifier, Inputs]:
    """A text stage for a model that reads photos and titles itself (fine-tuned), saved in
    `directory`: the config's text embedder's vectors and the titles' n-grams, learning the
    training rows and stopping on the validation rows. Returns it and every row's inputs."""
    embedder = _embedder(config, "text")
    text = _vectors(config, workspace, catalog, embedder, progress)
    inputs = Inputs(np.zeros((len(text), 1), dtype=np.float32), text, codes)  # text-only: no photo vector
    if config.classify.title_ngrams:
        inputs, grams = inputs.with_title_ngrams(catalog_titles(catalog), splits.train)
        grams.save(directory / NGRAMS_FILE)
    text_stage = fit_text_stage(inputs, tree, train_settings(config), splits.train, splits.validation, progress)
    save_text_stage(text_stage, directory, embedder.fingerprint)
    return text_stage, inputs


def two_stage_metrics(
    config: Config,
    text_stage: MultimodalClassifier | None,
    scored: Inputs,
    titles: list[str],
    multimodal: Predictions,
) -> dict[str, Any]:
    """``{"two_stage": ...}`` for metrics.json (scored products with codes), or {} without a text stage."""
    threshold = config.classify.two_stage_threshold
    if text_stage is None or threshold is None:
        return {}
    text = predict(text_stage, scored)  # text-only fusion: the photo vectors are never read
    return {"two_stage": two_stage_scores(text_stage.tree, scored.codes, titles, text, multimodal, threshold)}


def prediction_frame(catalog: pd.DataFrame, tree: LabelTree, predicted: Predictions) -> pd.DataFrame:
    """What `predict` writes: each product and its title (to judge the prediction by), its
    predicted path and that path's probability."""
    names = tree.decode(predicted.paths)
    frame = pd.DataFrame({"product_id": catalog["product_id"], "title": catalog["title"].fillna("")})
    frame["predicted_path"] = [" > ".join(p) for p in names]
    frame["probability"] = predicted.probability
    return frame


def find_mislabels(config: Config, workspace: Workspace, out: Path, progress: bool = True) -> pd.DataFrame:
    """Out-of-fold ranking of every product by how unlikely its registered category is."""
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress)
    catalog, inputs, tree = labelled.catalog, labelled.inputs, labelled.tree
    groups = group_column(catalog, each_row_alone=True)
    titles = catalog_titles(catalog) if config.classify.title_ngrams else None
    probabilities = out_of_fold_probabilities(
        inputs,
        tree,
        train_settings(config),
        groups,
        config.classify.folds,
        progress,
        titles,
        config.classify.validation_size,
    )
    ranked = rank_mislabels(probabilities, inputs.codes[:, -1], tree)
    ranked.insert(0, "product_id", catalog["product_id"].to_numpy()[ranked["row"]])
    ranked.insert(1, "title", catalog["title"].to_numpy()[ranked["row"]])
    write_csv(out, ranked.drop(columns=["row"]))
    return ranked


def place_run_proposals(config: Config, workspace: Workspace, run_id: str, progress: bool = True) -> dict[str, dict]:
    """New subtype or mislabelled? for every proposal of a run, written into its tree.json
    (``placement`` on each proposal), the out-of-fold probabilities beside it; returns that tree.

    The classifier learns the existing categories down to `discovery.level` (where the
    proposals sit; the truth column is never read) and scores every product out of fold.
    """
    from discover.outputs.run_data import RunData

    run = RunData(workspace, run_id)
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress, levels=config.discovery.level)
    catalog, inputs, tree = labelled.catalog, labelled.inputs, labelled.tree
    groups = group_column(catalog, each_row_alone=True)
    settings = config.classify
    titles = catalog_titles(catalog) if settings.title_ngrams else None
    probabilities = out_of_fold_probabilities(
        inputs, tree, train_settings(config), groups, settings.folds, progress, titles, settings.validation_size
    )
    # as kept (float32): a curated copy placed from the file gives an unchanged proposal the same verdict
    frame = pd.DataFrame(
        probabilities.astype(np.float32), index=catalog["product_id"].astype(str), columns=tree.classes[-1]
    )
    proposals = run.tree
    place_proposals(proposals, run.assignments, frame, settings.placement_confidence, settings.placement_majority)
    proposals.meta["placement"] = {
        "levels": tree.depth,
        "folds": settings.folds,
        "fusion": settings.fusion,
        "confidence": settings.placement_confidence,
        "majority": settings.placement_majority,
    }
    # kept, so that a curated proposal is placed by the products it holds after merges, splits and moves
    write_parquet(run.run_dir / PROBABILITIES_FILE, frame.rename_axis("product_id").reset_index())
    write_text(run.run_dir / "tree.json", proposals.to_json())  # last: the explorer reloads on its change
    return proposals


def domains_of(catalog: pd.DataFrame, column: str, bands: int = 4) -> np.ndarray:
    """Each product's domain: the column's value, or its quantile band for a numeric column."""
    if column not in catalog.columns:
        usable = sorted(c for c in catalog.columns if c not in ("product_id", "title", "image", "image_path"))
        raise ConfigError(f"classify evaluate --by {column}: the catalog has no such column; it has {usable}")
    values = catalog[column]
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > bands:
        edges = pd.qcut(values, bands, duplicates="drop")
        return np.array([f"{band.left:g}–{band.right:g}" if pd.notna(band) else "(missing)" for band in edges])
    return values.fillna("(missing)").astype(str).to_numpy()


def cross_evaluate(config: Config, workspace: Workspace, column: str, progress: bool = True) -> pd.DataFrame:
    """Leave-one-group-out over `column`; the table is also written to classify/by-<column>/metrics.json."""
    from discover.classify.crossgroup import leave_one_group_out

    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress)
    catalog = labelled.catalog
    domains = domains_of(catalog, column)
    groups = group_column(catalog)
    titles = catalog_titles(catalog) if config.classify.title_ngrams else None
    table = leave_one_group_out(
        labelled.inputs, labelled.tree, train_settings(config), domains, groups, progress=progress, titles=titles
    )
    write_json(
        workspace.root / "classify" / f"by-{column}" / "metrics.json",
        {"domain": column, "rows": table.to_dict("records")},
    )
    return table


def format_classify_metrics(metrics: dict) -> str:
    """The test-split table for the terminal."""
    lines = [f"{'level':10s} {'accuracy':>9s} {'macro-F1':>9s}"]
    lines += [f"{name:10s} {s['accuracy']:9.4f} {s['macro_f1']:9.4f}" for name, s in metrics["per_level"].items()]
    lines += [
        f"hierarchical P/R/F1  {metrics['hierarchical_precision']:.4f} / {metrics['hierarchical_recall']:.4f} / "
        f"{metrics['hierarchical_f1']:.4f}",
        f"leaf macro-F1 {metrics['leaf_macro_f1']:.4f}   ECE {metrics['ece']:.4f}   test products {metrics['n']:,}",
    ]
    if "two_stage" in metrics:
        two = metrics["two_stage"]
        lines.append(
            f"two-stage (text stage, then the multimodal model under {two['threshold']:.2f}): "
            f"{two['multimodal_share']:.1%} of products sent on, hF1 {two['hierarchical_f1']:.4f}, "
            f"leaf macro-F1 {two['leaf_macro_f1']:.4f} (text stage alone hF1 {two['text_only_hierarchical_f1']:.4f})"
        )
    lines.append("leaf macro-F1 by test products per class (cost: its share of 1 − macro-F1):")
    lines += [
        f"  {b['band']:>5s} {b['classes']:4d} classes  macro-F1 {b['macro_f1']:.4f}  cost {b['cost']:.4f}"
        for b in metrics["leaf_macro_f1_by_support"]
    ]
    if metrics.get("largest_confusions"):
        confusions = metrics["largest_confusions"]
        mixed = top_confusions(confusions)
        lines.append(
            f"most frequent mix-ups among the {len(confusions['classes'])} largest leaf classes "
            "(largest_confusions in metrics.json has them all):" + ("" if mixed else " none")
        )
        lines += [f"  {n:5d}  {true}  →  {guess}" for true, guess, n in mixed]
    return "\n".join(lines)


def tune_image(
    config: Config,
    workspace: Workspace,
    tuning: ImageTuning,
    device: str,
    pack: Path | None = None,
    progress: bool = True,
    folds: int = 1,
) -> list[Path]:
    """Tune the image encoder on the training split's photos (early stop on validation) and
    save it under ``models/``; with `pack`, only write the folder another machine tunes from.

    The split is `classify train`'s (same seed and sizes), so a classifier trained on vectors
    of the tuned encoder is still scored on photos the encoder never learnt from. With
    `folds` > 1, one cross-fitted encoder per fold (see ``tune_on_photos``), for the
    ``checkpoints`` of ``embed.image``.
    """
    from discover.classify.image_tuning import fold_file, save_encoder, tune_on_photos, write_pack

    catalog = workspace.load_catalog()
    paths, complete = label_paths(catalog, config)
    catalog = catalog[complete].reset_index(drop=True)
    kept = [p for p, ok in zip(paths, complete, strict=True) if ok]
    tree = LabelTree.from_paths(kept)
    codes = tree.encode(kept)
    settings = config.classify
    groups = group_column(catalog)
    splits = grouped_splits(codes[:, -1], groups, settings.test_size, settings.validation_size, config.seed)
    photos, leaves, classes = catalog["image_path"].astype(str).to_numpy(), codes[:, -1], tree.sizes()[-1]
    if pack is not None:
        rows = np.r_[splits.train, splits.validation]
        names = ["train"] * len(splits.train) + ["validation"] * len(splits.validation)
        ids = catalog["product_id"].astype(str).to_numpy()[rows].tolist()
        return [write_pack(pack, ids, photos[rows].tolist(), leaves[rows], names, classes)]
    payload = json.dumps([asdict(tuning), tree.classes[-1], len(catalog), config.seed], sort_keys=True)
    out = workspace.models_dir / f"image-encoder-{hashlib.sha1(payload.encode()).hexdigest()[:8]}.safetensors"
    files = [fold_file(out, fold, folds) for fold in range(max(1, folds))]
    if all(f.exists() for f in files):  # written atomically, so whole: the same settings on the same rows made them
        log.info("tune image: %s already tuned with these settings; delete to tune again", ", ".join(map(str, files)))
        return files

    def save(fold: int, tuned) -> None:
        save_encoder(tuned, files[fold], tuning, {"device": device, "fold": fold, "folds": folds})

    tune_on_photos(
        (photos[splits.train].tolist(), leaves[splits.train]),
        (photos[splits.validation].tolist(), leaves[splits.validation]),
        classes,
        tuning,
        device,
        progress=progress,
        folds=folds,
        done=save,
    )
    return files
