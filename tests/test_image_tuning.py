"""Tuning the image encoder on the catalog's leaves: what it learns from, what it writes, how it is used."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from discover.classify.image_tuning import (
    ImageTuning,
    _augment,
    fold_file,
    read_pack,
    read_photos,
    tune_from_pack,
    tune_on_photos,
    write_pack,
)
from discover.cli import main
from discover.embed.efficientnet import EfficientNetLite0
from discover.errors import EmbedError
from discover.lite0 import load_backbone, shipped_weights
from discover.photos import photo_fold
from tests.conftest import FASHION, config_dict, fashion_rows, write_catalog


def test_an_unreadable_photo_is_marked_and_the_others_are_read(tmp_path: Path):
    good = str(FASHION / fashion_rows(1, seed=1)["image"].iloc[0])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    pixels, ok = read_photos([good, str(broken), good], size=32)
    assert pixels.shape == (3, 3, 32, 32) and pixels.dtype == torch.uint8
    assert ok.tolist() == [True, False, True]
    assert torch.equal(pixels[0], pixels[2]) and not torch.equal(pixels[0], pixels[1])


def test_a_pack_leaves_out_a_product_whose_photo_is_gone_and_keeps_the_rest(tmp_path: Path):
    good = str(FASHION / fashion_rows(1, seed=2)["image"].iloc[0])
    write_pack(
        tmp_path / "pack",
        ["a", "b", "c"],
        [good, str(tmp_path / "gone.jpg"), good],
        np.array([0, 1, 0]),
        ["train", "train", "validation"],
        classes=2,
    )
    (parts, classes) = read_pack(tmp_path / "pack")
    assert classes == 2 and parts["train"][1].tolist() == [0] and parts["validation"][1].tolist() == [0]
    assert all(Path(p).is_file() for p in parts["train"][0] + parts["validation"][0])


def test_augmentation_mirrors_and_shifts_over_white_and_keeps_the_photo():
    batch = torch.zeros(64, 3, 16, 16, dtype=torch.uint8)
    batch[:, :, :, :4] = 200  # a band on the left
    out = _augment(batch, shift=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == torch.uint8
    left, right = out[:, 0, 8, 2].float(), out[:, 0, 8, 13].float()
    assert (left == 200).any() and (right == 200).any()  # some mirrored, some not
    assert (out == 255).any()  # the shift brings in white margin, never wraps the photo round
    again = _augment(batch, shift=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded


def test_a_missing_checkpoint_names_the_file_and_the_command_that_writes_one(tmp_path: Path):
    with pytest.raises(EmbedError, match="nowhere.safetensors.*tune-image"):
        EfficientNetLite0(image_size=64, checkpoint=str(tmp_path / "nowhere.safetensors"))


def test_a_photo_fold_follows_its_bytes_so_copies_share_it_and_folds_are_all_used(tmp_path: Path):
    files = [str(FASHION / name) for name in fashion_rows(60, seed=3)["image"]]
    folds = [photo_fold(f, 3) for f in files]
    assert set(folds) == {0, 1, 2}
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(Path(files[0]).read_bytes())
    assert photo_fold(copy, 3) == folds[0]  # the tuning machine and the embedding one agree
    assert photo_fold(files[0], 1) == 0
    assert fold_file(Path("m/enc.safetensors"), 1, 3) == Path("m/enc-fold1of3.safetensors")
    assert fold_file(Path("m/enc.safetensors"), 0, 1) == Path("m/enc.safetensors")


def test_each_cross_fitted_encoder_trains_without_its_fold(tmp_path: Path, caplog):
    rows = fashion_rows(90, subcategories=("Topwear", "Shoes"), seed=5)
    paths = [str(FASHION / name) for name in rows["image"]]
    leaves = (rows["subCategory"] == "Shoes").to_numpy().astype(int)
    folds = np.array([photo_fold(p, 2) for p in paths])
    tuning = ImageTuning(image_size=32, epochs=1, batch_size=8)
    finished: list[int] = []
    caplog.set_level("INFO", logger="discover.classify.image_tuning")
    encoders = tune_on_photos(
        (paths[:70], leaves[:70]),
        (paths[70:], leaves[70:]),
        2,
        tuning,
        "cpu",
        progress=False,
        folds=2,
        done=lambda fold, _: finished.append(fold),
    )
    assert len(encoders) == 2 and finished == [0, 1]
    for fold in (0, 1):
        held_out_count = int((folds[:70] != fold).sum())
        assert f"encoder {fold + 1} of 2 on {held_out_count} training photos (fold {fold} held out)" in caplog.text
    assert not torch.equal(encoders[0].state["_conv_head.weight"], encoders[1].state["_conv_head.weight"])


def test_cross_fitted_checkpoints_embed_each_photo_with_the_file_of_its_fold(tmp_path: Path):
    """Two files of distinct weights stand for two folds: every photo's vector is its fold's file's."""
    other = tmp_path / "other.safetensors"
    from safetensors.torch import save_file

    state = {
        k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v
        for k, v in load_backbone().state_dict().items()
    }
    save_file({k: v.contiguous() for k, v in state.items() if not k.startswith("_fc.")}, str(other))
    files = [str(FASHION / name) for name in fashion_rows(12, seed=4)["image"]]
    folds = np.array([photo_fold(f, 2) for f in files])
    assert set(folds) == {0, 1}
    both = EfficientNetLite0(image_size=32, checkpoints=[shipped_weights(), str(other)])
    single = [EfficientNetLite0(image_size=32), EfficientNetLite0(image_size=32, checkpoint=str(other))]
    crossed = both.embed_images(files, batch_size=5, progress=False).vectors
    for fold in (0, 1):
        alone = single[fold].embed_images(files, batch_size=5, progress=False).vectors
        np.testing.assert_allclose(crossed[folds == fold], alone[folds == fold], atol=1e-4)
        assert not np.allclose(crossed[folds != fold], alone[folds != fold], atol=1e-3)
    assert both.fingerprint not in {s.fingerprint for s in single}  # cached apart from either file's vectors


def test_weights_that_are_not_lite0_are_refused_with_the_file_named(tmp_path: Path):
    from safetensors.torch import save_file

    wrong = tmp_path / "wrong.safetensors"
    save_file({"_conv_stem.weight": load_backbone().state_dict()["_conv_stem.weight"]}, str(wrong))  # one layer
    with pytest.raises(RuntimeError, match="wrong.safetensors.*not EfficientNet-Lite0"):
        load_backbone(wrong)


@pytest.mark.slow
def test_tune_image_learns_from_training_photos_only_and_its_weights_embed(tmp_path: Path, capsys):
    rows = fashion_rows(180, subcategories=("Topwear", "Shoes", "Bags"), seed=7)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    raw = config_dict(directory)
    raw["classify"] = {"epochs": 3, "include_truth": False}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    ws = ["--workspace", str(tmp_path / "ws")]
    assert main(["classify", "train", str(config), *ws]) == 0
    (model_json,) = (tmp_path / "ws" / "models" / "classify").glob("*/model.json")
    test_ids = set(json.loads(model_json.read_text())["test_ids"])

    pack = tmp_path / "pack"
    assert main(["classify", "tune-image", str(config), *ws, "--pack", str(pack)]) == 0
    packed = pd.read_csv(pack / "rows.csv", dtype={"product_id": str})
    assert test_ids and not set(packed["product_id"]) & test_ids  # the classifier's test photos never travel
    assert set(packed["product_id"]) | test_ids == set(rows["id"])
    assert sorted(p.name for p in (pack / "photos").iterdir()) == sorted(packed["file"])

    out = tmp_path / "encoder.safetensors"
    tuning = ImageTuning(image_size=64, epochs=4, batch_size=16, learning_rate=1e-3, warmup_epochs=0.5)
    (tuned,) = tune_from_pack(pack, out, tuning, device="cpu", weights=None)
    assert tuned.best["validation_accuracy"] > 0.75  # three subcategories, told apart from the photo alone
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert len(record["history"]) == 4 and record["best"] == tuned.best

    imagenet, mine = EfficientNetLite0(image_size=64), EfficientNetLite0(image_size=64, checkpoint=str(out))
    assert mine.fingerprint != imagenet.fingerprint  # cached apart from ImageNet's vectors
    photos, _ = read_photos([str(FASHION / i) for i in rows["image"].iloc[:4]], 64)
    batch = torch.stack([mine.transform(Image.fromarray(p.permute(1, 2, 0).numpy())) for p in photos])
    with torch.no_grad():
        assert not np.allclose(mine.forward(batch).numpy(), imagenet.forward(batch).numpy(), atol=1e-3)

    # Cross-fitted on this machine: the printed line is a config that embeds with them.
    capsys.readouterr()
    assert main(["classify", "tune-image", str(config), *ws, "--folds", "2", "--epochs", "1"]) == 0
    use = capsys.readouterr().out.split("use it: embed.image: ")[1]
    image = yaml.safe_load(use)
    assert image["image_size"] == 64 and len(image["checkpoints"]) == 2
    assert all(Path(f).is_file() and f.endswith(f"-fold{k}of2.safetensors") for k, f in enumerate(image["checkpoints"]))
    raw["embed"]["image"] = image
    config.write_text(yaml.safe_dump(raw))
    assert main(["embed", str(config), *ws]) == 0
