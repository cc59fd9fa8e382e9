"""The supervised classifier on fashion-small: every fusion on one split, in one run.

Labels are the three-level paths masterCategory > subCategory > articleType; inputs are the
cached EfficientNet-Lite0 photo and MiniLM title vectors (the frozen transfer strategy).
One grouped split (by `image_md5`, 70 / 10 / 20), every model trained on the same rows:

- each fusion module with hierarchical heads and dynamic masking and the titles' n-grams
  (the default model), the default without the n-grams, the single-modality models and the
  flat leaf classifier as baselines, and logistic regression on the
  concatenated vectors (the figure measured before the classifier existed), and a linear
  SVM on title word and character n-grams beside those vectors (a sparse-text baseline);
- two-stage inference: the text-only model (MiniLM + n-grams) first, products under a confidence threshold
  go to the best multimodal model; accuracy against the share sent to it;
- the mislabel finder: 5 % of the leaves flipped to a sibling of the same subCategory,
  out-of-fold probabilities (5 grouped folds, gated fusion), precision and recall at k =
  the number flipped;
- the check of new products' registered categories (`classify predict`): 5 % of the test
  products' registered leaves flipped to a sibling, the saved model's predictions (which never
  saw those products) ranking them and flagging where they prefer another leaf.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from benchmarks.common import REPO, WORKSPACE, markdown_table, write_section
from discover.classify.data import Splits, grouped_splits
from discover.classify.ensemble import fit_members, learnt_rows, member_settings
from discover.classify.labels import LabelTree
from discover.classify.mislabels import (
    check_registered,
    out_of_fold_probabilities,
    precision_recall_at_k,
    rank_mislabels,
)
from discover.classify.stage import Labelled, catalog_titles, labelled_inputs, train_settings
from discover.classify.training import Inputs, Predictions, TrainSettings, fit_classifier, predict, score_predictions
from discover.classify.two_stage import fit_text_stage, two_stage_predictions, two_stage_scores
from discover.config import Config, load_config
from discover.data.ingest import ingest
from discover.workspace import Workspace

# (fusion, head, title n-grams): every fusion with the n-grams (the default), and the
# single modalities and the default model without them, to show what each part adds
MODELS = [
    ("image-only", "hierarchical", False),
    ("text-only", "hierarchical", False),
    ("text-only", "hierarchical", True),
    ("gated", "hierarchical", False),
    ("concat", "hierarchical", True),
    ("sum", "hierarchical", True),
    ("product", "hierarchical", True),
    ("gated", "hierarchical", True),
    ("attention", "hierarchical", True),
    ("late", "hierarchical", True),
    ("gated", "flat", True),
]


DEFAULT = ("gated", "hierarchical", True)


ENSEMBLE = "ensemble"  # predictions' key of the default model trained as `classify train` does: members averaged
TEXT_STAGE = "text stage"  # and of the text-only model it trains beside it for two-stage inference


def ensemble_name(settings: TrainSettings) -> str:
    """The saved model's row: its members' designs, averaged."""
    members = member_settings(settings)
    designs = ", ".join(model_name(s.fusion, s.head, False) for s in members)
    return f"{len(members)} members averaged: {designs}; + title n-grams (what `classify train` saves)"


def model_name(fusion: str, head: str, ngrams: bool) -> str:
    return f"{fusion} ({head}){' + title n-grams' if ngrams else ''}"


def logistic_baseline(inputs: Inputs, tree: LabelTree, train: np.ndarray, test: np.ndarray) -> Predictions:
    features = np.hstack([inputs.image, inputs.text])
    model = LogisticRegression(max_iter=300, C=10.0).fit(features[train], inputs.codes[train, -1])
    leaf = np.zeros((len(test), tree.sizes()[-1]), dtype=np.float32)
    leaf[:, model.classes_] = model.predict_proba(features[test])
    paths = tree.ancestors(leaf.argmax(axis=1))
    return Predictions(paths, leaf.max(axis=1), leaf)


def title_ngram_baseline(
    titles: list[str], inputs: Inputs, tree: LabelTree, train: np.ndarray, test: np.ndarray
) -> Predictions:
    """A linear SVM on the titles' word (1-2) and character (2-5) n-grams beside the frozen
    photo and MiniLM vectors, flat: what sparse title features add over the dense encoders."""
    fitted = [titles[i] for i in train]
    word = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit(fitted)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=3, sublinear_tf=True).fit(fitted)
    features = sp.hstack([word.transform(titles), char.transform(titles), 0.5 * inputs.image, inputs.text]).tocsr()
    model = LinearSVC(C=0.5, class_weight="balanced").fit(features[train], inputs.codes[train, -1])
    chosen = model.predict(features[test])
    leaf = np.zeros((len(test), tree.sizes()[-1]), dtype=np.float32)
    leaf[np.arange(len(test)), chosen] = 1.0  # a margin classifier: no probabilities, so no ECE worth reading
    return Predictions(tree.ancestors(chosen), np.ones(len(test), dtype=np.float32), leaf)


def two_stage(
    text: Predictions, multimodal: Predictions, truth: np.ndarray, titles: list[str], tree: LabelTree
) -> pd.DataFrame:
    """hF1 and multimodal share for each confidence threshold of the text model, combined as
    `classify predict` combines them."""
    rows = []
    for threshold in (0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.01):
        scores = two_stage_scores(tree, truth, titles, text, multimodal, threshold)
        rows.append({"threshold": threshold, "multimodal share": scores["multimodal_share"], **_headline(scores)})
    return pd.DataFrame(rows)


def _headline(scores: dict) -> dict:
    return {
        "hF1": scores["hierarchical_f1"],
        "leaf acc": scores["leaf_accuracy"],
        "leaf macro-F1": scores["leaf_macro_f1"],
        "ECE": scores["ece"],
    }


def flip_siblings(
    codes: np.ndarray, tree: LabelTree, share: float, seed: int, level: int = -1
) -> tuple[np.ndarray, np.ndarray]:
    """Codes of `level` (default: the leaves) with `share` of the products moved to another
    category of the same parent."""
    rng = np.random.default_rng(seed)
    parents = tree.parents[level]
    candidates = [i for i in range(len(codes)) if (parents == parents[codes[i]]).sum() > 1]
    flipped = np.sort(rng.choice(candidates, int(share * len(codes)), replace=False))
    noisy = codes.copy()
    for row in flipped:
        siblings = np.flatnonzero((parents == parents[codes[row]]) & (np.arange(len(parents)) != codes[row]))
        noisy[row] = rng.choice(siblings)
    return noisy, flipped


def registered_check(predicted: Predictions, truth: np.ndarray, tree: LabelTree, seeds: range, level: int) -> dict:
    """What `classify predict` makes of new products filed under a sibling of their category:
    the products registered down to `level` only, 5 % of them flipped there (for each seed),
    ranked by the probability of the registered category and flagged where the model prefers
    another one; the means over the seeds."""
    found = []
    for seed in seeds:
        noisy, flipped = flip_siblings(truth[:, level], tree, 0.05, seed, level)
        registered = [tuple(tree.classes[level][code].split(" > ")) for code in noisy]
        checked = check_registered(registered, tree, predicted)
        order = np.argsort(checked["p_registered"].to_numpy(), kind="stable")
        at_k = precision_recall_at_k(order, flipped, len(flipped))
        flagged = np.flatnonzero(checked["flagged"].to_numpy())
        found.append([len(flipped), *at_k, len(flagged), *precision_recall_at_k(flagged, flipped, len(flagged))])
    names = ["flipped", "precision@k", "recall@k", "flagged", "flagged precision", "flagged recall"]
    means = dict(zip(names, np.mean(found, axis=0).tolist(), strict=True))
    return {**means, "flipped": round(means["flipped"]), "flagged": round(means["flagged"])}


def benchmark_split() -> tuple[Config, Labelled, Splits]:
    """The default config, fashion-small's labelled inputs and the one grouped split every
    classifier benchmark scores on."""
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    workspace = Workspace(WORKSPACE)
    ingest(config, workspace, show_progress=False)
    labelled = labelled_inputs(config, workspace, workspace.load_catalog(), progress=True)
    splits = grouped_splits(labelled.inputs.codes[:, -1], labelled.catalog["group"].to_numpy(), seed=config.seed)
    return config, labelled, splits


def main() -> None:
    config, labelled, splits = benchmark_split()
    catalog, inputs, tree = labelled.catalog, labelled.inputs, labelled.tree
    groups = catalog["group"].to_numpy()
    truth = inputs.codes[splits.test]
    titles = catalog_titles(catalog)
    dense, (with_ngrams, _) = inputs, inputs.with_title_ngrams(titles, splits.train)
    rows, predictions = [], {}
    for fusion, head, ngrams in MODELS:
        started = time.perf_counter()
        settings = train_settings(config)
        settings.fusion, settings.head = fusion, head
        used = with_ngrams if ngrams else dense
        model = fit_classifier(used.take(splits.train), tree, settings, used.take(splits.validation))
        predictions[(fusion, head, ngrams)] = predict(model, used.take(splits.test))
        scores = score_predictions(tree, truth, predictions[(fusion, head, ngrams)])
        rows.append(
            {"model": model_name(fusion, head, ngrams), **_headline(scores), "seconds": time.perf_counter() - started}
        )
        print(rows[-1])
        if (fusion, head, ngrams) == DEFAULT:  # the same trained model, its leaves not adjusted
            model.settings["logit_adjustment"] = 0.0
            plain = score_predictions(tree, truth, predict(model, used.take(splits.test)))
            rows.append({"model": f"{model_name(*DEFAULT)}, no logit adjustment (τ = 0)", **_headline(plain)})
    started = time.perf_counter()
    settings = train_settings(config)  # the model `classify train` saves: several members averaged
    saved, _ = inputs.with_title_ngrams(titles, learnt_rows(settings, splits.train, splits.validation, groups))
    ensemble = fit_members(saved, tree, settings, splits.train, splits.validation, groups)
    predictions[ENSEMBLE] = predict(ensemble, saved.take(splits.test))
    text_stage = fit_text_stage(saved, tree, settings, splits.train, splits.validation)  # as `classify train` does
    predictions[TEXT_STAGE] = predict(text_stage, saved.take(splits.test))
    rows.append(
        {
            "model": ensemble_name(settings),
            **_headline(score_predictions(tree, truth, predictions[ENSEMBLE])),
            "seconds": time.perf_counter() - started,
        }
    )
    print(rows[-1])
    started = time.perf_counter()
    logistic = logistic_baseline(inputs, tree, splits.train, splits.test)
    rows.append(
        {
            "model": "logistic regression, concat (flat)",
            **_headline(score_predictions(tree, truth, logistic)),
            "seconds": time.perf_counter() - started,
        }
    )
    started = time.perf_counter()
    ngrams = title_ngram_baseline(titles, inputs, tree, splits.train, splits.test)
    rows.append(
        {
            "model": "linear SVM, title word + char n-grams + photo + MiniLM (flat)",
            **_headline(score_predictions(tree, truth, ngrams)),
            "seconds": time.perf_counter() - started,
        }
    )
    table = pd.DataFrame(rows)
    test_titles = [titles[i] for i in splits.test]
    stages = two_stage(predictions[TEXT_STAGE], predictions[ENSEMBLE], truth, test_titles, tree)
    keeps = stages[stages["hF1"] >= 0.99 * stages["hF1"].iloc[-1]].sort_values("multimodal share").iloc[0]
    whole = stages[stages["hF1"] >= stages["hF1"].iloc[-1] - 0.0005].sort_values("multimodal share").iloc[0]
    threshold = config.classify.two_stage_threshold
    as_predict, _ = two_stage_predictions(predictions[TEXT_STAGE], predictions[ENSEMBLE], test_titles, threshold)
    flips = range(config.seed, config.seed + 3)
    checks = pd.DataFrame(
        [
            {"registered down to": name, "model": model, **registered_check(predicted, truth, tree, flips, level)}
            for level, name in ((tree.depth - 1, "leaf"), (tree.depth - 2, "level above"))
            for model, predicted in (
                ("the saved model on every product", predictions[ENSEMBLE]),
                (f"two-stage at {threshold} (as predict runs)", as_predict),
            )
        ]
    )
    noisy, flipped = flip_siblings(inputs.codes[:, -1], tree, 0.05, config.seed)
    noisy_inputs = Inputs(inputs.image, inputs.text, tree.ancestors(noisy))
    started = time.perf_counter()
    probabilities = out_of_fold_probabilities(
        noisy_inputs, tree, train_settings(config), groups, 5, titles=titles, stop_share=config.classify.validation_size
    )
    finder_seconds = time.perf_counter() - started
    ranked = rank_mislabels(probabilities, noisy, tree)
    precision, recall = precision_recall_at_k(ranked["row"].to_numpy(), flipped, len(flipped))
    body = (
        f"{len(catalog):,} products, {tree.sizes()} classes per level; train {len(splits.train):,}, "
        f"validation {len(splits.validation):,}, test {len(splits.test):,} (grouped by image_md5). "
        "Every class is in training before it is tested (a class of one photo is trained on, not scored). "
        "Frozen encoders (cached EfficientNet-Lite0 128 px + MiniLM), 40 epochs max, early stop on "
        f"validation hF1, class weights off; each model from one seed, except the saved model's "
        f"{config.classify.members} members averaged (seeds seed + i), member i learning the training split and "
        "every fold of the validation split but its own i (5 grouped folds), and stopping on fold i; "
        f"logit adjustment τ = {config.classify.logit_adjustment} at the leaves "
        "(predictions subtract τ·log of each leaf's share of the training rows); "
        "title n-grams: TF-IDF of the titles' word (1-2) and character "
        "(2-5) n-grams, fitted on the training titles (the saved model's on the titles its members learn), "
        "a linear vote added to every level's logits.\n\n"
        + markdown_table(table, "{:.4f}")
        + "\n\nTwo-stage inference as `classify predict` runs it: the text stage `classify train` saves beside "
        "the model (text-only (hierarchical) + title n-grams, one model, learning the training split) reads every "
        "title, and the products whose path probability is under the threshold go to the saved model "
        f"(the {config.classify.members} members above), whose photos alone are embedded; the default threshold "
        f"(`classify.two_stage_threshold`) is {threshold}:\n\n"
        + markdown_table(stages, "{:.4f}")
        + f"\n\nThe smallest multimodal share that keeps ≥ 99 % of the multimodal hF1: threshold "
        f"{keeps['threshold']:.2f}, {keeps['multimodal share']:.1%} of products sent on, hF1 {keeps['hF1']:.4f}. "
        f"Within 0.0005 of it: threshold {whole['threshold']:.2f}, {whole['multimodal share']:.1%} sent on, "
        f"hF1 {whole['hF1']:.4f}."
        + f"\n\nMislabel finder: {len(flipped):,} leaves (5 %) flipped to a sibling; out-of-fold gated model "
        "with title n-grams (each fold's vocabulary from its own training titles), 5 grouped folds, each fold's model "
        f"stopping early on {config.classify.validation_size:.0%} of its training products (as `find-mislabels` "
        f"runs): precision@{len(flipped)} {precision:.3f}, recall@{len(flipped)} {recall:.3f}, "
        f"{finder_seconds:.0f} s."
        + "\n\nNew products' registered categories (`classify predict` on a catalog that carries them): the test "
        "split as new products, registered down to the leaf, or to the level above only (a catalog without its "
        "finest level: checked there), 5 % of them flipped to a sibling category at that depth (3 draws, means), "
        "ranked by the probability the saved model gives the registered category (precision and recall at k = the "
        "number flipped); flagged: the model prefers another category there. Nothing is fitted on the flips; the "
        "model never saw these products. Flagged products that were not flipped are the model's own errors and "
        "the catalog's noise.\n\n" + markdown_table(checks, "{:.3f}")
    )
    write_section("classify", "Classifier: fusion strategies, two-stage inference, mislabels", body)
    from benchmarks.classify_support import write_support_section  # it imports this module

    write_support_section(tree, inputs.codes, titles, splits, predictions[DEFAULT], predictions[ENSEMBLE], ngrams)


if __name__ == "__main__":
    main()
