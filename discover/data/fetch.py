"""`discover fetch-sample`: download the public copy of fashion-small into the expected layout.

The only code path that touches the network, and only when the user runs it. The source is
a JSON list of Parquet URLs (the Hugging Face dataset-server format) or one Parquet URL;
rows carry the fashion-small columns and the photo as bytes. Written atomically:
``styles.csv`` appears last, so an interrupted fetch never looks complete.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import urllib.request
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from discover.errors import DiscoverError
from discover.workspace import atomic_path, write_csv

log = logging.getLogger(__name__)

DEFAULT_SOURCE = "https://huggingface.co/api/datasets/ashraq/fashion-product-images-small/parquet/default/train"
COLUMNS = [
    "id",
    "gender",
    "masterCategory",
    "subCategory",
    "articleType",
    "baseColour",
    "season",
    "year",
    "usage",
    "productDisplayName",
]


def _download(url: str, timeout: float) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (user asked)
            return response.read()
    except OSError as error:
        raise DiscoverError(f"cannot download {url}: {error}") from None


def _parquet_urls(source: str, timeout: float) -> list[str]:
    if source.endswith(".parquet"):
        return [source]
    listing = json.loads(_download(source, timeout))
    if not isinstance(listing, list) or not all(isinstance(u, str) for u in listing):
        raise DiscoverError(f"{source}: expected a JSON list of Parquet URLs")
    return listing


def _image_bytes(value: object) -> bytes:
    if isinstance(value, dict):
        value = value.get("bytes")
    if not isinstance(value, bytes | bytearray):
        raise DiscoverError("sample rows must carry the photo as bytes in column `image`")
    return bytes(value)


def fetch_sample(destination: Path, source: str = DEFAULT_SOURCE, timeout: float = 60.0) -> Path:
    """Download the sample catalog into `destination` (styles.csv + images/); return styles.csv."""
    destination = Path(destination)
    images_dir = destination / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    frames = []
    for url in _parquet_urls(source, timeout):
        log.info("fetch: %s", url)
        frames.append(pd.read_parquet(io.BytesIO(_download(url, timeout))))
    rows = pd.concat(frames, ignore_index=True)
    missing = [c for c in [*COLUMNS, "image"] if c not in rows.columns]
    if missing:
        raise DiscoverError(f"{source}: sample lacks column(s) {', '.join(missing)}")
    paths, digests = [], []
    for product_id, value in tqdm(zip(rows["id"], rows["image"], strict=True), total=len(rows), desc="writing photos"):
        raw = _image_bytes(value)
        relative = f"images/{product_id}.jpg"
        with atomic_path(destination / relative) as tmp:
            tmp.write_bytes(raw)
        paths.append(relative)
        digests.append(hashlib.md5(raw).hexdigest())  # noqa: S324 (a content id, as in the original)
    styles = rows[COLUMNS].copy()
    styles["image"] = paths
    styles["image_md5"] = digests
    target = destination / "styles.csv"
    write_csv(target, styles)
    log.info("fetch: %d products written to %s", len(styles), destination)
    return target
