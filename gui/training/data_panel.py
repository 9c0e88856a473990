"""The Data panel: choose a built-in dataset or import a file, preview it, check it fits the graph.

Options are generated from the dataset source's declared :class:`~engine.data.options.Option`
list. Every change is an undoable edit of the project's ``dataset`` section. Loading runs in
a thread pool (a CSV or an image folder can take a while), so the window never waits; a
newer request makes an older result stale. MNIST, Fashion-MNIST and CIFAR-10 whose files are
missing get a Download button: the download runs in its own thread with a progress bar and a
Cancel button, and the preview reloads when it is done. The Augmentation group
(:mod:`gui.training.augment_group`) edits ``dataset.augment`` and previews augmented samples
without reloading the data.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import (
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine.data import DATASETS, DataError, check_input_fits, describe, load_dataset
from engine.data.base import ArrayDataset
from engine.data.download import SOURCES as DOWNLOADABLE
from engine.data.download import (
    Progress,
    default_folder,
    download_dataset,
    missing_files,
)
from engine.data.options import Option
from engine.graph.gan import is_noise_input
from gui.background import BackgroundCall
from gui.training.augment_group import AugmentGroup
from gui.document import Document
from gui.observers import DocumentLink
from gui.scroll_panel import fill_with_scroll
from gui.style import status_color
from gui.wheel_guard import guard_wheel, guard_wheel_in

GROUP_TITLES = {"built-in": "Built-in", "generated": "Generated", "file": "Your files"}
PREVIEW_IMAGES = 32
PREVIEW_ROWS = 40
PREVIEW_COLUMNS = 40
IMPORTS = (("CSV…", "csv", "CSV tables (*.csv *.tsv *.txt);;All files (*)"),
           ("Image folder…", "image_folder", ""),
           (".npz…", "npz", "NumPy archives (*.npz);;All files (*)"))
TEXT_SAMPLES = 6
NO_DATASET = ("No dataset yet: choose a built-in one above, or import your own CSV table, image folder "
              "or .npz file.")


def data_input(document: Document) -> tuple[str, Any] | None:
    """The Input node that receives the data (GANs' noise inputs excluded) and its tensor."""
    analysis = document.model_analysis
    for node in document.project.graph:
        if node.layer.role == "input" and not is_noise_input(node) and node.id in analysis.in_model:
            info = analysis.nodes.get(node.id)
            return (node.id, info.output) if info is not None and info.output is not None else None
    return None


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


class DataPanel(QWidget):
    """Dataset choice, its options, a preview and the fit check against the Input node.

    Signals:
        fit_changed(str): ``""`` when the data fits the graph, else the message.
    """

    fit_changed = Signal(str)
    _download_progressed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.document: Document | None = None
        self.dataset: ArrayDataset | None = None
        self.fit_message = ""
        self.load_error = ""
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_loaded)
        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(250)
        self._reload.timeout.connect(self.reload)

        self.source = QComboBox()
        for group, title in GROUP_TITLES.items():
            for info in DATASETS.values():
                if info.group == group:
                    self.source.addItem(f"{info.name}  ·  {title}", info.name)
        self.source.setToolTip("Where the training data comes from")
        self.source.setPlaceholderText("Choose a dataset…")
        self.source.activated.connect(lambda index: self._choose(self.source.itemData(index)))
        guard_wheel(self.source)
        self.description = QLabel()
        self.description.setWordWrap(True)
        self.options_form = QFormLayout()
        self.options_form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        imports = QHBoxLayout()
        imports.addWidget(QLabel("Import:"))
        for text, name, pattern in IMPORTS:
            button = QPushButton(text)
            button.setToolTip(f"Train on your own data: {DATASETS[name].description}")
            button.clicked.connect(lambda checked=False, n=name, p=pattern: self.import_dialog(n, p))
            imports.addWidget(button)
        self.downloader = BackgroundCall(self)
        self.downloader.done.connect(self._on_downloaded)
        self._download_stop = threading.Event()
        self._downloading = False
        self.destroyed.connect(self._download_stop.set)  # a closing window does not wait for the download
        self._download_progressed.connect(self._show_download_progress)
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.start_download)
        self.download_progress = QProgressBar()
        self.download_progress.setTextVisible(True)
        self.download_cancel = QPushButton("Cancel")
        self.download_cancel.setToolTip("Stop the download; the next Download continues where it stopped")
        self.download_cancel.clicked.connect(self.cancel_download)
        self.download_row = QWidget()
        download_layout = QHBoxLayout(self.download_row)
        download_layout.setContentsMargins(0, 0, 0, 0)
        download_layout.addWidget(self.download_button)
        download_layout.addWidget(self.download_progress, 1)
        download_layout.addWidget(self.download_cancel)
        self.download_row.hide()
        self.summary = QLabel("Loading…")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.fit_label = QLabel()
        self.fit_label.setWordWrap(True)
        self.images = QLabel()
        self.images.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.table = QTableWidget()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setMinimumHeight(160)
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.text.setStyleSheet("font-family: monospace")
        self.augment = AugmentGroup()
        self.augment.edited.connect(self._push_augment)
        self.augment.hide()
        self._requested: dict[str, Any] | None = None  # the section (without augment) last loaded

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.source)
        layout.addWidget(self.description)
        layout.addLayout(self.options_form)
        layout.addLayout(imports)
        layout.addWidget(self.fit_label)
        layout.addWidget(self.download_row)
        layout.addWidget(self.summary)
        layout.addWidget(self.images)
        layout.addWidget(self.table)
        layout.addWidget(self.text)
        layout.addWidget(self.augment)
        layout.addStretch(1)
        fill_with_scroll(self, body)
        self._option_widgets: list[QWidget] = []
        self._link = DocumentLink(settings_changed=self._on_settings, analysis_changed=self._on_analysis,
                                  read_only_changed=self._on_read_only)

    # -------------------------------------------------------------- document
    def set_document(self, document: Document) -> None:
        """Follow ``document``'s dataset section and graph."""
        self.document = self._link.follow(document)
        self._on_settings()
        self._on_read_only(document.read_only_reason)

    @property
    def spec(self) -> dict[str, Any]:
        """The project's dataset section."""
        return self.document.project.dataset if self.document is not None else {}

    def _base_dir(self) -> Path | None:
        doc = self.document
        return doc.path.parent if doc is not None and doc.path is not None else None

    def _on_settings(self) -> None:
        name = self.spec.get("name")
        index = self.source.findData(name)
        self.source.setCurrentIndex(index)
        info = DATASETS.get(name) if isinstance(name, str) else None
        self.description.setText(info.description if info else NO_DATASET if name is None else
                                 f"Unknown dataset {name!r}: choose another one above.")
        self._build_options(info)
        self._update_download()
        if info is None:  # nothing to load: the description says what to do (once)
            self._reload.stop()
            self.background.cancel()  # a pending load's result is stale now
            self._show_nothing()
        elif not self._reload.isActive() and self._requested == _without_augment(self.spec):
            self.augment.show_for(self.dataset, self.spec.get("augment"))  # the data is the same: no reload
        else:
            self._reload.start()

    def _on_read_only(self, reason: str | None) -> None:
        for widget in (self.source, *self._option_widgets, *self.findChildren(QPushButton)):
            widget.setEnabled(reason is None)
            widget.setToolTip(reason or widget.toolTip())
        self.augment.set_editable(reason)

    # --------------------------------------------------------------- options
    def _build_options(self, info: Any) -> None:
        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self._option_widgets = []
        if info is None:
            return
        for option in info.options:
            widget = self._option_editor(option, self.spec.get(option.name, option.default))
            widget.setToolTip(option.help)
            guard_wheel_in(widget)
            self._option_widgets.append(widget)
            self.options_form.addRow(option.name.replace("_", " "), widget)

    def _option_editor(self, option: Option, value: Any) -> QWidget:
        if option.kind == "int":
            spin = QSpinBox()
            spin.setRange(int(option.minimum if option.minimum is not None else 0),
                          int(min(option.maximum if option.maximum is not None else 2**31 - 1, 2**31 - 1)))
            spin.setValue(int(value) if value is not None else spin.minimum())
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda v, o=option: self.set_option(o.name, int(v)))
            return spin
        if option.kind == "float":
            box = QDoubleSpinBox()
            box.setDecimals(3)
            box.setRange(option.minimum or 0.0, min(option.maximum or 1e6, 1e6))
            box.setValue(float(value) if value is not None else 0.0)
            box.setKeyboardTracking(False)
            box.valueChanged.connect(lambda v, o=option: self.set_option(o.name, float(v)))
            return box
        if option.kind == "choice":
            combo = QComboBox()
            if not option.required and option.default is None:
                combo.addItem("(automatic)", None)
            for choice in option.choices:
                combo.addItem(repr(choice)[1:-1] if choice == "\t" else choice, choice)
            combo.setCurrentIndex(max(0, combo.findData(value)))
            combo.activated.connect(lambda i, o=option, c=combo: self.set_option(o.name, c.itemData(i)))
            return combo
        if option.kind == "size":
            row = QWidget()
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 0, 0, 0)
            spins = []
            for v in (value or option.default):
                spin = QSpinBox()
                spin.setRange(int(option.minimum or 1), int(option.maximum or 4096))
                spin.setValue(int(v))
                spin.setKeyboardTracking(False)
                spins.append(spin)
                layout.addWidget(spin)
            for spin in spins:
                spin.valueChanged.connect(lambda v, o=option, s=spins: self.set_option(o.name, [x.value() for x in s]))
            return row
        edit = QLineEdit("" if value is None else str(value))
        edit.setPlaceholderText("(automatic)" if not option.required else "required")
        edit.editingFinished.connect(lambda o=option, e=edit: self.set_option(o.name, e.text().strip() or None))
        if option.kind in ("file", "folder"):
            row = QWidget()
            layout = QHBoxLayout(row)
            layout.setContentsMargins(0, 0, 0, 0)
            browse = QPushButton("…")
            browse.setFixedWidth(28)
            browse.clicked.connect(lambda checked=False, o=option: self._browse(o))
            layout.addWidget(edit, 1)
            layout.addWidget(browse)
            return row
        return edit

    def _browse(self, option: Option) -> None:
        start = str(self._base_dir() or Path.cwd())
        if option.kind == "folder":
            chosen = QFileDialog.getExistingDirectory(self, f"Choose {option.name}", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, f"Choose {option.name}", start)
        if chosen:
            self.set_option(option.name, self._stored_path(Path(chosen)))

    def _stored_path(self, path: Path) -> str:
        """Relative to the project's folder when inside it (the project stays portable)."""
        base = self._base_dir()
        if base is not None:
            try:
                return path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                pass
        return str(path)

    # ----------------------------------------------------------------- edits
    def _push(self, changes: dict[str, Any], text: str) -> None:
        document = self.document
        if document is not None and not document.push(document.settings_command("dataset", changes, text)):
            self._on_settings()  # refused (training): show the stored values again

    def _push_augment(self, section: dict[str, Any] | None, text: str, name: str) -> None:
        """One undoable edit of ``dataset.augment``; repeated edits of one option merge, of two do not."""
        document = self.document
        if document is None:
            return
        command = document.settings_command("dataset", {"augment": section}, text)
        command.merge_key = (id(document.project.dataset), "augment", name)
        if not document.push(command):
            self._on_settings()

    def _choose(self, name: str) -> None:
        """Switch to another source (its options start from their defaults)."""
        if name == self.spec.get("name"):
            return
        changes: dict[str, Any] = {key: None for key in self.spec}
        changes["name"] = name
        self._push(changes, f"Use dataset {name}")

    def set_option(self, name: str, value: Any) -> None:
        """Set one option of the current source (``None`` resets it)."""
        if self.spec.get(name) != value:
            self._push({name: value}, f"Set dataset.{name}")

    def import_dialog(self, source: str, pattern: str) -> None:
        """Ask for a file or folder and use it as the dataset."""
        start = str(self._base_dir() or Path.cwd())
        if source == "image_folder":
            chosen = QFileDialog.getExistingDirectory(self, "Import Image Folder (one subfolder per class)", start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, f"Import {source.upper()}", start, pattern)
        if chosen:
            self.use_file(source, Path(chosen))

    def use_file(self, source: str, path: Path) -> None:
        """Train on ``path`` read by ``source`` (``csv``, ``image_folder``, ``npz``)."""
        changes: dict[str, Any] = {key: None for key in self.spec}
        changes.update(name=source, path=self._stored_path(path))
        self._push(changes, f"Import {path.name}")

    # --------------------------------------------------------------- preview
    def reload(self) -> None:
        """Load the dataset again in the background (the newest request wins)."""
        self.summary.setText("Loading…")
        spec, base_dir = dict(self.spec), self._base_dir()
        self._requested = _without_augment(spec)
        self.background.start(lambda: load_dataset(spec, base_dir))

    @property
    def loading(self) -> bool:
        """Whether a load is pending or running (its fit check is not known yet)."""
        return self._reload.isActive() or self.background.busy()

    def wait_loaded(self, msecs: int = 10_000) -> bool:
        """Block until the newest load has finished and been shown (before training starts).

        Returns False when it did not finish within ``msecs`` (the worker checks the data again).
        """
        if self._reload.isActive():
            self._reload.stop()
            self.reload()
        return self.background.wait(msecs)

    def _show_nothing(self) -> None:
        self.dataset, self.load_error = None, ""
        self.summary.setText("")
        for widget in (self.images, self.table, self.text, self.augment):
            widget.hide()
        self._check_fit()

    def _on_loaded(self, ticket: int, dataset: ArrayDataset | None, error: str) -> None:
        if ticket != self.background.ticket:
            return  # a newer request is on its way
        self.dataset, self.load_error = dataset, error
        if dataset is None:
            self.summary.setText(f"<span style='color:{status_color('error')}'>{_escape(error)}</span>")
            for widget in (self.images, self.table, self.text, self.augment):
                widget.hide()
        else:
            self._show_summary(dataset)
            self._show_preview(dataset)
            self.augment.show_for(dataset, self.spec.get("augment"))
        self._update_download()
        self._check_fit()

    # -------------------------------------------------------------- download
    def download_folder(self) -> Path | None:
        """Where the chosen downloadable dataset's files go (its ``path``, else the default folder)."""
        name = self.spec.get("name")
        if name not in DOWNLOADABLE:
            return None
        path = self.spec.get("path")
        if isinstance(path, str) and path.strip():
            folder = Path(path.strip()).expanduser()
            return folder if folder.is_absolute() else (self._base_dir() or Path.cwd()) / folder
        return default_folder(name)

    @property
    def downloading(self) -> bool:
        """Whether a download is running (until its result has been shown)."""
        return self._downloading

    def _update_download(self) -> None:
        folder = self.download_folder()
        show = self.downloading or (folder is not None and self.dataset is None
                                    and bool(missing_files(self.spec["name"], folder)))
        self.download_row.setVisible(show)
        if show and not self.downloading:
            self.download_button.setToolTip(f"Download {self.spec['name']} from "
                                            f"{DOWNLOADABLE[self.spec['name']].mirrors[0]} into {folder}")
            self.download_progress.hide()
            self.download_cancel.hide()

    def start_download(self) -> None:
        """Download the chosen dataset's files in the background, with progress and Cancel."""
        folder = self.download_folder()
        if folder is None or self.downloading:
            return
        name = self.spec["name"]
        stop, emit, last = self._download_stop, self._download_progressed.emit, [0.0]
        stop.clear()

        def report(progress: Progress) -> None:  # worker thread: at most ~10 updates a second
            now = time.monotonic()
            if now - last[0] >= 0.1 or progress.done == progress.total:
                last[0] = now
                emit(progress)

        self._downloading = True
        self.download_button.setEnabled(False)
        self.download_progress.setRange(0, 0)
        self.download_progress.setFormat("connecting…")
        self.download_progress.show()
        self.download_cancel.setEnabled(True)
        self.download_cancel.show()
        self.summary.setText(f"Downloading {_escape(name)} into {_escape(str(folder))}…")
        self.downloader.start(lambda: download_dataset(name, folder, progress=report, cancelled=stop.is_set))

    def cancel_download(self) -> None:
        """Stop the running download after its current chunk (its partial file is kept)."""
        self._download_stop.set()
        self.download_cancel.setEnabled(False)

    def _show_download_progress(self, progress: Progress) -> None:
        bar = self.download_progress
        total = progress.total
        if total:
            bar.setRange(0, max(1, total // 1024))  # KiB: a QProgressBar counts in 32-bit ints
            bar.setValue(min(progress.done, total) // 1024)
        else:
            bar.setRange(0, 0)
        size = f"{_megabytes(progress.done)} of {_megabytes(total)}" if total else _megabytes(progress.done)
        bar.setFormat(f"{progress.index}/{progress.count} · {size}" if progress.count > 1 else size)
        bar.setToolTip(progress.file)

    def _on_downloaded(self, ticket: int, folder: Path | None, error: str) -> None:
        self._downloading = False
        self.download_button.setEnabled(self.document is None or self.document.read_only_reason is None)
        self.download_progress.hide()
        self.download_cancel.hide()
        if error:
            self.summary.setText(f"<span style='color:{status_color('error')}'>{_escape(error)}</span>")
            self._update_download()
        else:
            self.reload()

    def _show_summary(self, dataset: ArrayDataset) -> None:
        info = describe(dataset)
        lines = [f"<b>{info['samples']:,}</b> samples · input {tuple(info['input_shape'])} "
                 f"{info['input_dtype']} · target {info['target_kind']}"]
        if info["class_counts"]:
            counts = ", ".join(f"{_escape(str(k))}: {v}" for k, v in info["class_counts"].items())
            lines.append(f"{info['num_classes']} classes — {counts}")
        if info["vocabulary_size"]:
            lines.append(f"vocabulary of {info['vocabulary_size']} tokens")
        lines += [_escape(info["description"])] if info.get("storage") or info.get("skipped") else []
        if info.get("storage") and str(info["storage"]) not in info["description"]:  # where the data lives, why
            lines.append(f"<i>{_escape(str(info['storage'])[:1].upper() + str(info['storage'])[1:])}</i>")
        self.summary.setText("<br>".join(lines))

    def _show_preview(self, dataset: ArrayDataset) -> None:
        x = dataset.x
        self.images.setVisible(dataset.image_shape is not None)
        self.text.setVisible(dataset.vocabulary is not None)
        self.table.setVisible(dataset.image_shape is None and dataset.vocabulary is None)
        if dataset.image_shape is not None:
            count = min(PREVIEW_IMAGES, len(x))
            images = x[:count].reshape(count, *dataset.image_shape)
            scale = max(1, 28 // dataset.image_shape[1])
            self.images.setPixmap(QPixmap.fromImage(image_mosaic(images, 8, scale)))
        elif dataset.vocabulary is not None:
            vocab = dataset.vocabulary
            picks = np.linspace(0, len(x) - 1, min(TEXT_SAMPLES, len(x))).astype(int)
            lines = ["".join(vocab[int(t)] for t in x[i][:120]).replace("\n", "⏎") for i in picks]
            self.text.setText("<br>".join(f"<span style='color:#6E7781'>#{i}</span> {_escape(line)}"
                                          for i, line in zip(picks, lines)))
        else:
            self._fill_table(dataset)

    def _fill_table(self, dataset: ArrayDataset) -> None:
        count = min(PREVIEW_ROWS, len(dataset))
        x = np.asarray(dataset.x[:count]).reshape(count, -1)  # the first rows only: x may be streamed from disk
        width = min(x.shape[1], PREVIEW_COLUMNS)
        names = input_labels(dataset)[:width]
        targets = target_labels(dataset)
        self.table.setColumnCount(width + len(targets))
        self.table.setRowCount(count)
        self.table.setHorizontalHeaderLabels([*names, *targets])
        for column, name in enumerate([*names, *targets]):
            self.table.horizontalHeaderItem(column).setToolTip(_column_tip(dataset, name, column >= width))
        for row in range(count):
            for col in range(width):
                self.table.setItem(row, col, QTableWidgetItem(f"{x[row, col]:.4g}"))
            if targets:
                y = dataset.y[row]  # type: ignore[index]
                if dataset.target_kind == "classes":
                    values = [dataset.class_names[int(y)] if dataset.class_names else str(int(y))]
                else:
                    values = [f"{v:.4g}" for v in np.ravel(y)][:len(targets)]
                for offset, text in enumerate(values):
                    self.table.setItem(row, width + offset, QTableWidgetItem(text))
        self.table.resizeColumnsToContents()

    # ------------------------------------------------------------------- fit
    def _on_analysis(self, analysis: object) -> None:
        self._check_fit()

    def _check_fit(self) -> None:
        """Does the data fit the Input node? The message names both shapes and the fix."""
        message = ""
        target = data_input(self.document) if self.document is not None else None
        if self.dataset is None:
            message = self.load_error or ""
        elif target is None:
            message = "The graph has no Input node with a known shape to feed this data into."
        else:
            try:
                check_input_fits(self.dataset, target[0], target[1])
            except DataError as exc:
                message = str(exc)
        self.fit_message = message
        if self.dataset is None:  # no data, or the summary already shows why it cannot be loaded
            self.fit_label.setText("")
        elif message:
            self.fit_label.setText(f"<span style='color:{status_color('error')}'>✗ {_escape(message)}</span>")
        else:
            self.fit_label.setText(f"<span style='color:{status_color('ok')}'>✓ Fits Input node <b>{_escape(target[0])}</b> "
                                   f"{_escape(str(target[1]))}</span>")
        self.fit_changed.emit(message)


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


def _without_augment(spec: dict[str, Any]) -> dict[str, Any]:
    """The section as the data source reads it (augmentation changes no loaded data)."""
    return {key: value for key, value in spec.items() if key != "augment"}


def _megabytes(count: int) -> str:
    return f"{count / 1e6:.1f} MB"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
