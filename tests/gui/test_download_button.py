"""The Data panel offers MNIST's download when its files are missing, shows progress, can be
cancelled, and shows the data when the download is done (a local server, never the internet)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from engine.data import download
from engine.graph.fileformat import load_project
from engine.templates import default_template
from gui.document import Document
from gui.training.data_panel import DataPanel
from tests.download_server import FileServer, mnist_files, serve_sources


def test_download_button_cancels_resumes_and_reloads_the_preview(qtbot, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.DATASETS_DIR_ENV, str(tmp_path / "datasets"))
    server = FileServer()
    try:
        files, labels = mnist_files()
        serve_sources(monkeypatch, server, "mnist", files)
        project = load_project(default_template())
        project.dataset = {"name": "mnist"}
        panel = DataPanel()
        qtbot.addWidget(panel)
        panel.set_document(Document(project))
        assert panel.wait_loaded()
        assert panel.dataset is None and "python main.py download mnist" in panel.load_error
        assert panel.download_row.isVisibleTo(panel) and panel.download_button.isEnabled()
        assert str(tmp_path / "datasets" / "mnist") in panel.download_button.toolTip()

        server.gate.clear()  # the server holds the first request until the test has pressed Cancel
        qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
        assert panel.downloading and not panel.download_button.isEnabled()
        assert panel.download_progress.isVisibleTo(panel) and panel.download_cancel.isVisibleTo(panel)
        qtbot.mouseClick(panel.download_cancel, Qt.MouseButton.LeftButton)
        server.gate.set()
        qtbot.waitUntil(lambda: not panel.downloading, timeout=15_000)
        assert "cancelled after 0 bytes; run it again to resume" in panel.summary.text()
        assert panel.download_row.isVisibleTo(panel) and not panel.download_progress.isVisibleTo(panel)

        qtbot.mouseClick(panel.download_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not panel.downloading, timeout=15_000)
        assert panel.wait_loaded()
        assert panel.dataset is not None and len(panel.dataset) == 60 and list(panel.dataset.y) == list(labels)
        assert not panel.download_row.isVisibleTo(panel)
        assert panel.download_progress.format().startswith("4/4 · ")
        assert panel.download_progress.format().endswith(" MB")
        assert panel.download_progress.toolTip() == "t10k-labels-idx1-ubyte.gz"
        assert sorted(p.name for p in (tmp_path / "datasets" / "mnist").iterdir()) == sorted(files)
    finally:
        server.close()


def test_a_failed_download_shows_one_line(qtbot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(download.DATASETS_DIR_ENV, str(tmp_path / "datasets"))
    server = FileServer()
    try:
        files, _ = mnist_files()
        serve_sources(monkeypatch, server, "mnist", files)
        server.files.clear()  # every file answers 404
        project = load_project(default_template())
        project.dataset = {"name": "cifar10"}
        panel = DataPanel()
        qtbot.addWidget(panel)
        panel.set_document(Document(project))
        assert panel.wait_loaded() and panel.download_row.isVisibleTo(panel)
        panel.document.push(panel.document.settings_command("dataset", {"name": "mnist"}, "Use mnist"))
        assert panel.wait_loaded() and panel.download_row.isVisibleTo(panel)
        panel.start_download()
        qtbot.waitUntil(lambda: not panel.downloading, timeout=15_000)
        text = panel.summary.text()
        assert "cannot download " + server.url + "train-images-idx3-ubyte.gz (HTTP 404" in text
        assert "the server refused it" in text and "<br>" not in text
        assert panel.download_button.isEnabled()
    finally:
        server.close()

