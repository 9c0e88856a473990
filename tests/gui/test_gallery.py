"""The template gallery: ranked search, Enter opens the best match, full subtitles, graph thumbnails."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from gui.gallery import TemplateGallery


def _gallery(qtbot) -> TemplateGallery:  # noqa: ANN001
    gallery = TemplateGallery()
    qtbot.addWidget(gallery)
    return gallery


def test_a_name_match_ranks_first_and_enter_opens_it(qtbot) -> None:  # noqa: ANN001
    for text, expected in (("GRU", "gru_digits_rows.json"), ("ring", "gan_ring.json"),
                           ("lstm", "lstm_sine_forecast.json"), ("resnet", "resnet_digits.json"),
                           ("breast", "fnn_breast_cancer.json")):
        gallery = _gallery(qtbot)
        gallery.search.setText(text)
        assert Path(gallery.visible_templates()[0].path).name == expected, text
        qtbot.keyClick(gallery.search, Qt.Key.Key_Return)
        assert gallery.result() == gallery.DialogCode.Accepted and gallery.chosen.name == expected, text


def test_every_word_must_match_and_a_description_match_ranks_last(qtbot) -> None:  # noqa: ANN001
    gallery = _gallery(qtbot)
    gallery.search.setText("digits transformer")
    assert [Path(t.path).name for t in gallery.visible_templates()] == ["transformer_digits_rows.json"]
    gallery.search.setText("no such thing")
    assert gallery.visible_templates() == [] and not gallery.cards


def test_cards_show_the_whole_subtitle_and_a_picture_of_the_graph(qtbot) -> None:  # noqa: ANN001
    gallery = _gallery(qtbot)
    gallery.show()
    qtbot.waitExposed(gallery)
    card = next(c for c in gallery.cards if c.template.dataset == "breast_cancer")
    assert card.badge.text() == "Feed-forward · classification · breast cancer"
    assert card.badge.wordWrap() and card.badge.width() >= card.badge.minimumSizeHint().width()
    for card in gallery.cards:
        image = card.thumbnail.pixmap().toImage()
        assert not image.isNull()
        colours = {image.pixel(x, y) for x in range(0, image.width(), 4) for y in range(0, image.height(), 4)}
        assert len(colours) > 3, card.template.name  # nodes and edges drawn, not a blank square
