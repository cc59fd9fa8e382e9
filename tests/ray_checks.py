"""Ray engine runs for tests/test_ray_engine.py, started in a private network namespace.

Ray's servers listen on every interface of the machine; inside ``unshare --net`` the only
interface is loopback, so nothing a test starts can be reached from outside. Each command
writes what it saw to a JSON file; the test makes its assertions outside.

    python tests/ray_checks.py run CONFIG.yaml WORKSPACE OUT.json
    python tests/ray_checks.py kill-worker CONFIG.yaml WORKSPACE OUT.json
    python tests/ray_checks.py classify-predict CONFIG.yaml WORKSPACE OUT.json NEW_PRODUCTS.csv
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import psutil


def interfaces() -> list[str]:
    return sorted(psutil.net_if_addrs())


def run(config_path: str, workspace: str) -> dict:
    from discover.pipeline import run as run_pipeline

    result = run_pipeline(config_path, workspace, show_progress=False)
    return {"run_dir": str(result.run_dir)}


def _embedding_workers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "MapWorker" in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def kill_worker(config_path: str, workspace: str) -> dict:
    """Embed with the Ray engine and SIGKILL one embedding worker once the first chunk is written."""
    from discover.config import load_config
    from discover.data.ingest import ingest
    from discover.embed.stage import embed_catalog
    from discover.engine import engine_session
    from discover.workspace import Workspace

    config = load_config(config_path)
    space = Workspace(workspace)
    ingest(config, space, show_progress=False)
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not killed:
            chunks = list(space.embeddings_dir.glob("*.chunks/chunk-*.npz"))
            workers = _embedding_workers()
            if chunks and workers:
                os.kill(workers[0].pid, signal.SIGKILL)
                killed.append(workers[0].pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    with engine_session(config):
        features = embed_catalog(config, space, progress=False)
    return {
        "killed": killed,
        "failed": sum(len(p.failed) for p in features.parts),
        "fingerprints": [p.fingerprint for p in features.parts],
    }


def classify_predict(config_path: str, workspace: str, products: str) -> dict:
    """`discover classify predict` on new products, noting whether Ray embedding workers ran."""
    from discover.cli import main as discover

    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.extend(p.pid for p in _embedding_workers())
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    out = Path(workspace) / "predictions.csv"
    code = discover(
        ["classify", "predict", config_path, "--workspace", workspace, "--catalog", products, "--out", str(out)]
    )
    done.set()
    thread.join()
    return {"exit": code, "predictions": str(out), "workers_seen": len(set(seen))}


def main() -> None:
    command, config_path, workspace, out, *extra = sys.argv[1:]
    commands = {"run": run, "kill-worker": kill_worker, "classify-predict": classify_predict}
    outcome = commands[command](config_path, workspace, *extra)
    outcome["interfaces"] = interfaces()
    Path(out).write_text(json.dumps(outcome))


if __name__ == "__main__":
    main()
