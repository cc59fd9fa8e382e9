"""fetch-sample against a local HTTP server on 127.0.0.1 (no other network)."""

import functools
import http.server
import json
import threading
from pathlib import Path

import pandas as pd

from discover.config import config_from_dict
from discover.data.fetch import fetch_sample
from discover.data.ingest import ingest
from discover.workspace import Workspace
from tests.conftest import FASHION, REPO, config_dict, fashion_rows


def test_fetch_sample_writes_the_fashion_small_layout(tmp_path: Path):
    rows = fashion_rows(30)
    served = tmp_path / "served"
    served.mkdir()
    rows = rows.drop(columns=["image_md5"]).assign(image=[{"bytes": (FASHION / p).read_bytes()} for p in rows["image"]])
    rows.iloc[:15].to_parquet(served / "part-0.parquet")
    rows.iloc[15:].to_parquet(served / "part-1.parquet")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    (served / "index.json").write_text(json.dumps([f"{base}/part-0.parquet", f"{base}/part-1.parquet"]))
    try:
        styles = fetch_sample(tmp_path / "sample", source=f"{base}/index.json")
    finally:
        server.shutdown()
    written = pd.read_csv(styles, dtype=str)
    assert len(written) == 30 and (tmp_path / "sample" / "images" / f"{rows['id'][0]}.jpg").exists()
    original = pd.read_csv(FASHION / "styles.csv", dtype=str).set_index("id").loc[written["id"]]
    assert written["image_md5"].tolist() == original["image_md5"].tolist()
    config = config_from_dict(config_dict(tmp_path / "sample"), REPO / "configs")
    assert ingest(config, Workspace(tmp_path / "ws"), show_progress=False).report.rows_out == 30
