"""Data augmentation of training batches: the options, their validation, and applying them.

The options live in the project's ``dataset`` section as one object, e.g.
``"dataset": {"name": "cifar10", "augment": {"hflip": true, "crop": "padded", "rotation": 15}}``.
Every option is off by default, so a project without ``augment`` trains exactly as before.
Only training batches are augmented (never validation or test data), as whole batches on the
training device with torch ops (:mod:`engine.training.augment_ops`), from a generator seeded
from the run's seed whose state the checkpoint keeps.

Problems are one line naming the field, e.g.
``dataset.augment.rotation: must be from 0 to 180 degrees, got 400``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.data.base import ArrayDataset, DataError

if TYPE_CHECKING:  # pragma: no cover - torch loads with the first batch: the editor opens without it
    import torch

#: The key of the ``dataset`` section that holds the options.
AUGMENT_KEY = "augment"


@dataclass(frozen=True)
class AugmentOption:
    """One augmentation option.

    Args:
        name: Key inside ``dataset.augment``.
        kind: ``bool``, ``float``, ``int`` or ``choice``.
        default: The value when absent (always "off" for the op itself).
        help: One line for the Data panel.
        minimum: Smallest allowed number.
        maximum: Largest allowed number.
        unit: Unit named in range messages (``degrees``, ``pixels``...), or "".
        choices: Allowed values of a ``choice``.
        needs: What the data must be: ``images``, ``colour`` (3-channel images), ``real``
            (real-valued inputs of any shape) or ``classes`` (a classifier's targets, images or not).
    """

    name: str
    kind: str
    default: Any
    help: str
    minimum: float = 0.0
    maximum: float = 1.0
    unit: str = ""
    choices: tuple[str, ...] = ()
    needs: str = "images"


OPTIONS: tuple[AugmentOption, ...] = (
    AugmentOption("crop", "choice", "none", "Random crop: 'resized' (a random part resized back, as ImageNet "
                  "training) or 'padded' (pad with zeros, cut the original size back out).",
                  choices=("none", "resized", "padded")),
    AugmentOption("crop_scale", "float", 0.5, "Smallest area of a resized crop, as a fraction of the image.",
                  minimum=0.05, maximum=1.0),
    AugmentOption("crop_padding", "int", 4, "Zero padding of a padded crop on each side.", minimum=1,
                  maximum=64, unit="pixels"),
    AugmentOption("hflip", "bool", False, "Mirror left-right with probability 1/2."),
    AugmentOption("vflip", "bool", False, "Mirror top-bottom with probability 1/2."),
    AugmentOption("rotation", "float", 0.0, "Rotate by a random angle up to this many degrees either way.",
                  maximum=180.0, unit="degrees"),
    AugmentOption("brightness", "float", 0.0, "Scale brightness by a random factor in [1 - v, 1 + v]."),
    AugmentOption("contrast", "float", 0.0, "Scale contrast by a random factor in [1 - v, 1 + v]."),
    AugmentOption("saturation", "float", 0.0, "Scale colour saturation by a random factor in [1 - v, 1 + v].",
                  needs="colour"),
    AugmentOption("erasing", "float", 0.0, "Probability of erasing a random rectangle (2-33% of the image)."),
    AugmentOption("noise", "float", 0.0, "Standard deviation of Gaussian noise added to the (normalized) inputs.",
                  maximum=5.0, needs="real"),
    AugmentOption("mixup", "float", 0.0, "Mixup: blend pairs of samples and their labels, weight ~ Beta(α, α); "
                  "this is α (0: off).", maximum=10.0, needs="classes"),
    AugmentOption("cutmix", "float", 0.0, "CutMix: paste a rectangle of another sample, labels mixed by area, "
                  "weight ~ Beta(α, α); this is α (0: off).", maximum=10.0),
)
BY_NAME = {o.name: o for o in OPTIONS}


@dataclass(frozen=True)
class AugmentOptions:
    """Validated augmentation options (see :data:`OPTIONS` for each field's meaning)."""

    crop: str = "none"
    crop_scale: float = 0.5
    crop_padding: int = 4
    hflip: bool = False
    vflip: bool = False
    rotation: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    erasing: float = 0.0
    noise: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0

    @property
    def active(self) -> list[str]:
        """Names of the ops that are on (crop settings count with their crop)."""
        on = []
        for option in OPTIONS:
            value = getattr(self, option.name)
            if option.name in ("crop_scale", "crop_padding"):
                continue
            if (option.kind == "choice" and value != "none") or (option.kind != "choice" and value):
                on.append(option.name)
        return on

    @property
    def enabled(self) -> bool:
        """Whether any op is on."""
        return bool(self.active)

    @property
    def mixes(self) -> bool:
        """Whether targets become class probabilities (mixup or cutmix)."""
        return self.mixup > 0 or self.cutmix > 0


def _fail(name: str, problem: str) -> DataError:
    return DataError(f"dataset.{AUGMENT_KEY}.{name}: {problem}")


def _check(option: AugmentOption, value: Any) -> Any:
    if option.kind == "bool":
        if not isinstance(value, bool):
            raise _fail(option.name, f"must be true or false, got {value!r}")
        return value
    if option.kind == "choice":
        if value not in option.choices:
            raise _fail(option.name, f"must be one of {', '.join(map(repr, option.choices))}, got {value!r}")
        return value
    whole = option.kind == "int"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
        raise _fail(option.name, f"must be a {'whole number' if whole else 'number'}, got {value!r}")
    if not math.isfinite(value) or not option.minimum <= value <= option.maximum:
        unit = f" {option.unit}" if option.unit else ""
        raise _fail(option.name, f"must be from {option.minimum:g} to {option.maximum:g}{unit}, got {value!r}")
    return int(value) if whole else float(value)


def read_augment(spec: Any) -> AugmentOptions:
    """Validate a ``dataset`` section's ``augment`` object (absent or ``None``: everything off).

    Args:
        spec: The whole ``dataset`` section.

    Returns:
        The options, defaults where a key is absent.

    Raises:
        DataError: Not an object, an unknown key or a bad value (one line naming the field).
    """
    section = spec.get(AUGMENT_KEY) if isinstance(spec, dict) else None
    if section is None:
        return AugmentOptions()
    if not isinstance(section, dict):
        raise DataError(f"dataset.{AUGMENT_KEY}: must be an object such as {{\"hflip\": true}}, got {section!r}")
    values: dict[str, Any] = {}
    for key, value in section.items():
        option = BY_NAME.get(key)
        if option is None:
            raise _fail(str(key), f"unknown option; the options are: {', '.join(BY_NAME)}")
        if value is not None:
            values[key] = _check(option, value)
    return AugmentOptions(**values)


def check_fits(options: AugmentOptions, dataset: ArrayDataset, task: str = "classification",
               loss: str = "cross_entropy") -> None:
    """Refuse options the data (or task) cannot take, one line saying why.

    Args:
        options: The validated options.
        dataset: The data they would augment.
        task: The run's task (mixup and cutmix need ``classification``).
        loss: The task's loss (mixup and cutmix need ``cross_entropy`` or two-class ``bce_with_logits``).

    Raises:
        DataError: e.g. ``dataset.augment.rotation: needs images; iris is a table of 4 features``.
    """
    real = _real_valued(dataset)
    what = _what(dataset)
    for name in options.active:
        needs = BY_NAME[name].needs if name not in ("mixup", "cutmix") else "classes"
        if name == "cutmix" and image_shape_of(dataset) is None:
            raise _fail(name, f"pastes image rectangles, so it needs images; {what}")
        if needs in ("images", "colour") and image_shape_of(dataset) is None:
            raise _fail(name, f"needs images; {what}")
        if needs == "colour" and dataset.image_shape is not None and dataset.image_shape[0] != 3:
            raise _fail(name, f"needs colour (3-channel) images; {dataset.name} has {dataset.image_shape[0]} channel(s)")
        if needs == "real" and not real:
            raise _fail(name, f"needs real-valued inputs; {dataset.name} holds whole numbers (token ids)")
        if needs == "classes" and (task != "classification" or dataset.target_kind != "classes"):
            raise _fail(name, f"mixes class labels, so it needs a classifier; this run's task is {task}")
        if needs == "classes" and loss not in ("cross_entropy", "bce_with_logits"):
            raise _fail(name, f"needs the cross_entropy loss, got {loss}")


def image_shape_of(dataset: ArrayDataset) -> tuple[int, int, int] | None:
    """The ``(C, H, W)`` the samples can be viewed as (flat layouts included), else ``None``."""
    shape = dataset.image_shape
    if shape is None or not _real_valued(dataset):
        return None
    return shape if int(np.prod(dataset.sample_dims)) == int(np.prod(shape)) else None


def _real_valued(dataset: ArrayDataset) -> bool:
    """Whether training batches of ``dataset`` hold real values: anything but token ids (streamed images
    are stored as uint8 and normalized to float on the device before augmentation)."""
    from engine.data.fit import holds_token_ids

    return not holds_token_ids(dataset)


def _what(dataset: ArrayDataset) -> str:
    dims = dataset.sample_dims
    if len(dims) == 1:
        return f"{dataset.name} is a table of {dims[0]} features"
    return f"{dataset.name}'s samples have shape {dims}, not images"


def augment_batch(x: torch.Tensor, y: torch.Tensor | None, options: AugmentOptions, generator: torch.Generator,
                  image_shape: tuple[int, int, int] | None = None, classes: int = 0,
                  normalization: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment one training batch: :func:`engine.training.augment_ops.augment_batch` when any option is on."""
    if not options.enabled:
        return x, y
    from engine.training.augment_ops import augment_batch as augment

    return augment(x, y, options, generator, image_shape, classes, normalization)


class Augmenter:
    """A run's augmentation: the options, what the data looks like, and the seeded generator.

    Args:
        options: Validated options (at least one op on).
        device: The training device (the generator lives there).
        seed: The run's seed; ``rank`` keeps distributed ranks' draws apart.
        image_shape: ``(C, H, W)`` of image samples, else ``None``.
        classes: Number of classes (mixup / cutmix).
        normalization: ``(mean, std)`` arrays of the inputs, or ``None``.
        rank: This process's rank.
    """

    def __init__(self, options: AugmentOptions, device: torch.device, seed: int,
                 image_shape: tuple[int, int, int] | None, classes: int = 0,
                 normalization: tuple[np.ndarray, np.ndarray] | None = None, rank: int = 0) -> None:
        import torch

        self.options, self.image_shape, self.classes = options, image_shape, classes
        from engine.training.augment_ops import augment_seed, normalization_tensors

        self.generator = torch.Generator(device=device).manual_seed(augment_seed(seed, rank))
        self.normalization = normalization_tensors(normalization, image_shape, device)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Augment one training batch (see :func:`augment_batch`)."""
        return augment_batch(x, y, self.options, self.generator, self.image_shape, self.classes, self.normalization)


def preview_augmented(x: np.ndarray, options: AugmentOptions, seed: int = 0,
                      image_shape: tuple[int, int, int] | None = None, y: np.ndarray | None = None,
                      classes: int = 0) -> np.ndarray:
    """Augmented copies of a few samples, for the Data panel's preview.

    The samples are normalized per channel with their own statistics (as training normalizes),
    augmented as a training batch would be, and returned in their own units.

    Args:
        x: Raw samples, ``(N, ...)``.
        options: The options to show.
        seed: Seed of the preview's generator (the same seed shows the same picture).
        image_shape: ``(C, H, W)`` of image samples.
        y: Class ids, for mixup / cutmix (left out without them).
        classes: Number of classes.

    Returns:
        Float32 array of ``x``'s shape (``(N, C, H, W)`` when ``image_shape`` is given).
    """
    import torch

    batch = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if image_shape is not None:
        batch = batch.reshape(len(batch), *image_shape)
    axes = (0, 2, 3) if batch.dim() == 4 else 0
    mean = batch.mean(axes, keepdim=True)[0]
    std = batch.std(axes, keepdim=True)[0].clamp(min=1e-8) if len(batch) > 1 else torch.ones_like(mean)
    normalized = (batch - mean) / std
    targets = torch.as_tensor(y).long() if y is not None and classes > 1 and options.mixes else None
    from engine.training.augment_ops import augment_seed

    generator = torch.Generator().manual_seed(augment_seed(seed))
    augmented, _ = augment_batch(normalized, targets, options, generator, None, classes,
                                 (mean, std) if batch.dim() == 4 else None)
    return (augmented * std + mean).numpy().astype(np.float32)


def run_augmenter(spec: Any, data: Any, task: str, loss: str, device: torch.device, seed: int,
                  rank: int = 0) -> Augmenter | None:
    """The augmenter of a training run, or ``None`` when every option is off.

    Args:
        spec: The project's ``dataset`` section.
        data: The run's :class:`~engine.data.base.PreparedData`.
        task: The run's task name.
        loss: The task's loss name.
        device: The training device.
        seed: The run's seed.
        rank: This process's rank.

    Raises:
        DataError: A bad option, or one that does not fit the data or task.
    """
    options = read_augment(spec)
    if not options.enabled:
        return None
    dataset = data.dataset
    check_fits(options, dataset, task, loss)
    norm = data.x_normalization
    return Augmenter(options, device, seed, image_shape_of(dataset), dataset.num_classes,
                     (norm.mean, norm.std) if norm is not None else None, rank)
