"""open_clip image and text towers: any architecture, weights from a local file or a named tag."""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from discover.embed.base import EmbedOutcome, TorchImageEmbedder, file_digest, letterbox, register
from discover.errors import EmbedError

log = logging.getLogger(__name__)
OFFLINE_FIX = "without internet, download the checkpoint elsewhere and pass its file path as `pretrained`"


def _require_hub(arch: str, tag: str, timeout: float = 5.0) -> None:
    """Fail at once when the hub cannot be reached, instead of a minute of download retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise EmbedError(f"clip: tag `{tag}` of {arch} needs the network but HF_HUB_OFFLINE is set; {OFFLINE_FIX}")
    endpoint = urlparse(constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        raise EmbedError(
            f"clip: tag `{tag}` of {arch} needs {host}, which is unreachable ({error}); {OFFLINE_FIX}"
        ) from None


@register("clip")
class OpenClip(TorchImageEmbedder):
    """CLIP (Radford et al., 2021) via open_clip; one instance embeds images or titles.

    `pretrained` is a local checkpoint file (a plain state_dict) or a tag such as
    ``laion2b_s34b_b79k``. Naming a tag is asking for the network: open_clip downloads it
    (logged, into its usual cache). Without a connection, or with ``HF_HUB_OFFLINE=1``, it
    fails with a message saying to pass a checkpoint file. With no `pretrained` the weights
    are random (tests only).

    Example:
        >>> OpenClip(modality="text", arch="ViT-B-32", pretrained="ViT-B-32.pt")  # doctest: +SKIP
    """

    name = "clip"

    def __init__(self, modality: str = "image", arch: str | None = None, pretrained: str | None = None, **_: object):
        import open_clip

        if not arch:
            raise EmbedError("the clip embedder needs `arch`, e.g. ViT-B-32")
        self.modality = modality
        self.arch = arch
        self.pretrained = pretrained
        is_file = pretrained is not None and Path(pretrained).is_file()
        if pretrained and not is_file:
            _require_hub(arch, pretrained)
            log.info("clip: getting the weights tagged `%s` for %s (network, as the config asks)", pretrained, arch)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=pretrained)
        except Exception as error:
            if pretrained and not is_file:
                raise EmbedError(
                    f"clip: could not get weights for tag `{pretrained}` of {arch} ({error}); {OFFLINE_FIX}"
                ) from None
            raise EmbedError(f"clip: cannot build {arch}: {error}") from None
        self.model = model.eval()
        self.weights_id = file_digest(pretrained)[:12] if is_file else (pretrained or "random")
        self.image_size = int(
            self.model.visual.image_size[0]
            if isinstance(self.model.visual.image_size, tuple)
            else self.model.visual.image_size
        )
        self.dim = int(
            self.model.text_projection.shape[1] if hasattr(self.model, "text_projection") else self.model.embed_dim
        )
        self._normalize = preprocess.transforms[-1]
        self.tokenizer = open_clip.get_tokenizer(arch)

    @property
    def fingerprint(self) -> str:
        return f"{self.name}-{self.arch}-{self.modality}-{self.weights_id}"

    def transform(self, image: Image.Image) -> torch.Tensor:
        from torchvision.transforms import functional as F

        return self._normalize(F.to_tensor(letterbox(image, self.image_size)))

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.normalize(self.model.encode_image(batch), dim=-1)

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        if self.modality != "text":
            raise EmbedError("this clip embedder was built for images; build one with modality='text'")
        chunks = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc=self.name, unit="batch", disable=not progress):
                tokens = self.tokenizer(list(texts[start : start + batch_size]))
                chunks.append(torch.nn.functional.normalize(self.model.encode_text(tokens), dim=-1).float().numpy())
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, self.dim), np.float32)
        return EmbedOutcome(vectors.astype(np.float32))
