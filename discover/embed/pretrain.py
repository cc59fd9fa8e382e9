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
from torch.utils.data import DataLoader, Subset
from tqdm.auto import tqdm

from discover.config import Config, PretrainConfig
from discover.embed.simclr_model import (
    SimCLRModel,
    TwoViews,
    freeze_early_blocks,
    simclr_transform,
    validation_score,
    validation_tensors,
)
from discover.errors import ConfigError
from discover.workspace import Workspace, atomic_path, write_json

log = logging.getLogger(__name__)


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


def training_step(model: SimCLRModel, criterion: torch.nn.Module, optimizer: torch.optim.Optimizer, views) -> float:
    """One SimCLR step on a batch of two views: NT-Xent between their projections; the loss."""
    first, second = views
    loss = criterion(model(first), model(second))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.item())


@dataclass
class _Training:
    """What one pretraining run carries from epoch to epoch, and into its checkpoint."""

    model: SimCLRModel
    optimizer: torch.optim.Optimizer
    settings: PretrainConfig
    epoch: int = 0
    step: int = 0
    best: float = 0.0
    initial: float = 0.0

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": self.epoch,
            "step": self.step,
            "best_score": self.best,
            "initial_score": self.initial,
            "settings": _training_settings(self.settings),
        }

    def resume(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        _check_resumable(path, state.get("settings", {}), self.settings)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.epoch, self.step = state["epoch"], state["step"]
        self.best, self.initial = state["best_score"], state["initial_score"]
        log.info("pretrain: resuming from %s at epoch %d, step %d", path, self.epoch, self.step)


def _held_out_slice(catalog, settings: PretrainConfig, seed: int, level: str):
    """Training rows, and the photos and given-category labels of a held-back validation slice."""
    order = np.random.default_rng(seed).permutation(len(catalog))
    held = order[: min(settings.validation_size, len(catalog) // 5)]
    images = validation_tensors(catalog["image_path"].to_numpy()[held].tolist(), settings.image_size)
    return np.sort(order[len(held) :]), images, catalog[level].to_numpy()[held]


def _epoch_loader(dataset: TwoViews, settings: PretrainConfig, seed: int, epoch: int, workers: int) -> DataLoader:
    """This epoch's batches: a sample drawn with the epoch's own seed, so a resume redraws it."""
    generator = torch.Generator().manual_seed(_seed_epoch(seed, epoch))
    per_epoch = settings.samples_per_epoch or len(dataset)
    sampler = torch.randperm(len(dataset), generator=generator)[:per_epoch].tolist()
    return DataLoader(
        Subset(dataset, sampler),
        batch_size=settings.batch_size,
        drop_last=len(sampler) >= settings.batch_size,
        num_workers=workers,
    )


def _start(config: Config, workspace: Workspace) -> tuple[_Training, TwoViews, torch.Tensor, np.ndarray]:
    """The model, optimizer and data of a run: resumed from its last checkpoint when there is one."""
    settings = config.pretrain
    catalog = workspace.load_catalog()
    catalog = catalog[catalog["image_path"] != ""].reset_index(drop=True)
    level = "level_" + str(min(config.discovery.level, sum(c.startswith("level_") for c in catalog.columns)))
    train, val_images, val_labels = _held_out_slice(catalog, settings, config.seed, level)
    model = SimCLRModel(settings.init)
    freeze_early_blocks(model, settings.freeze_blocks)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=settings.learning_rate, momentum=0.9, weight_decay=1e-6)
    run = _Training(model, optimizer, settings)
    run.initial = run.best = validation_score(model, val_images, val_labels)
    paths = catalog["image_path"].to_numpy()[train].tolist()
    return run, TwoViews(paths, simclr_transform(settings.image_size, settings)), val_images, val_labels


def pretrain(
    config: Config,
    workspace: Workspace,
    minutes: float | None = None,
    progress: bool = True,
    max_steps: int | None = None,
) -> PretrainResult:
    """Train (or resume) SimCLR on the workspace's photos; return where the checkpoints are."""
    from lightly.loss import NTXentLoss

    settings: PretrainConfig = config.pretrain
    budget = (minutes or settings.minutes or float("inf")) * 60
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.embed.torch_threads or torch.get_num_threads())
    run, dataset, val_images, val_labels = _start(config, workspace)
    models_dir = workspace.models_dir
    models_dir.mkdir(parents=True, exist_ok=True)
    tag = f"simclr-{settings.init}-{settings.image_size}px"
    last_path, best_path = models_dir / f"{tag}-last.pt", models_dir / f"{tag}-best.pt"
    if last_path.exists():
        run.resume(last_path)
    else:
        _save(best_path, {"backbone": run.model.backbone.state_dict(), "score": run.best, "epoch": 0})
    criterion = NTXentLoss(temperature=settings.temperature)
    losses: list[float] = []
    started = time.perf_counter()
    run.model.train()
    while run.epoch < settings.epochs and time.perf_counter() - started < budget:
        loader = _epoch_loader(dataset, settings, config.seed, run.epoch, config.embed.num_workers)
        bar = tqdm(loader, desc=f"SimCLR epoch {run.epoch + 1}/{settings.epochs}", unit="batch", disable=not progress)
        for views in bar:
            losses.append(training_step(run.model, criterion, run.optimizer, views))
            run.step += 1
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            if time.perf_counter() - started >= budget or (max_steps and run.step >= max_steps):
                break
        run.epoch += 1
        score = validation_score(run.model, val_images, val_labels)
        log.info("pretrain: epoch %d, step %d, loss %.3f, validation %.3f", run.epoch, run.step, losses[-1], score)
        if score > run.best:
            run.best = score
            _save(best_path, {"backbone": run.model.backbone.state_dict(), "score": score, "epoch": run.epoch})
        _save(last_path, run.state())
        if max_steps and run.step >= max_steps:
            break
    summary = {"best_score": run.best, "initial_score": run.initial, "epoch": run.epoch, "step": run.step}
    write_json(models_dir / f"{tag}.json", {**summary, "config": settings.model_dump()})
    seconds = time.perf_counter() - started
    return PretrainResult(best_path, last_path, run.epoch, run.step, run.best, run.initial, losses, seconds)
