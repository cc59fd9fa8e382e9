"""The Ray engine (``engine: ray``) on a local cluster gives the local engine's output.

Ray runs in a subprocess inside a private network namespace (tests/ray_checks.py), so its
servers are reachable from this machine's loopback only; the comparisons are made here.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import yaml

from discover.config import config_from_dict
from discover.embed.cache import load_aligned
from discover.pipeline import run
from discover.workspace import Workspace
from tests.conftest import REPO, config_dict, fashion_rows, write_catalog

pytest.importorskip("ray")
# One xdist worker runs them all: each checks that no Ray process outlives its run, which
# another test's cluster, started meanwhile on another worker, would break.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ray")]

CHECKS = Path(__file__).with_name("ray_checks.py")


def _private_network_available() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    return subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0


needs_namespace = pytest.mark.skipif(
    not _private_network_available(), reason="needs `unshare --net` (root) to keep the Ray cluster on loopback"
)


def _ray_processes() -> set[int]:
    names = ("raylet", "gcs_server", "ray::")
    found = set()
    for process in psutil.process_iter(["name", "cmdline"]):
        text = " ".join([process.info["name"] or "", *(process.info["cmdline"] or [])])
        if any(n in text for n in names):
            found.add(process.pid)
    return found


def ray_check(command: str, config: dict, workspace: Path, tmp_path: Path, *extra: str) -> dict:
    """Run one tests/ray_checks.py command with the Ray engine on a 2-CPU local cluster."""
    config = {**config, "engine": "ray", "ray": {"num_cpus": 2, "actors": 2}}
    config_path = tmp_path / f"{command}.yaml"
    config_path.write_text(yaml.safe_dump(config))
    out = tmp_path / f"{command}.json"
    before = _ray_processes()
    shell = 'ip link set lo up && exec "$0" "$@"'
    args = [sys.executable, str(CHECKS), command, str(config_path), str(workspace), str(out), *extra]
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", shell, *args], capture_output=True, text=True, timeout=600, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    leftover = []
    for pid in _ray_processes() - before:
        with contextlib.suppress(psutil.Error):
            leftover.append(psutil.Process(pid))
    # A worker may take a while to see its raylet gone: on a loaded machine (the suite in
    # parallel) the cluster took over 30 s to wind down, and did, with nothing left behind.
    _, alive = psutil.wait_procs(leftover, timeout=120)
    assert not alive, f"the Ray cluster outlived its run: {[p.pid for p in alive]}"
    outcome = json.loads(out.read_text())
    assert outcome["interfaces"] == ["lo"]
    return outcome


def _catalog(tmp_path: Path, n: int, seed: int) -> Path:
    rows = fashion_rows(n, subcategories=("Topwear", "Shoes", "Bags", "Bottomwear"), seed=seed)
    return write_catalog(tmp_path / "catalog", rows).parent


@needs_namespace
def test_ray_engine_gives_the_local_engines_embeddings_tree_and_assignments(tmp_path: Path):
    raw = config_dict(_catalog(tmp_path, 240, seed=3), discovery__min_parent_size=20)
    raw["embed"]["chunk_size"] = 32  # several chunks per embedder, spread over both workers
    raw["embed"]["torch_threads"] = 1  # as each worker has: the same vectors bit for bit
    local = run(config_from_dict(raw, REPO / "configs"), Workspace(tmp_path / "local"), show_progress=False)
    remote = Path(ray_check("run", raw, tmp_path / "ray", tmp_path)["run_dir"])

    assert remote.name == local.run_dir.name
    for meta in sorted((tmp_path / "local" / "embeddings").glob("*.json")):
        mine, _ = load_aligned(meta.parent, meta.stem)
        theirs, their_meta = load_aligned(tmp_path / "ray" / "embeddings", meta.stem)
        assert their_meta["product_ids"] == json.loads(meta.read_text())["product_ids"]
        np.testing.assert_array_equal(theirs, mine)
    assert (
        json.loads((remote / "tree.json").read_text())["nodes"]
        == json.loads((local.run_dir / "tree.json").read_text())["nodes"]
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(remote / "assignments.parquet"), pd.read_parquet(local.run_dir / "assignments.parquet")
    )
    assert len(json.loads((remote / "tree.json").read_text())["nodes"]) > 4  # a real tree


@needs_namespace
def test_a_worker_killed_mid_embedding_every_product_is_embedded_once(tmp_path: Path):
    raw = config_dict(_catalog(tmp_path, 300, seed=4))
    raw["embed"] = {**raw["embed"], "chunk_size": 8, "text": None, "words": None}
    outcome = ray_check("kill-worker", raw, tmp_path / "ray", tmp_path)

    assert outcome["killed"], "no embedding worker was running to kill"
    assert outcome["failed"] == 0
    (fingerprint,) = outcome["fingerprints"]
    vectors, meta = load_aligned(tmp_path / "ray" / "embeddings", fingerprint)
    assert len(meta["product_ids"]) == 300 and np.all(np.linalg.norm(vectors, axis=1) > 0)
    cached_keys = []
    for chunk in sorted((tmp_path / "ray" / "embeddings" / f"{fingerprint}.chunks").glob("chunk-*.npz")):
        with np.load(chunk) as data:
            cached_keys += data["keys"].tolist()
    assert len(cached_keys) == len(set(cached_keys)) == len(set(meta["content_hashes"]))


@needs_namespace
def test_classify_predict_embeds_new_products_on_ray_workers_as_the_local_engine_does(tmp_path: Path):
    from discover.cli import main

    rows = fashion_rows(260, subcategories=("Topwear", "Shoes", "Bags", "Bottomwear"), seed=6)
    raw = config_dict(write_catalog(tmp_path / "catalog", rows.iloc[:200]).parent)
    raw["classify"] = {"epochs": 5, "members": 1, "two_stage_threshold": None}  # every new photo is embedded
    raw["embed"]["torch_threads"] = 1  # as each worker has: the same vectors bit for bit
    config = tmp_path / "local.yaml"
    config.write_text(yaml.safe_dump(raw))
    assert main(["classify", "train", str(config), "--workspace", str(tmp_path / "local")]) == 0
    shutil.copytree(tmp_path / "local", tmp_path / "ray")  # the same model, nothing of the new products cached
    new = write_catalog(tmp_path / "new", rows.iloc[200:])
    local = tmp_path / "local.csv"
    args = ["--workspace", str(tmp_path / "local"), "--catalog", str(new), "--out", str(local)]
    assert main(["classify", "predict", str(config), *args]) == 0
    outcome = ray_check("classify-predict", raw, tmp_path / "ray", tmp_path, str(new))

    assert outcome["exit"] == 0 and outcome["workers_seen"] > 0  # the new products went to Ray's workers
    pd.testing.assert_frame_equal(pd.read_csv(outcome["predictions"]), pd.read_csv(local))


def test_ray_work_without_a_connected_cluster_says_so():
    from discover.engine import ordered_map
    from discover.errors import DiscoverError

    with pytest.raises(DiscoverError, match="no Ray cluster is connected"):
        list(ordered_map(abs, [(-1,)], engine="ray"))


def test_engine_is_chosen_in_the_config_or_on_the_command_line(small_catalog: Path):
    from discover.cli import _load, build_parser
    from discover.errors import ConfigError

    raw = config_dict(small_catalog)
    assert config_from_dict({**raw, "engine": "ray"}, REPO / "configs").engine == "ray"
    with pytest.raises(ConfigError, match="`engine`: Input should be .local. or .ray."):
        config_from_dict({**raw, "engine": "spark"}, REPO / "configs")
    path = small_catalog / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    args = build_parser().parse_args(["run", str(path), "--engine", "ray"])
    assert _load(args)[0].engine == "ray"
