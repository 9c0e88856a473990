"""Augmentation of training batches: each op's effect, seeding, validation lines, and the trainer hook."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.data import load_dataset, prepare_data
from engine.data.base import DataError
from engine.training import augment_ops as ops
from engine.training.augment import (AugmentOptions, Augmenter, augment_batch, check_fits, preview_augmented,
                                     read_augment)
from engine.training.events import EpochEnd, Finished
from tests.training.helpers import cnn_project, mlp_project
from tests.training.test_trainer import assert_stopped_run_resumes_to_the_same_weights, train


def _images(n: int = 16, c: int = 3, h: int = 12, w: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_everything_is_off_by_default_and_the_batch_is_returned_as_it_is() -> None:
    options = read_augment({"name": "digits"})
    assert options == AugmentOptions() and not options.enabled
    x, y = _images(), torch.arange(16)
    out_x, out_y = augment_batch(x, y, options, _gen())
    assert out_x is x and out_y is y
    assert load_dataset({"name": "iris", "augment": {"noise": 0.1}}).name  # sources accept the field


@pytest.mark.parametrize(("option", "dim"), [("hflip", -1), ("vflip", -2)])
def test_a_flip_is_an_exact_mirror_of_about_half_the_images(option: str, dim: int) -> None:
    x = _images(64)
    out, _ = augment_batch(x, None, AugmentOptions(**{option: True}), _gen())
    mirrored = [torch.equal(out[i], x[i].flip(dim)) for i in range(64)]
    kept = [torch.equal(out[i], x[i]) for i in range(64)]
    assert all(m or k for m, k in zip(mirrored, kept))
    assert 16 < sum(mirrored) < 48


def test_rotation_zero_is_the_identity_and_a_rotation_keeps_the_shape() -> None:
    x = _images()
    assert torch.equal(augment_batch(x, None, AugmentOptions(rotation=0.0), _gen())[0], x)
    assert torch.allclose(ops.crop_rotate(x, None, 1e-9, _gen()), x, atol=1e-5)  # an angle of ~0 resamples nothing
    rotated, _ = augment_batch(x, None, AugmentOptions(rotation=30.0), _gen())
    assert rotated.shape == x.shape and not torch.allclose(rotated, x)


@pytest.mark.parametrize("crop", ["resized", "padded"])
def test_a_crop_keeps_the_shape(crop: str) -> None:
    x = _images()
    out, _ = augment_batch(x, None, AugmentOptions(crop=crop, crop_padding=2, crop_scale=0.3), _gen())
    assert out.shape == x.shape and not torch.equal(out, x)
    flat, _ = augment_batch(x.reshape(16, -1), None, AugmentOptions(crop=crop), _gen(), image_shape=(3, 12, 10))
    assert flat.shape == (16, 3 * 12 * 10)  # a flat layout is viewed as images and flattened back


def test_a_padded_crop_shifts_whole_pixels_and_fills_with_zeros() -> None:
    x = torch.arange(1, 1 + 2 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    out = ops.padded_crop(x, 2, _gen(3))
    for i in range(2):
        kept = out[i][out[i] != 0]
        assert set(kept.tolist()) <= set(x[i].flatten().tolist())
        assert torch.equal(out[i].flatten()[out[i].flatten() != 0].sort().values, kept.sort().values)


def test_erasing_sets_one_rectangle_to_zero_in_every_channel() -> None:
    x = _images(32) + 10.0  # no zeros of its own
    out, _ = augment_batch(x, None, AugmentOptions(erasing=1.0), _gen())
    for i in range(32):
        zero = out[i] == 0
        assert torch.equal(zero[0], zero[1]) and torch.equal(zero[0], zero[2])
        rows, cols = zero[0].nonzero(as_tuple=True)
        assert len(rows) > 0
        box = zero[0][rows.min():rows.max() + 1, cols.min():cols.max() + 1]
        assert bool(box.all()) and int(zero[0].sum()) == box.numel()  # a full rectangle, nothing outside
        assert torch.equal(out[i][~zero], x[i][~zero])


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixup_and_cutmix_targets_are_probabilities_that_sum_to_one(kind: str) -> None:
    x, y = _images(32), torch.randint(0, 5, (32,), generator=_gen(1))
    out, target = augment_batch(x, y, AugmentOptions(**{kind: 1.0}), _gen(), classes=5)
    assert target.shape == (32, 5) and target.dtype == torch.float32
    assert torch.allclose(target.sum(1), torch.ones(32)) and bool((target >= 0).all())
    assert bool((target[torch.arange(32), y] > 0).all() | (target.max(1).values == 1).all())
    loss = torch.nn.functional.cross_entropy(torch.randn(32, 5), target)  # soft targets work with cross-entropy
    assert torch.isfinite(loss) and out.shape == x.shape


def test_colour_jitter_works_in_the_data_units_and_noise_applies_to_tables() -> None:
    x = _images()
    out, _ = augment_batch(x, None, AugmentOptions(brightness=0.5, contrast=0.5, saturation=0.5), _gen())
    assert out.shape == x.shape and not torch.allclose(out, x)
    table = torch.zeros(4000, 4)
    noisy, _ = augment_batch(table, None, AugmentOptions(noise=0.5), _gen())
    assert noisy.shape == table.shape and abs(float(noisy.std()) - 0.5) < 0.02


def test_the_same_seed_gives_the_same_batch_and_another_seed_another() -> None:
    options = read_augment({"augment": {"crop": "resized", "hflip": True, "rotation": 20, "brightness": 0.2,
                                        "erasing": 0.5, "noise": 0.1, "mixup": 0.4, "cutmix": 1.0}})
    x, y = _images(), torch.randint(0, 3, (16,), generator=_gen(1))
    first = augment_batch(x, y, options, _gen(7), classes=3)
    again = augment_batch(x, y, options, _gen(7), classes=3)
    other = augment_batch(x, y, options, _gen(8), classes=3)
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])
    assert not torch.equal(first[0], other[0])
    generator = _gen(7)
    state = generator.get_state()
    augment_batch(x, y, options, generator, classes=3)
    generator.set_state(state)  # what a checkpoint restores
    assert torch.equal(augment_batch(x, y, options, generator, classes=3)[0], first[0])


@pytest.mark.parametrize(("section", "message"), [
    ({"rotation": 400}, "dataset.augment.rotation: must be from 0 to 180 degrees, got 400"),
    ({"crop_padding": 0}, "dataset.augment.crop_padding: must be from 1 to 64 pixels, got 0"),
    ({"hflip": "yes"}, "dataset.augment.hflip: must be true or false, got 'yes'"),
    ({"crop": "centre"}, "dataset.augment.crop: must be one of 'none', 'resized', 'padded', got 'centre'"),
    ({"noise": float("nan")}, "dataset.augment.noise: must be from 0 to 5, got nan"),
    ({"flip": True}, "dataset.augment.flip: unknown option; the options are: crop, crop_scale, crop_padding, "
                     "hflip, vflip, rotation, brightness, contrast, saturation, erasing, noise, mixup, cutmix"),
    ("hflip", "dataset.augment: must be an object such as {\"hflip\": true}, got 'hflip'"),
])
def test_bad_options_are_one_line_naming_the_field(section: object, message: str) -> None:
    with pytest.raises(DataError) as info:
        read_augment({"name": "digits", "augment": section})
    assert str(info.value) == message


@pytest.mark.parametrize(("spec", "augment", "task", "message"), [
    ({"name": "iris"}, {"rotation": 10}, "classification",
     "dataset.augment.rotation: needs images; iris is a table of 4 features"),
    ({"name": "digits"}, {"saturation": 0.2}, "classification",
     "dataset.augment.saturation: needs colour (3-channel) images; digits has 1 channel(s)"),
    ({"name": "iris"}, {"cutmix": 1.0}, "classification",
     "dataset.augment.cutmix: pastes image rectangles, so it needs images; iris is a table of 4 features"),
    ({"name": "diabetes"}, {"mixup": 0.2}, "regression",
     "dataset.augment.mixup: mixes class labels, so it needs a classifier; this run's task is regression"),
])
def test_options_that_do_not_fit_the_data_are_refused(spec: dict, augment: dict, task: str, message: str) -> None:
    with pytest.raises(DataError) as info:
        check_fits(read_augment({"augment": augment}), load_dataset(spec), task)
    assert str(info.value) == message
    check_fits(read_augment({"augment": {"noise": 0.1, "mixup": 0.2}}), load_dataset({"name": "iris"}))


def test_the_preview_is_seeded_and_in_the_data_units() -> None:
    digits = load_dataset({"name": "digits"})
    x = digits.x[:16]
    off = preview_augmented(x, AugmentOptions(), 0, (1, 8, 8))
    assert off.shape == (16, 1, 8, 8) and np.allclose(off, x, atol=1e-4)
    options = AugmentOptions(rotation=20, erasing=0.5)
    first = preview_augmented(x, options, 1, (1, 8, 8))
    assert np.array_equal(first, preview_augmented(x, options, 1, (1, 8, 8)))
    assert not np.array_equal(first, preview_augmented(x, options, 2, (1, 8, 8)))
    mixed = preview_augmented(x, AugmentOptions(mixup=1.0), 0, (1, 8, 8), digits.y[:16], 10)
    assert mixed.shape == (16, 1, 8, 8)


# ------------------------------------------------------------------- trainer
def _augmented_cnn(augment: dict, **training: object):  # noqa: ANN202
    project = cnn_project({"deterministic": True, **training})
    project.dataset["augment"] = augment
    return project


def test_only_training_batches_are_augmented(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    evaluated: list[torch.Tensor] = []
    original = Augmenter.__call__

    def record(self: Augmenter, x: torch.Tensor, y: torch.Tensor | None):  # noqa: ANN202
        seen.append(len(x))
        return original(self, x, y)

    from engine.training.tasks.classification import ClassificationTask

    evaluate = ClassificationTask.evaluate

    def record_evaluate(self, x, y):  # noqa: ANN001, ANN202
        evaluated.append(x.clone())
        return evaluate(self, x, y)

    monkeypatch.setattr(Augmenter, "__call__", record)
    monkeypatch.setattr(ClassificationTask, "evaluate", record_evaluate)
    project = _augmented_cnn({"rotation": 15, "erasing": 0.5, "noise": 0.2}, epochs=2)
    result, events = train(project)
    assert isinstance(result, Finished) and result.reason == "completed"
    steps = events[0].steps_per_epoch
    assert len(seen) == 2 * steps and max(seen) == 64
    split = prepare_data(load_dataset({"name": "digits"}), 0.2, 5, True)
    assert len(evaluated) == 2 and all(torch.equal(v, torch.from_numpy(split.val_x)) for v in evaluated)


def test_a_cnn_on_digits_still_learns_with_augmentation() -> None:
    project = _augmented_cnn({"crop": "padded", "crop_padding": 1, "rotation": 10, "erasing": 0.25,
                              "noise": 0.1, "mixup": 0.2}, epochs=4)
    result, events = train(project)
    assert isinstance(result, Finished) and result.reason == "completed"
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert epochs[-1].train["loss"] < epochs[0].train["loss"]
    assert epochs[-1].val["loss"] < epochs[0].val["loss"] and epochs[-1].val["accuracy"] > 0.7


def test_a_bad_or_unfitting_option_fails_the_run_with_its_line() -> None:
    project = _augmented_cnn({"rotation": 400})
    result, _ = train(project)
    assert result.message == "dataset.augment.rotation: must be from 0 to 180 degrees, got 400"
    table = mlp_project()
    table.dataset["augment"] = {"hflip": True}
    result, _ = train(table)
    assert result.reason == "data" and result.message.startswith("dataset.augment.hflip: needs images; moons")


def test_a_stopped_and_resumed_augmented_run_ends_with_the_same_weights(tmp_path: Path) -> None:
    project = _augmented_cnn({"crop": "resized", "hflip": True, "rotation": 10, "erasing": 0.3, "cutmix": 1.0},
                             epochs=3)
    assert_stopped_run_resumes_to_the_same_weights(project, tmp_path)
