"""Every validation path of catalog ingest, on small catalogs built here."""

from pathlib import Path

import pandas as pd
import pytest

from discover.data.catalog import load_catalog
from discover.errors import CatalogError
from tests.conftest import fashion_rows, make_config, write_catalog


def _catalog(tmp_path: Path, rows: pd.DataFrame | None = None, **overrides) -> tuple:
    rows = fashion_rows(20) if rows is None else rows
    path = write_catalog(tmp_path / "catalog", rows)
    config = make_config(path.parent, **overrides)
    return config, path, rows


def _problems(catalog) -> dict[str, list]:
    found: dict[str, list] = {}
    for p in catalog.report.problems:
        found.setdefault(p.problem, []).append(p)
    return found


def test_clean_catalog_maps_canonical_columns(tmp_path: Path):
    config, path, rows = _catalog(tmp_path)
    catalog = load_catalog(config.catalog, path, show_progress=False)
    table = catalog.table
    assert len(table) == 20 and catalog.report.dropped == 0
    assert table["product_id"].tolist() == rows["id"].tolist()
    assert table["category"][0] == f"{rows['masterCategory'][0]} > {rows['subCategory'][0]}"
    assert table["truth"].tolist() == rows["articleType"].tolist()
    assert {"baseColour", "gender", "usage", "group"} <= set(table.columns)


def test_broken_images_are_reported_and_dropped_the_rest_goes_on(tmp_path: Path):
    config, path, rows = _catalog(tmp_path)
    images = path.parent / "images"
    truncated = images / Path(rows["image"][1]).name
    truncated.write_bytes(truncated.read_bytes()[:300])
    (images / Path(rows["image"][2]).name).write_bytes(b"")
    (images / Path(rows["image"][3]).name).unlink()
    (images / Path(rows["image"][4]).name).write_bytes(b"this is not a jpeg")
    catalog = load_catalog(config.catalog, path, show_progress=False)
    problems = _problems(catalog)
    assert [p.product_id for p in problems["undecodable_image"]] == [rows["id"][1], rows["id"][4]]
    not_an_image = problems["undecodable_image"][1].detail  # names the file, not Pillow's in-memory buffer
    assert not_an_image.startswith(rows["image"][4]) and "BytesIO" not in not_an_image
    assert [p.product_id for p in problems["empty_file"]] == [rows["id"][2]]
    assert [(p.row, p.column) for p in problems["missing_file"]] == [(4, "image")]
    assert catalog.report.dropped == 4 and len(catalog.table) == 16
    assert "dropped" in catalog.report.summary() and "missing_file 1" in catalog.report.summary()


def test_on_invalid_keep_keeps_rows_and_still_reports(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[5, "productDisplayName"] = "   "
    config, path, _ = _catalog(tmp_path, rows, catalog__on_invalid="keep")
    catalog = load_catalog(config.catalog, path, show_progress=False)
    assert len(catalog.table) == 20 and catalog.report.dropped == 0
    assert catalog.table.loc[5, "problem"] == "empty_title"
    assert catalog.report.counts == {"empty_title": 1}


def test_a_hole_in_the_levels_is_reported_with_its_column_a_shorter_path_is_kept(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[7, "masterCategory"] = ""  # a hole above a level that is given
    rows.loc[9, "subCategory"] = ""  # a product registered one level up only
    config, path, _ = _catalog(tmp_path, rows)
    catalog = load_catalog(config.catalog, path, show_progress=False)
    (problem,) = catalog.report.problems
    assert (problem.row, problem.column, problem.problem) == (8, "masterCategory", "empty_level")
    shorter = catalog.table.set_index("product_id").loc[rows["id"][9]]
    assert shorter["category"] == rows["masterCategory"][9] and shorter["level_2"] == ""


def test_image_below_minimum_size_is_reported(tmp_path: Path):
    config, path, rows = _catalog(tmp_path, catalog__min_image_size=70)
    catalog = load_catalog(config.catalog, path, show_progress=False)
    assert catalog.report.counts["image_too_small"] == 20


def test_path_traversal_absolute_paths_and_urls_are_refused(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[0, "image"] = "../../etc/passwd"
    rows.loc[1, "image"] = "/etc/passwd"
    rows.loc[2, "image"] = "https://example.com/photo.jpg"
    config, path, _ = _catalog(tmp_path, rows)
    catalog = load_catalog(config.catalog, path, show_progress=False)
    assert catalog.report.counts == {"path_outside_catalog": 2, "url_not_fetched": 1}


def test_allow_outside_paths_lets_absolute_paths_through(tmp_path: Path):
    rows = fashion_rows(20)
    path = write_catalog(tmp_path / "catalog", rows)
    rows.loc[0, "image"] = str(path.parent / rows["image"][0])
    rows.to_csv(path, index=False)
    config = make_config(path.parent, catalog__allow_outside_paths=True)
    assert load_catalog(config.catalog, path, show_progress=False).report.problems == []


def test_duplicate_product_ids_are_an_error_listing_them(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[9, "id"] = rows["id"][3]
    config, path, _ = _catalog(tmp_path, rows)
    with pytest.raises(CatalogError, match=f"{rows['id'][3]} at rows \\[4, 10\\]"):
        load_catalog(config.catalog, path, show_progress=False)


def test_missing_mapped_column_names_it_and_lists_present_columns(tmp_path: Path):
    config, path, _ = _catalog(tmp_path, fashion_rows(20).drop(columns=["usage"]))
    with pytest.raises(CatalogError) as error:
        load_catalog(config.catalog, path, show_progress=False)
    assert "usage not found" in str(error.value) and "productDisplayName" in str(error.value)


def test_new_products_need_only_id_title_and_photo_and_may_lack_a_category(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[3, ["masterCategory", "subCategory"]] = ""  # not yet categorised: what predict is for
    rows.loc[5, "productDisplayName"] = ""  # still a problem: a product to classify needs a title
    config, path, _ = _catalog(tmp_path, rows.drop(columns=["articleType", "usage", "image_md5"]))
    with pytest.raises(CatalogError, match="image_md5, articleType, usage not found"):
        load_catalog(config.catalog, path, show_progress=False)  # the catalog discovery learns from
    catalog = load_catalog(config.catalog, path, show_progress=False, new_products=True)
    assert catalog.report.counts == {"empty_title": 1} and len(catalog.table) == 19
    assert catalog.table["truth"].eq("").all() and catalog.table["usage"].eq("").all()
    uncategorised = catalog.table.set_index("product_id").loc[rows["id"][3]]
    assert uncategorised["category"] == "" and uncategorised["level_1"] == ""
    bare = write_catalog(tmp_path / "bare", rows[["id", "productDisplayName", "image"]])
    assert len(load_catalog(config.catalog, bare, show_progress=False, new_products=True).table) == 19


def test_latin1_file_is_a_clear_error_with_offset_and_line(tmp_path: Path):
    rows = fashion_rows(20)
    rows.loc[2, "productDisplayName"] = "Café Shirt"
    config, path, _ = _catalog(tmp_path, rows)
    path.write_bytes(path.read_text().encode("latin-1"))
    with pytest.raises(CatalogError, match=r"not UTF-8 at byte offset \d+ \(line 4"):
        load_catalog(config.catalog, path, show_progress=False)


def test_parquet_jsonl_and_category_path_column(tmp_path: Path):
    rows = fashion_rows(20)
    write_catalog(tmp_path / "catalog", rows)
    rows = rows.assign(path=rows["masterCategory"] + " > " + rows["subCategory"])
    rows.to_parquet(tmp_path / "catalog" / "styles.parquet")
    rows.to_json(tmp_path / "catalog" / "styles.jsonl", orient="records", lines=True)
    for name in ("styles.parquet", "styles.jsonl"):
        config = make_config(tmp_path / "catalog", catalog__file=name)
        raw = config.catalog.model_dump()
        raw["columns"].update(levels=None, category="path", separator=">")
        config.catalog = type(config.catalog).model_validate(raw)
        catalog = load_catalog(config.catalog, tmp_path / "catalog" / name, show_progress=False)
        assert catalog.table["level_2"].tolist() == rows["subCategory"].tolist()
        assert catalog.report.problems == []


def test_known_leaves_are_emptied_in_the_categories_named_and_kept_elsewhere(tmp_path: Path):
    rows = fashion_rows(40, subcategories=("Topwear", "Shoes", "Bags"), seed=7)
    ignored = ["Footwear > Shoes"]
    config, path, _ = _catalog(tmp_path, rows, catalog__columns__known_leaf="articleType")
    config.catalog.known_leaf_ignored_in = ignored
    table = load_catalog(config.catalog, path, show_progress=False).table
    shoes = (table["category"] == "Footwear > Shoes").to_numpy()
    assert shoes.any() and (~shoes).any()
    assert (table.loc[shoes, "known_leaf"] == "").all()  # to be rediscovered there
    assert (table.loc[~shoes, "known_leaf"] == rows.loc[~shoes, "articleType"].to_numpy()).all()
    config.catalog.known_leaf_ignored_in = ["Footwear > Shoez"]  # a typo must not silently do nothing
    with pytest.raises(CatalogError, match="Shoez"):
        load_catalog(config.catalog, path, show_progress=False)
