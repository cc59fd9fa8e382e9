"""Ways to combine an image vector and a title vector into one representation.

Each module takes the two (batch × dim) vectors and returns batch × `dim`. Every one
projects each modality first (a linear layer + GELU), so modalities of any width combine.

- ``concat``: early fusion, one layer over the concatenation (paper A's "early").
- ``sum``, ``product``: element-wise over the projections (paper B).
- ``gated``: the Gated Multimodal Unit (Arevalo et al., 2017, arXiv 1702.01992): a learned
  gate decides per dimension how much each modality contributes.
- ``attention``: cross-modal attention (paper A): each modality's projection, split into
  tokens, attends over the other's tokens; the two attended summaries are averaged.
- ``late``: a head per modality scores every class; an MLP over their probabilities makes
  the representation (paper A's "late", its best). Its per-modality scores are trained too.
"""

from __future__ import annotations

import torch
from torch import nn


def _project(width: int, dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Linear(width, dim), nn.GELU(), nn.Dropout(dropout))


class ConcatFusion(nn.Module):
    def __init__(self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, **_: object) -> None:
        super().__init__()
        self.layer = _project(image_dim + text_dim, dim, dropout)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.layer(torch.cat([image, text], dim=1))


class SumFusion(nn.Module):
    def __init__(self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, **_: object) -> None:
        super().__init__()
        self.image, self.text = _project(image_dim, dim, dropout), _project(text_dim, dim, dropout)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.image(image) + self.text(text)


class ProductFusion(SumFusion):
    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.image(image) * self.text(text)


class GatedFusion(nn.Module):
    """GMU: h = z·tanh(W_v v) + (1 − z)·tanh(W_t t), z = σ(W_z [v; t])."""

    def __init__(self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, **_: object) -> None:
        super().__init__()
        self.image, self.text = nn.Linear(image_dim, dim), nn.Linear(text_dim, dim)
        self.gate = nn.Linear(image_dim + text_dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        z = torch.sigmoid(self.gate(torch.cat([image, text], dim=1)))
        return self.dropout(z * torch.tanh(self.image(image)) + (1 - z) * torch.tanh(self.text(text)))


class AttentionFusion(nn.Module):
    """Each modality's projection as `tokens` tokens; image attends to text and text to image."""

    def __init__(
        self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, tokens: int = 4, **_: object
    ) -> None:
        super().__init__()
        if dim % tokens:
            raise ValueError(f"attention fusion: dim {dim} must be a multiple of tokens {tokens}")
        self.tokens, self.width = tokens, dim // tokens
        self.image, self.text = _project(image_dim, dim, dropout), _project(text_dim, dim, dropout)
        self.image_to_text = nn.MultiheadAttention(self.width, num_heads=1, batch_first=True)
        self.text_to_image = nn.MultiheadAttention(self.width, num_heads=1, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        # (batch, dim) → (batch, tokens, width)
        v = self.image(image).view(-1, self.tokens, self.width)
        t = self.text(text).view(-1, self.tokens, self.width)
        v_att, _ = self.image_to_text(v, t, t)  # image tokens query the title's tokens
        t_att, _ = self.text_to_image(t, v, v)
        return self.norm(((v + v_att) + (t + t_att)).flatten(1) / 2)


class LateFusion(nn.Module):
    """A classifier per modality over all classes of all levels; an MLP over their probabilities.

    `level_sizes` is needed to softmax each level's slice of each modality's scores.
    """

    def __init__(
        self,
        image_dim: int,
        text_dim: int,
        dim: int,
        dropout: float = 0.2,
        level_sizes: tuple[int, ...] = (),
        **_: object,
    ) -> None:
        super().__init__()
        if not level_sizes:
            raise ValueError("late fusion needs the label tree's level sizes")
        self.level_sizes = list(level_sizes)
        total = sum(level_sizes)
        self.image = nn.Sequential(_project(image_dim, dim, dropout), nn.Linear(dim, total))
        self.text = nn.Sequential(_project(text_dim, dim, dropout), nn.Linear(dim, total))
        self.mix = _project(2 * total, dim, dropout)

    def probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        return torch.cat([part.softmax(dim=1) for part in scores.split(self.level_sizes, dim=1)], dim=1)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        self.modality_scores = (self.image(image), self.text(text))  # read by training for their own loss
        return self.mix(torch.cat([self.probabilities(s) for s in self.modality_scores], dim=1))


class ImageOnly(nn.Module):
    """The single-modality baseline on photos (the title is ignored)."""

    def __init__(self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, **_: object) -> None:
        super().__init__()
        self.layer = _project(image_dim, dim, dropout)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.layer(image)


class TextOnly(ImageOnly):
    """The single-modality baseline on titles (the photo is ignored)."""

    def __init__(self, image_dim: int, text_dim: int, dim: int, dropout: float = 0.2, **_: object) -> None:
        super().__init__(text_dim, image_dim, dim, dropout)

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        return self.layer(text)


FUSIONS: dict[str, type[nn.Module]] = {
    "image-only": ImageOnly,
    "text-only": TextOnly,
    "concat": ConcatFusion,
    "sum": SumFusion,
    "product": ProductFusion,
    "gated": GatedFusion,
    "attention": AttentionFusion,
    "late": LateFusion,
}


def create_fusion(name: str, image_dim: int, text_dim: int, dim: int, **params: object) -> nn.Module:
    """The fusion module called `name` (one of :data:`FUSIONS`).

    Example:
        >>> fusion = create_fusion("gated", 6, 4, 8)
        >>> tuple(fusion(torch.randn(3, 6), torch.randn(3, 4)).shape)
        (3, 8)
    """
    if name not in FUSIONS:
        raise ValueError(f"unknown fusion `{name}`; one of {', '.join(FUSIONS)}")
    return FUSIONS[name](image_dim, text_dim, dim, **params)
