"""Built-in datasets that need no network: scikit-learn's bundled sets, generated 2-D
point sets, a generated time series and the shipped character corpus.

Every loader takes the dataset's name and its validated options (see
:mod:`engine.data.registry`) and returns an :class:`~engine.data.base.ArrayDataset`.
scikit-learn is imported lazily, when a set that needs it is loaded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, DataError
from engine.data.corpus import CORPORA, PYTHON_DOCS_ALPHABET

_POINT_FEATURES = ["x1", "x2"]


def load_digits_set(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """scikit-learn's 8x8 handwritten digits, pixel values scaled to [0, 1].

    Args:
        name: ``"digits"``.
        opts: ``layout``: ``image`` -> x ``(n, 1, 8, 8)``; ``flat`` -> ``(n, 64)``;
            ``rows`` -> ``(n, 8, 8)``, a sequence of 8 rows of 8 pixels. ``classes``: ``None``
            for all ten digits, else the digits to keep (distinct, 0-9), relabelled 0, 1, ...
            in the order given (``(5, 6, 7, 8, 9)``: digit 5 is class 0, named ``"5"``).

    Returns:
        1797 samples of 10 classes (fewer with ``classes``, in the original order).

    Raises:
        DataError: ``classes`` keeps a single digit (classification needs two).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = (np.asarray(bunch.images, dtype=np.float32) / 16.0).astype(np.float32)
    target = np.asarray(bunch.target, dtype=np.int64)
    digits = [int(d) for d in opts.get("classes") or bunch.target_names]
    if len(digits) < 2:
        raise DataError(f"dataset.classes: keep at least two digits, got {digits}")
    keep = np.isin(target, digits)
    relabel = np.full(10, -1, dtype=np.int64)
    relabel[digits] = np.arange(len(digits))
    layout = opts["layout"]
    shapes = {"image": (-1, 1, 8, 8), "flat": (-1, 64), "rows": (-1, 8, 8)}
    x = np.ascontiguousarray(images[keep].reshape(shapes[layout]))
    features = [f"pixel {r},{c}" for r in range(8) for c in range(8)] if layout == "flat" else None
    consecutive = digits == list(range(digits[0], digits[0] + len(digits)))
    which = f"{digits[0]}-{digits[-1]}" if consecutive else ", ".join(map(str, digits))
    return ArrayDataset(
        name=name, x=x, y=relabel[target[keep]], target_kind="classes",
        class_names=[str(d) for d in digits], feature_names=features,
        image_shape=(1, 8, 8),
        description=f"8x8 handwritten digits {which} ({layout} layout), pixels in [0, 1]")


def load_sklearn_table(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """One of scikit-learn's bundled tables: iris, wine, breast_cancer, diabetes.

    Args:
        name: The set's name.
        opts: No options.

    Returns:
        Classification sets with int64 class ids; ``diabetes`` with float32 ``y (n, 1)``.
    """
    from sklearn import datasets

    if name == "diabetes":
        bunch = datasets.load_diabetes(scaled=False)
        return ArrayDataset(
            name=name, x=np.asarray(bunch.data, dtype=np.float32),
            y=np.asarray(bunch.target, dtype=np.float32).reshape(-1, 1), target_kind="values",
            feature_names=[str(f) for f in bunch.feature_names],
            description="Diabetes progression after one year from 10 measurements (regression)")
    loader = {"iris": datasets.load_iris, "wine": datasets.load_wine,
              "breast_cancer": datasets.load_breast_cancer}[name]
    bunch = loader()
    titles = {"iris": "Iris flowers: 3 species from 4 measurements",
              "wine": "Wines: 3 cultivars from 13 chemical measurements",
              "breast_cancer": "Breast tumours: malignant or benign from 30 measurements"}
    return ArrayDataset(
        name=name, x=np.asarray(bunch.data, dtype=np.float32),
        y=np.asarray(bunch.target, dtype=np.int64), target_kind="classes",
        class_names=[str(c) for c in bunch.target_names],
        feature_names=[str(f) for f in bunch.feature_names], description=titles[name])


def _spirals(n: int, classes: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % classes
    t = rng.uniform(0.0, 1.0, n)
    radius = 0.1 + 0.9 * t
    angle = 3.0 * np.pi * t + 2.0 * np.pi * y / classes
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x + rng.normal(0.0, noise, x.shape), y


def load_points(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """A generated 2-D classification set: moons, circles, spirals or xor.

    Args:
        name: The set's name.
        opts: ``samples``, ``noise``, ``seed``; ``classes`` for spirals.

    Returns:
        x float32 ``(samples, 2)``, y int64 class ids.
    """
    n, noise, seed = opts["samples"], opts["noise"], opts["seed"]
    rng = np.random.default_rng(seed)
    if name == "moons":
        from sklearn.datasets import make_moons

        x, y = make_moons(n_samples=n, noise=noise, random_state=seed)
        class_names = ["upper moon", "lower moon"]
    elif name == "circles":
        from sklearn.datasets import make_circles

        x, y = make_circles(n_samples=n, noise=noise, factor=0.5, random_state=seed)
        class_names = ["outer circle", "inner circle"]
    elif name == "spirals":
        x, y = _spirals(n, opts["classes"], noise, rng)
        class_names = [f"arm {i}" for i in range(opts["classes"])]
    else:
        x = rng.uniform(-1.0, 1.0, (n, 2))
        y = (x[:, 0] * x[:, 1] < 0).astype(np.int64)
        x = x + rng.normal(0.0, noise, x.shape)
        class_names = ["same sign", "opposite signs"]
    return ArrayDataset(
        name=name, x=np.asarray(x, dtype=np.float32), y=np.asarray(y, dtype=np.int64),
        target_kind="classes", class_names=class_names, feature_names=list(_POINT_FEATURES),
        description=f"{n} generated 2-D points: {name} (noise {noise:g}, seed {seed})")


def load_gaussian_ring(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """Points from a ring of Gaussians, for GANs (no targets).

    Args:
        name: ``"gaussian_ring"``.
        opts: ``samples``, ``modes``, ``radius``, ``std``, ``seed``.

    Returns:
        x float32 ``(samples, 2)``; ``extras["centers"]`` the modes' centres ``(modes, 2)``.
    """
    rng = np.random.default_rng(opts["seed"])
    modes, radius = opts["modes"], opts["radius"]
    angles = 2.0 * np.pi * np.arange(modes) / modes
    centers = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)
    which = rng.integers(0, modes, opts["samples"])
    x = centers[which] + rng.normal(0.0, opts["std"], (opts["samples"], 2))
    return ArrayDataset(
        name=name, x=x.astype(np.float32), y=None, target_kind="none",
        feature_names=list(_POINT_FEATURES),
        description=f"Ring of {modes} Gaussians (radius {radius:g}, std {opts['std']:g}) for generative models",
        extras={"centers": centers.astype(np.float32)})


def load_sine_mixture(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """A noisy mixture of sines cut into forecasting windows.

    Sample ``i`` reads ``series[i : i + window]`` and its targets are
    ``series[i + window : i + window + horizon]``.

    Args:
        name: ``"sine_mixture"``.
        opts: ``window``, ``horizon``, ``series_length``, ``noise``, ``seed``.

    Returns:
        x float32 ``(n, window, 1)``, y float32 ``(n, horizon)``; ``extras``: ``series``
        (the full series), ``window``, ``horizon`` and ``ordered`` (True: the split keeps
        time order, validation is the end of the series).

    Raises:
        DataError: The series is too short for two windows.
    """
    window, horizon, length = opts["window"], opts["horizon"], opts["series_length"]
    n = length - window - horizon + 1
    if n < 2:
        raise DataError(f"dataset.series_length: must be at least window + horizon + 1 = "
                        f"{window + horizon + 1}, got {length}")
    rng = np.random.default_rng(opts["seed"])
    t = np.arange(length, dtype=np.float64)
    periods = rng.uniform(12.0, 90.0, 3)
    amplitudes = rng.uniform(0.3, 1.0, 3)
    phases = rng.uniform(0.0, 2.0 * np.pi, 3)
    series = sum(a * np.sin(2.0 * np.pi * t / p + f) for a, p, f in zip(amplitudes, periods, phases))
    series = (series + rng.normal(0.0, opts["noise"], length)).astype(np.float32)
    starts = np.arange(n)[:, None]
    x = series[starts + np.arange(window)][:, :, None]
    y = series[starts + window + np.arange(horizon)]
    return ArrayDataset(
        name=name, x=np.ascontiguousarray(x), y=np.ascontiguousarray(y), target_kind="values",
        feature_names=["value"],
        description=f"Noisy sine mixture: predict {horizon} step(s) from the last {window}",
        extras={"series": series, "window": window, "horizon": horizon, "ordered": True})


def load_text(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """A shipped character corpus as next-character windows.

    Args:
        name: ``"text"``.
        opts: ``corpus`` (``project`` or ``python_docs``), ``max_chars`` (keep the first this
            many characters, ``None``: all), ``seq_len`` tokens per sample, ``stride``
            characters between sample starts.

    Returns:
        x int64 ``(n, seq_len)`` token ids, y int64 ``(n, seq_len)`` (x shifted by one);
        ``vocabulary`` the sorted characters (index = token id); ``extras["text"]``. Windows
        that overlap (``stride < seq_len``) are split in order (``extras["ordered"]``): a
        random split would put the text of validation windows into training windows.

    Raises:
        DataError: The corpus is missing here, or ``seq_len`` is too long for it.
    """
    text = CORPORA[opts["corpus"]]()
    if not text:
        raise DataError(f"dataset.corpus: this Python does not ship the {opts['corpus']!r} corpus; use 'project'")
    if opts["max_chars"] is not None:
        text = text[:opts["max_chars"]]
    seq_len, stride = opts["seq_len"], opts["stride"]
    # a fixed alphabet where the corpus has one, so a model's vocabulary does not depend on the Python
    vocabulary = PYTHON_DOCS_ALPHABET if opts["corpus"] == "python_docs" else sorted(set(text))
    index = {ch: i for i, ch in enumerate(vocabulary)}
    ids = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
    starts = np.arange(0, len(ids) - seq_len, stride)
    if len(starts) < 2:
        raise DataError(f"dataset.seq_len: must be less than {len(ids) - 1} for this corpus, got {seq_len}")
    windows = starts[:, None] + np.arange(seq_len)
    return ArrayDataset(
        name=name, x=ids[windows], y=ids[windows + 1], target_kind="next_tokens",
        vocabulary=vocabulary,
        description=f"Character corpus ({len(text)} characters, {len(vocabulary)} distinct): "
                    f"predict the next character",
        extras={"text": text, "ordered": stride < seq_len})
