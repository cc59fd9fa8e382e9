"""Image features from a SimCLR-refined EfficientNet-Lite0 checkpoint (`discover pretrain`)."""

from __future__ import annotations

from pathlib import Path

import torch
from efficientnet_lite_pytorch import EfficientNet

from discover.embed.base import register
from discover.embed.efficientnet import EfficientNetLite0
from discover.errors import EmbedError


@register("simclr")
class SimCLREmbedder(EfficientNetLite0):
    """EfficientNet-Lite0 whose weights come from a SimCLR checkpoint; fingerprinted by its hash.

    Example:
        >>> SimCLREmbedder(checkpoint="ws/models/simclr-imagenet-64px-best.pt")  # doctest: +SKIP
    """

    name = "simclr"

    def __init__(self, modality: str = "image", image_size: int = 64, checkpoint: str | None = None, **_: object):
        if not checkpoint or not Path(checkpoint).is_file():
            raise EmbedError(f"simclr: checkpoint file {checkpoint!r} not found; run `discover pretrain` first")
        self.image_size = image_size
        self.weights_path, self.weights_paths = checkpoint, [checkpoint]  # read by the parent's fingerprint
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if "backbone" not in state:
            raise EmbedError(f"simclr: {checkpoint} holds no `backbone` weights")
        self.model = EfficientNet.from_name("efficientnet-lite0")
        self.model.load_state_dict(state["backbone"])
        self.model = self.model.eval().to(memory_format=torch.channels_last)
        self.models = [self.model]
