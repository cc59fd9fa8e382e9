"""Seed ensembles: the saved classifier is several models' averaged leaf probabilities."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from discover.classify.ensemble import (
    ClassifierEnsemble,
    fit_members,
    learnt_rows,
    load_classifier,
    member_rows,
    member_settings,
    validation_folds,
)
from discover.classify.labels import LabelTree
from discover.classify.model import MultimodalClassifier
from discover.classify.training import Inputs, TrainSettings, fit_classifier, predict
from discover.config import load_config
from discover.errors import ConfigError
from tests.conftest import config_dict

PATHS = [("A", "a1", "x"), ("A", "a1", "y"), ("A", "a2", "z"), ("B", "b1", "w"), ("B", "b2", "v"), ("C", "c1", "u")]


def _products(n: int, seed: int, spread: float = 1.5) -> tuple[LabelTree, Inputs]:
    """Leaves as unit Gaussians whose centres are `spread` · N(0, 1) apart: at 1.5 they
    overlap and no seed is sure of them."""
    tree = LabelTree.from_paths(PATHS)
    rng = np.random.default_rng(seed)
    leaves = rng.integers(0, len(PATHS), n)
    centres = rng.normal(size=(len(PATHS), 10)) * spread
    vectors = (centres[leaves] + rng.normal(size=(n, 10))).astype(np.float32)
    return tree, Inputs(vectors[:, :6], vectors[:, 6:], tree.ancestors(leaves))


def test_mixed_members_average_into_a_distribution_no_worse_than_their_mean_and_reload_whole(tmp_path: Path):
    tree, inputs = _products(900, seed=0)
    test = inputs.take(np.arange(600, 900))
    settings = TrainSettings(epochs=8, dim=16, seed=4, members=3, mix=True)
    model = fit_members(inputs, tree, settings, np.arange(600))
    assert isinstance(model, ClassifierEnsemble) and len(model.members) == 3
    designs = [(m.settings["fusion"], m.head_kind) for m in model.members]
    assert designs == [("gated", "hierarchical"), ("gated", "flat"), ("sum", "hierarchical")]
    ensemble = predict(model, test)
    each = [predict(m, test) for m in model.members]
    assert not np.allclose(each[0].leaf_probabilities, each[1].leaf_probabilities)  # seeds differ
    assert np.allclose(ensemble.leaf_probabilities, np.mean([e.leaf_probabilities for e in each], axis=0), atol=1e-6)
    assert np.array_equal(ensemble.paths, tree.ancestors(ensemble.leaf_probabilities.argmax(1)))  # valid paths

    def log_loss(p: np.ndarray) -> float:
        return float(-np.log(p[np.arange(len(p)), test.codes[:, -1]]).mean())

    assert log_loss(ensemble.leaf_probabilities) <= np.mean([log_loss(e.leaf_probabilities) for e in each]) + 1e-6
    model.save(tmp_path / "model", {"model_id": "m"})
    reloaded, meta = load_classifier(tmp_path / "model")
    assert isinstance(reloaded, ClassifierEnsemble) and meta["members"] == 3
    assert [(m.settings["fusion"], m.head_kind) for m in reloaded.members] == designs
    assert np.array_equal(predict(reloaded, test).paths, ensemble.paths)
    assert np.allclose(predict(reloaded, test).leaf_probabilities, ensemble.leaf_probabilities, atol=1e-7)


def test_one_member_is_the_single_model_of_the_same_seed(tmp_path: Path):
    tree, inputs = _products(300, seed=1)
    settings = TrainSettings(epochs=3, dim=8, seed=7)
    single = fit_members(inputs, tree, settings, np.arange(300))
    assert isinstance(single, MultimodalClassifier)
    alone = fit_classifier(inputs, tree, settings)
    pairs = zip(single.state_dict().values(), alone.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    single.save(tmp_path / "single", {})
    reloaded, _ = load_classifier(tmp_path / "single")
    assert isinstance(reloaded, MultimodalClassifier)
    assert np.array_equal(predict(reloaded, inputs).paths, predict(single, inputs).paths)


def test_members_learn_the_validation_split_each_stopping_on_a_part_it_did_not_learn():
    tree, inputs = _products(1200, seed=2, spread=4.0)
    leaves = inputs.codes[:, -1]
    rare = 1  # a leaf (beside a sibling) whose products all sit in the validation split (and the test): a learner of
    # the training split alone never predicts it
    train = np.flatnonzero((np.arange(1200) < 700) & (leaves != rare))
    validation = np.arange(700, 900)
    test = inputs.take(np.flatnonzero(np.arange(1200) >= 900))
    groups = np.arange(1200) // 2  # pairs of rows share a photo: a pair never straddles two folds
    settings = TrainSettings(epochs=10, dim=16, seed=0, members=4, batch_size=32)
    model = fit_members(inputs, tree, settings, train, validation, groups)
    single = fit_members(inputs, tree, dataclasses.replace(settings, members=1), train, validation, groups)
    is_rare = test.codes[:, -1] == rare
    recall = [np.mean(predict(m, test).paths[is_rare, -1] == rare) for m in (model, single)]
    assert recall[0] > 0.5 and recall[1] < 0.2
    folds = validation_folds(len(validation), 4, groups[validation], seed=0)
    assert sorted(np.unique(folds)) == [0, 1, 2, 3]
    pairs = folds.reshape(-1, 2)
    assert (pairs[:, 0] == pairs[:, 1]).all()  # a group stays in one fold
    assert validation_folds(3, 4, None, seed=0) is None  # fewer groups than members: no folds
    # the n-gram vocabulary comes from exactly the rows the members learn
    assert set(learnt_rows(settings, train, validation, groups)) == set(train) | set(validation)
    few = np.zeros(1200, dtype=int)  # one photo group in the validation split: no cross-fitting
    assert all(np.array_equal(learns, train) for learns, _ in member_rows(settings, train, validation, few))
    assert np.array_equal(learnt_rows(settings, train, validation, few), np.sort(train))


def test_members_mix_designs_only_where_there_are_two_modalities():
    designs = [(s.fusion, s.head, s.seed) for s in member_settings(TrainSettings(members=6, mix=True, seed=3))]
    assert designs[0] == ("gated", "hierarchical", 3) and designs[5] == ("gated", "flat", 8)  # MIX in turn
    flat = [(s.fusion, s.head) for s in member_settings(TrainSettings(head="flat", members=3, mix=True))]
    assert flat == [("gated", "flat"), ("sum", "hierarchical"), ("attention", "hierarchical")]  # no repeat of the first
    text = {(s.fusion, s.head) for s in member_settings(TrainSettings(fusion="text-only", members=3, mix=True))}
    assert text == {("text-only", "hierarchical")}
    assert {s.fusion for s in member_settings(TrainSettings(members=3))} == {"gated"}  # mix off: seeds only


def test_greedy_decoding_of_several_members_is_refused_in_the_config(tmp_path: Path):
    raw = config_dict(tmp_path, classify__members=3, classify__decoding="greedy")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="members"):
        load_config(path)
    raw["classify"]["members"] = 1
    path.write_text(yaml.safe_dump(raw))
    assert load_config(path).classify.decoding == "greedy"
