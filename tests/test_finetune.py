"""Partial and full fine-tuning on real photos and titles: what trains, what stays, valid paths."""

import numpy as np
import pytest
import torch

from discover.classify.finetune import FineTuneSettings, Products, evaluate_end_to_end, fine_tune
from discover.classify.labels import LabelTree
from discover.classify.train import TrainSettings
from tests.conftest import FASHION, fashion_rows


def _products(n: int, seed: int) -> tuple[Products, LabelTree]:
    rows = fashion_rows(n, subcategories=("Topwear", "Shoes", "Bags"), seed=seed)
    paths = [tuple(r) for r in rows[["masterCategory", "subCategory"]].itertuples(index=False)]
    tree = LabelTree.from_paths(paths)
    photos = [str(FASHION / image) for image in rows["image"]]
    return Products(photos, rows["productDisplayName"].tolist(), tree.encode(paths)), tree


def _snapshot(model) -> dict[str, torch.Tensor]:
    return {
        "image bottom": model.image.net._blocks[0]._depthwise_conv.weight.detach().clone(),
        "image top": model.image.net._conv_head.weight.detach().clone(),
        "text bottom": model.text.bert.encoder.layer[0].attention.self.query.weight.detach().clone(),
        "text top": model.text.bert.encoder.layer[-1].attention.self.query.weight.detach().clone(),
    }


@pytest.mark.parametrize(
    ("strategy", "changes"),
    [
        ("frozen", set()),
        ("partial", {"image top", "text top"}),
        ("full", {"image bottom", "image top", "text bottom", "text top"}),
    ],
)
def test_each_strategy_trains_exactly_its_part_of_the_encoders(strategy, changes):
    products, tree = _products(48, seed=2)
    settings = TrainSettings(dim=32, seed=0)
    tuning = FineTuneSettings(image_strategy=strategy, text_strategy=strategy, epochs=1, batch_size=16, image_size=32)
    from discover.classify.finetune import EndToEndClassifier

    before = _snapshot(EndToEndClassifier(tree, settings, tuning))
    model, history = fine_tune(products, products, tree, settings, tuning)
    after = _snapshot(model)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == changes and len(history) == 1
    predicted, scores = evaluate_end_to_end(model, products, tree, tuning.image_size)
    assert (tree.parents[1][predicted.paths[:, 1]] == predicted.paths[:, 0]).all()  # every prediction a valid path
    assert 0 <= scores["hierarchical_f1"] <= 1


def test_staged_training_keeps_the_encoders_still_in_its_first_epoch():
    products, tree = _products(32, seed=3)
    settings = TrainSettings(dim=32, seed=0)
    tuning = FineTuneSettings(staged=True, epochs=1, batch_size=16, image_size=32)
    from discover.classify.finetune import EndToEndClassifier

    before = _snapshot(EndToEndClassifier(tree, settings, tuning))
    model, _ = fine_tune(products, products, tree, settings, tuning)
    assert all(torch.equal(before[k], v) for k, v in _snapshot(model).items())


def test_a_scratch_resnet_learns_from_random_init_and_an_unknown_encoder_is_refused():
    products, tree = _products(32, seed=4)
    tuning = FineTuneSettings(image_encoder="resnet18-scratch", image_strategy="full", text_strategy="frozen")
    tuning.epochs, tuning.batch_size, tuning.image_size = 1, 16, 32
    model, _ = fine_tune(products, products, tree, TrainSettings(dim=32), tuning)
    assert np.isfinite(model.image.net.conv1.weight.detach().numpy()).all()
    with pytest.raises(ValueError, match="image encoder"):
        fine_tune(products, products, tree, TrainSettings(dim=32), FineTuneSettings(image_encoder="vgg"))
