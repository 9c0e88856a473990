"""Batched data augmentation ops: whole ``(N, C, H, W)`` batches on their own device, torch only.

This module imports nothing of Neural Canvas: the Python source export copies it beside the
generated train.py, which augments its batches with :func:`augment_batch` as the app does.

Every op draws its randomness from the ``generator`` it is given (on the batch's device), so a
seeded generator makes a run's augmentation reproducible, and saving its state makes a resumed
run bit-identical. Each op takes one random value (or set of values) per sample; flips and
padded crops move whole pixels (exact); resized crops and rotations resample bilinearly with one
``affine_grid`` / ``grid_sample`` call for the whole batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

#: Range of the aspect ratio (width / height) of a random resized crop, as torchvision's.
CROP_RATIO = (3 / 4, 4 / 3)
#: Area of an erased rectangle, as a fraction of the image, and its aspect-ratio range.
ERASE_AREA = (0.02, 0.33)
ERASE_RATIO = (0.3, 3.3)
#: Weights of the channels in a colour image's grey level (ITU-R BT.601).
GREY = (0.299, 0.587, 0.114)


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator,
            device: torch.device) -> torch.Tensor:
    """Uniform samples in ``[low, high)`` drawn from ``generator``."""
    return torch.rand(shape, generator=generator, device=device) * (high - low) + low


def flip(x: torch.Tensor, dim: int, generator: torch.Generator) -> torch.Tensor:
    """Mirror each image along ``dim`` (-1: horizontal, -2: vertical) with probability one half.

    Shape:
        x: ``(N, C, H, W)``; the result has the same shape.
    """
    chosen = torch.rand(len(x), generator=generator, device=x.device) < 0.5
    return torch.where(chosen[:, None, None, None], x.flip(dim), x)


def padded_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad each image by ``padding`` zeros on every side and cut a random window of the original size.

    The same as shifting each image by a whole number of pixels in ``[-padding, padding]`` on both
    axes, filling with zeros (the data's mean after normalization).

    Shape:
        x: ``(N, C, H, W)``; the result has the same shape.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(0, 2 * padding + 1, (n,), generator=generator, device=x.device)
    rows = top[:, None] + torch.arange(h, device=x.device)
    cols = left[:, None] + torch.arange(w, device=x.device)
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def crop_rotate(x: torch.Tensor, scale: float | None, degrees: float, generator: torch.Generator) -> torch.Tensor:
    """Random resized crop and/or random rotation of each image, resampled in one pass.

    Args:
        x: The images.
        scale: Smallest area of a resized crop as a fraction of the image (crops cover
            ``[scale, 1]`` of it, aspect ratio in :data:`CROP_RATIO`); ``None``: no crop.
        degrees: Rotations are uniform in ``[-degrees, degrees]``; 0: no rotation.
        generator: Source of the random values.

    Shape:
        x: ``(N, C, H, W)``; the result has the same shape (a crop is resized back).
    """
    n, _, h, w = x.shape
    device = x.device
    linear = torch.eye(2, device=device).repeat(n, 1, 1)
    shift = torch.zeros(n, 2, device=device)
    if degrees > 0:
        angle = uniform((n,), -math.radians(degrees), math.radians(degrees), generator, device)
        cos, sin = angle.cos(), angle.sin()
        # a rotation in pixels, written in normalized coordinates (non-square images keep their angles)
        linear = torch.stack([torch.stack([cos, -sin * h / w], 1), torch.stack([sin * w / h, cos], 1)], 1)
    if scale is not None:
        area = uniform((n,), scale, 1.0, generator, device)
        ratio = uniform((n,), math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1]), generator, device).exp()
        width = (area * ratio).sqrt().clamp(max=1.0)
        height = (area / ratio).sqrt().clamp(max=1.0)
        shift = torch.stack([(1 - width) * uniform((n,), -1.0, 1.0, generator, device),
                             (1 - height) * uniform((n,), -1.0, 1.0, generator, device)], 1)
        linear = torch.diag_embed(torch.stack([width, height], 1)) @ linear
    theta = torch.cat([linear, shift[:, :, None]], 2).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def colour_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                  generator: torch.Generator) -> torch.Tensor:
    """Scale each image's brightness, contrast and saturation by random factors in ``[1 - v, 1 + v]``.

    Works in the data's own units (undo normalization first). Contrast pulls each image towards
    its mean grey level; saturation towards each pixel's grey level (colour images only).

    Shape:
        x: ``(N, C, H, W)``; the result has the same shape.
    """
    n, c = x.shape[:2]
    device = x.device

    def factor(amount: float) -> torch.Tensor:
        return uniform((n,), 1 - amount, 1 + amount, generator, device).to(x.dtype)[:, None, None, None]

    def grey(images: torch.Tensor) -> torch.Tensor:
        if c != 3:
            return images.mean(1, keepdim=True)
        weights = torch.tensor(GREY, device=device, dtype=images.dtype)[None, :, None, None]
        return (images * weights).sum(1, keepdim=True)

    if brightness > 0:
        x = x * factor(brightness)
    if contrast > 0:
        mean = grey(x).mean((2, 3), keepdim=True)
        x = (x - mean) * factor(contrast) + mean
    if saturation > 0:
        level = grey(x)
        x = (x - level) * factor(saturation) + level
    return x


def erase(x: torch.Tensor, probability: float, generator: torch.Generator) -> torch.Tensor:
    """Set a random rectangle of each image (chosen with ``probability``) to zero, as random erasing.

    The rectangle covers :data:`ERASE_AREA` of the image with an aspect ratio in :data:`ERASE_RATIO`
    and lies wholly inside it; zero is the data's mean after normalization.

    Shape:
        x: ``(N, C, H, W)``; the result has the same shape.
    """
    n, _, h, w = x.shape
    device = x.device
    chosen = torch.rand(n, generator=generator, device=device) < probability
    area = uniform((n,), *ERASE_AREA, generator, device) * h * w
    ratio = uniform((n,), math.log(ERASE_RATIO[0]), math.log(ERASE_RATIO[1]), generator, device).exp()
    height = (area / ratio).sqrt().round().clamp(1, h).long()
    width = (area * ratio).sqrt().round().clamp(1, w).long()
    top = (torch.rand(n, generator=generator, device=device) * (h - height + 1)).long()
    left = (torch.rand(n, generator=generator, device=device) * (w - width + 1)).long()
    rows = torch.arange(h, device=device)[None, :]
    cols = torch.arange(w, device=device)[None, :]
    inside_rows = (rows >= top[:, None]) & (rows < (top + height)[:, None])
    inside_cols = (cols >= left[:, None]) & (cols < (left + width)[:, None])
    mask = inside_rows[:, :, None] & inside_cols[:, None, :] & chosen[:, None, None]
    return x.masked_fill(mask[:, None], 0.0)


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """Add Gaussian noise of standard deviation ``std`` to every value (any shape)."""
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def beta(alpha: float, generator: torch.Generator, device: torch.device) -> float:
    """One draw of Beta(alpha, alpha), seeded from ``generator`` (torch's Beta takes no generator)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=device))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def mix(x: torch.Tensor, y: torch.Tensor, classes: int, mixup: float, cutmix: float,
        generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix (one of them at random per batch when both are on) with soft targets.

    Mixup blends each sample with another of the batch by a weight drawn from Beta(α, α);
    cutmix pastes a rectangle of the other sample (same box for the whole batch, area
    ``1 - weight``), and the weight becomes the area actually kept. Targets become class
    probabilities ``weight * one_hot(y) + (1 - weight) * one_hot(y_other)``, which
    ``cross_entropy`` accepts as targets.

    Args:
        x: Inputs, ``(N, ...)``; ``(N, C, H, W)`` for cutmix.
        y: Class ids ``(N,)`` (int64).
        classes: Number of classes.
        mixup: α of mixup (0: off).
        cutmix: α of cutmix (0: off).
        generator: Source of the random values.

    Returns:
        The mixed inputs and ``(N, classes)`` float targets whose rows sum to one.
    """
    device = x.device
    use_cutmix = cutmix > 0 and (mixup <= 0 or bool(torch.rand(1, generator=generator, device=device) < 0.5))
    weight = beta(cutmix if use_cutmix else mixup, generator, device)
    other = torch.randperm(len(x), generator=generator, device=device)
    if use_cutmix:
        h, w = x.shape[-2:]
        side = math.sqrt(1.0 - weight)
        box_h, box_w = int(round(h * side)), int(round(w * side))
        top = int(torch.randint(0, h - box_h + 1, (1,), generator=generator, device=device))
        left = int(torch.randint(0, w - box_w + 1, (1,), generator=generator, device=device))
        x = x.clone()
        x[..., top:top + box_h, left:left + box_w] = x[other][..., top:top + box_h, left:left + box_w]
        weight = 1.0 - box_h * box_w / (h * w)
    else:
        x = weight * x + (1.0 - weight) * x[other]
    hot = F.one_hot(y.long(), classes).to(x.dtype)
    return x, weight * hot + (1.0 - weight) * hot[other]


def augment_seed(seed: int, rank: int = 0) -> int:
    """The augmentation generator's seed: apart from the data-order generator's, one per rank."""
    return (seed * 1_000_003 + 7_919 * (rank + 1)) % (2**63)


def normalization_tensors(normalization: tuple[np.ndarray, np.ndarray] | None,
                          image_shape: tuple[int, int, int] | None, device: torch.device | str
                          ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The inputs' ``(mean, std)`` as tensors on ``device`` broadcastable to ``(C, H, W)`` (per channel
    or per value), for colour jitter in the data's own units; ``None`` without both arguments."""
    if normalization is None or image_shape is None:
        return None
    mean, std = (torch.as_tensor(np.asarray(a, dtype=np.float32), device=device).reshape(
        (-1, 1, 1) if np.size(a) == image_shape[0] else image_shape) for a in normalization)
    return mean, std


def augment_batch(x: torch.Tensor, y: torch.Tensor | None, options: Any, generator: torch.Generator,
                  image_shape: tuple[int, int, int] | None = None, classes: int = 0,
                  normalization: tuple[torch.Tensor, torch.Tensor] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Augment one training batch.

    Order: crop and rotation (one resampling), flips, colour jitter, erasing, noise, then mixup / cutmix.

    Args:
        x: The batch (normalized as the model sees it).
        y: Its targets; class ids for mixup / cutmix.
        options: What to do: an object with the fields of
            :class:`~engine.training.augment.AugmentOptions` (the exported train.py passes a namespace).
        generator: Source of every random value, on ``x``'s device.
        image_shape: ``(C, H, W)`` the samples are viewed as (a flat layout is reshaped and back);
            ``None``: ``x`` is already ``(N, C, H, W)``, or not images (noise only).
        classes: Number of classes (mixup / cutmix).
        normalization: ``(mean, std)`` of the inputs, broadcastable to ``(C, H, W)``; colour jitter
            works in the data's own units. ``None``: ``x`` is in its own units.

    Shape:
        x: ``(N, ...)``; ``(N, C, H, W)`` or ``(N, C*H*W)`` with ``image_shape`` for image ops.

    Returns:
        The augmented inputs (same shape) and targets: ``(N, classes)`` class probabilities summing
        to one when mixup or cutmix is on, else ``y`` unchanged.
    """
    original = x.shape
    if image_shape is not None:
        x = x.reshape(len(x), *image_shape)
    if x.dim() == 4:
        if options.crop == "padded":
            x = padded_crop(x, options.crop_padding, generator)
        resized = options.crop_scale if options.crop == "resized" else None
        if resized is not None or options.rotation > 0:
            x = crop_rotate(x, resized, options.rotation, generator)
        if options.hflip:
            x = flip(x, -1, generator)
        if options.vflip:
            x = flip(x, -2, generator)
        if options.brightness or options.contrast or options.saturation:
            mean, std = normalization if normalization is not None else (None, None)
            raw = x * std + mean if mean is not None else x
            raw = colour_jitter(raw, options.brightness, options.contrast, options.saturation, generator)
            x = (raw - mean) / std if mean is not None else raw
        if options.erasing:
            x = erase(x, options.erasing, generator)
    if options.noise:
        x = gaussian_noise(x, options.noise, generator)
    if (options.mixup > 0 or options.cutmix > 0) and y is not None:
        x, y = mix(x, y, classes, options.mixup, options.cutmix, generator)
    return x.reshape(original), y
