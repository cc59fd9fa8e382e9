"""The SimCLR model pieces: product-photo views, EfficientNet-Lite0 + projection head,
which blocks to freeze, and the cheap validation score that picks the best checkpoint.

Why the views are what they are is explained in :mod:`discover.embed.pretrain`.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from discover.config import PretrainConfig
from discover.embed.base import letterbox
from discover.embed.efficientnet import MEAN, STD, backbone_features, load_backbone
from discover.vectors import l2_normalise


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


class TwoViews(Dataset):
    """Two random views of each photo (letterboxed square first, so crops keep the product)."""

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
    normed = l2_normalise(vectors)
    similarity = normed @ normed.T
    np.fill_diagonal(similarity, -np.inf)
    return float(np.mean(labels[similarity.argmax(axis=1)] == labels))


def validation_tensors(paths: list[str], image_size: int) -> torch.Tensor:
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
