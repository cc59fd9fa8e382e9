"""Bad input, as a hostile new user would bring it: each case is a small real catalog with its
bad rows. Asserted: the exit code, exactly which good rows are kept, each bad row reported
with its reason, and that no file outside the catalog folder is ever opened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from discover.cli import main
from discover.workspace import Workspace, read_json
from tests.conftest import REPO, config_dict, fashion_rows, write_catalog

OPENED: list[str] = []


def _audit(event: str, args: tuple) -> None:
    """Record every file this process opens (Python's audit hook sees PIL, pathlib and numpy)."""
    if event == "open" and OPENED and isinstance(args[0], str | bytes | os.PathLike):
        OPENED.append(os.fsdecode(args[0]))


sys.addaudithook(_audit)


@dataclass
class Case:
    """A catalog of 12 good products, spoiled by `spoil`; what ingest must make of it."""

    name: str
    spoil: Callable[[pd.DataFrame, Path, Path], pd.DataFrame]
    bad: dict[int, str] = field(default_factory=dict)  # row position → the problem reported
    exit_code: int = 0
    config: dict = field(default_factory=dict)
    category_column: bool = False  # use one breadcrumb column instead of two level columns


def _set(row: int, column: str, value: str):
    def spoil(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
        rows.loc[row, column] = value
        return rows

    return spoil


def _symlink_outside(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
    link = catalog / "images" / "linked.jpg"
    link.symlink_to(sentinel)
    rows.loc[3, "image"] = "images/linked.jpg"
    return rows


def _outside_paths(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
    rows.loc[2, "image"] = str(sentinel)
    rows.loc[5, "image"] = os.path.relpath(sentinel, catalog)
    return rows


def _huge_image(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
    Image.new("1", (12000, 12000)).save(catalog / "images" / "huge.png")  # 144 MP, a few KB on disk
    rows.loc[4, "image"] = "images/huge.png"
    return rows


def _all_bad(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
    rows["productDisplayName"] = ""
    return rows


def _header_only(rows: pd.DataFrame, catalog: Path, sentinel: Path) -> pd.DataFrame:
    return rows.iloc[:0]


CASES = [
    Case("deeper path is its own path", _set(3, "breadcrumb", "Apparel > Topwear > Tshirts"), category_column=True),
    Case("empty segment", _set(4, "breadcrumb", "Apparel >> Topwear"), {4: "empty_level"}, category_column=True),
    Case("trailing separator", _set(6, "breadcrumb", "Apparel > Topwear >"), {6: "empty_level"}, category_column=True),
    Case("literal NaN level means no deeper level", _set(2, "subCategory", "NaN")),
    Case("literal null above a level is a hole", _set(5, "masterCategory", "null"), {5: "empty_level"}),
    Case("None as the only category", _set(7, "breadcrumb", "None"), {7: "empty_category"}, category_column=True),
    Case("empty product id", _set(8, "id", "  "), {8: "empty_product_id"}),
    Case("missing title", _set(1, "productDisplayName", ""), {1: "empty_title"}),
    Case("symlink to a file outside", _symlink_outside, {3: "path_outside_catalog"}),
    Case("absolute and ../ paths", _outside_paths, {2: "path_outside_catalog", 5: "path_outside_catalog"}),
    Case(
        "absolute and ../ paths without image checks",
        _outside_paths,
        {2: "path_outside_catalog", 5: "path_outside_catalog"},
        config={"check_images": False},
    ),
    Case("12000 x 12000 photo", _huge_image, {4: "image_too_large"}),
    Case("every row bad", _all_bad, dict.fromkeys(range(12), "empty_title"), exit_code=2),
    Case("header only", _header_only, exit_code=2),
]


def _build(case: Case, tmp_path: Path) -> tuple[Path, Path, pd.DataFrame]:
    rows = fashion_rows(12, subcategories=("Topwear", "Shoes"), seed=4)
    catalog = tmp_path / "catalog"
    write_catalog(catalog, rows)
    sentinel = tmp_path / "outside" / "sentinel.jpg"
    sentinel.parent.mkdir()
    shutil.copyfile(catalog / rows.loc[0, "image"], sentinel)
    rows["breadcrumb"] = rows["masterCategory"] + " > " + rows["subCategory"]
    rows = case.spoil(rows, catalog, sentinel)
    rows.to_csv(catalog / "styles.csv", index=False)
    raw = config_dict(catalog)
    if case.category_column:
        raw["catalog"]["columns"].pop("levels")
        raw["catalog"]["columns"]["category"] = "breadcrumb"
    raw["catalog"].update(case.config)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path / "config.yaml", sentinel, rows


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_reported_and_the_good_rows_are_kept(case: Case, tmp_path: Path, capsys):
    config, sentinel, rows = _build(case, tmp_path)
    OPENED[:] = ["(recording)"]
    try:
        code = main(["ingest", str(config), "--workspace", str(tmp_path / "ws")])
    finally:
        opened, OPENED[:] = OPENED[1:], []
    captured = capsys.readouterr()
    assert code == case.exit_code, captured.err
    assert not [p for p in opened if Path(p).resolve() == sentinel.resolve()], "a file outside the catalog was read"
    workspace = Workspace(tmp_path / "ws")
    report = read_json(workspace.ingest_report_path)
    reported = {p["row"] - 1: p["problem"] for p in report["problems"]}
    assert reported == case.bad
    if case.exit_code:
        (message,) = [line for line in captured.err.splitlines() if line.startswith("error: ")]
        assert str(workspace.ingest_report_path) in message and "Traceback" not in captured.err
        return
    kept = workspace.load_catalog()
    good = [str(pid).strip() for i, pid in enumerate(rows["id"]) if i not in case.bad]
    assert kept["product_id"].tolist() == good
    assert report["rows_out"] == len(good) and report["dropped"] == len(case.bad)


def test_each_row_keeps_its_own_category_path(tmp_path: Path):
    config, _, rows = _build(CASES[0], tmp_path)
    assert main(["ingest", str(config), "--workspace", str(tmp_path / "ws")]) == 0
    kept = Workspace(tmp_path / "ws").load_catalog().set_index("product_id")
    assert kept.loc[str(rows["id"][3]), "category"] == "Apparel > Topwear > Tshirts"
    other = str(rows["id"][0])
    assert kept.loc[other, "category"] == f"{rows['masterCategory'][0]} > {rows['subCategory'][0]}"
    assert kept.loc[other, "level_3"] == ""


def test_a_bad_jsonl_line_is_named_by_its_line_in_the_file(tmp_path: Path, capsys):
    rows = fashion_rows(40, subcategories=("Topwear", "Shoes"), seed=4)
    write_catalog(tmp_path / "catalog", rows)
    lines = [json.dumps(r) for r in rows.to_dict(orient="records")]
    lines[30] = lines[30][:45]  # file line 31 is cut short
    (tmp_path / "catalog" / "styles.jsonl").write_text("\n".join(lines) + "\n")
    raw = config_dict(tmp_path / "catalog")
    raw["catalog"]["file"] = "styles.jsonl"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(raw))
    assert main(["ingest", str(tmp_path / "config.yaml"), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "styles.jsonl: line 31 column" in err


def test_a_misspelt_embedder_fails_before_anything_is_embedded(tmp_path: Path, capsys):
    config, _, _ = _build(CASES[0], tmp_path)
    raw = yaml.safe_load(config.read_text())
    raw["embed"]["text"]["name"] = "minilmm"
    config.write_text(yaml.safe_dump(raw))
    assert main(["embed", str(config), "--workspace", str(tmp_path / "ws")]) == 2
    err = capsys.readouterr().err
    assert "unknown embedder `minilmm`; did you mean `minilm`?" in err
    assert not (tmp_path / "ws" / "embeddings").exists()


def test_a_slash_inside_a_category_name_is_not_a_deeper_level():
    from discover.cluster.cascade import CascadeClusterer
    from discover.tree import in_subtree

    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    parents = [("Apparel", "Tops/Tees")] * 30 + [("Apparel", "Tops")] * 30
    model = CascadeClusterer(min_parent_size=100).fit(X, parents)
    slash, tops = (
        model.tree_.ensure_existing(["Apparel", "Tops/Tees"]),
        model.tree_.ensure_existing(["Apparel", "Tops"]),
    )
    assert slash.id != tops.id and slash.parent == "root/Apparel"
    assert (slash.size, tops.size) == (30, 30)
    assert int(in_subtree(pd.Series(model.labels_), tops.id).sum()) == 30


def test_a_truncated_cache_chunk_is_discarded_and_recomputed(tmp_path: Path, caplog):
    from discover.embed.cache import EmbeddingCache, one_batch_at_a_time

    cache = EmbeddingCache(tmp_path, "fp", dim=3)
    calls: list[list[int]] = []

    def compute(positions: list[int]):
        calls.append(positions)
        return np.tile(np.array(positions, dtype=np.float32)[:, None], (1, 3)), {}

    keys = [f"k{i}" for i in range(6)]
    cache.fill(keys, one_batch_at_a_time(compute), chunk_size=2)
    chunks = sorted(cache.chunks_dir.iterdir())
    chunks[1].write_bytes(chunks[1].read_bytes()[:40])  # a kill mid-copy, a full disk
    calls.clear()
    filled = cache.fill(keys, one_batch_at_a_time(compute), chunk_size=2)
    assert calls == [[2, 3]] and filled.computed == 2 and filled.cached == 4
    assert filled.vectors[:, 0].tolist() == [0, 1, 2, 3, 4, 5]
    assert any(str(chunks[1]) in r.message and "recomputed" in r.message for r in caplog.records)
    assert len(cache.load_index()) == 6  # the new chunk did not overwrite a good one


def _copied_run(small_run, tmp_path: Path) -> tuple[Workspace, str, Path]:
    result, config = small_run
    shutil.copytree(result.run_dir.parent.parent, tmp_path / "ws")
    shutil.copytree(config.catalog_path.parent, tmp_path / "catalog")
    return Workspace(tmp_path / "ws"), result.run_id, tmp_path / "catalog"


def test_an_older_run_stays_readable_after_the_catalog_is_ingested_again(small_run, tmp_path: Path, capsys):
    workspace, run_id, catalog = _copied_run(small_run, tmp_path)
    rows = pd.read_csv(catalog / "styles.csv", dtype=str, keep_default_na=False)
    rows.iloc[:200].to_csv(catalog / "styles.csv", index=False)  # 160 products left the catalog
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config_dict(catalog, discovery__min_parent_size=20)))
    assert main(["ingest", str(tmp_path / "config.yaml"), "--workspace", str(workspace.root)]) == 0
    assert len(workspace.load_catalog()) == 200
    out = tmp_path / "exported"
    assert main(["export", "--workspace", str(workspace.root), "--run", run_id, "--out", str(out)]) == 0
    assert len(json.loads((out / "assignments.json").read_text())) == 360
    assert main(["evaluate", "--workspace", str(workspace.root), "--run", run_id]) == 0


def test_the_latest_run_is_the_last_finished_not_the_last_exported(small_run, tmp_path: Path):
    workspace, run_id, _ = _copied_run(small_run, tmp_path)
    older = workspace.run_dir("older-run")
    shutil.copytree(workspace.run_dir(run_id), older)
    (older / "finished.json").write_text(json.dumps({"finished_at": 1.0}))
    assert main(["export", "--workspace", str(workspace.root), "--run", "older-run"]) == 0
    assert workspace.run_ids() == [run_id, "older-run"]


_PROPOSE = """
import sys
from discover.cluster.stage import propose_subcategories
from discover.outputs.run_data import RunData
from discover.workspace import Workspace
run = RunData(Workspace(sys.argv[1]), sys.argv[2])
fused, type_view = run.discovery_inputs()
proposals = propose_subcategories(fused, run.catalog, run.config.discovery, run.config.seed, type_view=type_view)
print(proposals.tree.to_json() + proposals.assignments.to_csv() + proposals.coords.to_csv())
"""


def test_the_thread_count_does_not_change_the_clusters(small_run):
    result, _ = small_run
    outputs = []
    for threads in ("1", None):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
        if threads:
            env.update(OMP_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        done = subprocess.run(
            [sys.executable, "-c", _PROPOSE, str(result.run_dir.parent.parent), result.run_id],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
