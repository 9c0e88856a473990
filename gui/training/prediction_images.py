"""Prediction pages built around sample grids: classification (samples and confusion matrix),
reconstruction (inputs beside outputs, latent scatter) and generated GAN images.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from gui.style import LIGHT, Theme
from gui.training.prediction_common import (
    ACCENT_COLOR,
    WRONG_COLOR,
    ConfusionMatrix,
    PredictionPage,
    as_images,
    class_brushes,
    class_color,
    class_name,
    display_range,
    finite,
    legend_html,
    legend_label,
    make_plot,
    style_plot,
    to_qimages,
)
from gui.training.prediction_tiles import Tile, TileGrid, series_tile

TABLE_COLUMNS = ("True", "Predicted", "Top probabilities")


def _is_image(payload: dict[str, Any], key: str) -> bool:
    """The payload's ``is_image`` flag, else whether ``payload[key]`` looks like a stack of images."""
    flag = payload.get("is_image")
    return bool(flag) if flag is not None else np.ndim(payload[key]) >= 3


class ClassificationPage(PredictionPage):
    """Sample images (or a table for tabular data) labelled ``predicted (true)`` beside the
    confusion matrix; wrong predictions framed and labelled in red."""

    title = "Classification"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.grid = TileGrid(theme)
        self.table = QTableWidget(0, len(TABLE_COLUMNS))
        self.table.setHorizontalHeaderLabels(list(TABLE_COLUMNS))
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setWordWrap(False)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.samples = QStackedWidget()
        self.samples.addWidget(self.grid)
        self.samples.addWidget(self.table)
        self.confusion = ConfusionMatrix(theme)
        self.columns = QHBoxLayout(self)
        self.columns.setContentsMargins(0, 0, 0, 0)
        self.columns.setSpacing(4)
        self.columns.addWidget(self.samples, 3)
        self.columns.addWidget(self.confusion, 2)
        #: Table rows marked wrong (tabular data).
        self.wrong_rows: list[int] = []

    def show_payload(self, payload: dict[str, Any]) -> str:
        names = [str(n) for n in payload.get("class_names") or []]
        samples = [(int(s["true"]), int(s["predicted"]), [(int(c), float(p)) for c, p in s.get("top", [])])
                   for s in payload["samples"]]
        images = as_images(payload["images"]) if payload.get("images") is not None else None
        self.confusion.set_matrix(payload["confusion"], names)
        many = len(self.confusion.names) >= 8  # many classes: the matrix needs room for its counts
        self.columns.setStretch(0, 1 if many else 3)
        self.columns.setStretch(1, 1 if many else 2)
        if images is not None:
            lo, hi = display_range(images)
            tiles = [Tile(image=image, caption=(class_name(names, pred), class_name(names, true)),
                          wrong=true != pred, tooltip=_tooltip(names, true, pred, top))
                     for image, (true, pred, top) in zip(to_qimages(images, lo, hi), samples)]
            self.grid.set_tiles(tiles)
            self.samples.setCurrentWidget(self.grid)
        else:
            self._fill_table(names, samples)
            self.samples.setCurrentWidget(self.table)
        counts = self.confusion.counts
        right = sum(true == pred for true, pred, _ in samples)
        total = int(counts.sum())
        accuracy = f" · accuracy {np.trace(counts) / total:.1%} on {total} validation samples" if total else ""
        return f"{right} of {len(samples)} samples right{accuracy}"

    def _fill_table(self, names: list[str], samples: list[tuple[int, int, list[tuple[int, float]]]]) -> None:
        table = self.table
        table.setUpdatesEnabled(False)
        table.setRowCount(len(samples))
        self.wrong_rows = []
        normal, wrong = self.palette().text().color(), QColor(WRONG_COLOR)
        for row, (true, pred, top) in enumerate(samples):
            texts = (class_name(names, true), ("✗ " if true != pred else "") + class_name(names, pred),
                     "   ".join(f"{class_name(names, c)} {p:.0%}" for c, p in top))
            if true != pred:
                self.wrong_rows.append(row)
            for column, text in enumerate(texts):
                item = table.item(row, column)
                if item is None:
                    item = QTableWidgetItem()
                    table.setItem(row, column, item)
                if item.text() != text:
                    item.setText(text)
                item.setForeground(wrong if true != pred else normal)
        for column in range(len(TABLE_COLUMNS) - 1):  # once, not on every cell change (ResizeToContents)
            table.resizeColumnToContents(column)
        table.setUpdatesEnabled(True)

    def clear(self) -> None:
        self.grid.clear()
        self.table.setRowCount(0)
        self.wrong_rows = []
        self.confusion.clear_matrix()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        self.grid.set_theme(theme)
        self.confusion.set_theme(theme)


def _tooltip(names: list[str], true: int, pred: int, top: list[tuple[int, float]]) -> str:
    lines = [f"true: {class_name(names, true)}", f"predicted: {class_name(names, pred)}"]
    lines += [f"  {class_name(names, c)}: {p:.1%}" for c, p in top]
    return "\n".join(lines)


class ReconstructionPage(PredictionPage):
    """Inputs beside the model's reconstructions (noisy / output / clean for denoising), as
    images or sparklines, and the latent codes as a scatter coloured by class."""

    title = "Reconstruction"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.grid = TileGrid(theme)
        self.series_legend = legend_label()
        self.latent_plot = make_plot(theme, bottom="z₁", left="z₂")
        self.latent = pg.ScatterPlotItem(size=5, pen=None)
        self.latent_plot.addItem(self.latent)
        self.latent_legend = legend_label()
        self.latent_box = QWidget()
        right = QVBoxLayout(self.latent_box)
        right.setContentsMargins(0, 0, 0, 0)
        right.setSpacing(2)
        right.addWidget(self.latent_plot, 1)
        right.addWidget(self.latent_legend)
        left = QVBoxLayout()
        left.setSpacing(2)
        left.addWidget(self.grid, 1)
        left.addWidget(self.series_legend)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addLayout(left, 5)
        layout.addWidget(self.latent_box, 4)
        self.latent_box.setVisible(False)
        self._legends: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])

    def show_payload(self, payload: dict[str, Any]) -> str:
        noisy = payload.get("noisy")
        if _is_image(payload, "inputs"):
            inputs, outputs = as_images(payload["inputs"]), as_images(payload["reconstructions"])
            noisy_images = as_images(noisy) if noisy is not None else None
            lo, hi = display_range(inputs, *([noisy_images] if noisy_images is not None else []))
            columns = [to_qimages(inputs, lo, hi), to_qimages(outputs, lo, hi)]
            if noisy_images is not None:
                columns = [to_qimages(noisy_images, lo, hi), columns[1], columns[0]]
            headers = ("noisy", "output", "clean") if noisy_images is not None else ("input", "output")
            tiles = [Tile(image=image) for group in zip(*columns) for image in group]
            self.grid.set_tiles(tiles, group=len(columns), headers=headers)
            series_legend: list[tuple[str, str]] = []
        else:
            inputs = finite(payload["inputs"]).reshape(len(payload["inputs"]), -1)
            outputs = finite(payload["reconstructions"]).reshape(len(inputs), -1)
            extra = finite(noisy).reshape(len(inputs), -1) if noisy is not None else None
            subtle = self.theme.node_subtle
            tiles = [series_tile(x, *([(extra[i], self.theme.node_border)] if extra is not None else []),
                                 (y, ACCENT_COLOR), color=subtle) for i, (x, y) in enumerate(zip(inputs, outputs))]
            self.grid.set_tiles(tiles, series_range=display_range(inputs, outputs))
            series_legend = [(subtle, "input"), (ACCENT_COLOR, "reconstruction")]
            if extra is not None:
                series_legend.insert(1, (self.theme.node_border, "noisy input"))
        latent_legend = self._show_latent(payload)
        self._set_legends(series_legend, latent_legend)
        error = float(np.mean((np.asarray(outputs) - np.asarray(inputs)) ** 2)) if np.size(inputs) else 0.0
        return f"{len(inputs)} validation samples · mean squared error {error:.3g}"

    def _show_latent(self, payload: dict[str, Any]) -> list[tuple[str, str]]:
        if payload.get("latent") is None:
            self.latent.clear()
            self.latent_box.setVisible(False)
            return []
        codes = finite(payload["latent"])
        codes = codes.reshape(len(codes), -1)
        x = codes[:, 0]
        y = codes[:, 1] if codes.shape[1] > 1 else np.zeros_like(x)
        labels = payload.get("latent_labels")
        entries: list[tuple[str, str]] = []
        if labels is not None and len(labels) == len(x):
            self.latent.setData(x=x, y=y, brush=class_brushes(labels))
            names = [str(n) for n in payload.get("class_names") or []]
            entries = [(class_color(c).name(), class_name(names, c)) for c in sorted(set(map(int, labels)))]
        else:
            self.latent.setData(x=x, y=y, brush=pg.mkBrush(class_color(0)))
        self.latent_box.setVisible(True)
        return entries

    def _set_legends(self, series: list[tuple[str, str]], latent: list[tuple[str, str]]) -> None:
        if (series, latent) == self._legends:
            return
        self._legends = (series, latent)
        for label, entries in ((self.series_legend, series), (self.latent_legend, latent)):
            label.setText(legend_html(entries, self.theme))
            label.setVisible(bool(entries))

    def clear(self) -> None:
        self.grid.clear()
        self.latent.clear()
        self.latent_box.setVisible(False)
        self._set_legends([], [])

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        self.grid.set_theme(theme)
        style_plot(self.latent_plot, theme)
        self._legends = ([], [])


class GanImagesPage(PredictionPage):
    """Samples from the generator for a fixed batch of noise (images or sparklines)."""

    title = "Generated samples"

    def __init__(self, theme: Theme = LIGHT, parent: QWidget | None = None) -> None:
        super().__init__(theme, parent)
        self.grid = TileGrid(theme)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.grid)

    def show_payload(self, payload: dict[str, Any]) -> str:
        if _is_image(payload, "samples"):
            images = as_images(payload["samples"])
            self.grid.set_tiles([Tile(image=q) for q in to_qimages(images, *display_range(images))])
            count = len(images)
        else:
            values = finite(payload["samples"])
            values = values.reshape(len(values), -1)
            self.grid.set_tiles([series_tile(v, color=ACCENT_COLOR) for v in values],
                                series_range=display_range(values))
            count = len(values)
        return f"{count} samples from a fixed noise batch"

    def clear(self) -> None:
        self.grid.clear()

    def set_theme(self, theme: Theme) -> None:
        super().set_theme(theme)
        self.grid.set_theme(theme)
