"""svetlana_core.models.device: device names, layouts, threads; importable without torch."""

import os
import subprocess
import sys

import pytest
import torch

from svetlana_core import models
from svetlana_core.errors import InputError


def test_resolve_device():
    assert models.resolve_device("cpu") == torch.device("cpu")
    assert models.resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(InputError, match="device='tpu' is not valid"):
        models.resolve_device("tpu")
    with pytest.raises(InputError, match=r"device=3 is not valid; choose one of auto, cpu"):
        models.resolve_device(3)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device='cuda' was asked but no CUDA GPU"):
            models.resolve_device("cuda")


def test_describe_device_names_what_auto_picks():
    text = models.describe_device()
    kind = models.resolve_device("auto").type
    expected = {"cuda": "GPU: ", "mps": "Apple GPU (MPS)", "cpu": "CPU ("}[kind]
    assert text.startswith(expected)


def test_memory_format_and_threads():
    assert models.memory_format_for(2) == torch.channels_last
    assert models.memory_format_for(3) == torch.contiguous_format
    assert 1 <= models.cpu_threads() <= (os.cpu_count() or 1)


def test_device_module_imports_without_torch():
    code = ("import sys; from svetlana_core.models.device import DEVICES; "
            "print(DEVICES, 'torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "('auto', 'cpu', 'cuda', 'mps') False"
