"""A grid of training configs: the cells of a sweep over one or more settings.

A sweep trains one model per cell of a grid (e.g. ``depth=2,3`` × ``width=8,16,32``, the
paper's Table 2) from one base config; each cell is an ordinary run (in the CLI a model
folder, in the app a job that can be opened, predicted with or deleted). This module only
turns the grid into configs and checks them, all before the first cell trains; it needs no
torch.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from svetlana_core import models
from svetlana_core.errors import InputError
from svetlana_core.training.config import TrainConfig

#: Most cells a sweep may have: each is a training run.
MAX_CELLS = 64


def parse_grid(items: Sequence[str]) -> dict[str, list[Any]]:
    """``["depth=2,3", "width=8,16"]`` → ``{"depth": [2, 3], "width": [8, 16]}``.

    Values are JSON where they parse (numbers, ``true``, ``null``), else text.

    >>> parse_grid(["depth=2,3", "lr=1e-3,2e-3", "class_weights=sqrt,null"])
    {'depth': [2, 3], 'lr': [0.001, 0.002], 'class_weights': ['sqrt', None]}
    """
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise InputError(f"--grid {item!r} must look like KEY=V1,V2 (e.g. depth=2,3)")
        if key in grid:
            raise InputError(f"--grid names {key!r} twice; give its values once, comma-separated")
        grid[key] = [_value(v.strip()) for v in values.split(",") if v.strip()]
        if len(set(map(json.dumps, grid[key]))) != len(grid[key]):
            raise InputError(f"--grid {item!r} repeats a value")
    return grid


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def cells(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the last key varying fastest.

    >>> cells({"depth": [2, 3], "width": [8, 16]})
    [{'depth': 2, 'width': 8}, {'depth': 2, 'width': 16}, {'depth': 3, 'width': 8}, {'depth': 3, 'width': 16}]
    """
    if not grid:
        raise InputError("a sweep needs at least one --grid KEY=V1,V2")
    keys = list(grid)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    if len(combos) > MAX_CELLS:
        raise InputError(f"the grid has {len(combos)} cells; a sweep has at most {MAX_CELLS}")
    return [dict(zip(keys, combo)) for combo in combos]


def cell_config(base: Mapping[str, Any], cell: Mapping[str, Any]) -> dict[str, Any]:
    """The config of one cell: ``base`` with the cell's values, a key of
    :class:`TrainConfig` set at the top, an architecture parameter (``depth``, ``width``,
    ``kernel``, ``dropout`` of the cnn...) in ``arch_params``; checked.

    >>> cell_config({"epochs": 5}, {"depth": 2, "lr": 0.01})["arch_params"]
    {'depth': 2}

    Raises
    ------
    InputError
        A key that is neither, or a value the config refuses (named with its cell).
    """
    config = json.loads(json.dumps(dict(base)))  # a deep copy that keeps only JSON values
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    arch = cell.get("arch", config.get("arch", "cnn"))
    if arch not in models.ARCHITECTURES:
        raise InputError(f"arch {arch!r} is not valid; choose one of "
                         f"{', '.join(models.ARCHITECTURES)}")
    params = set(models.ARCHITECTURES[arch].params)
    for key, value in cell.items():
        if key in fields:
            config[key] = value
        elif key in params:
            config.setdefault("arch_params", {})
            config["arch_params"] = {**config["arch_params"], key: value}
        else:
            raise InputError(
                f"--grid key {key!r} is neither a training setting ({', '.join(sorted(fields))})"
                f" nor a parameter of {arch} ({', '.join(sorted(params))})")
    try:
        TrainConfig.from_dict(config).validate()
    except InputError as error:
        raise InputError(f"grid cell {label(cell)}: {error}") from None
    return config


def label(cell: Mapping[str, Any]) -> str:
    """``depth=2 width=8``: how a cell is named in tables and lines."""
    return " ".join(f"{k}={v}" for k, v in cell.items())


def folder_name(cell: Mapping[str, Any]) -> str:
    """A model folder name for the cell: ``depth-2_width-8``.

    >>> folder_name({"depth": 2, "lr": 0.001, "class_weights": None})
    'depth-2_lr-0.001_class_weights-None'
    """
    text = "_".join(f"{k}-{v}" for k, v in cell.items())
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in text)


def configs(base: Mapping[str, Any], grid: Mapping[str, Sequence[Any]]
            ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(cell, config)`` of every cell, all checked before any is trained."""
    return [(cell, cell_config(base, cell)) for cell in cells(grid)]
