"""SimCLR self-supervised refinement of the image backbone on the catalog's own photos.

SimCLR (Chen et al., 2020, arXiv 2002.05709) with lightly's transform, projection head and
NT-Xent loss, on EfficientNet-Lite0 initialised from ImageNet (transfer) or at random.

Augmentations, chosen for catalogue photos (product centred on a plain background):
- crops of 35–100 % of the photo (SimCLR's 8 % would often cut the product away);
- horizontal flips only: products are never shown upside down, so no vertical flip;
- colour-invariant views: brightness/contrast jitter plus saturation and hue shifts and
  occasional grey-scale (SimCLR's colour distortion at half strength; every knob is in
  `PretrainConfig`). This is deliberate. Colour is a real product attribute, but it is not
  the product *type*, and discovery proposes types. Without colour distortion the
  contrastive task is solved by colour histograms alone (Chen et al. found the same on
  ImageNet), and the features lean on colour rather than shape. Measured on the dev half (12 CPU
  minutes, BENCHMARKS.md has the held-out run): keeping colour gave no improvement over
  ImageNet at all (the validation score never rose, so the best checkpoint stayed the
  ImageNet one), whereas colour-invariant views lifted image-only purity from 0.541 to
  0.640 and Hungarian accuracy from 0.395 to 0.421. Colour stays available to curators as
  a catalog attribute and through the titles.
- light Gaussian blur (photos are small and often soft already).

Training: the first `freeze_blocks` MBConv blocks stay frozen (their ImageNet edges and
textures transfer well and freezing makes each step much cheaper on a CPU). A checkpoint
is written atomically after every epoch and on the time budget; a killed run resumes from
the last one with the optimizer state and ends with the same weights as an unbroken run
(each epoch's views are seeded by the config's seed and the epoch number; a kill in the
middle of an epoch redoes that epoch). The best checkpoint by a cheap validation score —
nearest-neighbour agreement of the *given* category level on a held-back slice, never the
hidden truth — is kept as ``models/simclr-<init>-<size>px-best.pt`` for the ``simclr``
embedder; if no epoch beats the starting backbone, that file stays the starting backbone.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from discover.config import Config, PretrainConfig
from discover.embed.base import letterbox
from discover.embed.efficientnet import MEAN, STD, backbone_features, load_backbone
from discover.errors import ConfigError
from discover.workspace import Workspace, atomic_path, write_json

log = logging.getLogger(__name__)


def simclr_transform(image_size: int, settings: PretrainConfig | None = None):
    """lightly's SimCLR transform with the product-photo choices documented above."""
    from lightly.transforms import SimCLRTransform

    settings = settings or PretrainConfig(image_size=image_size)
    return SimCLRTransform(
        input_size=image_size,
        cj_prob=0.8,
        cj_strength=1.0,
        cj_bright=0.2,
        cj_contrast=0.2,
        cj_sat=settings.saturation_jitter,
        cj_hue=settings.hue_jitter,
        min_scale=settings.min_crop_scale,
        random_gray_scale=settings.grayscale_probability,
        gaussian_blur=0.2,
        vf_prob=0.0,
        hf_prob=0.5,
        normalize={"mean": list(MEAN), "std": list(STD)},
    )


class _TwoViews(Dataset):
    def __init__(self, paths: list[str], transform) -> None:
        self.paths, self.transform = paths, transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        with Image.open(self.paths[index]) as image:
            square = letterbox(image, max(image.size))
        first, second = self.transform(square)
        return first, second


class SimCLRModel(nn.Module):
    """Backbone + lightly's 2-layer projection head; `features` is what embedders use."""

    def __init__(self, init: str = "imagenet") -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet
        from lightly.models.modules import SimCLRProjectionHead

        self.backbone = load_backbone() if init == "imagenet" else EfficientNet.from_name("efficientnet-lite0")
        self.head = SimCLRProjectionHead(1280, 512, 128)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return backbone_features(self.backbone, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def freeze_early_blocks(model: SimCLRModel, blocks: int) -> None:
    """Freeze the stem and the first `blocks` MBConv blocks."""
    frozen = [model.backbone._conv_stem, model.backbone._bn0, *model.backbone._blocks[:blocks]]
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad = False


def neighbour_agreement(vectors: np.ndarray, labels: np.ndarray) -> float:
    """Share of items whose nearest other item (cosine) has the same label."""
    normed = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = normed @ normed.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(labels[similarity.argmax(axis=1)] == labels))


def _validation_tensors(paths: list[str], image_size: int) -> torch.Tensor:
    from torchvision.transforms import functional as F

    images = []
    for path in paths:
        with Image.open(path) as image:
            images.append(F.normalize(F.to_tensor(letterbox(image, image_size)), MEAN, STD))
    return torch.stack(images)


@torch.inference_mode()
def validation_score(model: SimCLRModel, images: torch.Tensor, labels: np.ndarray) -> float:
    model.eval()
    vectors = torch.cat([model.features(images[i : i + 256]) for i in range(0, len(images), 256)]).numpy()
    model.train()
    return neighbour_agreement(vectors, labels)


@dataclass
class PretrainResult:
    best_path: Path
    last_path: Path
    epochs: int
    steps: int
    best_score: float
    initial_score: float
    losses: list[float]
    seconds: float

    def summary(self) -> str:
        return (
            f"SimCLR: {self.epochs} epochs, {self.steps} steps in {self.seconds / 60:.1f} min; "
            f"loss {self.losses[0]:.3f} → {self.losses[-1]:.3f}; "
            f"validation neighbour agreement {self.initial_score:.3f} → best {self.best_score:.3f}\n"
            f"best checkpoint {self.best_path}  (use embed.image: {{name: simclr, checkpoint: {self.best_path}}})"
            if self.losses
            else f"SimCLR: nothing to do; best checkpoint {self.best_path}"
        )


# Settings a run may change between a kill and its resume; every other one shapes the model.
RESUMABLE_CHANGES = {"epochs", "minutes", "samples_per_epoch"}


def _training_settings(settings: PretrainConfig) -> dict:
    return {k: v for k, v in settings.model_dump().items() if k not in RESUMABLE_CHANGES}


def _check_resumable(path: Path, saved: dict, settings: PretrainConfig) -> None:
    """Refuse to continue a checkpoint trained with other settings: the result would be neither."""
    now = _training_settings(settings)
    changed = [f"{k}: {saved[k]!r} → {now[k]!r}" for k in now if k in saved and saved[k] != now[k]]
    if changed:
        raise ConfigError(
            f"{path} was trained with other pretrain settings ({'; '.join(changed)}); "
            "delete it to start over with the new settings, or use another workspace"
        )


def _seed_epoch(seed: int, epoch: int) -> int:
    """Seed every RNG an epoch draws from (views: torch and, for lightly's blur, numpy); return the seed.

    Each epoch depends only on the seed and its number, so a run killed after epoch k and
    resumed ends with the same weights as one that was never interrupted.
    """
    epoch_seed = seed * 100_003 + epoch
    torch.manual_seed(epoch_seed)
    np.random.seed(epoch_seed % 2**32)
    random.seed(epoch_seed)
    return epoch_seed


def _save(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def pretrain(
    config: Config,
    workspace: Workspace,
    minutes: float | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> PretrainResult:
    """Train (or resume) SimCLR on the workspace's photos; return where the checkpoints are."""
    settings: PretrainConfig = config.pretrain
    budget = (minutes or settings.minutes or float("inf")) * 60
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.embed.torch_threads or torch.get_num_threads())
    catalog = workspace.load_catalog()
    catalog = catalog[catalog["image_path"] != ""].reset_index(drop=True)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(catalog))
    held = order[: min(settings.validation_size, len(catalog) // 5)]
    train = np.sort(order[len(held) :])
    level = "level_" + str(min(config.discovery.level, sum(c.startswith("level_") for c in catalog.columns)))
    val_images = _validation_tensors(catalog["image_path"].to_numpy()[held].tolist(), settings.image_size)
    val_labels = catalog[level].to_numpy()[held]

    model = SimCLRModel(settings.init)
    freeze_early_blocks(model, settings.freeze_blocks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=settings.learning_rate, momentum=0.9, weight_decay=1e-6)
    from lightly.loss import NTXentLoss

    criterion = NTXentLoss(temperature=settings.temperature)
    models_dir = workspace.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    tag = f"simclr-{settings.init}-{settings.image_size}px"
    last_path, best_path = models_dir / f"{tag}-last.pt", models_dir / f"{tag}-best.pt"
    epoch = step = 0
    losses: list[float] = []
    initial = best = validation_score(model, val_images, val_labels)
    if last_path.exists():
        state = torch.load(last_path, map_location="cpu", weights_only=True)
        _check_resumable(last_path, state.get("settings", {}), settings)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, best, initial = state["epoch"], state["step"], state["best_score"], state["initial_score"]
        log.info("pretrain: resuming from %s at epoch %d, step %d", last_path, epoch, step)
    else:
        _save(best_path, {"backbone": model.backbone.state_dict(), "score": best, "epoch": 0})

    paths = catalog["image_path"].to_numpy()[train].tolist()
    dataset = _TwoViews(paths, simclr_transform(settings.image_size, settings))
    started = time.perf_counter()
    model.train()
    while epoch < settings.epochs and time.perf_counter() - started < budget:
        generator = torch.Generator().manual_seed(_seed_epoch(config.seed, epoch))
        per_epoch = settings.samples_per_epoch or len(dataset)
        sampler = torch.randperm(len(dataset), generator=generator)[:per_epoch].tolist()
        loader = DataLoader(
            torch.utils.data.Subset(dataset, sampler),
            batch_size=settings.batch_size,
            drop_last=len(sampler) >= settings.batch_size,
            num_workers=config.embed.num_workers,
        )
        bar = tqdm(loader, desc=f"SimCLR epoch {epoch + 1}/{settings.epochs}", unit="batch", disable=not progress)
        for first, second in bar:
            loss = criterion(model(first), model(second))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if time.perf_counter() - started >= budget or (max_steps and step >= max_steps):
                break
        epoch += 1
        score = validation_score(model, val_images, val_labels)
        log.info("pretrain: epoch %d, step %d, loss %.3f, validation %.3f", epoch, step, losses[-1], score)
        if score > best:
            best = score
            _save(best_path, {"backbone": model.backbone.state_dict(), "score": best, "epoch": epoch})
        _save(
            last_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "epoch": epoch,
                "step": step,
                "best_score": best,
                "initial_score": initial,
                "settings": _training_settings(settings),
            },
        )
        if max_steps and step >= max_steps:
            break
    write_json(
        models_dir / f"{tag}.json",
        {"best_score": best, "initial_score": initial, "epoch": epoch, "step": step, "config": settings.model_dump()},
    )
    return PretrainResult(best_path, last_path, epoch, step, best, initial, losses, time.perf_counter() - started)
