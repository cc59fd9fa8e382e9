"""Partial and full fine-tuning on real photos and titles: what trains, what stays, valid paths."""

import numpy as np
import pytest
import torch

from discover.classify.finetune import FineTuneSettings, Products, evaluate_end_to_end, fine_tune
from discover.classify.labels import LabelTree
from discover.classify.training import TrainSettings
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


@pytest.mark.slow
def test_the_cli_fine_tunes_saves_scores_and_serves_a_model(tmp_path):
    import json

    import pandas as pd
    import yaml

    from discover.classify import end_to_end
    from discover.classify.finetune import EndToEndClassifier
    from discover.cli import main
    from tests.conftest import config_dict, write_catalog

    rows = fashion_rows(200, subcategories=("Topwear", "Shoes", "Bags"), seed=5)
    directory = write_catalog(tmp_path / "catalog", rows.iloc[:160]).parent
    raw = config_dict(directory, catalog__on_invalid="keep")
    raw["classify"] = {"dim": 32, "fine_tune": {"epochs": 3, "image_size": 32, "batch_size": 16, "minutes": 2}}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main(["classify", "train", str(config), *ws, "--fine-tune", "partial"]) == 0
    (model_dir,) = (tmp_path / "ws" / "models" / "classify").iterdir()
    assert model_dir.name.startswith("finetune-partial-")
    assert (model_dir / "model.safetensors").exists() and end_to_end.is_end_to_end(model_dir)
    trained = json.loads((tmp_path / "ws" / "classify" / model_dir.name / "metrics.json").read_text())
    assert {"hierarchical_f1", "leaf_macro_f1", "per_level", "two_stage"} <= set(trained)
    imbalance = pd.read_csv(tmp_path / "ws" / "classify" / model_dir.name / "imbalance.csv")
    assert imbalance["learnt"].sum() == trained["train_rows"] and (imbalance["learnt"] >= 1).all()
    assert (model_dir / "text-stage" / "model.safetensors").exists()  # titles first at prediction, as frozen models

    model, meta = end_to_end.load(model_dir)  # the fine-tuned top, the shipped bottom
    shipped = EndToEndClassifier(model.classifier.tree, TrainSettings(dim=32), end_to_end.FineTuneSettings())
    assert not torch.equal(model.image.net._conv_head.weight, shipped.image.net._conv_head.weight)
    bottom = [m.image.net._blocks[0]._depthwise_conv.weight for m in (model, shipped)]
    assert torch.equal(*bottom)
    assert meta["fingerprints"]["image"].startswith("efficientnet-lite0")

    assert main(["classify", "evaluate", str(config), *ws]) == 0  # the saved model scores as it did in training
    again = json.loads((tmp_path / "ws" / "classify" / model_dir.name / "metrics.json").read_text())
    assert again["hierarchical_f1"] == pytest.approx(trained["hierarchical_f1"], abs=1e-6)
    two, before = again["two_stage"], trained["two_stage"]
    assert (
        two["hierarchical_f1"] == pytest.approx(before["hierarchical_f1"], abs=1e-6)
        and 0 <= two["multimodal_share"] <= 1
    )

    new_rows = rows.iloc[160:]
    new = write_catalog(tmp_path / "new", new_rows)
    broken = new.parent / new_rows["image"].iloc[0]
    broken.write_bytes(b"not a photo")

    def predict_at(threshold: float | None) -> pd.DataFrame:
        raw["classify"]["two_stage_threshold"] = threshold
        config.write_text(yaml.safe_dump(raw))
        out = tmp_path / f"predictions-{threshold}.csv"
        assert main(["classify", "predict", str(config), *ws, "--catalog", str(new), "--out", str(out)]) == 0
        return pd.read_csv(out, dtype={"product_id": str}).set_index("product_id")

    ids = new_rows["id"].astype(str).tolist()
    alone = predict_at(None)  # one stage: the model reads every photo, the broken one is reported and skipped
    assert alone.index.tolist() == ids[1:] and "stage" not in alone.columns
    titles = predict_at(1e-6)  # nothing sent on (a best path is at least 1 / leaves likely): titles alone, none skipped
    assert titles.index.tolist() == ids and (titles["stage"] == "text").all()
    predicted = predict_at(float(titles["probability"].median()))  # about half sent on
    sent = predicted["stage"] == "multimodal"
    assert 0 < sent.sum() < len(sent)
    for by, decided in ((sent, alone), (~sent, titles)):  # each product predicted by the stage it names
        assert predicted.loc[by, "predicted_path"].equals(decided.loc[predicted.index[by], "predicted_path"])
    tree = model.classifier.tree
    classes = {" > ".join(path) for path in tree.decode(tree.ancestors(np.arange(tree.sizes()[-1])))}
    assert set(predicted["predicted_path"]) <= classes and predicted["probability"].between(0, 1).all()
    masters = predicted["predicted_path"].str.split(" > ").str[0]
    truth = new_rows.set_index(new_rows["id"].astype(str)).loc[predicted.index, "masterCategory"]
    assert (masters.to_numpy() == truth.to_numpy()).mean() > 0.6
    disputed = predicted["p_registered"].notna() & (predicted["registered_path"] != predicted["predicted_path"])
    assert (predicted["flagged"] == disputed).all()  # the fine-tuned model checks registered categories too


def test_clip_towers_fine_tune_their_top_blocks_and_a_saved_model_needs_no_checkpoint(tmp_path):
    import json

    import open_clip

    from discover.classify import end_to_end
    from discover.classify.finetune import EndToEndClassifier, encode
    from discover.classify.training import predict
    from tests.test_embed import TINY_CLIP

    (tmp_path / "discover-tiny-ft.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(tmp_path / "discover-tiny-ft.json")
    torch.manual_seed(0)
    checkpoint = tmp_path / "tiny.pt"
    torch.save(open_clip.create_model("discover-tiny-ft").state_dict(), checkpoint)
    products, tree = _products(40, seed=6)
    settings = TrainSettings(dim=16, seed=0)
    tuning = FineTuneSettings(image_encoder="clip", text_encoder="clip", top_blocks=1, epochs=1, batch_size=10)
    tuning.clip_arch, tuning.clip_pretrained = "discover-tiny-ft", str(checkpoint)

    def blocks(model) -> dict[str, torch.Tensor]:
        image, text = model.image.net.transformer.resblocks, model.text.clip.transformer.resblocks
        parts = {"image bottom": image[0], "image top": image[-1], "text bottom": text[0], "text top": text[-1]}
        return {name: part.mlp.c_fc.weight.detach().clone() for name, part in parts.items()}

    before = blocks(EndToEndClassifier(tree, settings, tuning))
    model, _ = fine_tune(products, products, tree, settings, tuning)
    after = blocks(model)
    assert {name for name in before if not torch.equal(before[name], after[name])} == {"image top", "text top"}

    end_to_end.save(model, tmp_path / "model", settings, tuning, {"model_id": "clip-test"})
    checkpoint.unlink()  # every weight is in the saved model: the checkpoint is not read again
    loaded, meta = end_to_end.load(tmp_path / "model")
    assert meta["kind"] == "end-to-end"
    ours, theirs = (predict(m.classifier, encode(m, products, 64)) for m in (model, loaded))
    assert (ours.paths == theirs.paths).all() and np.allclose(ours.probability, theirs.probability, atol=1e-5)
