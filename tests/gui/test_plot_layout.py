"""The training plots at the size the dashboard gives them in a 1280 x 800 window: no legend over
the curves, every title and key whole, both series of a two-series plot drawn, the learning-rate
change label inside its plot; narrower, the plots rearrange instead of shrinking, shorter they scroll;
the progress text stays on one line."""

from __future__ import annotations

import pyqtgraph as pg
import pytest
from PySide6.QtCore import QRectF
from PySide6.QtWidgets import QScrollArea

from engine.training.events import BatchMetrics, EpochEnd, LearningRateChanged, RunStarted
from engine.training.history import RunHistory
from gui.training.plots import MetricPlots

#: The plots' share of the Training dock in a 1280 x 800 window (measured in the app).
DASHBOARD_PLOTS = (596, 245)


def _history(task: str) -> RunHistory:
    history = RunHistory(f"{task}-20260101-000000", run_dir=f"runs/{task}")
    history.add(RunStarted(0.0, history.run_dir, "cpu", "CPU", task, 8, 10, 100, 80, 20, 0))
    for step in range(1, 61):
        history.add(BatchMetrics(0.0, (step - 1) // 10, step % 10, step, {"loss": 2.0 / step}, 0.01, 100.0))
        if step == 35:
            history.add(LearningRateChanged(0.0, step, step // 10, 0.01, 0.0005))
        if step % 10 == 0:
            if task == "gan":
                train = {"loss": 2.0, "g_loss": 1.0 + step / 100, "d_loss": 1.3 - step / 200}
                val: dict[str, float] = {}
            else:  # the trainer logs training accuracy for no task: only the validation series exists
                train, val = {"loss": 2.0 / step}, {"loss": 2.5 / step, "accuracy": step / 65}
            history.add(EpochEnd(0.0, step // 10, step, train, val, 0.01, 1.0, 100.0))
    return history


def _plots(qtbot, history: RunHistory, size: tuple[int, int] = DASHBOARD_PLOTS) -> MetricPlots:  # noqa: ANN001
    plots = MetricPlots()
    qtbot.addWidget(plots)
    plots.resize(*size)
    plots.show()
    qtbot.waitExposed(plots)
    plots.add_run(history)
    plots.redraw()
    qtbot.wait(50)
    return plots


def _scene_rect(item: pg.GraphicsObject) -> QRectF:
    return item.mapRectToScene(item.boundingRect())


@pytest.mark.parametrize("task", ["classification", "gan"])
def test_headers_sit_above_the_curves_and_read_whole(qtbot, task: str) -> None:  # noqa: ANN001
    plots = _plots(qtbot, _history(task))
    assert plots.arrangement == "row3"
    assert not [item for item in plots.view.scene().items() if isinstance(item, pg.LegendItem)]
    for plot, header in plots.headers.items():
        cell, data = _scene_rect(header), _scene_rect(plot.vb)
        assert cell.bottom() <= data.top() + 1  # above the data, never over it
        text = header.item.boundingRect().width()
        assert text <= header.geometry().width() + 1, (plots.titles[plot], text, header.geometry().width())
        assert plot.vb.width() >= (70 if plot is plots.lr else 130)  # room for a curve (the rate is a strip)


def test_the_key_names_only_the_lines_that_are_drawn(qtbot) -> None:  # noqa: ANN001
    plots = _plots(qtbot, _history("classification"))
    key = plots.keys[plots.metric_plot]
    curves = plots.runs[plots.current].items
    assert "val" in key and "train" not in key  # no solid line is promised that is not there
    assert len(curves["val_metric"].yData) == 6 and curves["train_metric"].yData is None or \
        len(curves["train_metric"].yData) == 0
    gan = _plots(qtbot, _history("gan"))
    curves = gan.runs[gan.current].items
    assert "gen" in gan.keys[gan.metric_plot] and "disc" in gan.keys[gan.metric_plot]
    assert len(curves["train_metric"].yData) == 6 and len(curves["val_metric"].yData) == 6  # both drawn
    assert gan.titles[gan.metric_plot] == "GAN losses"


def test_the_learning_rate_change_label_stays_inside_its_plot(qtbot) -> None:  # noqa: ANN001
    plots = _plots(qtbot, _history("classification"))
    marks = [m for m in plots.runs[plots.current].marks if getattr(m, "label", None) is not None]
    assert marks and marks[0].label.toPlainText() == "→ 0.0005"
    label, area = _scene_rect(marks[0].label), _scene_rect(plots.lr.vb)
    assert area.contains(label) and marks[0].label.opacity() == 1.0, (label, area)
    plots.resize(430, 245)  # so narrow that it fits on neither side: hidden, not cut
    plots.lr.vb.setXRange(0, 6, padding=0)

    def placed() -> bool:  # the layout and the label follow the resize in the event loop (later when busy)
        return _scene_rect(plots.lr.vb).contains(_scene_rect(marks[0].label)) or marks[0].label.opacity() == 0.0

    qtbot.waitUntil(placed, timeout=3000)


def test_narrow_plots_rearrange_instead_of_shrinking(qtbot) -> None:  # noqa: ANN001
    plots = _plots(qtbot, _history("classification"), (420, 300))
    assert plots.arrangement == "grid3"  # the learning rate below loss and accuracy
    assert _scene_rect(plots.lr.vb).top() > _scene_rect(plots.loss.vb).bottom()
    plots.resize(300, 500)
    assert plots.arrangement == "stack3"
    plots.resize(900, 300)
    assert plots.arrangement == "row3"


def test_axes_move_seldom_while_a_run_streams() -> None:
    from gui.training.plot_parts import nice_ceiling, steady_range

    assert [nice_ceiling(x) for x in (0.3, 1.2, 3.6, 5.0, 10.8, 480)] == [1, 2, 5, 5, 20, 500]
    assert steady_range(None, 0.2, 2.0) == pytest.approx((0.02, 2.18))
    kept = steady_range((0.02, 2.18), 0.1, 2.0)  # the values stay inside and fill most of it
    assert kept == (0.02, 2.18)
    assert steady_range(kept, 0.05, 0.6) == pytest.approx((-0.005, 0.655))  # shrunk to under half: refit


def test_the_x_axis_follows_a_long_run_in_steps(qtbot) -> None:  # noqa: ANN001
    from engine.training.events import EpochEnd, RunStarted
    from engine.training.history import RunHistory
    from gui.training.plots import MetricPlots

    plots = MetricPlots()
    qtbot.addWidget(plots)
    history = RunHistory(name="run")
    history.add(RunStarted(0.0, "", "cpu", "cpu", "classification", 300, 10, 100, 640, 160, 0))
    plots.add_run(history)
    spans = []
    for epoch in range(1, 40):
        history.add(EpochEnd(float(epoch), epoch, epoch * 10, {"loss": 1 / epoch}, {"loss": 1.1 / epoch,
                                                                                  "accuracy": 0.5}, 1e-3, 0.1, 1e3))
        plots.redraw()
        spans.append(plots.loss.vb.viewRange()[0][1])
    assert len(set(round(s, 3) for s in spans)) <= 6  # a handful of ranges, not one per epoch
    assert spans[-1] < 300 and spans[-1] >= 39  # the 39 epochs fill much of the width, not 13% of it


def test_forgetting_the_runs_resets_the_axes(qtbot) -> None:  # noqa: ANN001
    """Opening another project clears the runs: its empty plots show the axes of a new window,
    not the last project's loss, accuracy and learning-rate scales with no data in them."""
    plots = _plots(qtbot, _history("classification"))
    assert plots.loss.vb.viewRange()[0][1] > 5 and plots.lr.vb.viewRange()[1][1] < 0.1
    plots.clear()
    for plot in (plots.loss, plots.metric_plot, plots.lr):
        assert plot.vb.viewRange() == [[0, 1], [0, 1]]
    plots.add_run(_history("classification"))  # the next run's data sets the ranges again
    plots.redraw()
    assert plots.loss.vb.viewRange()[0][1] > 5 and plots.lr.vb.viewRange()[1][1] < 0.1


def test_short_plots_scroll_instead_of_collapsing(qtbot) -> None:  # noqa: ANN001
    """In a short dashboard (a 730 x 500 window) the stacked plots keep a readable height and the
    tab scrolls, rather than squeezing three plots into strips whose tick labels overlap."""
    plots = _plots(qtbot, _history("classification"), (260, 200))
    assert plots.arrangement == "stack3"
    qtbot.wait(50)
    for plot in (plots.loss, plots.metric_plot):
        assert plot.vb.height() >= 60, plot.vb.height()
    scroll = plots.findChild(QScrollArea)
    assert scroll.verticalScrollBar().maximum() > 0
    plots.resize(900, 300)  # tall enough for one row: no scrolling
    qtbot.wait(50)
    assert plots.arrangement == "row3" and scroll.verticalScrollBar().maximum() == 0


def test_short_gradient_plots_scroll_instead_of_collapsing(qtbot) -> None:  # noqa: ANN001
    from gui.training.gradient_plots import GradientPlots

    plots = GradientPlots()
    qtbot.addWidget(plots)
    plots.resize(260, 200)
    plots.show()
    qtbot.waitExposed(plots)
    qtbot.wait(50)
    assert plots.arrangement == "stack2"  # two plots side by side would get 130 pixels each
    assert all(plot.vb.height() >= 60 for plot in plots.plots.values() if plot.isVisible())
    assert plots.findChild(QScrollArea).verticalScrollBar().maximum() > 0


def test_a_narrow_progress_bar_elides_its_text_on_one_line(qtbot) -> None:  # noqa: ANN001
    from gui.progress_bar import ElidingProgressBar

    bar = ElidingProgressBar()
    qtbot.addWidget(bar)
    bar.setValue(15)
    bar.setFormat("Epoch 3/20 · step 1,200/8,000 · loss 0.4312 · val accuracy 91.2% · ETA 4 min")
    bar.resize(120, 24)
    bar.show()
    qtbot.waitExposed(bar)
    shown = bar.text()
    assert shown.endswith("…") and "\n" not in shown
    assert bar.fontMetrics().horizontalAdvance(shown) <= bar.width()
    assert bar.full_text() == bar.format()  # the whole text is still there (its tooltip)
    bar.resize(900, 24)
    assert bar.text() == bar.format()


def test_the_wheel_over_a_plot_scrolls_a_short_tab_and_ctrl_wheel_zooms(qtbot) -> None:  # noqa: ANN001
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    plots = _plots(qtbot, _history("classification"), (260, 200))
    scroll = plots.findChild(QScrollArea)
    qtbot.waitUntil(lambda: scroll.verticalScrollBar().maximum() > 0)
    viewport = plots.view.viewport()
    inside = plots.view.mapFromScene(plots.loss.vb.mapRectToScene(plots.loss.vb.boundingRect()).center())

    def wheel(modifiers: Qt.KeyboardModifier) -> None:
        event = QWheelEvent(QPointF(inside), QPointF(viewport.mapToGlobal(inside)), QPoint(0, 0), QPoint(0, -120),
                            Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(viewport, event)
        qtbot.wait(20)

    ranges = plots.loss.vb.viewRange()
    wheel(Qt.KeyboardModifier.NoModifier)
    assert scroll.verticalScrollBar().value() > 0 and plots.loss.vb.viewRange() == ranges  # scrolled, not zoomed
    scroll.verticalScrollBar().setValue(0)
    wheel(Qt.KeyboardModifier.ControlModifier)
    assert scroll.verticalScrollBar().value() == 0 and plots.loss.vb.viewRange() != ranges  # zoomed
