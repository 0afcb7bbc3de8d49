"""svetlana_core.training.memory: a training that would not fit is refused in one line,
before any large allocation (issue 13: UroCell's 128³ patches at batch 64 asked torch for one
17 GB block and ended in a traceback)."""

import numpy as np
import pandas as pd
import pytest

from svetlana_core.errors import InputError
from svetlana_core.training import TrainConfig, build_samples, memory

GB = 2**30


def test_the_urocell_default_is_refused_naming_what_to_lower():
    with pytest.raises(InputError) as caught:
        memory.check_fits("cnn", {}, (128, 128, 128), 64, n_objects=400, in_channels=2,
                          free=22 * GB)
    message = str(caught.value)
    assert "\n" not in message
    assert "needs about" in message and "22.0 GB are free" in message
    assert "the batch size (now 64; --batch-size)" in message and "the width (now 32" in message
    assert "128×128×128" in message


def test_the_capped_default_fits_a_laptop():
    need = memory.check_fits("cnn", {}, (48, 48, 48), 64, n_objects=2000, in_channels=2,
                             free=16 * GB)
    assert 3 * GB < need < 0.8 * 16 * GB


def test_too_many_patches_name_the_patch_size_first():
    with pytest.raises(InputError, match="lower the patch size"):
        memory.check_fits("cnn", {}, (256, 256), 8, n_objects=100_000, in_channels=4,
                          free=8 * GB)


def test_a_gpu_step_counts_against_the_gpu_not_the_ram():
    memory.check_fits("cnn", {}, (128, 128, 128), 64, n_objects=10, in_channels=2,
                      free=8 * GB, step_on_cpu=False)
    with pytest.raises(InputError, match="GPU memory"):
        memory.check_gpu_fits("cnn", {}, (128, 128, 128), 64, free=16 * GB)


def test_the_estimate_grows_with_every_knob():
    base = memory.step_bytes("cnn", {"width": 32}, (64, 64), 64)
    assert memory.step_bytes("cnn", {"width": 64}, (64, 64), 64) == 2 * base
    assert memory.step_bytes("cnn", {"width": 32}, (64, 64), 128) == 2 * base
    assert memory.step_bytes("resnet50", {}, (64, 64), 64) > memory.step_bytes(
        "resnet18", {}, (64, 64), 64)


def test_a_memory_limit_from_the_environment_is_used_and_checked(monkeypatch):
    monkeypatch.setenv("SVETLANA_MEMORY_GB", "2.5")
    assert memory.environment_free() == int(2.5 * GB)
    monkeypatch.setenv("SVETLANA_MEMORY_GB", "lots")
    with pytest.raises(InputError, match="SVETLANA_MEMORY_GB='lots'"):
        memory.environment_free()


def test_free_memory_reads_this_machine():
    from pathlib import Path

    free = memory.free_memory()
    if Path("/proc/meminfo").exists():  # Linux: always readable, so never "unknown"
        assert free is not None and 0 < free < 2**50
    else:
        assert free is None or free > 0


def test_building_the_samples_refuses_before_cropping(monkeypatch):
    monkeypatch.setenv("SVETLANA_MEMORY_GB", "0.05")
    mask = np.zeros((64, 64), np.uint16)
    mask[10:20, 10:20], mask[30:40, 30:40] = 1, 2
    labels = pd.DataFrame({"label": [1, 2], "class": ["a", "b"]})
    config = TrainConfig(patch_size=64, batch_size=256, device="cpu")
    with pytest.raises(InputError, match="this training needs about"):
        build_samples([("one.tif", None, mask, labels)], config)


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path):
    """The whole command as a process: no traceback, nothing written, exit 2."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from svetlana_core.demo import create_demo

    demo = create_demo(tmp_path / "demo").folder
    model = tmp_path / "model"
    result = subprocess.run(
        [sys.executable, "-m", "svetlana_core", "train", "--images", demo / "images",
         "--masks", demo / "masks", "--labels", demo / "ground_truth.csv", "--out", model,
         "--epochs", "1"],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True,
        env={**os.environ, "SVETLANA_MEMORY_GB": "0.2"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "this training needs about" in lines[0], result.stderr
    assert "0.2 GB are free" in lines[0] and "Traceback" not in result.stderr
    assert not (model / "model.json").exists()
