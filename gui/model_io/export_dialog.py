"""File > Export Model: write the model as ONNX, a torch.export program, safetensors or PyTorch source.

The dialog picks what to export (the project's current graph with its initial weights, or a
run's trained weights), the format and where to; the export and its self-check run in a
background thread (they import torch and may take seconds), and the result — every file
written and the largest difference between the original and the reloaded model — is shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from engine.graph.fileformat import dumps, loads
from engine.graph.project import Project
from engine.training.history import RunHistory
from gui.background import BackgroundCall
from gui.style import status_color
from gui.training.run_list import result_text

FORMATS = (("onnx", "ONNX (.onnx) — one file, dynamic batch, runs in onnxruntime"),
           ("pt2", "PyTorch 2 program (.pt2) — torch.export, reload with torch.export.load"),
           ("safetensors", "safetensors weights (.safetensors) + a copy of the project"),
           ("python", "PyTorch source folder — model.py, model.safetensors, train.py"))
SUFFIX = {"onnx": ".onnx", "pt2": ".pt2", "safetensors": ".safetensors", "python": ""}
INTRO = "Every export reloads what it wrote and compares its outputs with the app's."


#: The "Precision" choices: (key for ``--quantize``, or None; text).
PRECISIONS = ((None, "float32 (as trained)"),
              ("int8", "int8 — about 4x smaller (quantized, checked on the validation split)"),
              ("fp16", "fp16 — about 2x smaller (half precision, checked on the validation split)"))
#: What the quantizer's refusal says when the float model could be written instead.
_FALLBACK_HINT = "; add --float-fallback to write the float model instead"


def _export(source: Path | Project, fmt: str, out: Path, discriminator: bool, base_dir: Path | None,
            quantize: str | None = None, float_fallback: bool = False,
            progress: Callable[[str], None] | None = None) -> Any:
    """Run :func:`engine.compile.export.export_model` (in the background: it imports torch)."""
    from engine.compile.export import export_model

    return export_model(source, fmt, out, discriminator=discriminator, base_dir=base_dir, quantize=quantize,
                        float_fallback=float_fallback, progress=progress)


class ExportDialog(QDialog):
    """Choose source, format and destination; export and show the self-check.

    Args:
        project: The open project (its current graph).
        project_path: Its file, or ``None`` when untitled.
        runs: The project's runs, newest last (trained weights to export).
        is_gan: Offer the generator/discriminator choice.
        folder: Where the export is suggested (default: the project's folder, else the home folder).
    """

    def __init__(self, project: Project, project_path: Path | None, runs: list[RunHistory], is_gan: bool,
                 parent: QWidget | None = None, folder: Path | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Model")
        self.setMinimumWidth(620)
        self.project, self.project_path = project, project_path
        self.folder = folder or (project_path.parent if project_path is not None else Path.home())
        #: The file or folder of the last export that succeeded (the window remembers its folder).
        self.exported_to: Path | None = None
        self._target: Path | None = None
        self._confirmed: Path | None = None  # the file Browse's save dialog already asked to replace
        self.result: Any = None
        self.error = ""
        self.background = BackgroundCall(self)
        self.background.done.connect(self._on_done)
        self.background.progress.connect(self._on_progress)

        self.source = QComboBox()
        self.source.addItem("Current graph — initial weights (untrained)", None)
        for history in reversed(runs):
            if Path(history.run_dir, "project.json").is_file() and (Path(history.run_dir) / "model.safetensors"
                                                                       ).is_file():
                shown = f" · {result_text(history)}" if history.final_metric() else ""
                self.source.addItem(f"Run {history.name} — trained weights ({history.state}{shown})",
                                    history.run_dir)
        if self.source.count() > 1:
            self.source.setCurrentIndex(1)  # the newest trained run
        self.format = QComboBox()
        for key, text in FORMATS:
            self.format.addItem(text, key)
        self.format.currentIndexChanged.connect(self._suggest_path)
        self.format.currentIndexChanged.connect(self._reset_status)
        self.source.currentIndexChanged.connect(self._reset_status)
        self.precision = QComboBox()
        for key, text in PRECISIONS:
            self.precision.addItem(text, key)
        self.precision.currentIndexChanged.connect(self._reset_status)
        self._precision_choice = 0  # the person's choice while Precision does not apply
        self.format.currentIndexChanged.connect(self._update_precision)
        self.source.currentIndexChanged.connect(self._update_precision)
        self.is_gan = is_gan
        self.discriminator = QCheckBox("Export the discriminator instead of the generator")
        self.discriminator.setVisible(is_gan)
        self.out = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        where = QHBoxLayout()
        where.addWidget(self.out, 1)
        where.addWidget(browse)
        form = QFormLayout()
        form.addRow("Export", self.source)
        form.addRow("Format", self.format)
        form.addRow("Precision", self.precision)
        form.addRow("", self.discriminator)
        form.addRow("To", where)
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.hide()
        self.status = QLabel(INTRO)
        self.status.setWordWrap(True)
        self.report = QPlainTextEdit()
        self.report.setReadOnly(True)
        self.report.setMaximumHeight(170)
        self.report.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))  # the quantized table
        self.report.hide()
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.report)
        layout.addWidget(self.buttons)
        self._suggest_path()
        self._update_precision()
        self.out.textEdited.connect(self._reset_status)
        self.discriminator.toggled.connect(self._reset_status)

    # ---------------------------------------------------------------- inputs
    @property
    def chosen_format(self) -> str:
        """The format key (``onnx``, ``pt2``, ``safetensors``, ``python``)."""
        return str(self.format.currentData())

    @property
    def chosen_precision(self) -> str | None:
        """``int8``, ``fp16``, or ``None`` for the float model."""
        return self.precision.currentData() if self.precision.isEnabled() else None

    def _update_precision(self) -> None:
        """Smaller models are ONNX files of a trained run (their check needs its validation split)."""
        why = ("Quantized models are ONNX files: choose ONNX" if self.chosen_format != "onnx" else
               "Choose a trained run: a quantized model is checked by its accuracy on the run's validation split"
               if not self.source.currentData() else
               "A GAN has no validation metric to check a quantized copy by" if self.is_gan else "")
        if why and self.precision.isEnabled():  # shows float32 while it does not apply; the choice comes back
            self._precision_choice = self.precision.currentIndex()
            self.precision.setCurrentIndex(0)
        elif not why and not self.precision.isEnabled():
            self.precision.setCurrentIndex(self._precision_choice)
        self.precision.setEnabled(not why)
        self.precision.setToolTip(why or "int8: ONNX Runtime's quantization (calibrated on training samples for "
                                         "convolution networks); fp16: half-precision weights. The dialog reports "
                                         "file size, validation accuracy and latency, float against quantized.")

    def _suggest_path(self) -> None:
        folder = self.folder
        stem = self.project_path.stem if self.project_path is not None else \
            (self.project.name or "model").replace(" ", "_")
        fmt = self.chosen_format
        current = self.out.text().strip()
        if current:
            folder = Path(current).parent
        name = f"{stem}_pytorch" if fmt == "python" else f"{stem}{SUFFIX[fmt]}"
        self.out.setText(str(folder / name))

    def _browse(self) -> None:
        fmt = self.chosen_format
        if fmt == "python":
            chosen = QFileDialog.getExistingDirectory(self, "Export PyTorch source into folder",
                                                      str(Path(self.out.text()).parent))
            if chosen:
                self.out.setText(str(Path(chosen) / Path(self.out.text()).name))
        else:
            chosen, _ = QFileDialog.getSaveFileName(self, "Export Model", self.out.text(),
                                                    f"{fmt} files (*{SUFFIX[fmt]});;All files (*)")
            if chosen:
                self.out.setText(chosen)
                self._confirmed = Path(chosen)

    def _replaced(self, out: Path) -> list[Path]:
        """What exporting to ``out`` would overwrite: the files, or the python format's non-empty folder
        (a file that Browse's save dialog already confirmed is not asked about again)."""
        fmt = self.chosen_format
        if fmt == "python":
            return [out] if out.is_dir() and any(out.iterdir()) else []
        target = out / f"model{SUFFIX[fmt]}" if out.is_dir() else out  # as export_model resolves a folder
        written = [target, target.with_suffix(".json")] if fmt == "safetensors" else [target]  # + project copy
        return [path for path in written if path.exists() and path != self._confirmed]

    def _confirm_replace(self, out: Path) -> bool:
        """Ask before an export replaces what is already there; True means go ahead."""
        replaced = self._replaced(out)
        if not replaced:
            return True
        if self.chosen_format == "python":
            text = (f"The folder {out} already exists. The export writes model.py, model.safetensors and train.py "
                    "(with any data files train.py needs) into it, replacing files of the same names. Go ahead?")
        else:
            names = " and ".join(str(path) for path in replaced)
            text = f"{names} already exist{'s' if len(replaced) == 1 else ''}. Replace with this export?"
        answer = QMessageBox.question(self, "Replace existing export?", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        return answer == QMessageBox.StandardButton.Yes

    # ---------------------------------------------------------------- export
    def start(self) -> None:
        """Export in the background; the dialog stays responsive."""
        out_text = self.out.text().strip()
        if not out_text:
            self._show_error("Choose where to write the export.")
            return
        if not self._confirm_replace(Path(out_text)):
            return
        run_dir = self.source.currentData()
        # a frozen copy: the person may go on editing while the export runs
        source: Path | Project = Path(run_dir) if run_dir else loads(dumps(self.project), source="project")
        base_dir = self.project_path.parent if self.project_path is not None else None
        self.export_button.setEnabled(False)
        self.progress.show()
        self.status.setText(f"Exporting to {self.chosen_format} and checking the result…")
        self.status.setStyleSheet("")
        self.report.hide()
        fmt, discriminator, precision = self.chosen_format, self.discriminator.isChecked(), self.chosen_precision
        self._target = Path(out_text)
        self._last = (source, fmt, Path(out_text), discriminator, base_dir, precision)
        self.background.start_reporting(
            lambda report: _export(source, fmt, Path(out_text), discriminator, base_dir, precision, progress=report))

    def wait(self, msecs: int = 120_000) -> bool:
        """Block until the export finished and its result is shown (tests)."""
        return self.background.wait(msecs)

    def _on_progress(self, ticket: int, line: object) -> None:
        """A slow step of the running export (trying operator types in float): the status line says which."""
        if ticket == self.background.ticket and self.background.busy():
            self.status.setText(f"{line}…")

    def _on_done(self, ticket: int, result: Any, error: str) -> None:
        self.progress.hide()
        self.export_button.setEnabled(True)
        self.result, self.error = result, error
        if result is None:
            if _FALLBACK_HINT in error and self._offer_float(error.replace(_FALLBACK_HINT, "")):
                return
            self._show_error(error)
            return
        self.exported_to = self._target
        quantized = getattr(result, "quantized", None)
        if quantized is not None:
            smaller = quantized.float_bytes / max(quantized.quantized_bytes, 1)
            unit = "%" if quantized.metric == "accuracy" else ""
            self.status.setText(f"<b>Exported and checked</b>: {quantized.mode} model {smaller:.1f}x smaller; "
                                f"validation {quantized.metric} {quantized.quantized_metric:.4g}{unit} (float "
                                f"model: {quantized.float_metric:.4g}{unit})."
                                + (f" Kept in float: {', '.join(quantized.kept_float)} (ONNX Runtime cannot run "
                                   f"its {quantized.mode} form)." if quantized.kept_float else ""))
        else:
            self.status.setText(f"<b>Exported and checked</b>: largest difference {result.max_abs_diff:.1e} "
                                f"(tolerance {result.tolerance:.2g}) between the app's model and the reloaded "
                                f"{result.format} on the same inputs.")
        self.status.setStyleSheet(f"color: {status_color('ok')}")
        self.report.setPlainText(result.message)
        lines = min(result.message.count("\n") + 1, 9)  # a quantized export's table fits without scrolling
        self.report.setMaximumHeight(self.report.fontMetrics().lineSpacing() * lines + 16)
        self.report.setMinimumHeight(self.report.maximumHeight())
        self.report.show()
        self.adjustSize()

    def _offer_float(self, reason: str) -> bool:
        """The model cannot be quantized: ask whether to write the float model; True when it starts."""
        answer = QMessageBox.question(self, "Cannot quantize", f"{reason}.\n\nWrite the float model instead?",
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                                      QMessageBox.StandardButton.Cancel)
        if answer != QMessageBox.StandardButton.Yes:
            return False
        source, fmt, out, discriminator, base_dir, precision = self._last
        self.export_button.setEnabled(False)
        self.progress.show()
        self.status.setText("Writing the float model…")
        self.background.start_reporting(
            lambda report: _export(source, fmt, out, discriminator, base_dir, precision, True, progress=report))
        return True

    def _reset_status(self) -> None:
        """A new choice: the previous export's result no longer describes what Export would do."""
        if self.background.busy():
            return  # the running export reports when it is done
        self.result, self.error = None, ""
        self.status.setText(INTRO)
        self.status.setStyleSheet("")
        self.report.clear()
        self.report.setMinimumHeight(0)
        self.report.hide()
        self.adjustSize()  # no room left for the report that is gone

    def _show_error(self, message: str) -> None:
        self.status.setText(message)
        self.status.setStyleSheet(f"color: {status_color('error')}")
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
