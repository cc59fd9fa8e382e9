"""SimCLR pretraining on tiny real photos: the loss falls, runs resume, checkpoints embed."""

import random
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from discover.config import PretrainConfig
from discover.data.ingest import ingest
from discover.embed import create_embedder
from discover.embed.base import file_digest
from discover.embed.efficientnet import MEAN, STD
from discover.embed.pretrain import pretrain, training_step
from discover.embed.simclr_model import SimCLRModel, freeze_early_blocks, simclr_transform
from discover.errors import ConfigError
from discover.workspace import Workspace
from tests.conftest import CLI, REPO, config_dict, fashion_rows, make_config, write_catalog

TINY = {
    "pretrain__image_size": 32,
    "pretrain__batch_size": 16,
    "pretrain__samples_per_epoch": 32,
    "pretrain__validation_size": 12,
    "embed__num_workers": 0,
    # one torch thread in the killed subprocess and in this process alike: bit-equal resumes are
    # promised for the same thread count (other tests may have set this process's count to all cores)
    "embed__torch_threads": 1,
}


def _workspace(tmp_path: Path, name: str = "ws", **overrides):
    directory = tmp_path / "catalog"
    if not directory.exists():
        write_catalog(directory, fashion_rows(60, seed=9))
    config = make_config(directory, **TINY, **overrides)
    workspace = Workspace(tmp_path / name)
    ingest(config, workspace, show_progress=False)
    return config, workspace


def test_a_few_steps_on_tiny_images_lower_the_loss(small_catalog: Path):
    from lightly.loss import NTXentLoss
    from PIL import Image

    torch.manual_seed(0)  # lightly's blur draws from numpy's global state, flips from Python's
    np.random.seed(0)
    random.seed(0)
    transform = simclr_transform(32)
    photos = sorted((small_catalog / "images").iterdir())[:16]
    views = [transform(Image.open(p).convert("RGB")) for p in photos]
    first, second = torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])
    model = SimCLRModel("imagenet")
    freeze_early_blocks(model, 10)
    # a rate small enough for 16 photos: at 0.05 the loss swung (the suite once ended 0.4 % above its start)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    criterion = NTXentLoss(temperature=0.2)
    losses = [training_step(model, criterion, optimizer, (first, second)) for _ in range(8)]
    assert losses[-1] < losses[0] * 0.5  # ~0.1 of it on every seed tried


def test_a_killed_run_resumes_and_ends_with_the_weights_of_an_unbroken_run(tmp_path: Path):
    config, killed = _workspace(tmp_path, "killed", pretrain__epochs=1000)
    (tmp_path / "long.yaml").write_text(config.to_yaml())
    command = [*CLI, "pretrain", str(tmp_path / "long.yaml"), "--workspace", str(killed.root)]
    with open(tmp_path / "stderr.txt", "w") as stderr:
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    last = killed.models_dir / "simclr-imagenet-32px-last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-2000:]
    saved = torch.load(last, weights_only=True)  # written atomically: whole despite the kill
    assert saved["optimizer"]["state"], "momentum buffers are checkpointed"
    epochs = saved["epoch"] + 1

    config.pretrain.epochs = epochs
    resumed = pretrain(config, killed, progress=False)
    assert (resumed.epochs, resumed.steps) == (epochs, saved["step"] + 2)
    unbroken_config, unbroken = _workspace(tmp_path, "unbroken", pretrain__epochs=epochs)
    pretrain(unbroken_config, unbroken, progress=False)
    after = torch.load(last, weights_only=True)
    assert after["initial_score"] == saved["initial_score"], "the starting score survives the resume"
    reference = torch.load(unbroken.models_dir / last.name, weights_only=True)
    for name, tensor in reference["model"].items():
        torch.testing.assert_close(after["model"][name], tensor, rtol=1e-4, atol=1e-5, msg=name)
    momentum = reference["optimizer"]["state"]
    for key, buffers in momentum.items():
        torch.testing.assert_close(after["optimizer"]["state"][key]["momentum_buffer"], buffers["momentum_buffer"])


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


def test_pretrain_then_run_on_the_checkpoint_from_the_command_line(small_catalog: Path, tmp_path: Path):
    workspace = tmp_path / "ws"
    checkpoint = workspace / "models" / "simclr-imagenet-32px-best.pt"
    raw = config_dict(small_catalog, **TINY, pretrain__epochs=1, discovery__min_parent_size=20)
    raw["embed"]["image"] = {"name": "simclr", "image_size": 32, "checkpoint": str(checkpoint)}
    (tmp_path / "simclr.yaml").write_text(yaml.safe_dump(raw))

    def discover(command: str, where: Path = workspace) -> subprocess.CompletedProcess:
        config = str(tmp_path / "simclr.yaml")
        argv = [*CLI, command, config, "--workspace", str(where)]
        return subprocess.run(argv, capture_output=True, text=True, cwd=REPO)

    before = discover("run", tmp_path / "untrained")
    assert before.returncode == 2 and "run `discover pretrain` first" in before.stderr
    trained = discover("pretrain")  # on a fresh workspace: it ingests the catalog itself
    assert trained.returncode == 0, trained.stderr
    assert f"best checkpoint {checkpoint}" in trained.stdout and "2 steps" in trained.stdout
    ran = discover("run")
    assert ran.returncode == 0, ran.stderr
    (run_dir,) = (workspace / "runs").iterdir()
    assert (run_dir / "tree.json").is_file()
    fingerprint = "simclr-32px-" + file_digest(checkpoint)[:12]
    assert (workspace / "embeddings" / f"{fingerprint}.npy").is_file(), "photos embedded with the trained weights"
