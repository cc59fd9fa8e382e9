"""Photo geometry shared by the embedders, SimCLR and the classifier's encoders.

Kept free of heavy imports (only Pillow) so that a bare GPU machine can import it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """Pad to a white square, then resize: product photos keep their shape and background."""
    image = image.convert("RGB")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas.resize((size, size), Image.Resampling.BICUBIC)


def photo_fold(path: str | Path, folds: int) -> int:
    """Which of `folds` cross-fitted encoders never trains on this photo.

    Taken from the photo's bytes (md5), so identical photos share a fold, and the machine
    that tunes and the one that embeds agree without sharing a table.
    """
    if folds <= 1:
        return 0
    try:
        digest = hashlib.md5(Path(path).read_bytes()).hexdigest()
    except OSError:
        return 0
    return int(digest, 16) % folds
