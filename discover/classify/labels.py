"""Category paths as classes per level, and which class of one level is whose child."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class LabelTree:
    """Classes per level (root first) and, for each class below the top, its parent's index.

    Attributes:
        classes: per level, the class names (for levels below the top, the full path
            ``"A > B"`` so equal names under different parents stay distinct).
        parents: per level ≥ 1, an array mapping each class to its parent's index one level up.

    Example:
        >>> tree = LabelTree.from_paths([("Shoes", "Heels"), ("Shoes", "Flats"), ("Bags", "Totes")])
        >>> tree.classes[1], tree.parents[1].tolist()
        (['Bags > Totes', 'Shoes > Flats', 'Shoes > Heels'], [0, 1, 1])
        >>> tree.encode([("Shoes", "Flats")]).tolist()
        [[1, 1]]
    """

    classes: list[list[str]]
    parents: list[np.ndarray]

    @classmethod
    def from_paths(cls, paths: Sequence[Sequence[str]]) -> LabelTree:
        depth = len(paths[0])
        if any(len(p) != depth for p in paths):
            raise ValueError("every path must have the same depth; pad shorter ones before training")
        classes = [sorted({" > ".join(p[: level + 1]) for p in paths}) for level in range(depth)]
        index = [{name: i for i, name in enumerate(names)} for names in classes]
        parents = [np.zeros(0, dtype=np.int64)]
        for level in range(1, depth):
            parents.append(np.array([index[level - 1][name.rsplit(" > ", 1)[0]] for name in classes[level]]))
        return cls(classes, parents)

    @property
    def depth(self) -> int:
        return len(self.classes)

    def sizes(self) -> list[int]:
        return [len(c) for c in self.classes]

    def encode(self, paths: Sequence[Sequence[str]]) -> np.ndarray:
        """n × depth class indices; a path the tree does not know raises KeyError."""
        index = [{name: i for i, name in enumerate(names)} for names in self.classes]
        return np.array([[index[lv][" > ".join(p[: lv + 1])] for lv in range(self.depth)] for p in paths])

    def decode(self, codes: np.ndarray) -> list[tuple[str, ...]]:
        """Leaf codes (n,) or path codes (n × depth) back to name paths."""
        leaves = codes[:, -1] if codes.ndim == 2 else codes
        return [tuple(self.classes[-1][leaf].split(" > ")) for leaf in leaves]

    def ancestors(self, leaf_codes: np.ndarray) -> np.ndarray:
        """n × depth: each leaf's class index at every level."""
        out = np.zeros((len(leaf_codes), self.depth), dtype=np.int64)
        out[:, -1] = leaf_codes
        for level in range(self.depth - 1, 0, -1):
            out[:, level - 1] = self.parents[level][out[:, level]]
        return out

    def to_dict(self) -> dict:
        return {"classes": self.classes}

    @classmethod
    def from_dict(cls, payload: dict) -> LabelTree:
        leaves = [tuple(name.split(" > ")) for name in payload["classes"][-1]]
        return cls.from_paths(leaves)
