"""Hierarchical heads with dynamic masking, and the flat leaf classifier they are compared to.

Dynamic masking (paper A): at level l, the logit of a class whose parent is not the parent
chosen at level l-1 is set to -inf. At inference the chosen parent is the predicted one,
level by level, so every prediction is a valid path; in training it is the true parent
(teacher forcing, on by default) or the predicted one.
"""

from __future__ import annotations

import torch
from torch import nn

from discover.classify.labels import LabelTree

NEG = -1e9  # -inf in practice, without NaNs in the softmax of an all-masked row


class HierarchicalHeads(nn.Module):
    """One linear head per level over the fused representation, masked by the parent.

    Example:
        >>> tree = LabelTree.from_paths([("A", "a1"), ("A", "a2"), ("B", "b1")])
        >>> heads = HierarchicalHeads(8, tree)
        >>> logits = heads(torch.randn(4, 8))
        >>> paths = heads.predict(logits)
        >>> bool((torch.tensor(tree.parents[1])[paths[:, 1]] == paths[:, 0]).all())
        True
    """

    def __init__(self, dim: int, tree: LabelTree) -> None:
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(dim, size) for size in tree.sizes())
        for level, parents in enumerate(tree.parents):
            self.register_buffer(f"parents_{level}", torch.as_tensor(parents, dtype=torch.long))

    def parent_index(self, level: int) -> torch.Tensor:
        return getattr(self, f"parents_{level}")

    def forward(self, fused: torch.Tensor) -> list[torch.Tensor]:
        """Unmasked logits per level (masking needs the chosen parents: see `masked`)."""
        return [head(fused) for head in self.heads]

    def masked(self, logits: list[torch.Tensor], parents: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Logits with every class outside the chosen parent's children at -inf.

        `parents` (n × depth) gives the true path for teacher forcing; without it each level
        is masked by the argmax of the level above.
        """
        out = [logits[0]]
        for level in range(1, len(logits)):
            chosen = parents[:, level - 1] if parents is not None else out[-1].argmax(dim=1)
            allowed = self.parent_index(level)[None, :] == chosen[:, None]
            out.append(logits[level].masked_fill(~allowed, NEG))
        return out

    def predict(self, logits: list[torch.Tensor]) -> torch.Tensor:
        """n × depth predicted path, always valid."""
        return torch.stack([level.argmax(dim=1) for level in self.masked(logits)], dim=1)


class FlatHead(nn.Module):
    """The baseline: one softmax over the leaves; a leaf's ancestors give the rest of the path."""

    def __init__(self, dim: int, tree: LabelTree) -> None:
        super().__init__()
        self.head = nn.Linear(dim, tree.sizes()[-1])

    def forward(self, fused: torch.Tensor) -> list[torch.Tensor]:
        return [self.head(fused)]
