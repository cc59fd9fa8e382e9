"""Checking the photo each catalog row names: inside the catalog folder, a file, decodable.

URLs are never fetched. Each problem is returned per row, so ingest can report it with the
row and column and keep or drop the row as configured.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from discover.config import CatalogConfig

# Every problem check_image can report: a row with one of these has no photo to read.
IMAGE_PROBLEMS = frozenset(
    {"missing_image", "url_not_fetched", "path_outside_catalog", "missing_file", "empty_file"}
    | {"image_too_large", "undecodable_image", "image_too_small"}
)
_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def resolve_inside(image: str, root: Path, allow_outside: bool) -> tuple[str, str]:
    """The real path an image value names (symlinks resolved) and a problem ("" if none).

    Resolving before the check is what stops a symlink, ``..`` or an absolute path from
    reaching a file outside the catalog folder; nothing is opened here.
    """
    if not image.strip():
        return "", "missing_image"
    if _URL.match(image):
        return "", "url_not_fetched"
    root = root.resolve()
    candidate = Path(image)
    real = Path(os.path.realpath(candidate if candidate.is_absolute() else root / candidate))
    if not allow_outside and not real.is_relative_to(root):
        return "", "path_outside_catalog"
    return str(real), ""


def check_image(image: str, root: Path, config: CatalogConfig) -> tuple[str, str, str, str]:
    """Validate one image reference: (real path, content hash, problem, detail).

    `problem` is empty for a good image. The pixel count is read from the header before
    anything is decoded, so an oversized photo costs no memory; its path is left empty so
    no later stage decodes it either.
    """
    path, problem = resolve_inside(image, root, config.allow_outside_paths)
    if problem:
        return "", "", problem, image
    if not Path(path).is_file():
        return path, "", "missing_file", image
    raw = Path(path).read_bytes()
    if not raw:
        return path, "", "empty_file", image
    digest = hashlib.sha1(raw).hexdigest()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit applies below
            with Image.open(io.BytesIO(raw)) as img:
                width, height = img.size
                if width * height > config.max_image_pixels:
                    return "", digest, "image_too_large", f"{width}x{height} > {config.max_image_pixels:,} pixels"
                img.load()
    except Image.DecompressionBombError as error:
        return "", digest, "image_too_large", str(error)
    except Image.UnidentifiedImageError:  # its own message names our in-memory buffer, not the file
        return path, digest, "undecodable_image", f"{image}: not an image format Pillow can read"
    except Exception as error:  # PIL raises many types for broken files
        return path, digest, "undecodable_image", f"{image}: {error}"
    if min(width, height) < config.min_image_size:
        return path, digest, "image_too_small", f"{width}x{height} < {config.min_image_size}"
    return path, digest, "", ""


def check_images(
    images: list[str], root: Path, config: CatalogConfig, show_progress: bool = True
) -> tuple[list[str], list[str], dict[int, tuple[str, str]]]:
    """Resolved paths, content hashes, and (problem, detail) by row, for every image value."""
    paths, hashes, problems = [""] * len(images), [""] * len(images), {}
    if not config.check_images:  # paths are still confined to the catalog folder; files are not opened
        for row, image in enumerate(images):
            paths[row], problem = resolve_inside(image, root, config.allow_outside_paths)
            if problem:
                problems[row] = (problem, image)
        return paths, hashes, problems

    def check(value: str) -> tuple[str, str, str, str]:
        return check_image(value, root, config)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(check, images, chunksize=256)
        bar = tqdm(results, total=len(images), desc="checking images", unit="img", disable=not show_progress)
        for row, (path, digest, problem, detail) in enumerate(bar):
            paths[row], hashes[row] = path, digest
            if problem:
                problems[row] = (problem, detail)
    return paths, hashes, problems
