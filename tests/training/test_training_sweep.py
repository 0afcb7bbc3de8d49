"""svetlana_core.training.sweep and ``python -m svetlana_core sweep``: a grid of settings,
every cell checked before the first trains, one JSON line per cell."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from svetlana_core.errors import InputError
from svetlana_core.training import sweep

ROOT = Path(__file__).resolve().parents[2]


def test_the_grid_is_every_combination_with_its_keys_where_they_belong():
    planned = sweep.configs({"epochs": 3, "arch_params": {"width": 4}},
                            sweep.parse_grid(["depth=1,2", "lr=0.01,0.02"]))
    assert [cell for cell, _ in planned] == [
        {"depth": 1, "lr": 0.01}, {"depth": 1, "lr": 0.02}, {"depth": 2, "lr": 0.01},
        {"depth": 2, "lr": 0.02}]
    config = planned[3][1]
    assert config["arch_params"] == {"width": 4, "depth": 2} and config["lr"] == 0.02
    assert config["epochs"] == 3


@pytest.mark.parametrize("items, message", [
    (["depth"], "must look like KEY=V1,V2"),
    (["depth=2,2"], "repeats a value"),
    (["depth=2", "depth=3"], "names 'depth' twice"),
    (["colour=red"], "neither a training setting"),
    (["depth=9"], "grid cell depth=9: cnn depth=9 is out of range"),
    (["lr=-1"], "grid cell lr=-1"),
    ([], "needs at least one --grid"),
])
def test_a_bad_grid_is_one_line_naming_it(items, message):
    with pytest.raises(InputError, match=message):
        sweep.configs({}, sweep.parse_grid(items))


def test_a_grid_too_big_is_refused():
    with pytest.raises(InputError, match="81 cells"):
        sweep.cells({"a": list(range(9)), "b": list(range(9))})


def test_the_cli_sweep_writes_a_model_and_a_line_per_cell(tmp_path):
    from svetlana_core.demo import create_demo

    demo = create_demo(tmp_path / "demo").folder
    result = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "sweep", "--images", demo / "images",
         "--masks", demo / "masks", "--labels", demo / "ground_truth.csv",
         "--out", tmp_path / "sweep", "--epochs", "1", "--batch-size", "16",
         "--grid", "depth=1,2", "--grid", "width=4,8"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["cell"] for line in lines] == [
        {"depth": 1, "width": 4}, {"depth": 1, "width": 8}, {"depth": 2, "width": 4},
        {"depth": 2, "width": 8}]
    for line in lines:
        folder = Path(line["model_dir"])
        assert folder.parent == tmp_path / "sweep" and (folder / "model.json").exists()
        assert 0 <= line["macro_f1"] <= 1
    meta = json.loads((tmp_path / "sweep" / "depth-2_width-8" / "model.json").read_text())
    assert meta["arch_params"]["depth"] == 2 and meta["arch_params"]["width"] == 8


def test_the_cli_refuses_a_bad_cell_before_training_any(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "sweep", "--images", tmp_path,
         "--labels", tmp_path / "x.csv", "--out", tmp_path / "s", "--grid", "depth=2,9"],
        cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: grid cell depth=9: cnn depth=9 is out of range: choose an integer from 1 to 5"]
    assert not (tmp_path / "s").exists()
