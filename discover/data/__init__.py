"""Getting a catalog in: reading CSV/Parquet/JSONL files, validating every row, ingest.

`catalog` maps the user's columns onto the canonical ones and lists every bad row in an
ingest report; `ingest` writes the validated table into the workspace (skipped when the
catalog is unchanged); `fetch` downloads the public fashion-small sample, the only code
path that uses the network, and only when the user runs `discover fetch-sample`.
"""
