"""The supervised classifier: masking, fusion modules, sampling, and a real train/evaluate/predict."""

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from discover import classify
from discover.classify.data import grouped_splits, undersample
from discover.classify.ensemble import load_classifier
from discover.classify.fusion import FUSIONS, create_fusion
from discover.classify.heads import HierarchicalHeads
from discover.classify.labels import LabelTree
from discover.classify.mislabels import out_of_fold_probabilities, rank_mislabels
from discover.classify.model import MultimodalClassifier
from discover.classify.ngrams import TitleNgrams
from discover.classify.training import (
    Inputs,
    Predictions,
    TrainSettings,
    _loss,
    evaluate_classifier,
    fit_classifier,
    largest_confusions,
    predict,
    top_confusions,
)
from discover.classify.two_stage import combine, sent_on
from discover.cli import main
from discover.embed.cache import EmbeddingCache
from tests.conftest import config_dict, fashion_rows, write_catalog

PATHS = [("A", "a1", "x"), ("A", "a1", "y"), ("A", "a2", "z"), ("B", "b1", "w"), ("B", "b2", "v"), ("C", "c1", "u")]


def test_masked_predictions_are_valid_paths_for_random_logits():
    tree = LabelTree.from_paths(PATHS)
    heads = HierarchicalHeads(8, tree)
    torch.manual_seed(0)
    logits = [torch.randn(500, size) * 5 for size in tree.sizes()]
    paths = heads.predict(logits).numpy()
    for level in range(1, tree.depth):
        assert (tree.parents[level][paths[:, level]] == paths[:, level - 1]).all()
    leaves = {tuple(p) for p in tree.decode(paths)}
    assert leaves <= set(PATHS)


def test_teacher_forcing_masks_by_the_true_parent_and_without_it_by_the_predicted_one():
    tree = LabelTree.from_paths(PATHS)
    heads = HierarchicalHeads(8, tree)
    logits = [torch.tensor([[5.0, 0.0, 0.0]]), torch.zeros(1, 5), torch.zeros(1, 6)]
    true = torch.as_tensor(tree.encode([("B", "b1", "w")]))
    forced = heads.masked(logits, true)[1]
    free = heads.masked(logits)[1]
    allowed = lambda level: {i for i, v in enumerate(level[0].tolist()) if v > -1e8}  # noqa: E731
    assert {tree.classes[1][i] for i in allowed(forced)} == {"B > b1", "B > b2"}
    assert {tree.classes[1][i] for i in allowed(free)} == {"A > a1", "A > a2"}  # A scored highest
    model = MultimodalClassifier(tree, 6, 4, fusion="concat", dim=8)
    image, text, codes = torch.randn(6, 6), torch.randn(6, 4), torch.as_tensor(tree.encode(PATHS))
    with_forcing = _loss(model, image, text, codes, TrainSettings(teacher_forcing=True), None)
    without = _loss(model, image, text, codes, TrainSettings(teacher_forcing=False), None)
    assert torch.isfinite(with_forcing) and torch.isfinite(without) and with_forcing != without


def _fixed_logits(model: MultimodalClassifier, logits: list[list[float]]) -> MultimodalClassifier:
    """`model` whose heads give `logits` (per level) whatever the input: zero weights, set biases."""
    with torch.no_grad():
        for head, values in zip(model.heads.heads, logits, strict=True):
            head.weight.zero_()
            head.bias.copy_(torch.tensor(values))
    return model.eval()


def test_path_decoding_picks_the_most_probable_whole_path_where_greedy_commits_early():
    tree = LabelTree.from_paths(PATHS)  # A: a1 {x, y}, a2 {z}; B: b1 {w}, b2 {v}; C: c1 {u}
    log = math.log
    top = [log(0.55), log(0.45), -30.0]  # A, B, C
    middle = [0.0, 0.0, 0.0, -30.0, 0.0]  # a1 = a2 inside A; b1 all of B; c1
    leaves = [0.0] * 6  # x = y inside a1; every other parent has one child
    image, text = torch.randn(3, 6), torch.randn(3, 4)
    picked = {}
    for decoding in ("greedy", "path"):
        model = _fixed_logits(
            MultimodalClassifier(tree, 6, 4, fusion="concat", dim=8, decoding=decoding), [top, middle, leaves]
        )
        picked[decoding] = set(tree.decode(model.predict_paths(image, text).numpy()))
    # greedy: A (0.55), then a1 and x by the first index: 0.1375; the path B > b1 > w holds 0.45
    assert picked == {"greedy": {("A", "a1", "x")}, "path": {("B", "b1", "w")}}


def test_path_decoding_gives_valid_paths_at_least_as_probable_as_greedy_ones():
    tree = LabelTree.from_paths(PATHS)
    torch.manual_seed(0)
    model = MultimodalClassifier(tree, 6, 4, fusion="concat", dim=8, decoding="path").eval()
    greedy = MultimodalClassifier(tree, 6, 4, fusion="concat", dim=8, decoding="greedy").eval()
    greedy.load_state_dict(model.state_dict())
    image, text = torch.randn(400, 6) * 3, torch.randn(400, 4) * 3
    with torch.no_grad():
        paths, plain = model.predict_paths(image, text).numpy(), greedy.predict_paths(image, text).numpy()
        joint = model.leaf_log_probs(image, text).numpy()
    for level in range(1, tree.depth):
        assert (tree.parents[level][paths[:, level]] == paths[:, level - 1]).all()
    rows = np.arange(len(paths))
    assert (joint[rows, paths[:, -1]] >= joint[rows, plain[:, -1]] - 1e-6).all()


@pytest.mark.parametrize("name", sorted(FUSIONS))
def test_each_fusion_has_the_right_shape_reaches_its_modalities_and_is_seeded(name):
    sizes = (3, 5, 6)

    def build() -> torch.nn.Module:
        torch.manual_seed(7)
        return create_fusion(name, 12, 10, 16, dropout=0.0, level_sizes=sizes)

    image, text = torch.randn(4, 12, requires_grad=True), torch.randn(4, 10, requires_grad=True)
    fusion = build()
    out = fusion(image, text)
    assert out.shape == (4, 16)
    out.sum().backward()
    used = {"image-only": ("image",), "text-only": ("text",)}.get(name, ("image", "text"))
    grads = {"image": image.grad, "text": text.grad}
    assert all(grads[m] is not None and grads[m].abs().sum() > 0 for m in used)
    assert torch.equal(build()(image, text), fusion(image, text))


def test_undersampling_caps_every_class_and_keeps_every_class():
    labels = np.array([0] * 500 + [1] * 40 + [2] * 3 + [3] * 1)
    kept = undersample(labels, np.arange(len(labels)), cap=30, seed=0)
    assert np.bincount(labels[kept]).tolist() == [30, 30, 3, 1]
    assert undersample(labels, np.arange(len(labels)), cap=None).tolist() == list(range(len(labels)))


def test_splits_never_share_a_group_and_cover_every_row():
    rng = np.random.default_rng(0)
    labels, groups = rng.integers(0, 5, 1000), rng.integers(0, 300, 1000)
    splits = grouped_splits(labels, groups, seed=1)
    parts = [set(groups[s]) for s in (splits.train, splits.validation, splits.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sorted(np.concatenate([splits.train, splits.validation, splits.test]).tolist()) == list(range(1000))


def _titled_products(n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Products whose type is said only by a word of the title (brand and colour are noise)."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, len(PATHS), n)
    words = ["kurti", "flats", "heels", "trolley", "wallet", "anklet"]
    titles = [f"brand{rng.integers(50)} {rng.choice(['red', 'blue', 'black'])} {words[t]}" for t in types]
    return titles, types, rng.normal(size=(n, 12)).astype(np.float32)


def test_title_ngrams_learn_the_type_word_the_dense_vectors_do_not_carry(tmp_path: Path):
    tree = LabelTree.from_paths(PATHS)
    titles, types, noise = _titled_products(600, seed=0)
    codes = tree.encode([PATHS[t] for t in types])
    grams = TitleNgrams().fit(titles[:400])
    grams.save(tmp_path / "ngrams.json")
    inputs = Inputs(noise[:, :6], noise[:, 6:], codes, grams.transform(titles))
    settings = TrainSettings(epochs=15, dim=16, seed=0)
    train, test = inputs.take(np.arange(400)), inputs.take(np.arange(400, 600))
    with_ngrams = fit_classifier(train, tree, settings)
    without = fit_classifier(Inputs(train.image, train.text, train.codes), tree, settings)
    assert evaluate_classifier(with_ngrams, test)["leaf_accuracy"] > 0.95
    assert evaluate_classifier(without, Inputs(test.image, test.text, test.codes))["leaf_accuracy"] < 0.5
    reloaded = TitleNgrams.load(tmp_path / "ngrams.json").transform(titles[400:])
    assert (reloaded != test.ngrams).nnz == 0  # a saved model sees new titles in the same columns
    with pytest.raises(ValueError, match="n-grams"):
        with_ngrams(torch.as_tensor(test.image), torch.as_tensor(test.text))


def test_the_mislabel_finder_reads_the_type_word_of_the_titles():
    tree = LabelTree.from_paths(PATHS)
    titles, types, noise = _titled_products(600, seed=1)
    registered = tree.encode([PATHS[t] for t in types])[:, -1]
    flipped = np.arange(0, 600, 20)
    registered[flipped] = (registered[flipped] + 1) % len(PATHS)
    inputs = Inputs(noise[:, :6], noise[:, 6:], tree.ancestors(registered))
    settings = TrainSettings(epochs=10, dim=16)
    probabilities = out_of_fold_probabilities(inputs, tree, settings, np.arange(600), folds=3, titles=titles)
    found = rank_mislabels(probabilities, registered, tree)["row"].to_numpy()[: len(flipped)]
    assert len(set(found) & set(flipped)) / len(flipped) > 0.7  # the dense vectors alone are noise here: ~0


def _rare_sibling(n_common: int, n_rare: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two sibling leaves whose photos overlap (unit Gaussians one apart on every axis); labels first."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(n_common, dtype=int), np.ones(n_rare, dtype=int)]
    return labels, rng.normal(size=(len(labels), 8)).astype(np.float32) + labels[:, None]


def test_logit_adjustment_gives_a_rare_sibling_back_its_recall(tmp_path: Path):
    tree = LabelTree.from_paths([("Shoes", "Casual"), ("Shoes", "Heels")])
    labels, photos = _rare_sibling(1900, 100, seed=0)
    settings = TrainSettings(epochs=15, dim=16, seed=0, logit_adjustment=1.0)
    model = fit_classifier(Inputs(photos, photos[:, :2] * 0, tree.ancestors(labels)), tree, settings)
    test_labels, test_photos = _rare_sibling(500, 500, seed=1)  # balanced: both classes matter equally
    test = Inputs(test_photos, test_photos[:, :2] * 0, tree.ancestors(test_labels))

    def rare_recall_and_balanced_accuracy(tau: float) -> tuple[float, float]:
        model.settings["logit_adjustment"] = tau
        leaf = predict(model, test).paths[:, -1]
        recalls = [np.mean(leaf[test_labels == c] == c) for c in (0, 1)]
        return recalls[1], float(np.mean(recalls))

    plain, adjusted = rare_recall_and_balanced_accuracy(0.0), rare_recall_and_balanced_accuracy(1.0)
    # Bayes: balanced accuracy ≈ 0.92 with the adjustment; without it the prior (19:1) drags the rare class down
    assert adjusted[0] > plain[0] + 0.15
    assert adjusted[1] > plain[1] + 0.03
    model.save(tmp_path / "model", {})
    reloaded, _ = load_classifier(tmp_path / "model")
    assert (predict(reloaded, test).paths == predict(model, test).paths).all()  # priors travel with the model


def test_a_model_saved_before_logit_adjustment_loads_and_predicts_as_before(tmp_path: Path):
    tree = LabelTree.from_paths(PATHS)
    old = MultimodalClassifier(tree, 6, 4, fusion="gated", dim=8).eval()
    old.save(tmp_path / "old", {})
    state = load_file(str(tmp_path / "old" / "model.safetensors"))
    save_file({k: v for k, v in state.items() if k != "leaf_log_prior"}, str(tmp_path / "old" / "model.safetensors"))
    meta = json.loads((tmp_path / "old" / "model.json").read_text())
    meta["settings"].pop("logit_adjustment")  # as the older model.json files were written
    (tmp_path / "old" / "model.json").write_text(json.dumps(meta))
    reloaded, _ = load_classifier(tmp_path / "old")
    image, text = torch.randn(20, 6), torch.randn(20, 4)
    assert torch.equal(reloaded.predict_paths(image, text), old.predict_paths(image, text))
    state["heads.heads.0.weight"] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / "old" / "model.safetensors"))
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_classifier(tmp_path / "old")


def test_mostly_zero_n_gram_votes_are_saved_as_their_entries_and_dense_files_still_load(tmp_path: Path):
    tree = LabelTree.from_paths(PATHS)
    model = MultimodalClassifier(tree, 6, 4, fusion="gated", dim=8, ngram_features=400).eval()
    with torch.no_grad():  # as training leaves them: the columns of titles' n-grams moved, the rest zero
        model.ngrams.weight[:40] = torch.randn(40, model.ngrams.weight.shape[1])
    model.save(tmp_path / "packed", {})
    saved = load_file(str(tmp_path / "packed" / "model.safetensors"))
    assert "ngrams.weight" not in saved and len(saved["ngrams.weight.__values"]) == model.ngrams.weight.count_nonzero()
    assert saved["heads.heads.0.weight"].shape == (len(tree.classes[0]), 8)  # dense weights stay dense
    dense_bytes = sum(v.numel() * v.element_size() for v in model.state_dict().values())
    assert (tmp_path / "packed" / "model.safetensors").stat().st_size < 0.4 * dense_bytes
    reloaded, _ = load_classifier(tmp_path / "packed")
    assert all(torch.equal(reloaded.state_dict()[k], v) for k, v in model.state_dict().items())
    model.save(tmp_path / "dense", {})  # a model saved before the packing: every weight dense
    save_file(
        {k: v.clone().contiguous() for k, v in model.state_dict().items()},
        str(tmp_path / "dense" / "model.safetensors"),
    )
    bags = torch.tensor([1, 5, 300]), torch.tensor([0, 2]), torch.ones(3)
    image, text = torch.randn(2, 6), torch.randn(2, 4)
    old, _ = load_classifier(tmp_path / "dense")
    assert torch.equal(old.leaf_log_probs(image, text, bags), reloaded.leaf_log_probs(image, text, bags))


def test_the_confusion_of_the_largest_classes_counts_their_mix_ups_among_themselves():
    tree = LabelTree.from_paths(PATHS)  # leaves x, y, z, w, v, u
    leaf = {path[-1]: code for code, path in enumerate(tree.decode(tree.ancestors(np.arange(6))))}
    true = ["x"] * 5 + ["y"] * 4 + ["z"] * 3 + ["u"]
    said = ["x", "x", "x", "y", "w"] + ["y", "y", "x", "x"] + ["z", "z", "y"] + ["x"]
    truth = tree.ancestors(np.array([leaf[t] for t in true]))
    guess = tree.ancestors(np.array([leaf[s] for s in said]))
    confusions = largest_confusions(tree, truth, Predictions(guess, np.ones(13), np.zeros((13, 6))), classes=3)
    assert [c.rsplit(" > ", 1)[-1] for c in confusions["classes"]] == ["x", "y", "z"]
    # rows true, columns predicted; x → w and u → x fall outside the three largest
    assert confusions["counts"] == [[3, 1, 0], [2, 2, 0], [0, 1, 2]]
    assert top_confusions(confusions, most=2) == [
        (confusions["classes"][1], confusions["classes"][0], 2),
        (confusions["classes"][0], confusions["classes"][1], 1),
    ]


def test_two_stage_sends_on_the_unsure_and_the_untitled_and_keeps_the_text_stage_elsewhere():
    tree = LabelTree.from_paths(PATHS)
    leaves = lambda codes: tree.ancestors(np.array(codes))  # noqa: E731
    text = Predictions(leaves([0, 1, 2, 3]), np.array([0.99, 0.5, 0.95, 0.9]), np.zeros((4, 6)))
    sent = sent_on(text, ["Blue Shirt", "Shirt", " ", "Red Top"], threshold=0.9)
    assert sent.tolist() == [False, True, True, False]  # unsure, or no title however sure it is
    multimodal = Predictions(leaves([4, 5]), np.array([0.7, 0.8]), np.ones((2, 6)))
    both = combine(text, multimodal, sent)
    assert both.paths[:, -1].tolist() == [0, 4, 5, 3] and both.probability.tolist() == [0.99, 0.7, 0.8, 0.9]


def test_every_class_is_trained_on_before_it_is_tested():
    # 40 common classes, then 20 rare ones of one photo (group) and 20 of two, two products each
    rng = np.random.default_rng(0)
    rare = np.arange(40, 80).repeat(2)
    labels = np.r_[rng.integers(0, 40, 2000), rare]
    groups = np.r_[rng.integers(0, 900, 2000), 1000 + np.r_[np.arange(20).repeat(2), np.arange(20, 60)]]
    for seed in range(5):
        splits = grouped_splits(labels, groups, seed=seed)
        assert set(labels[splits.train]) == set(labels)  # before: a rare class could land only in test
        parts = [set(groups[s]) for s in (splits.train, splits.validation, splits.test)]
        assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
        assert len(np.concatenate([splits.train, splits.validation, splits.test])) == len(labels)
        assert len(splits.test) > 0.15 * len(labels)


def _photo_key(path: Path) -> str:
    """The embedding cache's key of a photo: the sha1 of its bytes."""
    return hashlib.sha1(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_train_evaluate_predict_and_find_mislabels_on_real_products(tmp_path: Path, capsys):
    rows = fashion_rows(1000, subcategories=("Topwear", "Bottomwear", "Shoes", "Bags", "Watches"), seed=3)
    directory = write_catalog(tmp_path / "catalog", rows.iloc[:900]).parent
    raw = config_dict(directory)
    raw["classify"] = {"epochs": 25, "fusion": "gated", "folds": 3}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main(["classify", "train", str(config), *ws, "--minutes", "1"]) == 2  # a budget with nothing to budget
    assert "--fine-tune" in capsys.readouterr().err
    assert main(["classify", "train", str(config), *ws]) == 0
    (metrics_path,) = (tmp_path / "ws" / "classify").glob("*/metrics.json")
    # the imbalance report: every class with its products per split, none dropped by sampling
    imbalance = pd.read_csv(metrics_path.parent / "imbalance.csv")
    assert imbalance[["train", "validation", "test"]].to_numpy().sum() == 900 and (imbalance["learnt"] >= 1).all()
    assert imbalance["class"].str.count(" > ").eq(2).all() and imbalance["learnt"].is_monotonic_decreasing
    assert f"imbalance  {len(imbalance)} leaf classes" in capsys.readouterr().out
    metrics = yaml.safe_load(metrics_path.read_text())
    assert metrics["hierarchical_f1"] > 0.85 and metrics["per_level"]["level_1"]["accuracy"] > 0.9
    assert {"leaf_macro_f1", "ece", "per_level"} <= set(metrics)
    assert list((tmp_path / "ws" / "models" / "classify").glob("*/ngrams.json"))  # title n-grams on by default
    (saved,) = (tmp_path / "ws" / "models" / "classify").glob("*/model.json")
    meta = json.loads(saved.read_text())
    assert meta["members"] == 5  # the default: five members averaged, of different fusions
    assert [m["fusion"] for m in meta["member_settings"]] == ["gated", "gated", "sum", "attention", "late"]
    misspelt = saved.parent.name[:-1] + "x"
    assert main(["classify", "evaluate", str(config), *ws, "--model", misspelt]) == 2
    assert f"did you mean {saved.parent.name}?" in capsys.readouterr().err  # not "run classify train first"
    assert main(["classify", "evaluate", str(config), *ws]) == 0
    evaluated = capsys.readouterr().out
    assert "hierarchical P/R/F1" in evaluated and "leaf macro-F1 by test products per class" in evaluated
    assert "most frequent mix-ups among the 10 largest leaf classes" in evaluated
    again = yaml.safe_load(metrics_path.read_text())  # the saved model and n-grams score the same rows the same
    assert again["hierarchical_f1"] == pytest.approx(metrics["hierarchical_f1"], abs=1e-9)
    assert classify.evaluate(config, tmp_path / "ws")["hierarchical_f1"] == again["hierarchical_f1"]
    lost = sum(band["cost"] for band in again["leaf_macro_f1_by_support"])  # the bands account for the whole gap
    confused = np.array(again["largest_confusions"]["counts"])
    assert confused.shape == (10, 10) and np.trace(confused) > 0.8 * confused.sum()
    assert lost == pytest.approx(1 - again["leaf_macro_f1"], abs=1e-9)
    two = again["two_stage"]  # the text stage trained beside it, scored on the same test products
    assert two["threshold"] == 0.9 and 0 < two["multimodal_share"] < 1
    assert two["hierarchical_f1"] > 0.85 and "two-stage" in evaluated
    fresh = rows.iloc[900:].copy()
    fresh.iloc[0, fresh.columns.get_loc("productDisplayName")] = ""  # kept below: its photo must decide
    levels = ["masterCategory", "subCategory", "articleType"]
    watch = int(np.flatnonzero(fresh["subCategory"].to_numpy() == "Watches")[0])  # a watch registered as a tshirt
    fresh.iloc[watch, [fresh.columns.get_loc(c) for c in levels]] = ["Apparel", "Topwear", "Tshirts"]
    unknown = watch + 1  # registered under a leaf the model was never trained on
    fresh.iloc[unknown, fresh.columns.get_loc("articleType")] = "Hoverboards"
    new = write_catalog(tmp_path / "new", fresh)
    raw["catalog"]["on_invalid"] = "keep"
    config.write_text(yaml.safe_dump(raw))
    photos = EmbeddingCache(tmp_path / "ws" / "embeddings", meta["fingerprints"]["image"], 1280)
    cached_before = set(photos.load_index())
    out = tmp_path / "predictions.csv"
    assert main(["classify", "predict", str(config), *ws, "--catalog", str(new), "--out", str(out)]) == 0
    predicted = pd.read_csv(out, dtype={"product_id": str})
    assert predicted["product_id"].tolist() == rows["id"].iloc[900:].tolist()
    from_python = classify.predict(str(config), tmp_path / "ws", new)  # what the command does, one call away
    assert from_python["predicted_path"].tolist() == predicted["predicted_path"].tolist()
    assert (tmp_path / "ws" / "classify" / "predictions.csv").exists()  # the command's default place
    assert predicted["title"].fillna("").tolist() == fresh["productDisplayName"].tolist()  # to judge each one by
    truth = [" > ".join(r) for r in rows.iloc[900:][["masterCategory", "subCategory"]].itertuples(index=False)]
    agrees = [p.startswith(t) for p, t in zip(predicted["predicted_path"], truth, strict=True)]
    assert np.mean(agrees) > 0.85 and predicted["probability"].between(0, 1).all()
    # two-stage: the titles the text stage is sure of keep its answer, and only the others' photos are read
    sure = predicted["stage"] == "text"
    assert 0 < sure.mean() < 1 and (predicted.loc[sure, "probability"] >= 0.9).all()
    assert predicted["stage"].iloc[0] == "multimodal"  # no title: nothing for the text stage to be sure of
    sent_photos = {_photo_key(new.parent / image) for image in rows["image"].iloc[900:][~sure.to_numpy()]}
    assert set(photos.load_index()) - cached_before == sent_photos - cached_before != set()
    # the registered categories checked against the predictions: the misfiled watch is flagged
    assert predicted.loc[watch, "registered_path"] == "Apparel > Topwear > Tshirts"
    assert predicted.loc[watch, "flagged"] and predicted.loc[watch, "p_registered"] < 0.5
    assert pd.isna(predicted.loc[unknown, "p_registered"]) and not predicted.loc[unknown, "flagged"]
    assert predicted["flagged"].mean() < 0.15  # the model agrees with most sellers
    known, flagged = predicted["p_registered"].notna().sum(), predicted["flagged"].sum()  # unknown leaves: unchecked
    checked = f"registered categories: {known} checked, {flagged} flagged"
    printed = capsys.readouterr().out
    assert checked in printed, printed
    bare = write_catalog(tmp_path / "bare", fresh[["id", "productDisplayName", "image"]])  # no category column
    assert main(["classify", "predict", str(config), *ws, "--catalog", str(bare), "--out", str(out)]) == 0
    assert "no registered category to check" in capsys.readouterr().out
    only = pd.read_csv(out, dtype={"product_id": str})
    assert only["product_id"].tolist() == predicted["product_id"].tolist() and "flagged" not in only.columns
    assert (only["predicted_path"] == predicted["predicted_path"]).all()
    coarse = write_catalog(tmp_path / "coarse", fresh.drop(columns=["articleType"]))  # the finest level not given
    assert main(["classify", "predict", str(config), *ws, "--catalog", str(coarse), "--out", str(out)]) == 0
    at_two = pd.read_csv(out, dtype={"product_id": str})  # checked at the depth registered
    assert at_two.loc[watch, "registered_path"] == "Apparel > Topwear" and at_two.loc[watch, "flagged"]
    assert at_two["p_registered"].notna().all() and at_two["flagged"].mean() < 0.1
    raw["classify"]["two_stage_threshold"] = None  # every product to the multimodal model
    config.write_text(yaml.safe_dump(raw))
    assert main(["classify", "predict", str(config), *ws, "--catalog", str(new), "--out", str(out)]) == 0
    assert "stage" not in pd.read_csv(out).columns
    every_photo = {_photo_key(new.parent / image) for image in rows["image"].iloc[900:]}
    assert every_photo <= set(photos.load_index())
    mislabels = tmp_path / "mislabels.csv"
    assert main(["classify", "find-mislabels", str(config), *ws, "--out", str(mislabels)]) == 0
    ranked = pd.read_csv(mislabels)
    assert len(ranked) == 900 and ranked["p_registered"].is_monotonic_increasing


def test_leave_one_gender_out_scores_each_held_out_domain(tmp_path: Path, capsys):
    rows = fashion_rows(500, subcategories=("Topwear", "Shoes", "Bags"), seed=5)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    raw = config_dict(directory)
    raw["classify"] = {"epochs": 15, "include_truth": False}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main(["classify", "evaluate", str(config), *ws, "--by", "gender"]) == 0
    out = capsys.readouterr().out
    assert "each value of 'gender' held out" in out  # the output says what the domain is
    written = yaml.safe_load((tmp_path / "ws" / "classify" / "by-gender" / "metrics.json").read_text())
    table = pd.DataFrame(written["rows"])
    large = rows["gender"].value_counts()
    assert set(table["held-out domain"]) == set(large[large >= 50].index)
    assert (table.set_index("held-out domain").loc[["Men", "Women"], "hF1"] > 0.6).all()  # well above chance
    assert main(["classify", "evaluate", str(config), *ws, "--by", "shop"]) == 2
    assert "no such column" in capsys.readouterr().err
