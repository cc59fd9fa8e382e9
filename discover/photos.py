"""Photo geometry shared by the embedders, SimCLR and the classifier's encoders.

Kept free of heavy imports (only Pillow) so that a bare GPU machine can import it.
"""

from __future__ import annotations

from PIL import Image


def letterbox(image: Image.Image, size: int) -> Image.Image:
    """Pad to a white square, then resize: product photos keep their shape and background."""
    image = image.convert("RGB")
    side = max(image.size)
    canvas = Image.new("RGB", (side, side), (255, 255, 255))
    canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
    return canvas.resize((size, size), Image.Resampling.BICUBIC)
