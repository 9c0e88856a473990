"""The Data panel: choose a built-in dataset or import a file, preview it, check it fits the graph.

Options are generated from the dataset source's declared :class:`~engine.data.options.Option`
list (:mod:`gui.training.data_options`). Every change is an undoable edit of the project's
``dataset`` section. Loading runs in a thread pool (a CSV or an image folder can take a while), so
the window never waits; a newer request makes an older result stale. The preview (summary, images,
rows or text) comes from :mod:`gui.training.data_preview`. MNIST, Fashion-MNIST and CIFAR-10
whose files are missing get a download row (:mod:`gui.training.data_download`): progress, Cancel,
and the preview reloads when it is done. The Augmentation group (:mod:`gui.training.augment_group`)
edits ``dataset.augment`` and previews augmented samples without reloading the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import (
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from engine.data import DATASETS, DataError, check_input_fits, load_dataset
from engine.data.base import ArrayDataset
from engine.data.download import SOURCES as DOWNLOADABLE
from engine.data.download import default_folder, missing_files
from engine.data.options import Option
from engine.graph.gan import is_noise_input
from gui.background import BackgroundCall
from gui.training.augment_group import AugmentGroup
from gui.training.data_download import DownloadRow
from gui.training.data_options import option_editor, show_value
from gui.training.data_preview import escape_html, fill_table, first_images, summary_html, text_samples_html
from gui.document import Document
from gui.observers import DocumentLink
from gui.scroll_panel import fill_with_scroll
from gui.style import status_color
from gui.wheel_guard import guard_wheel, guard_wheel_in

GROUP_TITLES = {"built-in": "Built-in", "generated": "Generated", "file": "Your files"}
IMPORTS = (("CSV…", "csv", "CSV tables (*.csv *.tsv *.txt);;All files (*)"),
           ("Image folder…", "image_folder", ""),
           (".npz…", "npz", "NumPy archives (*.npz);;All files (*)"))
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


class DataPanel(QWidget):
    """Dataset choice, its options, a preview and the fit check against the Input node.

    Signals:
        fit_changed(str): ``""`` when the data fits the graph, else the message.
    """

    fit_changed = Signal(str)

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
        self.download_row = DownloadRow()
        self.download_row.button.clicked.connect(self.start_download)
        self.download_row.finished.connect(self._on_downloaded)
        self.download_button = self.download_row.button
        self.download_progress = self.download_row.progress
        self.download_cancel = self.download_row.cancel_button
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
        self._options_of: Any = None  # the source whose option editors are shown
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
        if info is not self._options_of:
            self._build_options(info)
        else:  # the same source: its editors show the new values (one may be the sender of this edit)
            for option, widget in zip(info.options if info is not None else (), self._option_widgets):
                show_value(widget, option, self.spec.get(option.name, option.default))
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
        """Editors for the options of source ``info`` (only when the source changes: an option's own
        edit must not delete the editor whose signal is still running)."""
        while self.options_form.rowCount():
            self.options_form.removeRow(0)
        self._option_widgets = []
        self._options_of = info
        if info is None:
            return
        for option in info.options:
            widget = option_editor(option, self.spec.get(option.name, option.default), self.set_option, self._browse)
            widget.setToolTip(option.help)
            guard_wheel_in(widget)
            self._option_widgets.append(widget)
            self.options_form.addRow(option.name.replace("_", " "), widget)

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
            self.summary.setText(f"<span style='color:{status_color('error')}'>{escape_html(error)}</span>")
            for widget in (self.images, self.table, self.text, self.augment):
                widget.hide()
        else:
            self.summary.setText(summary_html(dataset))
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
        return self.download_row.running

    def _update_download(self) -> None:
        folder = self.download_folder()
        show = self.downloading or (folder is not None and self.dataset is None
                                    and bool(missing_files(self.spec["name"], folder)))
        self.download_row.setVisible(show)
        if show and folder is not None:
            self.download_row.offer(self.spec["name"], folder)

    def start_download(self) -> None:
        """Download the chosen dataset's files in the background, with progress and Cancel."""
        folder = self.download_folder()
        if folder is None or self.downloading:
            return
        name = self.spec["name"]
        self.summary.setText(f"Downloading {escape_html(name)} into {escape_html(str(folder))}…")
        self.download_row.start(name, folder)

    def cancel_download(self) -> None:
        """Stop the running download after its current chunk (its partial file is kept)."""
        self.download_row.cancel()

    def _on_downloaded(self, folder: Path | None, error: str) -> None:
        self.download_button.setEnabled(self.document is None or self.document.read_only_reason is None)
        if error:
            self.summary.setText(f"<span style='color:{status_color('error')}'>{escape_html(error)}</span>")
            self._update_download()
        else:
            self.reload()

    def _show_preview(self, dataset: ArrayDataset) -> None:
        self.images.setVisible(dataset.image_shape is not None)
        self.text.setVisible(dataset.vocabulary is not None)
        self.table.setVisible(dataset.image_shape is None and dataset.vocabulary is None)
        if dataset.image_shape is not None:
            self.images.setPixmap(QPixmap.fromImage(first_images(dataset)))
        elif dataset.vocabulary is not None:
            self.text.setText(text_samples_html(dataset))
        else:
            fill_table(self.table, dataset)

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
            self.fit_label.setText(f"<span style='color:{status_color('error')}'>✗ {escape_html(message)}</span>")
        else:
            self.fit_label.setText(f"<span style='color:{status_color('ok')}'>✓ Fits Input node <b>{escape_html(target[0])}</b> "
                                   f"{escape_html(str(target[1]))}</span>")
        self.fit_changed.emit(message)


def _without_augment(spec: dict[str, Any]) -> dict[str, Any]:
    """The section as the data source reads it (augmentation changes no loaded data)."""
    return {key: value for key, value in spec.items() if key != "augment"}
