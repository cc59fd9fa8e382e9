"""Checking the photo each catalog row names: inside the catalog folder, a file, decodable.

URLs are never fetched. Each problem is returned per row, so ingest can report it with the
row and column and keep or drop the row as configured.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from discover.config import CatalogConfig

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def check_image(image: str, root: Path, min_size: int, allow_outside: bool) -> tuple[str, str, str, str]:
    """Validate one image reference: (absolute path, content hash, problem, detail).

    `problem` is empty for a good image. URLs are never fetched; paths that leave the
    catalog's directory are refused unless `allow_outside`.
    """
    if not image.strip():
        return "", "", "missing_image", "empty value"
    if _URL.match(image):
        return "", "", "url_not_fetched", image
    candidate = Path(image)
    # Lexical check: `..` and absolute paths are refused; symlinks the user made are followed.
    path = Path(os.path.normpath(candidate if candidate.is_absolute() else root / candidate))
    if not allow_outside and (candidate.is_absolute() or not path.is_relative_to(root)):
        return "", "", "path_outside_catalog", image
    if not path.is_file():
        return str(path), "", "missing_file", image
    raw = path.read_bytes()
    if not raw:
        return str(path), "", "empty_file", image
    digest = hashlib.sha1(raw).hexdigest()
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            width, height = img.size
    except Exception as error:  # PIL raises many types for broken files
        return str(path), digest, "undecodable_image", f"{image}: {error}"
    if min(width, height) < min_size:
        return str(path), digest, "image_too_small", f"{width}x{height} < {min_size}"
    return str(path), digest, "", ""


def check_images(
    images: list[str], root: Path, config: CatalogConfig, show_progress: bool = True
) -> tuple[list[str], list[str], dict[int, tuple[str, str]]]:
    """Resolved paths, content hashes, and (problem, detail) by row, for every image value."""
    paths, hashes, problems = [""] * len(images), [""] * len(images), {}
    if not config.check_images:
        return [os.path.normpath(root / p) if p else "" for p in images], hashes, problems

    def check(value: str) -> tuple[str, str, str, str]:
        return check_image(value, root, config.min_image_size, config.allow_outside_paths)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(check, images, chunksize=256)
        bar = tqdm(results, total=len(images), desc="checking images", unit="img", disable=not show_progress)
        for row, (path, digest, problem, detail) in enumerate(bar):
            paths[row], hashes[row] = path, digest
            if problem:
                problems[row] = (problem, detail)
    return paths, hashes, problems
