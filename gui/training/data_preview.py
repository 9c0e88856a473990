"""What the Data panel shows of a loaded dataset: the summary line, a mosaic of its first images, its
first rows as a table (named columns, forecast windows as ``t−31 … t`` and ``target t+1``), or
samples of its text."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QTableWidget, QTableWidgetItem

from engine.data import describe
from engine.data.base import ArrayDataset

PREVIEW_IMAGES = 32
PREVIEW_ROWS = 40
PREVIEW_COLUMNS = 40
TEXT_SAMPLES = 6


def escape_html(text: str) -> str:
    """``text`` safe inside a rich-text label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def summary_html(dataset: ArrayDataset) -> str:
    """Samples, shapes, classes or vocabulary, and where the data lives (streamed or in memory)."""
    info = describe(dataset)
    lines = [f"<b>{info['samples']:,}</b> samples · input {tuple(info['input_shape'])} "
             f"{info['input_dtype']} · target {info['target_kind']}"]
    if info["class_counts"]:
        counts = ", ".join(f"{escape_html(str(k))}: {v}" for k, v in info["class_counts"].items())
        lines.append(f"{info['num_classes']} classes — {counts}")
    if info["vocabulary_size"]:
        lines.append(f"vocabulary of {info['vocabulary_size']} tokens")
    lines += [escape_html(info["description"])] if info.get("storage") or info.get("skipped") else []
    if info.get("storage") and str(info["storage"]) not in info["description"]:  # where the data lives, why
        lines.append(f"<i>{escape_html(str(info['storage'])[:1].upper() + str(info['storage'])[1:])}</i>")
    return "<br>".join(lines)


def first_images(dataset: ArrayDataset) -> QImage:
    """The first :data:`PREVIEW_IMAGES` images, 8 to a row, scaled up to about 28 pixels."""
    count = min(PREVIEW_IMAGES, len(dataset.x))
    images = dataset.x[:count].reshape(count, *dataset.image_shape)  # type: ignore[misc]
    return image_mosaic(images, 8, max(1, 28 // dataset.image_shape[1]))  # type: ignore[index]


def text_samples_html(dataset: ArrayDataset) -> str:
    """:data:`TEXT_SAMPLES` sequences from across a text dataset, decoded (line breaks as ⏎)."""
    x, vocab = dataset.x, dataset.vocabulary
    assert vocab is not None
    picks = np.linspace(0, len(x) - 1, min(TEXT_SAMPLES, len(x))).astype(int)
    lines = ["".join(vocab[int(t)] for t in x[i][:120]).replace("\n", "⏎") for i in picks]
    return "<br>".join(f"<span style='color:#6E7781'>#{i}</span> {escape_html(line)}" for i, line in zip(picks, lines))


def fill_table(table: QTableWidget, dataset: ArrayDataset) -> None:
    """The first :data:`PREVIEW_ROWS` rows (at most :data:`PREVIEW_COLUMNS` inputs) and their targets."""
    count = min(PREVIEW_ROWS, len(dataset))
    x = np.asarray(dataset.x[:count]).reshape(count, -1)  # the first rows only: x may be streamed from disk
    width = min(x.shape[1], PREVIEW_COLUMNS)
    names = input_labels(dataset)[:width]
    targets = target_labels(dataset)
    table.setColumnCount(width + len(targets))
    table.setRowCount(count)
    table.setHorizontalHeaderLabels([*names, *targets])
    for column, name in enumerate([*names, *targets]):
        table.horizontalHeaderItem(column).setToolTip(_column_tip(dataset, name, column >= width))
    for row in range(count):
        for col in range(width):
            table.setItem(row, col, QTableWidgetItem(f"{x[row, col]:.4g}"))
        if targets:
            y = dataset.y[row]  # type: ignore[index]
            if dataset.target_kind == "classes":
                values = [dataset.class_names[int(y)] if dataset.class_names else str(int(y))]
            else:
                values = [f"{v:.4g}" for v in np.ravel(y)][:len(targets)]
            for offset, text in enumerate(values):
                table.setItem(row, width + offset, QTableWidgetItem(text))
    table.resizeColumnsToContents()


def image_mosaic(images: np.ndarray, columns: int, scale: int) -> QImage:
    """Tile ``(N, C, H, W)`` images into one greyscale or RGB image, each scaled up by ``scale``."""
    n, c, h, w = images.shape
    rows = (n + columns - 1) // columns
    lo, hi = float(images.min()), float(images.max())
    norm = ((images - lo) / (hi - lo or 1.0) * 255).astype(np.uint8)
    pad = 2
    canvas = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 235, np.uint8)
    for i in range(n):
        r, k = divmod(i, columns)
        tile = norm[i].transpose(1, 2, 0)
        tile = np.repeat(tile, 3, axis=2) if c == 1 else tile[:, :, :3]
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = tile
    canvas = np.ascontiguousarray(canvas.repeat(scale, 0).repeat(scale, 1))
    image = QImage(canvas.data, canvas.shape[1], canvas.shape[0], canvas.strides[0], QImage.Format.Format_RGB888)
    return image.copy()



def input_labels(dataset: ArrayDataset) -> list[str]:
    """A header for each input value of a flattened sample.

    Tables use their feature names; a forecasting window names its steps ``t−31 … t`` (the
    target is ``t+1``); other shapes name each value by its index.
    """
    dims = dataset.sample_dims
    flat = int(np.prod(dims)) if dims else 1
    names = list(dataset.feature_names or [])
    if len(names) == flat:
        return names
    window = dataset.extras.get("window")
    if isinstance(window, int) and dims and dims[0] == window:
        features = int(np.prod(dims[1:])) if len(dims) > 1 else 1
        steps = [f"t−{window - 1 - i}" if i < window - 1 else "t" for i in range(window)]
        if features == 1:
            return steps
        labels = names if len(names) == features else [f"x{k}" for k in range(features)]
        return [f"{label} {step}" for step in steps for label in labels]
    if len(dims) > 1:
        return [f"x[{','.join(map(str, index))}]" for index in np.ndindex(*dims)]
    return [f"x{i}" for i in range(flat)]


def target_labels(dataset: ArrayDataset) -> list[str]:
    """Headers of the target columns: ``class``, ``target`` (``target 1 …`` for several), or the
    forecast steps ``target t+1 …``; none for data without targets."""
    if dataset.y is None or dataset.target_kind not in ("classes", "values"):
        return []
    if dataset.target_kind == "classes":
        return ["class"]
    count = int(np.prod(dataset.y.shape[1:])) if dataset.y.ndim > 1 else 1
    if isinstance(dataset.extras.get("window"), int):
        return [f"target t+{k + 1}" for k in range(count)]
    return ["target"] if count == 1 else [f"target {k + 1}" for k in range(count)]


def _column_tip(dataset: ArrayDataset, name: str, target: bool) -> str:
    if isinstance(dataset.extras.get("window"), int):
        return ("What the model predicts: the value one step after the window" if name == "target t+1" else
                f"Predicted: the value {name.split('+')[-1]} steps after the window") if target else \
            f"Input: the series value at step {name} of the window (t is the newest)"
    return "What the model predicts" if target else "Input value"

