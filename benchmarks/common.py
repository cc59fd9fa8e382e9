"""Shared helpers: machine facts, the data set, and writing a section of BENCHMARKS.md."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import re
import resource
import shutil
from pathlib import Path

import pandas as pd
import psutil

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
DATA = Path(os.environ.get("DISCOVER_DATA", REPO.parent / "shared" / "datasets" / "fashion-small"))
WORKSPACE = Path(os.environ.get("DISCOVER_BENCH_WORKSPACE", REPO / "workspace" / "fashion-small"))


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    memory = psutil.virtual_memory().total / 2**30
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB, {system}"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def markdown_table(frame: pd.DataFrame, floats: str = "{:.3f}") -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return floats.format(value)
        return str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section `name` of BENCHMARKS.md, stamped with machine, date, command."""
    stamp = (
        f"Machine: {machine()}  \nDate: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC  \n"
        "Command: `make bench` "
        f"(this section: `python -m benchmarks.{name}`)"
    )
    block = f"<!-- bench:{name} -->\n## {title}\n\n{stamp}\n\n{body.strip()}\n<!-- /bench:{name} -->"
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n\nWritten by `make bench`.\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    BENCHMARKS_MD.write_text(text)
    print(f"\n{title}\n\n{body.strip()}\n\n(written to {BENCHMARKS_MD})")


def held_out(groups: pd.Series) -> pd.Series:
    """True for the held-out half of the products, split by group so duplicates stay together.

    Settings are tuned on the other half ("dev"); benchmark figures are reported on this one.
    The split is a hash of the group value, so it does not depend on row order or on the seed.
    """
    digest = groups.astype(str).map(lambda g: hashlib.sha1(g.encode()).digest()[0])
    return digest % 2 == 1


def ingest_sample(config, workspace) -> None:
    """Ingest a sample catalog a benchmark wrote (at `config.catalog.data_dir`).

    `$DISCOVER_DATA` names the whole catalog for a run, and it wins over any config's
    `data_dir`: left set, a 2,000-product sample was the whole catalog (35,132 photos
    stacked in memory, 18 GB). It names the sample while the sample is read.
    """
    from discover.data.ingest import ingest

    before = os.environ.get("DISCOVER_DATA")
    os.environ["DISCOVER_DATA"] = str(config.catalog.data_dir)
    try:
        ingest(config, workspace, show_progress=False)
    finally:
        if before is None:
            del os.environ["DISCOVER_DATA"]
        else:
            os.environ["DISCOVER_DATA"] = before


def sample_catalog(catalog_dir: Path, n: int, seed: int) -> Path:
    """`n` fashion-small products with copies of their photos (catalogs read files inside only)."""
    styles = pd.read_csv(DATA / "styles.csv", dtype=str, keep_default_na=False)
    rows = styles.sample(n, random_state=seed).sort_values("id", key=lambda s: s.astype(int))
    (catalog_dir / "images").mkdir(parents=True, exist_ok=True)
    for image in rows["image"]:
        if (DATA / image).is_file():
            shutil.copyfile(DATA / image, catalog_dir / image)
    rows.to_csv(catalog_dir / "styles.csv", index=False)
    return catalog_dir
