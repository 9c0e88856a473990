"""What ``predict`` found: one row per input, and its CSV, JSON and table forms.

:class:`Predictions` is made by :meth:`engine.training.predict.Predictor.predict`; this module only
formats it (no torch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.images import IMAGE_SUFFIXES
from engine.errors import UserError
from engine.training.evaluate import csv_cell, finite_json


@dataclass
class PredictionRow:
    """One input's prediction.

    Args:
        input: The input's name: the file, ``table.csv row 5``, ``x.npz[3]`` or the text.
        prediction: A class name or character (classifiers, language models), a value or a list of
            values in the data's units (regression, forecasting), the reconstruction error (autoencoders:
            the mean squared difference between the input and its reconstruction, in the data's units).
        confidence: The predicted class's probability (classifiers, language models), else ``None``.
        top_k: The ``k`` likeliest classes with their probabilities, likeliest first.
        true: The target the input carried (a CSV's target column, an ``.npz``'s ``y``), else ``None``.
    """

    input: str
    prediction: Any
    confidence: float | None = None
    top_k: list[tuple[str, float]] = field(default_factory=list)
    true: Any = None


@dataclass
class Predictions:
    """Every row :meth:`Predictor.predict` made, and the files it skipped.

    Args:
        run_dir: The run folder.
        task: The run's task.
        weights: Where the weights came from.
        rows: One per input sample, in input order.
        skipped: Files in input folders that are not images, and image files that cannot be read (each
            listed once).
    """

    run_dir: Path
    task: str
    weights: str
    rows: list[PredictionRow]
    skipped: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``run``, ``task``, ``weights``, ``skipped`` and ``rows`` (objects with ``input``,
        ``prediction``, ``confidence``, ``top_k`` (objects with ``class`` and ``probability``) and
        ``true`` when the input carried a target); non-finite numbers become ``null``."""
        rows = []
        for r in self.rows:
            row: dict[str, Any] = {"input": r.input, "prediction": finite_json(r.prediction), "confidence": r.confidence,
                                   "top_k": [{"class": name, "probability": p} for name, p in r.top_k]}
            if r.true is not None:
                row["true"] = finite_json(r.true)
            rows.append(row)
        return {"run": str(self.run_dir), "task": self.task, "weights": self.weights,
                "skipped": list(self.skipped), "rows": rows}

    def _columns(self) -> tuple[list[str], list[list[str]]]:
        k = max((len(r.top_k) for r in self.rows), default=0)
        truth = any(r.true is not None for r in self.rows)
        header = ["input", "prediction", "confidence"]
        header += [name for i in range(1, k + 1) for name in (f"top{i}", f"top{i}_probability")]
        header += ["true"] if truth else []
        table = []
        for r in self.rows:
            cells = [r.input, csv_cell(r.prediction), "" if r.confidence is None else f"{r.confidence:.6f}"]
            ranked = [c for name, p in r.top_k for c in (name, f"{p:.6f}")]
            cells += ranked + [""] * (2 * k - len(ranked))
            cells += [csv_cell(r.true) if r.true is not None else ""] if truth else []
            table.append(cells)
        return header, table

    def csv_text(self) -> str:
        """One CSV line per row: ``input,prediction,confidence`` then ``topN,topN_probability`` pairs and
        ``true`` when some input carried a target (several values in one cell are space-separated)."""
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        header, table = self._columns()
        writer.writerow(header)
        writer.writerows(table)
        return buffer.getvalue()

    def write_csv(self, path: Path) -> None:
        """Write :meth:`csv_text` to ``path`` atomically (a failure leaves no partial file).

        Raises:
            UserError: The file cannot be written.
        """
        from engine.fileio import atomic_write_bytes

        try:
            atomic_write_bytes(Path(path), self.csv_text().encode("utf-8"))
        except OSError as exc:
            raise UserError(f"{path}: cannot write the predictions ({exc.strerror or exc})") from None

    def table(self) -> str:
        """A readable table: input, prediction, confidence, top-k, true value."""
        what = "reconstruction error" if self.task == "autoencoder" else "prediction"
        lines = [(f"{self.run_dir}: {len(self.rows)} predictions, {self.task.replace('_', ' ')}, "
                  f"weights {self.weights}")]
        shown = _visible if self.task == "language_model" else str  # a predicted blank or newline shows
        cells = [[r.input, shown(csv_cell(r.prediction)), "" if r.confidence is None else f"{r.confidence:.3f}",
                  ", ".join(f"{shown(name)} {p:.3f}" for name, p in r.top_k), "" if r.true is None else csv_cell(r.true)]
                 for r in self.rows]
        header = ["input", what, "confidence", "top-k", "true"]
        used = [i for i in range(len(header)) if i < 2 or any(row[i] for row in cells)]
        widths = {i: max(len(header[i]), *(len(row[i]) for row in cells)) for i in used}
        for row in [header, *cells]:
            lines.append("  ".join(f"{row[i]:<{widths[i]}}" for i in used).rstrip())
        if self.skipped:
            lines.append(skipped_line(self.skipped))
        return "\n".join(lines)


def skipped_line(skipped: list[str]) -> str:
    """One line naming the files skipped because they are not images or cannot be read."""
    return (f"skipped {len(skipped)} file(s) that are not images ({', '.join(IMAGE_SUFFIXES)}) or cannot be read: "
            f"{', '.join(skipped)}")


def _visible(text: str) -> str:
    return repr(text) if not text.isprintable() or text.isspace() else text
