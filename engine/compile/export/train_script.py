"""The generated ``train.py``: plain PyTorch that trains the exported model on the project's data.

Built-in scikit-learn sets (digits, iris, wine, breast_cancer, diabetes) are loaded by code
in the script; any other dataset is saved beside it as ``data.npz`` (arrays ``x`` and
``y``), so the folder trains without Neural Canvas. Settings come from the project's
validated ``training`` section and are written as literals, and so are the nodes' fine-tuning
options (frozen layers, learning-rate multipliers). The test split is held out as the app holds
it out; an export of a trained run copies its ``split.npz``, and the script then trains and
validates on the run's own rows. The project's augmentation is reproduced with a copy of
:mod:`engine.training.augment_ops` beside the script (the same batched ops, seeded from the
project's seed). Not reproduced: learning-rate schedules, early stopping, mixed precision and
checkpoints (the app's trainer has them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np

from engine.compile.export import train_templates as t
from engine.compile.export.codegen import docstring
from engine.compile.export.source import ExportSource
from engine.errors import UserError
from engine.graph.gan import is_noise_input
from engine.layers.calls import literal

SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer", "diabetes")
_SETTINGS = ("epochs", "batch_size", "lr", "optimizer", "momentum", "nesterov", "beta1", "weight_decay", "seed",
             "validation_fraction", "test_fraction", "normalize", "grad_clip", "gan_d_steps")
_DIGIT_SHAPES = {"image": (-1, 1, 8, 8), "flat": (-1, 64), "rows": (-1, 8, 8)}


def _settings(src: ExportSource) -> Any:
    from engine.settings import training_config

    return training_config(src.project.training)


def _task(src: ExportSource, config: Any, target_kind: str | None, ordered: bool) -> str:
    from engine.settings import auto_task

    return auto_task(str(config.task), src.project.graph, target_kind, ordered)


def _data(src: ExportSource, out: Path) -> tuple[str, list[Path], str | None, bool, str, Any]:
    """Loader body, files written, target kind, whether ordered, a note for the docstring, and the
    dataset (``None`` when it cannot be loaded now)."""
    from engine.data import load_dataset

    spec = src.project.dataset
    name = spec.get("name")
    try:
        dataset = load_dataset(spec, src.base_dir)
    except UserError as exc:
        reason = f"the dataset could not be loaded at export time ({exc}); put arrays x and y in data.npz"
        return t.LOAD_NPZ, [], None, False, reason, None
    kind, ordered = dataset.target_kind, bool(dataset.extras.get("ordered"))
    if name in SKLEARN_SETS:
        shape = _DIGIT_SHAPES.get(spec.get("layout", "image"), (-1, 1, 8, 8))
        body = t.LOAD_SKLEARN.replace("__DATASET__", literal(name)).replace("__SHAPE__", literal(shape))
        return body, [], kind, ordered, f"scikit-learn's {name} set", dataset
    arrays: dict[str, Any] = {"x": dataset.x}
    if dataset.y is not None:
        arrays["y"] = np.ascontiguousarray(dataset.y)
    path = out / "data.npz"
    write_npz(path, arrays)
    return t.LOAD_NPZ, [path], kind, ordered, f"{dataset.name}, saved beside this script as data.npz", dataset


class _Augmentation(NamedTuple):
    """What train.py needs to augment as the app does."""

    options: dict[str, Any] | None  # the option fields; None: no augmentation
    image_shape: tuple[int, int, int] | None
    classes: int
    files: list[Path]  # augment_ops.py, copied beside the script
    note: str  # for the script's docstring


def _augmentation(src: ExportSource, dataset: Any, task: str, loss: str, out: Path) -> _Augmentation:
    """The project's augmentation for train.py; copies the ops module into ``out`` when it is on.

    Raises:
        UserError: The options do not fit the data or task (as training would say).
    """
    import dataclasses
    import shutil

    from engine.training import augment_ops
    from engine.training.augment import check_fits, image_shape_of, read_augment

    options = read_augment(src.project.dataset)
    if not options.enabled or task == "gan":
        return _Augmentation(None, None, 0, [], "")
    if dataset is None:
        return _Augmentation(None, None, 0, [], f"\nAugmentation ({', '.join(options.active)}) is not "
                             "reproduced: the dataset could not be inspected at export time.")
    check_fits(options, dataset, task, loss)
    path = out / "augment_ops.py"
    shutil.copyfile(augment_ops.__file__, path)
    return _Augmentation(dataclasses.asdict(options), image_shape_of(dataset),
                         int(dataset.num_classes or 0), [path],
                         f"\nAugmentation of training batches: {', '.join(options.active)} (augment_ops.py).")


def train_source(src: ExportSource, out: Path, names: Mapping[str, str] | None = None) -> tuple[str, list[Path]]:
    """The text of ``train.py`` and any data file written into ``out`` for it.

    Args:
        src: The export source.
        out: The export folder.
        names: For model.py's block classes: flat submodule name -> its dotted name there.

    Returns:
        The script and the data files it reads.
    """
    config = _settings(src)
    load, files, kind, ordered, note, dataset = _data(src, out)
    task = _task(src, config, kind, ordered)
    from engine.settings import DEFAULT_LOSS

    loss = DEFAULT_LOSS.get(task, "mse") if config.loss == "auto" else str(config.loss)
    augment = _augmentation(src, dataset, task, loss, out)
    files = files + augment.files
    doc = (f"Train {src.name} with plain PyTorch (generated by Neural Canvas).\n\n"
           "    python train.py --epochs 5\n"
           "    torchrun --nproc_per_node 2 train.py --epochs 5   # DistributedDataParallel\n\n"
           "Starts from model.safetensors (--fresh: new random weights) and writes trained.safetensors.\n"
           f"Task: {task}, loss {loss}. Data: {note}.{augment.note}")
    settings = {key: config[key] for key in _SETTINGS}
    frozen, scales = _node_options(src, names or {})
    head = (t.HEAD.replace("__DOC__", docstring(doc)).replace("__TASK__", literal(task))
            .replace("__LOSS__", literal(loss)).replace("__SETTINGS__", _dict_literal(settings))
            .replace("__FROZEN__", literal(frozen)).replace("__LR_SCALES__", _scales_literal(scales))
            .replace("__AUGMENT__", "None" if augment.options is None else _dict_literal(augment.options))
            .replace("__IMAGE_SHAPE__", literal(augment.image_shape)).replace("__CLASSES__", literal(augment.classes))
            .replace("__LOAD__", load))
    if task == "gan":
        noise = next(n for n in src.project.graph if is_noise_input(n))
        body = (t.GAN.replace("__LATENT_DIM__", literal(int(noise.params["latent_dim"])))
                .replace("__UNIFORM__", literal(noise.params["distribution"] == "uniform"))
                .replace("__EXPORTED__", literal(src.part or "generator")))
    elif len(src.compiled.input_ids) != 1 or len(src.compiled.output_ids) != 1:
        reason = (f"this model has {len(src.compiled.input_ids)} input(s) and {len(src.compiled.output_ids)} "
                  "output(s); train.py trains models with one of each")
        body = t.UNTRAINABLE.replace("__REASON__", literal(reason))
    else:
        body = t.SUPERVISED
    return head + body, files


def _node_options(src: ExportSource, names: Mapping[str, str]) -> tuple[list[str], dict[str, float]]:
    """Submodule names of frozen layers and the learning-rate multipliers of the others, as model.py
    names them: :func:`~engine.compile.fx_builder.attribute_name` of the node ids, or for a layer
    inside a block its dotted path in the block classes (``names``: flat name -> nested name)."""
    from engine.compile.fx_builder import attribute_name

    def name(node_id: str) -> str:
        flat = attribute_name(node_id)
        return names.get(flat, flat)

    frozen = [name(n.id) for n in src.project.graph if not n.trainable]
    scales = {name(n.id): float(n.lr_scale) for n in src.project.graph if n.trainable and n.lr_scale != 1.0}
    return frozen, scales


def _scales_literal(scales: dict[str, float]) -> str:
    return "{" + ", ".join(f"{literal(name)}: {literal(scale)}" for name, scale in scales.items()) + "}"


def _dict_literal(values: dict[str, Any]) -> str:
    items = ",\n".join(f"    {literal(key)}: {literal(value)}" for key, value in values.items())
    return "{\n" + items + ",\n}"


def write_npz(path: Path, arrays: dict[str, Any], chunk_bytes: int = 64 << 20) -> None:
    """Write ``arrays`` as an ``.npz`` that ``numpy.load`` reads; arrays streamed from disk (``len``, ``shape``,
    ``dtype`` and row slicing, e.g. :class:`~engine.data.lazy_array.LazyArray`) are copied a chunk of rows at a
    time, never whole in memory; values stored in other units (``unit``: streamed uint8 images) are written
    as the float32 the in-memory loader gives. Members are compressed like ``numpy.savez_compressed``."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        for name, array in arrays.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                if isinstance(array, np.ndarray):
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
                    continue
                unit = float(getattr(array, "unit", 1.0))
                shape, dtype = tuple(array.shape), np.dtype(np.float32 if unit != 1.0 else array.dtype)
                np.lib.format.write_array_header_2_0(member, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                              "fortran_order": False, "shape": shape})
                row_bytes = max(1, int(np.prod(shape[1:])) * dtype.itemsize)
                step = max(1, chunk_bytes // row_bytes)
                for start in range(0, shape[0], step):
                    rows = array[start:start + step]
                    member.write(np.ascontiguousarray(rows / unit if unit != 1.0 else rows, dtype=dtype).tobytes())
