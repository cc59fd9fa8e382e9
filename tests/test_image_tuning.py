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
    read_pack,
    read_photos,
    tune_from_pack,
    write_pack,
)
from discover.cli import main
from discover.embed.efficientnet import EfficientNetLite0
from discover.errors import EmbedError
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
    tuned = tune_from_pack(pack, out, tuning, device="cpu", weights=None)
    assert tuned.best["validation_accuracy"] > 0.75  # three subcategories, told apart from the photo alone
    record = json.loads(out.with_name(out.name + ".json").read_text())
    assert len(record["history"]) == 4 and record["best"] == tuned.best

    imagenet, mine = EfficientNetLite0(image_size=64), EfficientNetLite0(image_size=64, checkpoint=str(out))
    assert mine.fingerprint != imagenet.fingerprint  # cached apart from ImageNet's vectors
    photos, _ = read_photos([str(FASHION / i) for i in rows["image"].iloc[:4]], 64)
    batch = torch.stack([mine.transform(Image.fromarray(p.permute(1, 2, 0).numpy())) for p in photos])
    with torch.no_grad():
        assert not np.allclose(mine.forward(batch).numpy(), imagenet.forward(batch).numpy(), atol=1e-3)
