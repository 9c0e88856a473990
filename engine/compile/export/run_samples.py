"""A trained run's samples as its model sees them, for checks that need real data: the
validation split (the quantized model's metric) and training samples (static quantization's
calibration).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import UserError

#: Training samples fed through the model to calibrate static int8 quantization.
CALIBRATION_SAMPLES = 256


@dataclass(frozen=True)
class RunSamples:
    """A run's validation split and calibration samples, preprocessed as in training.

    Args:
        task: The run's task (``classification``, ``regression``...).
        val_x: Validation inputs.
        val_y: Validation targets (class ids or values; ``None`` for autoencoders).
        calibration_x: The first training inputs, for static quantization.
    """

    task: str
    val_x: np.ndarray
    val_y: np.ndarray | None
    calibration_x: np.ndarray


def run_samples(run_dir: Path, base_dir: Path | None = None) -> RunSamples:
    """Load the run's data and rebuild its splits (from ``split.npz``), as ``evaluate`` does.

    Raises:
        UserError: Not a run folder, its data is missing or changed, or it has no validation samples.
    """
    from engine.data import load_dataset
    from engine.graph.flat_project import flat_project
    from engine.settings import training_config
    from engine.training.evaluate import rebuild_split, split_tensor
    from engine.training.run_dir import read_run
    from engine.training.tasks import resolve_task

    info, project = read_run(run_dir)
    config = training_config(project.training, info.get("config") or {})
    base_dir = base_dir or (Path(info["base_dir"]) if info.get("base_dir") else None)
    dataset = load_dataset(project.dataset, base_dir)
    data = rebuild_split(run_dir, dataset, config)
    val_x, train_x = split_tensor(data.val_x, data), split_tensor(data.train_x, data, CALIBRATION_SAMPLES)
    if val_x is None or len(val_x) == 0:
        raise UserError(f"{run_dir}: this run has no validation samples to measure the quantized model on")
    task = resolve_task(config, flat_project(project), dataset)
    val_y = None if data.val_y is None else np.asarray(data.val_y)
    assert train_x is not None
    return RunSamples(task, val_x.numpy(), val_y, train_x.numpy())
