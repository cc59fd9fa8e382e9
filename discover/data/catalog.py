"""Load and validate a product catalog into the canonical table.

Canonical columns: ``product_id`` (str, unique), ``title``, ``image`` (as written in the
catalog), ``image_path`` (resolved absolute path), ``level_1`` … ``level_n`` and
``category`` (the levels joined by `` > ``), optional ``group``, ``truth`` and ``known_leaf``, then the
attribute columns the config names. Bad rows are never lost silently: every problem is
listed in an :class:`IngestReport`, and the config decides whether the row is kept or dropped.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from discover.config import CatalogConfig, ColumnMap
from discover.data.images import check_images, resolve_inside
from discover.errors import CatalogError

log = logging.getLogger(__name__)

PATH_SEPARATOR = " > "
MISSING_LEVEL = "(missing)"
CANONICAL = ("product_id", "title", "image", "image_path", "image_hash", "category", "group", "truth", "known_leaf")


@dataclass(frozen=True)
class RowProblem:
    """One problem with one row: where it is and what is wrong."""

    row: int
    product_id: str
    column: str
    problem: str
    detail: str = ""


@dataclass
class IngestReport:
    """What ingest read, kept and dropped, and why."""

    source: str
    rows_in: int = 0
    rows_out: int = 0
    dropped: int = 0
    on_invalid: str = "drop"
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.problem for p in self.problems).items()))

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "dropped": self.dropped,
            "on_invalid": self.on_invalid,
            "problem_counts": self.counts,
            "problems": [asdict(p) for p in self.problems],
        }

    @classmethod
    def from_dict(cls, payload: dict) -> IngestReport:
        problems = [RowProblem(**p) for p in payload.get("problems", [])]
        keys = ("source", "rows_in", "rows_out", "dropped", "on_invalid")
        return cls(**{k: payload[k] for k in keys}, problems=problems)

    def summary(self, max_listed: int = 10) -> str:
        """A one-screen summary for the terminal."""
        lines = [
            f"catalog   {self.source}",
            f"rows      {self.rows_in:,} in, {self.rows_out:,} out, {self.dropped:,} dropped "
            f"(on_invalid: {self.on_invalid})",
        ]
        if not self.problems:
            lines.append("problems  none")
            return "\n".join(lines)
        counts = ", ".join(f"{name} {n:,}" for name, n in self.counts.items())
        lines.append(f"problems  {len(self.problems):,}: {counts}")
        for p in self.problems[:max_listed]:
            detail = f" ({p.detail})" if p.detail else ""
            lines.append(f"  row {p.row} id={p.product_id} column {p.column}: {p.problem}{detail}")
        if len(self.problems) > max_listed:
            lines.append(f"  … {len(self.problems) - max_listed:,} more in ingest_report.json")
        return "\n".join(lines)


@dataclass
class Catalog:
    """A validated catalog: the canonical table, its category level names and the report."""

    table: pd.DataFrame
    level_columns: list[str]
    attributes: list[str]
    report: IngestReport


def _decode_utf8(raw: bytes, path: Path) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise CatalogError(
            f"{path}: not UTF-8 at byte offset {error.start} (line {line}, data row {line - 1}): "
            f"byte {raw[error.start : error.start + 1]!r}; re-save the file as UTF-8"
        ) from None


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL catalog with every value as a string."""
    if not path.is_file():
        raise CatalogError(f"{path}: catalog file not found")
    if fmt == "auto":
        suffix = path.suffix.lower()
        fmt = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(suffix, "")
        if not fmt:
            raise CatalogError(f"{path}: cannot tell the format from '{suffix}'; set catalog.format")
    if fmt == "parquet":
        frame = pd.read_parquet(path)
        return frame.astype(object).where(frame.notna(), "").astype(str)
    text = _decode_utf8(path.read_bytes(), path)
    if fmt == "jsonl":
        frame = pd.DataFrame(_json_lines(text, path))
        return frame.astype(object).where(frame.notna(), "").astype(str)
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as error:
        raise CatalogError(f"{path}: cannot parse as CSV: {error}") from None


def _json_lines(text: str, path: Path) -> list[dict]:
    """One object per non-empty line; a bad line is named by its line number in the file."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise CatalogError(f"{path}: line {number} column {error.colno}: not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise CatalogError(f"{path}: line {number}: expected one JSON object per line, got {type(row).__name__}")
        rows.append(row)
    return rows


def _check_columns(frame: pd.DataFrame, wanted: Iterable[str], path: Path) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise CatalogError(
            f"{path}: mapped column(s) {', '.join(missing)} not found; "
            f"columns present: {', '.join(map(str, frame.columns))}"
        )


def _check_unique_ids(ids: pd.Series, column: str, path: Path) -> None:
    duplicated = ids[ids.duplicated(keep=False)]
    if duplicated.empty:
        return
    first = list(dict.fromkeys(duplicated.tolist()))[:5]
    rows = {pid: (ids.index[ids == pid] + 1).tolist()[:3] for pid in first}
    listing = "; ".join(f"{pid} at rows {r}" for pid, r in rows.items())
    raise CatalogError(f"{path}: column {column}: {duplicated.nunique()} duplicate product ids, first: {listing}")


MISSING_VALUES = {"", "nan", "none", "null"}  # how empty cells arrive from spreadsheets and pandas


def is_missing(value: str) -> bool:
    """Whether a cell holds no value: empty, or a literal NaN/None/null written by an export."""
    return value.strip().lower() in MISSING_VALUES


def _segments(frame: pd.DataFrame, config: CatalogConfig) -> list[list[str]]:
    """Each row's category path as written: level columns, or one column split on the separator.

    With level columns, empty trailing levels mean a shorter path; a split path keeps every
    segment, so ``A >> B`` or ``A > B >`` shows its empty segment.
    """
    columns = config.columns
    if columns.levels:
        rows = frame[columns.levels].itertuples(index=False, name=None)
        paths = [["" if is_missing(v) else v.strip() for v in row] for row in rows]
        for path in paths:
            while path and not path[-1]:
                path.pop()
        return paths
    values = frame[columns.category].tolist()
    return [[] if is_missing(v) else [s.strip() for s in v.split(columns.separator)] for v in values]


def _levels(paths: list[list[str]], index: pd.Index) -> pd.DataFrame:
    """``level_1`` … ``level_n`` (n = the deepest path); a shorter path leaves "" below it."""
    depth = max((len(p) for p in paths), default=1) or 1
    rows = [[*p, *[""] * (depth - len(p))] for p in paths]
    return pd.DataFrame(rows, index=index, columns=[f"level_{i + 1}" for i in range(depth)], dtype=object)


def _copy_optional_columns(table: pd.DataFrame, raw: pd.DataFrame, columns: ColumnMap) -> None:
    """group, truth, known_leaf (filled where the taxonomy is already fine) and the attributes."""
    for canonical, source in (("group", columns.group), ("truth", columns.truth)):
        if source:
            table[canonical] = raw[source]
    if columns.known_leaf:
        table["known_leaf"] = raw[columns.known_leaf].fillna("").astype(str).str.strip()
    for attribute in columns.attributes:
        table[attribute] = raw[attribute]


def _ignore_known_leaves(table: pd.DataFrame, categories: list[str], catalog_path: Path) -> None:
    """Empty `known_leaf` under each of `categories` (a category path and everything below it)."""
    if not categories:
        return
    if "known_leaf" not in table.columns:
        raise CatalogError(f"{catalog_path}: known_leaf_ignored_in is set but catalog.columns.known_leaf is not")
    category = table["category"]
    for path in categories:
        inside = (category == path) | category.str.startswith(path + PATH_SEPARATOR)
        if not inside.any():
            raise CatalogError(f"{catalog_path}: known_leaf_ignored_in names {path!r}, a category no row has")
        table.loc[inside, "known_leaf"] = ""


def load_catalog(
    config: CatalogConfig, catalog_path: Path, show_progress: bool = True, new_products: bool = False
) -> Catalog:
    """Read `catalog_path`, map it onto the canonical columns and validate every row.

    With `new_products` (products to classify), only the id, title and image columns are
    required: the category, group, truth and attribute columns may be absent (read as empty),
    and a product without a category is not a problem, since the category is what is asked for.
    """
    catalog_path = Path(catalog_path).resolve()
    raw = read_table(catalog_path, config.format)
    columns = config.columns
    level_sources = columns.levels or [columns.category]
    optional = [*level_sources, *(c for c in (columns.group, columns.truth, columns.known_leaf) if c)]
    optional += list(columns.attributes)
    if new_products:
        absent = [c for c in dict.fromkeys(optional) if c not in raw.columns]
        if absent:
            log.info("%s: no column(s) %s; read as empty", catalog_path, ", ".join(absent))
        raw = raw.assign(**dict.fromkeys(absent, ""))
    _check_columns(raw, [columns.product_id, columns.title, columns.image, *optional], catalog_path)
    clash = [a for a in columns.attributes if a in CANONICAL or a.startswith("level_")]
    if clash:
        raise CatalogError(f"{catalog_path}: attribute column(s) {clash} clash with canonical names")
    raw = raw.reset_index(drop=True)
    ids = raw[columns.product_id].str.strip()
    _check_unique_ids(ids[ids != ""], columns.product_id, catalog_path)

    report = IngestReport(source=str(catalog_path), rows_in=len(raw), on_invalid=config.on_invalid)
    table = pd.DataFrame({"product_id": ids, "title": raw[columns.title].str.strip(), "image": raw[columns.image]})
    paths = _segments(raw, config)
    problems: dict[int, list[RowProblem]] = {}

    def flag(row: int, column: str, problem: str, detail: str = "") -> None:
        problems.setdefault(row, []).append(RowProblem(row + 1, ids[row], column, problem, detail))

    for row in table.index[ids == ""]:
        flag(row, columns.product_id, "empty_product_id")
    for row in table.index[table["title"].map(is_missing)]:
        flag(row, columns.title, "empty_title")
    for row, path in enumerate(paths):
        if not path and not new_products:
            flag(row, level_sources[0], "empty_category")
        for i in (i for i, name in enumerate(path) if not name):
            if not new_products:
                flag(row, level_sources[min(i, len(level_sources) - 1)], "empty_level", f"level_{i + 1}")
            path[i] = MISSING_LEVEL
    levels = _levels(paths, raw.index)

    image_paths, image_hashes, image_problems = check_images(
        table["image"].tolist(), catalog_path.parent, config, show_progress
    )
    for row, (problem, detail) in image_problems.items():
        flag(row, columns.image, problem, detail)
    table["image_path"] = image_paths
    table["image_hash"] = image_hashes
    table = pd.concat([table, levels], axis=1)
    table["category"] = [PATH_SEPARATOR.join(p) for p in paths]
    _copy_optional_columns(table, raw, columns)
    if not new_products:  # discovery's protocol B setting; nothing to do with classifying new products
        _ignore_known_leaves(table, config.known_leaf_ignored_in, catalog_path)

    report.problems = [p for row in sorted(problems) for p in problems[row]]
    table["problem"] = [",".join(sorted({p.problem for p in problems.get(i, [])})) for i in table.index]
    if config.on_invalid == "drop":
        keep = table["problem"] == ""
        report.dropped = int((~keep).sum())
        table = table[keep].reset_index(drop=True)
    report.rows_out = len(table)
    log.info("ingest: %d rows in, %d out, %d problems", report.rows_in, report.rows_out, len(report.problems))
    return Catalog(table=table, level_columns=list(levels.columns), attributes=list(columns.attributes), report=report)


def table_signature(table: pd.DataFrame) -> str:
    """A hash of what an ingest made: every column but the photos' resolved paths (their bytes
    are in ``image_hash``). Equal for the same products, titles, photos and categories
    wherever the catalog folder lives and whatever its files' mtimes, so a copied, re-fetched
    or re-mounted catalog keeps its runs (and their curation) where `catalog_signature`,
    the cheap check that skips a re-ingest, changes."""
    content = table.drop(columns=["image_path"]).astype(str)
    digest = hashlib.sha256("\x1f".join(content.columns).encode())
    digest.update(pd.util.hash_pandas_object(content, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def catalog_signature(config: CatalogConfig, catalog_path: Path) -> str:
    """A content hash of the catalog file, its mapping, and the size and mtime of each image.

    Equal signatures mean a re-ingest would produce the same table, so it can be skipped.
    """
    digest = hashlib.sha256()
    digest.update(Path(catalog_path).read_bytes())
    digest.update(config.model_dump_json().encode())
    root = Path(catalog_path).parent
    raw = read_table(Path(catalog_path), config.format)
    if config.columns.image in raw.columns:
        for value in raw[config.columns.image]:
            path, problem = resolve_inside(value, root, config.allow_outside_paths)
            try:
                stat = Path(path).stat() if path and not problem else None
            except (OSError, ValueError):
                stat = None
            digest.update(
                f"{value}:{path}:{stat.st_size if stat else '-'}:{stat.st_mtime_ns if stat else '-'}\n".encode()
            )
    return digest.hexdigest()
