"""Embedders, fusion and the content-addressed cache, on real photos and titles."""

import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import yaml

from discover.data.ingest import ingest
from discover.embed import create_embedder
from discover.embed.fuse import fuse
from discover.embed.stage import embed_catalog
from discover.errors import EmbedError
from discover.workspace import Workspace
from tests.conftest import REPO, config_dict, fashion_rows, make_config, write_catalog

TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "head_width": 32, "patch_size": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


@pytest.fixture(scope="module")
def photos_and_titles(tmp_path_factory) -> tuple[list[str], list[str]]:
    rows = fashion_rows(12, seed=3)
    directory = write_catalog(tmp_path_factory.mktemp("embedders"), rows).parent
    return [str(directory / p) for p in rows["image"]], rows["productDisplayName"].tolist()


@pytest.fixture(scope="module")
def tiny_clip_checkpoint(tmp_path_factory) -> str:
    directory = tmp_path_factory.mktemp("clip")
    (directory / "discover-tiny.json").write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(directory / "discover-tiny.json")
    torch.manual_seed(0)
    model = open_clip.create_model("discover-tiny")
    path = directory / "tiny.pt"
    torch.save(model.state_dict(), path)
    return str(path)


def _check(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.dtype == np.float32 and vectors.shape == (n, dim)
    assert np.isfinite(vectors).all() and np.abs(vectors).sum(axis=1).min() > 0


def test_efficientnet_lite0_is_1280_d_and_deterministic(photos_and_titles):
    paths, _ = photos_and_titles
    embedder = create_embedder("efficientnet-lite0", "image", image_size=64)
    first = embedder.embed_images(paths, batch_size=5, progress=False).vectors
    again = create_embedder("efficientnet-lite0", "image", image_size=64).embed_images(paths, 12, progress=False)
    _check(first, 12, 1280)
    np.testing.assert_allclose(first, again.vectors, rtol=1e-4, atol=1e-5)
    assert "64px" in embedder.fingerprint


def test_minilm_is_384_d_and_deterministic(photos_and_titles):
    _, titles = photos_and_titles
    embedder = create_embedder("minilm", "text")
    first = embedder.embed_texts(titles, progress=False).vectors
    _check(first, 12, 384)
    np.testing.assert_allclose(first, embedder.embed_texts(titles, batch_size=3, progress=False).vectors, atol=1e-5)


def test_tfidf_is_fitted_on_the_corpus_and_deterministic(photos_and_titles):
    _, titles = photos_and_titles
    known = ["c"] * len(titles) * 3

    def fitted(corpus_id: str):
        return create_embedder("tfidf", "text", components=4).fit(titles * 3, corpus_id, known)

    embedder = fitted("corpus-1")
    first = embedder.embed_texts(titles).vectors
    _check(first, 12, embedder.dim)
    np.testing.assert_allclose(first, fitted("corpus-1").embed_texts(titles).vectors, atol=1e-6)
    assert fitted("corpus-1").fingerprint == embedder.fingerprint != fitted("corpus-2").fingerprint  # names its corpus


def test_clip_loads_a_local_checkpoint_for_both_towers(photos_and_titles, tiny_clip_checkpoint):
    paths, titles = photos_and_titles
    image = create_embedder("clip", "image", arch="discover-tiny", pretrained=tiny_clip_checkpoint)
    text = create_embedder("clip", "text", arch="discover-tiny", pretrained=tiny_clip_checkpoint)
    images = image.embed_images(paths, batch_size=4, progress=False).vectors
    texts = text.embed_texts(titles, batch_size=4, progress=False).vectors
    _check(images, 12, 32)
    _check(texts, 12, 32)
    reloaded = create_embedder("clip", "image", arch="discover-tiny", pretrained=tiny_clip_checkpoint)
    np.testing.assert_allclose(images, reloaded.embed_images(paths, 12, progress=False).vectors, atol=1e-5)
    assert image.fingerprint != text.fingerprint and image.weights_id in image.fingerprint


def test_clip_tag_offline_fails_at_once_naming_the_fix(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(EmbedError, match="pass its file path as `pretrained`"):
        create_embedder("clip", "image", arch="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert time.perf_counter() - started < 60


def test_clip_tag_with_the_hub_unreachable_fails_at_once(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    started = time.perf_counter()
    with pytest.raises(EmbedError, match="unreachable.*pass its file path as `pretrained`"):
        create_embedder("clip", "image", arch="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert time.perf_counter() - started < 30


def test_unknown_embedder_lists_the_available_ones():
    with pytest.raises(EmbedError, match="available: clip, efficientnet-lite0, known-level-words, minilm"):
        create_embedder("resnet", "image")


def test_fusion_weights_normalised_blocks():
    rng = np.random.default_rng(0)
    image, text = rng.normal(size=(5, 8)) * 10, rng.normal(size=(5, 3))
    fused = fuse([image, text], [1.0, 0.5])
    assert fused.shape == (5, 11) and fused.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(fused[:, :8], axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(fused[:, 8:], axis=1), 0.5, rtol=1e-5)
    assert fuse([image, text], [1, 1], pca_components=4).shape == (5, 4)


def _embed(directory: Path, workspace: Workspace, **overrides):
    config = make_config(directory, **{"embed__image__image_size": 32, "embed__chunk_size": 40, **overrides})
    ingest(config, workspace, show_progress=False)
    return embed_catalog(config, workspace, progress=False)


def test_cache_computes_nothing_twice_then_only_what_changed(tmp_path: Path):
    rows = fashion_rows(140, seed=5)
    directory = write_catalog(tmp_path / "catalog", rows.iloc[:40]).parent
    workspace = Workspace(tmp_path / "ws")
    embed = partial(_embed, embed__words=None)  # a corpus-fitted view is refit when the catalog grows
    first = embed(directory, workspace)
    assert [(p.computed, p.cached) for p in first.parts] == [(40, 0), (len(set(rows["productDisplayName"][:40])), 0)]
    second = embed(directory, workspace)
    assert [p.computed for p in second.parts] == [0, 0]
    np.testing.assert_array_equal(first.vectors, second.vectors)

    write_catalog(directory, rows)  # 100 new products
    grown = embed(directory, workspace)
    new_photos = len(set(rows["image_md5"][40:]) - set(rows["image_md5"][:40]))
    assert grown.parts[0].computed == new_photos and grown.parts[0].cached == 140 - new_photos
    np.testing.assert_allclose(grown.vectors[:40], first.vectors, atol=1e-5)

    changed = directory / rows["image"][7]
    changed.write_bytes((directory / rows["image"][8]).read_bytes())
    (directory / rows["image"][9]).write_bytes((directory / rows["image"][10]).read_bytes()[::-1][:2] + b"xx")
    after = embed(directory, workspace, catalog__on_invalid="keep")
    assert after.parts[0].computed == 0  # photo 7 now equals photo 8, which is cached
    np.testing.assert_array_equal(after.parts[0].vectors[7], grown.parts[0].vectors[8])
    assert after.parts[1].computed == 0


def test_broken_photo_mid_batch_is_reported_and_the_others_are_embedded(tmp_path: Path):
    rows = fashion_rows(30, seed=6)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    (directory / rows["image"][11]).write_bytes(b"\xff\xd8\xff broken")
    features = _embed(directory, Workspace(tmp_path / "ws"), catalog__on_invalid="keep")
    image = features.parts[0]
    assert list(image.failed) == [11] and "cannot identify" in image.failed[11]
    assert image.computed == 29
    norms = np.linalg.norm(image.vectors, axis=1)
    assert norms[11] == 0 and (np.delete(norms, 11) > 0).all()


def test_worker_processes_embed_what_this_process_would_report_failures_and_are_stopped(tmp_path: Path):
    import multiprocessing
    import resource

    rows = fashion_rows(600, seed=8)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    (directory / rows["image"][300]).write_bytes(b"\xff\xd8\xff broken")  # in the second piece of the chunk
    one = _embed(
        directory, Workspace(tmp_path / "one"), catalog__on_invalid="keep", embed__words=None, embed__chunk_size=600
    )
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
    running_before = set(multiprocessing.active_children())  # e.g. joblib's reusable workers of earlier tests
    two = _embed(
        directory,
        Workspace(tmp_path / "two"),
        catalog__on_invalid="keep",
        embed__words=None,
        embed__chunk_size=600,
        embed__n_jobs=2,
        embed__workers_from=512,
    )
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - children_before > 1  # the work ran in workers
    assert not set(multiprocessing.active_children()) - running_before  # and they were stopped with the stage
    for ours, theirs in zip(one.parts, two.parts, strict=True):
        assert (theirs.computed, theirs.failed.keys()) == (ours.computed, ours.failed.keys())
        np.testing.assert_allclose(theirs.vectors, ours.vectors, atol=1e-4)  # one torch thread each: last bits differ
    assert list(two.parts[0].failed) == [300] and "cannot identify" in two.parts[0].failed[300]


def _kill_embed_after(tmp_path: Path, raw: dict, chunks: int) -> tuple[Workspace, list]:
    """Run `discover embed` on `raw`, SIGKILL it once `chunks` cache chunks are written; the
    workspace and the processes the command had started (psutil) when it was killed."""
    import psutil

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    workspace = Workspace(tmp_path / "ws")
    process = subprocess.Popen(
        [sys.executable, "-m", "discover.cli", "embed", str(tmp_path / "c.yaml"), "--workspace", str(workspace.root)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 180
    while time.time() < deadline and len(list(workspace.embeddings_dir.glob("*.chunks/chunk-*.npz"))) < chunks:
        time.sleep(0.05)
    children = psutil.Process(process.pid).children(recursive=True)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    return workspace, children


def test_worker_processes_stop_when_the_command_is_killed_outright(tmp_path: Path):
    import psutil

    rows = fashion_rows(900, seed=9)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    raw = config_dict(
        directory,
        embed__n_jobs=2,
        embed__workers_from=512,
        embed__chunk_size=256,
        embed__image__image_size=64,
        embed__text=None,
        embed__words=None,
    )
    _, workers = _kill_embed_after(tmp_path, raw, chunks=1)
    assert len(workers) >= 2, "the workers were embedding when the command was killed"
    gone, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"worker processes outlived the killed command: {[p.pid for p in alive]}"


def test_killed_embed_resumes_from_finished_chunks_with_the_same_result(tmp_path: Path):
    rows = fashion_rows(160, seed=7)
    directory = write_catalog(tmp_path / "catalog", rows).parent
    raw = config_dict(
        directory, embed__chunk_size=10, embed__batch_size=10, embed__image__image_size=64, embed__text=None
    )
    workspace, _ = _kill_embed_after(tmp_path, raw, chunks=3)
    finished = len(list(workspace.embeddings_dir.glob("*.chunks/chunk-*.npz")))
    assert 3 <= finished < 16, "the run should be killed part-way"
    config = make_config(
        directory, embed__chunk_size=10, embed__batch_size=10, embed__image__image_size=64, embed__text=None
    )
    resumed = embed_catalog(config, workspace, progress=False).parts[0]
    assert resumed.cached >= finished * 10 and resumed.computed == 160 - resumed.cached
    uninterrupted = Workspace(tmp_path / "uninterrupted")
    ingest(config, uninterrupted, show_progress=False)
    fresh = embed_catalog(config, uninterrupted, progress=False).parts[0]
    np.testing.assert_allclose(resumed.vectors, fresh.vectors, atol=1e-4)


def test_every_built_in_name_is_registered_by_the_module_it_names():
    """The config check trusts `registry.BUILT_IN` without importing the embedders; a name its
    module does not register would pass the check and then fail after ingest."""
    import importlib

    from discover.embed import registry

    for name, module in registry.BUILT_IN.items():
        importlib.import_module(f"discover.embed.{module}")
        assert registry._REGISTRY[name].__module__ == f"discover.embed.{module}", name
    assert set(registry.BUILT_IN) == set(registry._REGISTRY)
