"""SimCLR pretraining on tiny real photos: the loss falls, runs resume, checkpoints embed."""

from pathlib import Path

import numpy as np
import pytest
import torch

from discover.config import PretrainConfig
from discover.embed import create_embedder
from discover.embed.base import file_digest
from discover.embed.efficientnet import MEAN, STD
from discover.errors import ConfigError
from discover.ingest import ingest
from discover.pretrain import SimCLRModel, freeze_early_blocks, pretrain, simclr_transform
from discover.workspace import Workspace
from tests.conftest import fashion_rows, make_config, write_catalog


def _workspace(tmp_path: Path, **overrides):
    directory = write_catalog(tmp_path / "catalog", fashion_rows(60, seed=9)).parent
    config = make_config(
        directory,
        pretrain__image_size=32,
        pretrain__batch_size=16,
        pretrain__samples_per_epoch=32,
        pretrain__validation_size=12,
        embed__num_workers=0,
        **overrides,
    )
    workspace = Workspace(tmp_path / "ws")
    ingest(config, workspace, show_progress=False)
    return config, workspace


def test_a_few_steps_on_tiny_images_lower_the_loss(small_catalog: Path):
    from lightly.loss import NTXentLoss
    from PIL import Image

    torch.manual_seed(0)
    transform = simclr_transform(32)
    photos = sorted((small_catalog / "images").iterdir())[:16]
    views = [transform(Image.open(p).convert("RGB")) for p in photos]
    first, second = torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])
    model = SimCLRModel("imagenet")
    freeze_early_blocks(model, 10)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    criterion = NTXentLoss(temperature=0.2)
    losses = []
    for _ in range(6):
        loss = criterion(model(first), model(second))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.9


def test_resume_continues_from_the_saved_step_with_the_optimizer_state(tmp_path: Path):
    config, workspace = _workspace(tmp_path, pretrain__epochs=1)
    first = pretrain(config, workspace, progress=False)
    assert (first.epochs, first.steps) == (1, 2)
    saved = torch.load(first.last_path, weights_only=True)
    assert saved["optimizer"]["state"], "momentum buffers are checkpointed"
    config.pretrain.epochs = 2
    resumed = pretrain(config, workspace, progress=False)
    assert (resumed.epochs, resumed.steps) == (2, 4) and len(resumed.losses) == 2
    after = torch.load(resumed.last_path, weights_only=True)
    assert after["step"] == 4 and after["initial_score"] == saved["initial_score"]


def test_simclr_embedder_is_deterministic_and_fingerprinted_by_checkpoint(tmp_path: Path):
    config, workspace = _workspace(tmp_path, pretrain__epochs=1)
    result = pretrain(config, workspace, progress=False, max_steps=1)
    paths = workspace.load_catalog()["image_path"].head(6).tolist()
    embedder = create_embedder("simclr", "image", image_size=32, checkpoint=str(result.best_path))
    again = create_embedder("simclr", "image", image_size=32, checkpoint=str(result.best_path))
    vectors = embedder.embed_images(paths, progress=False).vectors
    assert vectors.shape == (6, 1280) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, again.embed_images(paths, batch_size=2, progress=False).vectors, atol=1e-5)
    assert file_digest(result.best_path)[:12] in embedder.fingerprint


def _mean_rgb(view: torch.Tensor) -> torch.Tensor:
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    return (view * std + mean).mean(dim=(1, 2))


def test_default_views_vary_colour_and_the_config_can_keep_it():
    from PIL import Image

    red = Image.new("RGB", (60, 80), (200, 40, 40))
    torch.manual_seed(0)
    views = [v for _ in range(20) for v in simclr_transform(32, PretrainConfig(image_size=32))(red)]
    channels = torch.stack([_mean_rgb(v) for v in views])
    greyish = (channels.max(dim=1).values - channels.min(dim=1).values) < 0.05
    assert 0 < greyish.sum() < len(views), "the default views turn some, not all, photos grey"
    kept = simclr_transform(
        32, PretrainConfig(image_size=32, hue_jitter=0, saturation_jitter=0, grayscale_probability=0)
    )
    for _ in range(20):
        for view in kept(red):
            r, g, b = _mean_rgb(view)
            assert r > g + 0.2 and r > b + 0.2, "with colour kept, a red product stays red"


def test_resume_refuses_a_checkpoint_trained_with_other_settings(tmp_path: Path):
    config, workspace = _workspace(tmp_path, pretrain__epochs=1)
    pretrain(config, workspace, progress=False)
    config.pretrain.epochs, config.pretrain.temperature = 2, 0.5
    with pytest.raises(ConfigError, match=r"simclr-imagenet-32px-last\.pt.*temperature: 0\.2 → 0\.5"):
        pretrain(config, workspace, progress=False)
