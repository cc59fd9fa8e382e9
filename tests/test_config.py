from pathlib import Path

import pytest
import yaml

from discover.config import load_config
from discover.errors import ConfigError
from tests.conftest import REPO, config_dict


def test_shipped_configs_load():
    for path in (REPO / "configs").glob("*.yaml"):
        config = load_config(path)
        assert config.catalog.columns.product_id


def test_misspelt_key_names_file_key_and_closest_valid_key(tmp_path: Path):
    raw = config_dict(tmp_path)
    raw["discovery"]["hdbscan"] = {"min_sampels": 3}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert str(path) in message
    assert "discovery.hdbscan.min_sampels" in message
    assert "min_samples" in message


def test_unknown_top_level_key_is_an_error(tmp_path: Path):
    raw = config_dict(tmp_path)
    raw["sed"] = 1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="did you mean `seed`"):
        load_config(path)


def test_discover_data_replaces_the_dataset_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    monkeypatch.setenv("DISCOVER_DATA", str(tmp_path))
    assert config.catalog_path == tmp_path.resolve() / "styles.csv"


def test_default_catalog_path_is_relative_to_the_config_file(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("DISCOVER_DATA", raising=False)
    config = load_config(REPO / "configs" / "fashion-small.yaml")
    assert config.catalog_path == (REPO.parent / "shared" / "datasets" / "fashion-small" / "styles.csv").resolve()


@pytest.mark.parametrize(
    ("image", "complaint"),
    [
        ({"name": "efficientnet-lite0", "checkpoint": "a.safetensors", "checkpoints": ["b", "c"]}, "not both"),
        ({"name": "efficientnet-lite0", "checkpoints": ["only-one.safetensors"]}, "two or more"),
        ({"name": "simclr", "checkpoints": ["b", "c"]}, "efficientnet-lite0"),
    ],
)
def test_cross_fitted_checkpoints_are_checked_when_the_config_loads(tmp_path: Path, image: dict, complaint: str):
    raw = config_dict(tmp_path)
    raw["embed"]["image"] = image
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=complaint):
        load_config(path)


def test_cross_fitted_checkpoints_resolve_beside_the_config(tmp_path: Path):
    raw = config_dict(tmp_path)
    raw["embed"]["image"] = {"name": "efficientnet-lite0", "checkpoints": ["m/a.safetensors", "m/b.safetensors"]}
    path = tmp_path / "good.yaml"
    path.write_text(yaml.safe_dump(raw))
    resolved = yaml.safe_load(load_config(path).to_yaml())["embed"]["image"]["checkpoints"]
    assert resolved == [str(tmp_path / "m" / "a.safetensors"), str(tmp_path / "m" / "b.safetensors")]
