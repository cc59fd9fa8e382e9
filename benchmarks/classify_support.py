"""Where the classifier's leaf macro-F1 is lost: by test products per class, and to labels
the catalog itself gives inconsistently.

Written by `benchmarks.classify` from its own default model (gated fusion, hierarchical
heads, title n-grams; one seed, and the members averaged as `classify train` saves it) and
linear-SVM baseline, so `make bench` trains them once; `main` trains them alone to write
only this section. For each,
macro-F1 and its cost per band of test products per class (``macro_f1_by_support``). Then
the classes of one test product that the default misses are listed with the registered and
the predicted path and the title, and the test products whose identical title is in the
training split only under other leaves are counted: no classifier that reads the title can
get both those copies right, a floor under the error that is the catalog's, not the model's.
Last, the saved model's most frequent confusions, with how the whole catalog files the
titles that name either leaf of each pair.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pandas as pd

from benchmarks.classify import DEFAULT, benchmark_split, ensemble_name, model_name, title_ngram_baseline
from benchmarks.common import REPO, markdown_table, write_section
from discover.classify.data import Splits
from discover.classify.ensemble import fit_members, learnt_rows
from discover.classify.labels import LabelTree
from discover.classify.stage import catalog_titles, train_settings
from discover.classify.training import Predictions, fit_classifier, predict, score_predictions
from discover.config import load_config


def band_rows(label: str, scores: dict) -> list[dict]:
    rows = [
        {
            "model": label,
            "test products per class": b["band"],
            "classes": b["classes"],
            "products": b["products"],
            "macro-F1": b["macro_f1"],
            "cost": b["cost"],
        }
        for b in scores["leaf_macro_f1_by_support"]
    ]
    rows.append(
        {
            "model": label,
            "test products per class": "all",
            "classes": sum(r["classes"] for r in rows),
            "products": sum(r["products"] for r in rows),
            "macro-F1": scores["leaf_macro_f1"],
            "cost": 1 - scores["leaf_macro_f1"],
        }
    )
    return rows


def conflicting_titles(titles: list[str], leaves: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Test positions whose title, as written (case aside), is in training only under other leaves."""
    seen: dict[str, set[int]] = defaultdict(set)
    for row in train:
        seen[titles[row].strip().lower()].add(int(leaves[row]))
    return np.array(
        [
            i
            for i, row in enumerate(test)
            if (known := seen.get(titles[row].strip().lower())) and leaves[row] not in known
        ],
        dtype=np.int64,
    )


def missed_singles(
    tree: LabelTree, truth: np.ndarray, predicted: Predictions, titles: list[str], test: np.ndarray
) -> list[str]:
    """One plain-text line per class of one test product that `predicted` gets wrong."""
    leaves, counts = np.unique(truth[:, -1], return_counts=True)
    lines = []
    for leaf in leaves[counts == 1]:
        (i,) = np.flatnonzero(truth[:, -1] == leaf)
        guess = predicted.paths[i, -1]
        if guess != leaf:
            title = titles[test[i]].replace("`", "'")
            lines.append(f"{tree.classes[-1][leaf]}  →  {tree.classes[-1][guess]}   «{title}»")
    return lines


def confused_pairs(
    tree: LabelTree, truth: np.ndarray, predicted: Predictions, titles: list[str], leaves: np.ndarray, top: int
) -> pd.DataFrame:
    """The `top` most frequent (registered → predicted) leaf errors, and how the whole catalog
    files the products whose title names either leaf (its last name, as a whole phrase): where
    the catalog itself files a title's own type word under the other leaf, the pair's errors
    are the catalog's as much as the model's."""
    wrong = truth[:, -1] != predicted.paths[:, -1]
    pairs, counts = np.unique(np.c_[truth[wrong, -1], predicted.paths[wrong, -1]], axis=0, return_counts=True)
    lowered = pd.Series(titles).str.lower()
    rows = []
    for (registered, guessed), count in sorted(zip(map(tuple, pairs), counts, strict=True), key=lambda x: -x[1])[:top]:
        row = {"registered": tree.classes[-1][registered], "predicted": tree.classes[-1][guessed], "errors": count}
        for side, leaf, other in (("registered", registered, guessed), ("predicted", guessed, registered)):
            word = tree.classes[-1][leaf].split(" > ")[-1].lower()
            filed = leaves[lowered.str.contains(rf"\b{re.escape(word)}\b", regex=True).to_numpy()]
            row[f"titles naming the {side} leaf: filed there / under the other"] = (
                f"{int((filed == leaf).sum())} / {int((filed == other).sum())}"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def write_support_section(
    tree: LabelTree,
    codes: np.ndarray,
    titles: list[str],
    splits: Splits,
    single: Predictions,
    saved: Predictions,
    svm: Predictions,
) -> None:
    """The section, from the default model's (one seed, and the saved ensemble) and the SVM's
    predictions on the test split (`benchmarks.classify` hands over the ones it made; `main`
    makes them on its own)."""
    truth = codes[splits.test]
    settings = train_settings(load_config(REPO / "configs" / "fashion-small.yaml"))
    members, saved_name = settings.members, ensemble_name(settings)
    scores = {
        model_name(*DEFAULT): score_predictions(tree, truth, single),
        saved_name: score_predictions(tree, truth, saved),
        "linear SVM, title n-grams + photo + MiniLM (flat)": score_predictions(tree, truth, svm),
    }
    table = pd.DataFrame([row for label, s in scores.items() for row in band_rows(label, s)])
    conflicts = conflicting_titles(titles, codes[:, -1], splits.train, splits.test)
    wrong = saved.paths[:, -1] != truth[:, -1]
    missed = missed_singles(tree, truth, saved, titles, splits.test)
    one = next(b for b in scores[saved_name]["leaf_macro_f1_by_support"] if b["band"] == "1")
    pairs = confused_pairs(tree, truth, saved, titles, codes[:, -1], top=6)
    body = (
        f"Test split of `benchmarks.classify` ({len(splits.test):,} products, {len(np.unique(truth[:, -1]))} leaf "
        "classes in it), same models. Cost: the band's share of 1 − macro-F1 (the costs add up to it); "
        "macro-F1 weighs a class of one test product, scored 0 or 1, as much as one of hundreds.\n\n"
        + markdown_table(table, "{:.4f}")
        + f"\n\nThe saved model ({members} members) misses {len(missed)} of the {one['classes']} classes with one "
        f"test product (cost {one['cost']:.4f}). Registered path → predicted path, and the title:\n\n```text\n"
        + "\n".join(missed)
        + "\n```\n\n"
        f"Test products whose identical title is in the training split only under other leaves: {len(conflicts)} "
        f"({len(conflicts) / len(splits.test):.2%} of the test split); {int(wrong[conflicts].sum())} of them are "
        f"among the saved model's {int(wrong.sum())} leaf errors.\n\n"
        f"The saved model's most frequent leaf errors ({int(pairs['errors'].sum())} of its {int(wrong.sum())}), and "
        "how the whole catalog (35,132 products) files the titles that name each leaf of the pair:\n\n"
        + markdown_table(pairs)
    )
    write_section("classify_support", "Classifier: where leaf macro-F1 is lost", body)


def main() -> None:
    """This section alone (`make bench` writes it from `benchmarks.classify`'s own models)."""
    config, labelled, splits = benchmark_split()
    inputs, tree, titles = labelled.inputs, labelled.tree, catalog_titles(labelled.catalog)
    settings = train_settings(config)
    settings.fusion, settings.head = DEFAULT[0], DEFAULT[1]
    with_ngrams, _ = inputs.with_title_ngrams(titles, splits.train)
    single = fit_classifier(
        with_ngrams.take(splits.train), tree, settings, with_ngrams.take(splits.validation)
    )  # one seed, as benchmarks.classify trains it
    groups = labelled.catalog["group"].to_numpy()
    learnt, _ = inputs.with_title_ngrams(titles, learnt_rows(settings, splits.train, splits.validation, groups))
    saved = fit_members(learnt, tree, settings, splits.train, splits.validation, groups)
    svm = title_ngram_baseline(titles, inputs, tree, splits.train, splits.test)
    ours = predict(single, with_ngrams.take(splits.test)), predict(saved, learnt.take(splits.test))
    write_support_section(tree, inputs.codes, titles, splits, *ours, svm)


if __name__ == "__main__":
    main()
