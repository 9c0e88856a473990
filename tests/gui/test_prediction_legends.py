"""Prediction plots keep their legends under the plot, never over the data."""

from __future__ import annotations

import pyqtgraph as pg
import pytest

from gui.style import DARK
from gui.training.prediction_plots import ForecastPage, GanPointsPage


@pytest.mark.parametrize("page_class, names", [(ForecastPage, ("target", "predicted")),
                                               (GanPointsPage, ("real", "generated"))])
def test_the_legend_is_a_row_under_the_plot(qtbot, page_class: type, names: tuple[str, str]) -> None:  # noqa: ANN001
    page = page_class()
    qtbot.addWidget(page)
    page.resize(400, 300)
    page.show()
    qtbot.waitExposed(page)
    assert not [item for item in page.plot.scene().items() if isinstance(item, pg.LegendItem)]
    assert all(name in page.legend.text() for name in names) and page.legend.isVisible()
    assert page.legend.geometry().top() >= page.plot.geometry().bottom()
    page.set_theme(DARK)
    assert DARK.node_subtle in page.legend.text()
