"""The `discover` command: help, one-line errors, the demo without data."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CLI, REPO, config_dict


def _discover(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=REPO, env=env)


def test_help_lists_each_command_with_its_own_help():
    result = _discover("--help")
    assert result.returncode == 0
    for command in ("ingest", "embed", "run", "evaluate", "export", "explore", "pretrain", "fetch-sample"):
        # a row of the command table: the command name, then its one-line description
        assert re.search(rf"^\s+{command}\s+\w", result.stdout, re.MULTILINE), command
        own = _discover(command, "--help")
        assert own.returncode == 0 and f"usage: discover {command}" in own.stdout


def test_each_classify_action_lists_only_its_own_options_and_refuses_another_s():
    own = {"train": "--fine-tune", "evaluate": "--by", "predict": "--catalog", "tune-image": "--folds"}
    for action, option in own.items():
        result = _discover("classify", action, "--help")
        assert result.returncode == 0 and f"usage: discover classify {action}" in result.stdout
        assert option in result.stdout
        assert not [o for a, o in own.items() if a != action and o in result.stdout], action
    misplaced = _discover("classify", "predict", "c.yaml", "--catalog", "new.csv", "--by", "gender")
    assert misplaced.returncode == 2 and "unrecognized arguments: --by gender" in misplaced.stderr
    unnamed = _discover("classify", "predict", "c.yaml")
    assert unnamed.returncode == 2 and "required: --catalog" in unnamed.stderr


def test_errors_are_one_line_with_exit_code_2_and_no_traceback(tmp_path: Path):
    raw = config_dict(tmp_path)
    raw["catalog"]["colums"] = raw["catalog"].pop("columns")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw))
    result = _discover("ingest", str(tmp_path / "bad.yaml"), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "did you mean `columns`" in result.stderr


def test_missing_catalog_names_fetch_sample(tmp_path: Path):
    import os

    env = {**os.environ, "DISCOVER_DATA": str(tmp_path / "nowhere")}
    result = _discover("run", "configs/fashion-small.yaml", "--workspace", str(tmp_path / "ws"), env=env)
    assert result.returncode == 2
    assert "discover fetch-sample" in result.stderr and result.stderr.strip().count("\n") == 0


def test_the_python_calls_name_fetch_sample_too_when_the_catalog_is_missing(tmp_path: Path, monkeypatch):
    import discover
    import discover.classify.stage  # noqa: F401  (every submodule loaded: none may shadow a call of the same name)
    from discover import classify
    from discover.errors import DiscoverError

    calls = ("train", "evaluate", "evaluate_by", "new_products", "predict", "find_mislabels", "place_proposals")
    assert all(callable(getattr(classify, name)) for name in calls)
    monkeypatch.setenv("DISCOVER_DATA", str(tmp_path / "nowhere"))
    for call in (discover.run, classify.train, classify.find_mislabels):
        with pytest.raises(DiscoverError, match="discover fetch-sample"):  # not a FileNotFoundError deep inside
            call(REPO / "configs" / "fashion-small.yaml", tmp_path / "ws")


def test_ingest_prints_report_and_workspace(small_catalog: Path, tmp_path: Path):
    raw = config_dict(small_catalog)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    result = _discover("ingest", str(tmp_path / "c.yaml"), "--workspace", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    assert "120 in, 120 out, 0 dropped" in result.stdout
    assert str(tmp_path / "ws") in result.stdout


def test_a_config_loads_without_importing_the_models():
    """A typo in a config is reported in about a second: checking the embedder names does not
    import torch or the model libraries (which took ~10 s on 2 cores on every command)."""
    probe = (
        "import sys; from discover.config import load_config; "
        "load_config('configs/fashion-small.yaml'); "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'open_clip') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
