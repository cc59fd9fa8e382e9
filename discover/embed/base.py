"""The embedder protocol shared by every image and text embedder, and the registry by name.

An embedder turns photos or titles into float32 vectors, batched, with a progress bar. Its
`fingerprint` names the exact model, weights and preprocessing, so cached vectors are reused
only when they would come out the same.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from discover.embed.registry import available, create_embedder, register  # noqa: F401  (re-exported)
from discover.errors import EmbedError
from discover.photos import letterbox  # noqa: F401  (re-exported: the embedders import it from here)


def file_digest(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha1 of a file's bytes, used to fingerprint weights."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class EmbedOutcome:
    """Vectors for the items asked for; rows of `failed` items are zeros."""

    vectors: np.ndarray
    failed: dict[int, str] = field(default_factory=dict)


class Embedder(ABC):
    """Common interface. Subclasses set `name`, `modality` and `dim`, and implement the work.

    Attributes:
        name: registry name, as written in configs.
        modality: ``"image"`` or ``"text"``.
        dim: length of each output vector.
    """

    name: ClassVar[str]
    modality: str
    dim: int

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """Stable id of model + weights + preprocessing; changes whenever outputs would."""

    def embed_images(
        self, paths: Sequence[str], batch_size: int = 64, num_workers: int = 0, progress: bool = True
    ) -> EmbedOutcome:
        raise EmbedError(f"{self.name} does not embed images")

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> EmbedOutcome:
        raise EmbedError(f"{self.name} does not embed texts")

    def embed_items(self, items: Sequence[str], batch_size: int = 64, num_workers: int = 0) -> EmbedOutcome:
        """Photo paths for an image embedder, titles for a text one, without a bar: the one
        call the embed stage and its workers (processes, Ray actors) make for a batch of items."""
        if self.modality == "image":
            return self.embed_images(items, batch_size, num_workers, progress=False)
        return self.embed_texts(items, batch_size, progress=False)


class _ImageFiles(Dataset):
    """Decodes photos lazily (never all in memory); a broken file yields ok=False, not a crash."""

    def __init__(self, paths: Sequence[str], transform: Callable[[Image.Image], torch.Tensor], shape: tuple) -> None:
        self.paths = list(paths)
        self.transform = transform
        self.shape = shape

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor, str]:
        try:
            with Image.open(self.paths[index]) as image:
                image.load()
                return index, self.transform(image), ""
        except Exception as error:  # any decode failure is reported per item
            return index, torch.zeros(self.shape), f"{type(error).__name__}: {error}"


class TorchImageEmbedder(Embedder):
    """An image embedder built from a torch module: subclasses give `transform` and `forward`."""

    modality = "image"
    image_size: int

    @abstractmethod
    def transform(self, image: Image.Image) -> torch.Tensor:
        """PIL image → normalised CHW float tensor."""

    @abstractmethod
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """NCHW batch → N × dim features."""

    def embed_images(
        self, paths: Sequence[str], batch_size: int = 64, num_workers: int = 0, progress: bool = True
    ) -> EmbedOutcome:
        dataset = _ImageFiles(paths, self.transform, (3, self.image_size, self.image_size))
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, shuffle=False)
        vectors = np.zeros((len(dataset), self.dim), dtype=np.float32)
        failed: dict[int, str] = {}
        with torch.inference_mode(), tqdm(total=len(dataset), desc=self.name, unit="img", disable=not progress) as bar:
            for indexes, batch, errors in loader:
                ok = torch.tensor([not e for e in errors])
                if ok.any():
                    out = self.forward(batch[ok]).float().cpu().numpy()
                    vectors[indexes[ok].numpy()] = out
                failed.update({int(i): e for i, e in zip(indexes.tolist(), errors, strict=True) if e})
                bar.update(len(indexes))
        return EmbedOutcome(vectors, failed)
