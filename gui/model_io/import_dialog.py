"""File > Import Model: a PyTorch nn.Module (traced with torch.fx) or an ONNX file onto the canvas.

The import runs in a background thread. It either maps every layer and operation, checks
that the imported graph computes what the original does, and writes a project file with
its weights beside it (``name.json`` + ``name.safetensors``), which the window then opens;
or it lists everything it could not map and writes nothing.

Importing a PyTorch class runs that Python file, as ``python -c "import ..."`` would: the
person chooses the file. Opening a project file never runs code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, ClassVar

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QCheckBox,
    QVBoxLayout,
    QWidget,
)

from gui.background import BackgroundCall
from gui.style import status_color


def _import(kind: str, values: dict[str, Any], out: Path) -> tuple[Path, float, str]:
    """Import, save the project and its weights (in the background); ``(path, difference, what was made)``."""
    from engine.compile.importers import import_onnx, import_torch_module, save_imported
    from engine.graph.flatten import flatten

    flat = not values.get("blocks", True)
    if kind == "onnx":
        result = import_onnx(values["path"], flat=flat)
    else:
        folder = str(Path(values["file"]).parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        result = import_torch_module(f"{Path(values['file']).stem}:{values['class']}", values["args"],
                                     values["shape"], flat=flat)
    save_imported(result.project, result.weights, out)
    project = result.project
    layers = len(flatten(project.graph, project.blocks).graph) if project.blocks else len(project.graph)
    made = f"{layers} layers"
    if project.blocks:
        made += (f" as {len(project.graph)} top-level nodes and {len(project.blocks)} block definition"
                 f"{'s' if len(project.blocks) != 1 else ''}")
    return out, result.max_abs_diff, made


def parse_shape(text: str) -> tuple[int, ...] | list[tuple[int, ...]] | None:
    """``"1, 28, 28"`` -> ``(1, 28, 28)``; ``"7; 5"`` (one shape per argument of ``forward``, separated
    by ``;``) -> ``[(7,), (5,)]``; empty -> ``None``.

    Raises:
        ValueError: Not a list of positive whole numbers.
    """
    parts = [part.strip().strip("()[]") for part in text.split(";")]
    if not any(parts):
        return None
    shapes = []
    for part in parts:
        dims = tuple(int(size) for size in part.replace("x", ",").split(",") if size.strip())
        if not dims or any(d <= 0 for d in dims):
            raise ValueError("the input shape must be positive whole numbers, e.g. 1, 28, 28 (one shape per "
                             "argument of forward, separated by ;)")
        shapes.append(dims)
    return shapes[0] if len(shapes) == 1 else shapes


def _note(text: str) -> QLabel:
    """A line of explanation under the fields: wrapped to the dialog's width, never cut off."""
    label = QLabel(text)
    label.setWordWrap(True)
    return label


class ImportDialog(QDialog):
    """Two tabs (PyTorch module, ONNX file) and where to save the imported project.

    What was typed in the fields (and the tab) is there again the next time the dialog opens
    in the same session.
    """

    #: The remembered fields and their text, plus ``"tab"`` (kept for the session, class-wide).
    REMEMBERED = ("py_file", "class_name", "args", "shape", "onnx_file")
    remembered: ClassVar[dict[str, str | int]] = {}

    def __init__(self, start_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import Model")
        self.setMinimumWidth(600)
        self.start_dir = start_dir
        self.imported: Path | None = None
        self.error = ""
        self._confirmed: Path | None = None  # the project file Browse's save dialog already asked to replace
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)

        self.tabs = QTabWidget()
        torch_page = QWidget()
        form = QFormLayout(torch_page)
        self.py_file = QLineEdit()
        self.py_file.setPlaceholderText("models.py")
        form.addRow("Python file", self._with_browse(self.py_file, self._browse_python))
        self.class_name = QLineEdit()
        self.class_name.setPlaceholderText("LeNet")
        form.addRow("Class", self.class_name)
        self.args = QLineEdit()
        self.args.setPlaceholderText('constructor arguments as JSON, e.g. [10] or {"classes": 10}')
        form.addRow("Arguments", self.args)
        self.shape = QLineEdit()
        self.shape.setPlaceholderText("per-sample input shape, e.g. 1, 28, 28 (optional when the model says); "
                                      "several arguments: 7; 5")
        # its example reads in full (the wrapped notes below no longer widen the dialog)
        self.shape.setMinimumWidth(self.shape.fontMetrics().horizontalAdvance(self.shape.placeholderText()) + 16)
        form.addRow("Input shape", self.shape)
        form.addRow(_note("The class is traced with torch.fx; its layers must be ones the palette has."))
        onnx_page = QWidget()
        form = QFormLayout(onnx_page)
        self.onnx_file = QLineEdit()
        self.onnx_file.setPlaceholderText("model.onnx")
        form.addRow("ONNX file", self._with_browse(self.onnx_file, self._browse_onnx))
        # a typed path suggests where to save, as a browsed one does
        for source in (self.py_file, self.onnx_file):
            source.editingFinished.connect(lambda edit=source: self._suggest_from(edit))
        form.addRow(_note("Supported: what torch.onnx.export writes for the palette's layers — Gemm/MatMul+Add, "
                          "Conv, ConvTranspose, pooling, normalization, activations, Flatten/Reshape, Add, "
                          "Concat, Mul, self-attention, LSTM/GRU. Anything else is listed and nothing is written."))
        self.tabs.addTab(torch_page, "PyTorch module")
        self.tabs.addTab(onnx_page, "ONNX file")
        self.out = QLineEdit()
        self.out.setPlaceholderText("where the imported project is saved (weights go beside it)")
        save_row = QFormLayout()
        save_row.addRow("Save as", self._with_browse(self.out, self._browse_out))
        self.blocks = QCheckBox("Keep the module hierarchy as blocks")
        self.blocks.setChecked(bool(self.remembered.get("blocks", True)))
        self.blocks.setToolTip("Each sub-module with several layers becomes a block (identical ones share a "
                               "definition), so a deep network reads like its paper's figure; off: every layer "
                               "on one level")
        save_row.addRow("", self.blocks)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = buttons.addButton("Import", QDialogButtonBox.ButtonRole.ActionRole)
        self.import_button.setDefault(True)
        self.import_button.clicked.connect(self.start)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        layout.addLayout(save_row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(buttons)
        self._restore_fields()

    def _restore_fields(self) -> None:
        """What was typed last time; Save as is suggested from the file as if it were typed."""
        for name in self.REMEMBERED:
            getattr(self, name).setText(str(self.remembered.get(name, "")))
        self.tabs.setCurrentIndex(int(self.remembered.get("tab", 0)))
        self._suggest_from(self.onnx_file if self.tabs.currentIndex() == 1 else self.py_file)

    def done(self, result: int) -> None:
        """Close (Import, Cancel, Esc or the title bar) remembering the fields for the next opening."""
        type(self).remembered = {**{name: getattr(self, name).text() for name in self.REMEMBERED},
                                 "tab": self.tabs.currentIndex(), "blocks": self.blocks.isChecked()}
        super().done(result)

    @staticmethod
    def _with_browse(edit: QLineEdit, handler: Any) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        button = QPushButton("Browse…")
        button.clicked.connect(handler)
        layout.addWidget(edit, 1)
        layout.addWidget(button)
        return row

    def _browse_python(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Python file with the model", str(self.start_dir),
                                                "Python files (*.py)")
        if chosen:
            self.py_file.setText(chosen)
            self._suggest_out(Path(chosen))

    def _browse_onnx(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "ONNX model", str(self.start_dir), "ONNX files (*.onnx)")
        if chosen:
            self.onnx_file.setText(chosen)
            self._suggest_out(Path(chosen))

    def _browse_out(self) -> None:
        chosen, _ = QFileDialog.getSaveFileName(self, "Save imported project", self.out.text() or
                                                str(self.start_dir), "Neural Canvas projects (*.json)")
        if chosen:
            self.out.setText(chosen)
            self._confirmed = Path(chosen).with_suffix(".json")  # the save dialog asked about replacing it

    def _suggest_from(self, edit: QLineEdit) -> None:
        text = edit.text().strip()
        if text and Path(text).is_file():
            self._suggest_out(Path(text))

    def _suggest_out(self, source: Path) -> None:
        if not self.out.text().strip():
            self.out.setText(str(source.with_name(f"{source.stem}_imported.json")))

    # ----------------------------------------------------------------- import
    def start(self) -> bool:
        """Check the fields and import in the background; False (with a message) when a field is wrong."""
        try:
            kind, values = self._values()
        except ValueError as exc:
            self._show_error(str(exc))
            return False
        out = Path(self.out.text().strip()).with_suffix(".json")
        if not self._confirm_replace(out):
            return False
        self.import_button.setEnabled(False)
        self.progress.show()
        self.status.setStyleSheet("")
        self.status.setText("Importing and checking the imported graph against the original…")
        self.background.start(lambda: _import(kind, values, out))
        return True

    def _confirm_replace(self, out: Path) -> bool:
        """Ask before the import replaces a project (or its weights) already there; True means go ahead
        (a file the Browse dialog already asked about is not asked about again)."""
        replaced = [path for path in (out, out.with_suffix(".safetensors")) if path.exists()]
        if not replaced or out == self._confirmed:
            return True
        names = " and ".join(path.name for path in replaced)
        answer = QMessageBox.question(
            self, "Replace existing project?",
            f"{names} already exist{'s' if len(replaced) == 1 else ''} in {out.parent}. Replace with the import?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    def _values(self) -> tuple[str, dict[str, Any]]:
        if not self.out.text().strip():
            raise ValueError("Choose where to save the imported project.")
        if self.tabs.currentIndex() == 1:
            path = Path(self.onnx_file.text().strip())
            if not path.is_file():
                raise ValueError(f"ONNX file: {path} does not exist.")
            return "onnx", {"path": path, "blocks": self.blocks.isChecked()}
        file = Path(self.py_file.text().strip())
        if not file.is_file() or file.suffix != ".py":
            raise ValueError(f"Python file: {file} is not a .py file.")
        class_name = self.class_name.text().strip()
        if not class_name.isidentifier():
            raise ValueError("Class: give the name of the nn.Module class, e.g. LeNet.")
        args_text = self.args.text().strip()
        try:
            args = json.loads(args_text) if args_text else None
        except ValueError as exc:
            raise ValueError(f"Arguments: not JSON ({exc}).") from None
        if args is not None and not isinstance(args, (list, dict)):
            raise ValueError("Arguments: a JSON list (positional) or object (keywords).")
        return "torch", {"file": file, "class": class_name, "args": args, "shape": parse_shape(self.shape.text()),
                         "blocks": self.blocks.isChecked()}

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the import finished and its result is shown (tests)."""
        return self.background.wait(msecs)

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        self.progress.hide()
        self.import_button.setEnabled(True)
        if result is None:
            self.error = error
            self._show_error(error)
            return
        self.imported, diff, made = result
        self.status.setStyleSheet(f"color: {status_color('ok')}")
        self.status.setText(f"Imported {made}; the imported graph matches the original within {diff:.1e}.")
        self.accept()

    def _show_error(self, message: str) -> None:
        self.status.setStyleSheet(f"color: {status_color('error')}")
        self.status.setText(message)
