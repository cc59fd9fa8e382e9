"""Tune the image encoder on the catalog's own leaf categories, then embed with it.

The frozen strategy reads ImageNet features, which tell a heel from a flat poorly: the
classifier's leaf errors are mostly footwear whose title does not name the type. Here
EfficientNet-Lite0 is trained whole (every layer) to predict the leaf category from the photo
alone, on the training split, keeping the epoch with the best validation accuracy. Its
weights go into a ``.safetensors`` file; ``embed.image: {name: efficientnet-lite0,
checkpoint: FILE}`` then embeds the catalog with it, cached apart from ImageNet's vectors,
and the fast frozen classifier trains on those vectors as before (a staged strategy: the
encoder first, the fusion and heads after).

A CPU trains it in hours; a GPU in minutes. The module imports only torch, Pillow, numpy and
the architecture package, so a GPU machine with little else installed runs it as
``python -m discover.classify.image_tuning PACK --out FILE --device cuda`` on a pack written
by ``discover classify tune-image CONFIG --workspace DIR --pack PACK``.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from discover.lite0 import DIM, MEAN, STD, backbone_features, load_backbone
from discover.photos import letterbox, photo_fold

log = logging.getLogger(__name__)
PACK_ROWS = "rows.csv"
PACK_PHOTOS = "photos"


@dataclass
class ImageTuning:
    """How the encoder trains (the defaults: a few epochs, what a 2-core CPU finishes in under an hour at 80 px)."""

    image_size: int = 128  # the embedder's size, so the tuned weights see what they will embed
    epochs: int = 4
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1
    warmup_epochs: float = 0.3
    shift: int = 8  # random shift (pixels, white padding) and mirror: the only augmentation
    seed: int = 0


@dataclass
class TunedEncoder:
    """The best epoch's backbone weights and the validation accuracy of every epoch."""

    state: dict[str, torch.Tensor]
    history: list[dict] = field(default_factory=list)

    @property
    def best(self) -> dict:
        return max(self.history, key=lambda h: h["validation_accuracy"])


def fold_file(out: Path, fold: int, folds: int) -> Path:
    """``enc.safetensors`` → ``enc-fold0of3.safetensors``; `out` itself when not cross-fitted."""
    return out if folds <= 1 else out.with_name(f"{out.stem}-fold{fold}of{folds}{out.suffix}")


def read_photos(paths: list[str], size: int, workers: int = 4) -> tuple[torch.Tensor, np.ndarray]:
    """Letterboxed photos as uint8 (N × 3 × size × size) and which ones could be read; an
    unreadable photo is a white square marked False, never a crash."""

    def one(path: str) -> tuple[np.ndarray, bool]:
        try:
            with Image.open(path) as image:
                return np.asarray(letterbox(image, size)), True
        except OSError:
            return np.full((size, size, 3), 255, np.uint8), False

    with ThreadPoolExecutor(workers) as pool:
        loaded = list(
            tqdm(pool.map(one, paths), total=len(paths), desc="read photos", unit="photo", leave=False, disable=None)
        )
    pixels = np.stack([p for p, _ in loaded]) if loaded else np.zeros((0, size, size, 3), np.uint8)
    return torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(), np.array([ok for _, ok in loaded], bool)


def _normalise(batch: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=batch.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=batch.device).view(1, 3, 1, 1)
    return (batch.float() / 255 - mean) / std


def _augment(batch: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Mirror half the photos and shift each by up to `shift` pixels over a white margin."""
    n, _, height, width = batch.shape
    flip = torch.rand(n, generator=generator) < 0.5
    batch = torch.where(flip.to(batch.device).view(n, 1, 1, 1), batch.flip(3), batch)
    if shift <= 0:
        return batch
    padded = nn.functional.pad(batch, (shift, shift, shift, shift), value=255)
    dx, dy = (torch.randint(0, 2 * shift + 1, (n,), generator=generator) for _ in range(2))
    rows = (dy.view(n, 1) + torch.arange(height)).to(batch.device)
    cols = (dx.view(n, 1) + torch.arange(width)).to(batch.device)
    index = torch.arange(n, device=batch.device).view(n, 1, 1, 1)
    channel = torch.arange(3, device=batch.device).view(1, 3, 1, 1)
    return padded[index, channel, rows.view(n, 1, height, 1), cols.view(n, 1, 1, width)]


class _PhotoClassifier(nn.Module):
    def __init__(self, classes: int, weights_path: str | Path | None) -> None:
        super().__init__()
        self.backbone = load_backbone(weights_path)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(DIM, classes))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.head(backbone_features(self.backbone, batch))


def _accuracy(model: _PhotoClassifier, pixels: torch.Tensor, leaves: np.ndarray, device: str, batch: int) -> float:
    model.eval()
    hits = 0
    with torch.no_grad(), _autocast(device):
        for start in range(0, len(pixels), batch):
            logits = model(_normalise(pixels[start : start + batch].to(device)))
            hits += int((logits.argmax(1).cpu().numpy() == leaves[start : start + batch]).sum())
    return hits / max(1, len(pixels))


def _autocast(device: str) -> torch.autocast:
    kind = "cuda" if device.startswith("cuda") else "cpu"
    return torch.autocast(kind, dtype=torch.bfloat16, enabled=kind == "cuda")


def _train_step(
    model: _PhotoClassifier,
    optimiser: torch.optim.Optimizer,
    loss_of: nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    device: str,
) -> torch.Tensor:
    """One optimiser step on a batch of (augmented) photos; the batch's loss. Training and
    the timing probe of :func:`epochs_within` both take it, so the probe times what runs."""
    with _autocast(device):
        loss = loss_of(model(_normalise(images)).float(), targets)
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    return loss


def epochs_within(
    budget_s: float, train_pixels: torch.Tensor, classes: int, tuning: ImageTuning, device: str, weights_path=None
) -> int:
    """How many epochs (at most ``tuning.epochs``, at least 1) fit in `budget_s` seconds, from
    timing a few steps of a throwaway copy of the model on this device."""
    model = _PhotoClassifier(classes, weights_path).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-9)
    loss_of = nn.CrossEntropyLoss(label_smoothing=tuning.label_smoothing)
    generator = torch.Generator().manual_seed(tuning.seed)
    batch = train_pixels[: tuning.batch_size].to(device)
    targets = torch.zeros(len(batch), dtype=torch.long, device=device)

    def step() -> None:
        _train_step(model, optimiser, loss_of, _augment(batch, tuning.shift, generator), targets, device)

    for _ in range(3):  # warm-up: cuDNN picks its kernels
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started, probes = time.perf_counter(), 10
    for _ in range(probes):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - started) / probes
    per_epoch = per_step * max(1, len(train_pixels) // tuning.batch_size) * 1.15  # + validation
    epochs = int(max(1, min(tuning.epochs, budget_s // per_epoch)))
    log.info(
        "tune image: %.1f ms a step, about %.0f s an epoch: %d epochs in %.0f s",
        per_step * 1e3,
        per_epoch,
        epochs,
        budget_s,
    )
    return epochs


def tune_image_encoder(
    train_pixels: torch.Tensor,
    train_leaves: np.ndarray,
    validation_pixels: torch.Tensor,
    validation_leaves: np.ndarray,
    classes: int,
    tuning: ImageTuning,
    device: str = "cpu",
    weights_path: str | Path | None = None,
    progress: bool = True,
) -> TunedEncoder:
    """Train the whole backbone and a linear leaf head; return the best validation epoch's backbone.

    Warm-up then cosine decay of the learning rate, label smoothing, bf16 on a GPU.
    """
    torch.manual_seed(tuning.seed)
    generator = torch.Generator().manual_seed(tuning.seed)
    model = _PhotoClassifier(classes, weights_path).to(device)
    if device.startswith("cuda"):  # the photos fit in GPU memory: no copy per batch
        torch.backends.cudnn.benchmark = True
        train_pixels, validation_pixels = train_pixels.to(device), validation_pixels.to(device)
    optimiser = torch.optim.AdamW(model.parameters(), tuning.learning_rate, weight_decay=tuning.weight_decay)
    steps_per_epoch = max(1, len(train_pixels) // tuning.batch_size)
    total, warmup = tuning.epochs * steps_per_epoch, tuning.warmup_epochs * steps_per_epoch

    def rate(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, rate)
    loss_of = nn.CrossEntropyLoss(label_smoothing=tuning.label_smoothing)
    targets = torch.as_tensor(train_leaves, dtype=torch.long, device=train_pixels.device)
    tuned = TunedEncoder(state={})
    best = -1.0
    for epoch in range(tuning.epochs):
        started = time.perf_counter()
        model.train()
        order = torch.randperm(len(train_pixels), generator=generator).to(train_pixels.device)
        batches = order[: steps_per_epoch * tuning.batch_size].view(steps_per_epoch, -1)
        total_loss = 0.0
        for rows in tqdm(batches, desc=f"tune image encoder {epoch + 1}/{tuning.epochs}", disable=not progress):
            images = _augment(train_pixels[rows].to(device), tuning.shift, generator)
            loss = _train_step(model, optimiser, loss_of, images, targets[rows].to(device), device)
            schedule.step()
            total_loss += loss.detach().item()
        accuracy = _accuracy(model, validation_pixels, validation_leaves, device, tuning.batch_size)
        seconds = time.perf_counter() - started
        tuned.history.append(
            {"epoch": epoch + 1, "loss": total_loss / steps_per_epoch, "validation_accuracy": accuracy, "s": seconds}
        )
        log.info("tune image encoder: epoch %d, validation leaf accuracy %.4f (%.0f s)", epoch + 1, accuracy, seconds)
        if accuracy > best:
            best = accuracy
            tuned.state = {k: v.detach().float().cpu().clone() for k, v in model.backbone.state_dict().items()}
    return tuned


def save_encoder(tuned: TunedEncoder, path: Path, tuning: ImageTuning, about: dict | None = None) -> Path:
    """The weights as ``.safetensors`` (written atomically) and what made them in ``<path>.json``."""
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    # The ImageNet classifier (_fc) is never read when embedding: a quarter of the file.
    kept = {k: v.contiguous() for k, v in tuned.state.items() if not k.startswith("_fc.")}
    save_file(kept, str(partial))
    partial.replace(path)
    record = {"tuning": asdict(tuning), "history": tuned.history, "best": tuned.best, **(about or {})}
    side = path.with_name(path.name + ".json")
    side.with_name(side.name + ".partial").write_text(json.dumps(record, indent=1))
    side.with_name(side.name + ".partial").replace(side)
    return path


def write_pack(
    pack: Path, ids: list[str], photos: list[str], leaves: np.ndarray, splits: list[str], classes: int
) -> Path:
    """A folder a GPU machine can tune from: the photos (copied) and ``rows.csv`` (file, leaf,
    split, product id); training and validation rows only, so the test split never travels."""
    folder = pack / PACK_PHOTOS
    folder.mkdir(parents=True, exist_ok=True)
    with open(pack / PACK_ROWS, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "leaf", "split", "classes", "product_id"])
        missing = 0
        for number, (product, photo, leaf, split) in enumerate(zip(ids, photos, leaves, splits, strict=True)):
            if not photo or not Path(photo).is_file():  # ingest reported it; the others still travel
                missing += 1
                continue
            name = f"{number}{Path(photo).suffix.lower()}"
            shutil.copyfile(photo, folder / name)
            writer.writerow([name, int(leaf), split, classes, product])
    log.info("pack %s: %d photos, %d products without a photo left out", pack, len(photos) - missing, missing)
    return pack


def read_pack(pack: Path) -> tuple[dict[str, tuple[list[str], np.ndarray]], int]:
    """The pack's photo paths and leaves per split, and the number of leaf classes."""
    parts: dict[str, tuple[list[str], list[int]]] = {"train": ([], []), "validation": ([], [])}
    classes = 0
    with open(pack / PACK_ROWS, newline="") as handle:
        for row in csv.DictReader(handle):
            parts[row["split"]][0].append(str(pack / PACK_PHOTOS / row["file"]))
            parts[row["split"]][1].append(int(row["leaf"]))
            classes = int(row["classes"])
    return {k: (paths, np.array(leaves)) for k, (paths, leaves) in parts.items()}, classes


def tune_on_photos(
    train: tuple[list[str], np.ndarray],
    validation: tuple[list[str], np.ndarray],
    classes: int,
    tuning: ImageTuning,
    device: str,
    weights: str | None = None,
    progress: bool = True,
    folds: int = 1,
    budget_s: float = 0.0,
    done: Callable[[int, TunedEncoder], object] | None = None,
) -> list[TunedEncoder]:
    """Read the (photo paths, leaves) of both splits, drop unreadable photos (counted), tune.

    With ``folds`` > 1, cross-fitting: encoder k trains on the training photos outside fold k
    (:func:`photo_fold`), so a product embedded by the encoder of its own fold is embedded by
    one that never saw its photo, and the classifier trained on those vectors sees features
    as good as the test products' get, not ones the encoder memorised. ``budget_s`` > 0 caps
    each encoder's epochs to what fits in that many seconds on this device. ``done(fold,
    encoder)`` is called as each one finishes, so a run cut short keeps the finished ones.
    """
    (train_paths, train_leaves), (val_paths, val_leaves) = train, validation
    train_pixels, ok = read_photos(train_paths, tuning.image_size, workers=8)
    val_pixels, val_ok = read_photos(val_paths, tuning.image_size, workers=8)
    log.info(
        "tune image: %d training and %d validation photos, %d unreadable left out, %d leaves",
        ok.sum(),
        val_ok.sum(),
        (~ok).sum() + (~val_ok).sum(),
        classes,
    )
    train_fold = np.array([photo_fold(path, folds) for path in train_paths])
    if budget_s > 0:
        share = (folds - 1) / folds if folds > 1 else 1.0
        epochs = epochs_within(budget_s / share, train_pixels, classes, tuning, device, weights)
        tuning = replace(tuning, epochs=epochs)
    encoders = []
    for fold in range(max(1, folds)):
        keep = ok & (train_fold != fold) if folds > 1 else ok
        if folds > 1:
            log.info(
                "tune image: encoder %d of %d on %d training photos (fold %d held out)",
                fold + 1,
                folds,
                keep.sum(),
                fold,
            )
        encoders.append(
            tune_image_encoder(
                train_pixels[torch.from_numpy(keep)],
                train_leaves[keep],
                val_pixels[torch.from_numpy(val_ok)],
                val_leaves[val_ok],
                classes,
                tuning,
                device,
                weights,
                progress=progress,
            )
        )
        if done is not None:
            done(fold, encoders[-1])
    return encoders


def tune_from_pack(
    pack: Path, out: Path, tuning: ImageTuning, device: str, weights: str | None, folds: int = 1, budget_s: float = 0.0
) -> list[TunedEncoder]:
    parts, classes = read_pack(pack)

    def save(fold: int, tuned: TunedEncoder) -> None:
        about = {"pack": str(pack), "device": device, "fold": fold, "folds": folds}
        save_encoder(tuned, fold_file(out, fold, folds), tuning, about)

    return tune_on_photos(
        parts["train"],
        parts["validation"],
        classes,
        tuning,
        device,
        weights,
        sys.stderr.isatty(),
        folds,
        budget_s,
        save,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pack", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights", default=None, help="starting weights file (default: the shipped ImageNet ones)")
    parser.add_argument("--folds", type=int, default=1, help="cross-fitted encoders, each blind to one fold of photos")
    parser.add_argument("--budget-s", type=float, default=0.0, help="seconds per encoder; fewer epochs if needed")
    for name, value in asdict(ImageTuning()).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    tuning = ImageTuning(**{k: getattr(args, k) for k in asdict(ImageTuning())})
    encoders = tune_from_pack(args.pack, args.out, tuning, args.device, args.weights, args.folds, args.budget_s)
    for fold, tuned in enumerate(encoders):
        print(json.dumps({"out": str(fold_file(args.out, fold, args.folds)), "best": tuned.best}))


if __name__ == "__main__":
    main()
