"""Image datasets from user files: a folder of class subfolders (decoded with Pillow),
MNIST-style idx files and the CIFAR-10 binary version. Nothing is downloaded.

Images come out as float32 ``(n, C, H, W)`` in [0, 1] with int64 class ids.
"""

from __future__ import annotations

import gzip
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from engine.data.base import ArrayDataset, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: Largest decoded dataset (float32 bytes) an image folder may produce.
MAX_IMAGE_BYTES = 4 * 1024**3
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                   "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801
_PARTS = {"train": ("train",), "test": ("test",), "both": ("train", "test")}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


#: Subfolders of an image folder that arrives split, and the part each holds (0 train, 1 val, 2 test).
SPLIT_FOLDERS = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}


def _subfolders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p))


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and _visible(p) and p.suffix.lower() in IMAGE_SUFFIXES)


def _split_parts(root: Path) -> list[tuple[str, int]] | None:
    """``(subfolder, part)`` when ``root`` arrives split (``train/`` of class folders, with ``val/``
    and ``test/`` beside it), else ``None``."""
    names = _subfolders(root)
    if "train" not in names or any(name not in SPLIT_FOLDERS for name in names):
        return None
    if not _subfolders(root / "train"):  # train/ holding images is a class named "train"
        return None
    return sorted(((name, SPLIT_FOLDERS[name]) for name in names), key=lambda item: (item[1], item[0]))


def _listing(root: Path) -> tuple[list[str], list[tuple[Path, int, int]]]:
    """Class names and ``(file, class id, part)`` of every image, in a fixed order."""
    parts = _split_parts(root)
    if parts is None:
        classes = _subfolders(root)
        if len(classes) < 2:
            found = f"only '{classes[0]}'" if classes else "none"
            raise DataError(f"{root.name}: needs one subfolder of images per class and at least 2 classes; "
                            f"found {found}")
        files: list[tuple[Path, int, int]] = []
        for label, cls in enumerate(classes):
            images = _images(root / cls)
            if not images:
                raise DataError(f"{root.name}: class folder '{cls}' holds no images "
                                f"({', '.join(IMAGE_SUFFIXES)})")
            files.extend((p, label, 0) for p in images)
        return classes, files
    classes = sorted({cls for folder, _ in parts for cls in _subfolders(root / folder)})
    if len(classes) < 2:
        raise DataError(f"{root.name}: its train/, val/ and test/ folders need one subfolder of images per class "
                        f"and at least 2 classes; found {', '.join(repr(c) for c in classes) or 'none'}")
    files = []
    for folder, part in parts:
        for label, cls in enumerate(classes):
            if (root / folder / cls).is_dir():
                files.extend((p, label, part) for p in _images(root / folder / cls))
    for label, cls in enumerate(classes):
        if not any(f[1] == label for f in files):
            raise DataError(f"{root.name}: class folder '{cls}' holds no images ({', '.join(IMAGE_SUFFIXES)})")
    return classes, files


def read_image(path: Path, size: tuple[int, int], channels: int, label: str | None = None) -> np.ndarray:
    """Decode one image as the image folder source does: converted to grayscale (1 channel) or RGB
    (3), resized bilinearly, scaled to [0, 1] (float32; :func:`decode_image` divided by 255).

    Args:
        path: The image file.
        size: ``(height, width)``.
        channels: 1 or 3.
        label: How messages name the file (default its name).

    Shape:
        Returns ``(channels, height, width)``.

    Raises:
        DataError: Not a readable image, or one too large to decode.
    """
    return decode_image(path, size, channels, label).astype(np.float32) / np.float32(255.0)


def decode_image(path: Path, size: tuple[int, int], channels: int, label: str | None = None) -> np.ndarray:
    """Decode one image as uint8 pixels: converted to grayscale (1 channel) or RGB (3), resized
    bilinearly (the in-memory and the streamed image folder share it).

    Args:
        path: The image file.
        size: ``(height, width)``.
        channels: 1 or 3.
        label: How messages name the file (default its name).

    Shape:
        Returns ``(channels, height, width)``.

    Raises:
        DataError: Not a readable image, or one too large to decode.
    """
    from PIL import Image

    height, width = size
    name = label or path.name
    try:
        with warnings.catch_warnings():
            # A huge (or corrupt) header is refused before decoding, not just warned about.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                pixels = image.convert("L" if channels == 1 else "RGB").resize((width, height),
                                                                                Image.Resampling.BILINEAR)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: image too large ({exc})") from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:
        raise DataError(f"{name}: not a readable image ({exc})") from None
    array = np.asarray(pixels, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """Images in one subfolder per class, decoded with Pillow and resized.

    A folder whose subfolders are ``train/`` (and ``val/`` or ``valid/`` or ``validation/``,
    ``test/``), each holding the class subfolders, arrives split: the split is kept.

    Args:
        name: ``"image_folder"``.
        opts: ``path`` (the folder), ``size`` ``(H, W)``, ``color`` (``grayscale``/``rgb``),
            ``storage`` (``auto``/``memory``/``stream``, see :mod:`engine.data.streaming`), ``cache``.

    Returns:
        x float32 ``(n, C, H, W)`` in [0, 1] (streamed: a lazy uint8 array,
        :class:`engine.data.streaming.LazyImages`); ``extras["storage"]`` says where and why; class names are the sorted subfolder names;
        ``extras["files"]`` each sample's path relative to the folder; for a folder that arrives
        split, ``extras["split"]`` each sample's part (int8: 0 train, 1 validation, 2 test).

    Raises:
        DataError: No or a single class subfolder, an empty class, an unreadable image.
    """
    root: Path = opts["path"]
    height, width = opts["size"]
    channels = 1 if opts["color"] == "grayscale" else 3
    classes, files = _listing(root)
    from engine.data import streaming  # psutil and the cache only when an image folder loads

    storage, reason = streaming.choose_storage(opts.get("storage", "auto"), len(files) * channels * height * width)
    if storage == "stream":
        return streaming.stream_image_folder(root, classes, files, opts, reason)
    if len(files) * channels * height * width * 4 > MAX_IMAGE_BYTES:
        raise DataError(f"{root.name}: {len(files)} images of {channels}x{height}x{width} would need more "
                        f"than {MAX_IMAGE_BYTES // 1024**3} GB; choose a smaller size or set dataset.storage "
                        f"to 'stream'")
    x = np.empty((len(files), channels, height, width), dtype=np.float32)
    kept: list[int] = []
    skipped: list[str] = []
    for i, (path, _, _) in enumerate(files):
        name = path.relative_to(root).as_posix()
        try:
            x[len(kept)] = read_image(path, (height, width), channels, name)
        except DataError:  # unreadable or damaged: left out and listed once, as a streamed folder does
            skipped.append(name)
            continue
        kept.append(i)
    if skipped:
        files = [files[i] for i in kept]
        x = x[:len(kept)]
        _refuse_empty_classes(root, classes, files, skipped)
    extras: dict[str, Any] = {"path": str(root), "files": [p.relative_to(root).as_posix() for p, _, _ in files],
                              "storage": reason}
    description = (f"{root.name}: {len(files)} images of {len(classes)} classes, "
                   f"{opts['color']} {height}x{width}")
    if skipped:
        extras["skipped"] = skipped
        description += f"; {len(skipped)} unreadable image(s) skipped: {', '.join(skipped)}"
    if _split_parts(root) is not None:
        split = np.asarray([part for _, _, part in files], dtype=np.int8)
        extras["split"] = split
        counts = np.bincount(split, minlength=3)
        description += f", arrived split ({counts[0]} train, {counts[1]} val, {counts[2]} test)"
    return ArrayDataset(
        name=root.name, x=x, y=np.asarray([label for _, label, _ in files], dtype=np.int64),
        target_kind="classes", class_names=classes, image_shape=(channels, height, width),
        description=description, extras=extras)


def _refuse_empty_classes(root: Path, classes: list[str], files: list[tuple[Path, int, int]],
                          skipped: list[str]) -> None:
    """One line when leaving out unreadable images empties a class."""
    for label, cls in enumerate(classes):
        if not any(f[1] == label for f in files):
            raise DataError(f"{root.name}: every image of class '{cls}' is unreadable ({', '.join(skipped[:5])}"
                            f"{' ...' if len(skipped) > 5 else ''}); replace them or remove the class folder")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path.name}: cannot be read ({exc})") from None


def _find(folder: Path, stem: str) -> Path | None:
    for candidate in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def parse_idx(path: Path, magic: int) -> np.ndarray:
    """Parse an idx file (the MNIST format): big-endian magic, dimension sizes, uint8 data.

    Args:
        path: The file (``.gz`` is decompressed).
        magic: ``0x00000803`` for images ``(n, rows, cols)``, ``0x00000801`` for labels ``(n,)``.

    Returns:
        The uint8 array.

    Raises:
        DataError: Wrong magic number or a size that does not match the header.
    """
    data = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path.name}: too short for an idx file ({len(data)} bytes)")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        raise DataError(f"{path.name}: magic number {found:#010x}, expected {magic:#010x}; "
                        f"is it the right idx file?")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims, dtype=np.int64))
    if len(data) - header != expected:
        raise DataError(f"{path.name}: the header announces {expected} bytes of data but the file has "
                        f"{len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """MNIST or Fashion-MNIST from the standard idx files in a folder.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        opts: ``path`` (folder with ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
            ``t10k-...``, optionally ``.gz``), ``part`` (``train``/``test``/``both``),
            ``limit`` (keep the first samples only).

    Returns:
        x float32 ``(n, 1, rows, cols)`` in [0, 1], y int64 digits 0-9.

    Raises:
        DataError: Missing or corrupt files, label out of range, count mismatch.
    """
    folder: Path = opts["path"]
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for part in _PARTS[opts["part"]]:
        prefix = "train" if part == "train" else "t10k"
        image_file = _find(folder, f"{prefix}-images-idx3-ubyte")
        label_file = _find(folder, f"{prefix}-labels-idx1-ubyte")
        if image_file is None or label_file is None:
            raise DataError(f"dataset.path: {folder} lacks {prefix}-images-idx3-ubyte and/or "
                            f"{prefix}-labels-idx1-ubyte (optionally .gz)")
        x = parse_idx(image_file, _IDX_IMAGES)
        y = parse_idx(label_file, _IDX_LABELS)
        if len(x) != len(y):
            raise DataError(f"{image_file.name} has {len(x)} images but {label_file.name} has {len(y)} labels")
        if len(y) and y.max() > 9:
            raise DataError(f"{label_file.name}: label {int(y.max())} is out of range 0-9")
        if images and x.shape[1:] != images[0].shape[1:]:
            raise DataError(f"{image_file.name}: images are {x.shape[1:]}, the train images {images[0].shape[1:]}")
        images.append(x)
        labels.append(y)
    x = np.concatenate(images)[: opts["limit"]]
    y = np.concatenate(labels)[: opts["limit"]]
    if len(x) == 0:
        raise DataError(f"{folder.name}: the idx files hold no images")
    classes = FASHION_CLASSES if name == "fashion_mnist" else [str(d) for d in range(10)]
    rows, cols = x.shape[1:]
    return ArrayDataset(
        name=name, x=(x.astype(np.float32) / 255.0)[:, None], y=y.astype(np.int64), target_kind="classes",
        class_names=list(classes), image_shape=(1, int(rows), int(cols)),
        description=f"{'Fashion-MNIST' if name == 'fashion_mnist' else 'MNIST'} ({opts['part']}): "
                    f"{len(x)} images {rows}x{cols}",
        extras={"path": str(folder)})


def _cifar_records(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = _read_bytes(path)
    record = 1 + 3 * 32 * 32
    if not data or len(data) % record:
        raise DataError(f"{path.name}: {len(data)} bytes is not a whole number of CIFAR-10 records "
                        f"({record} bytes each: 1 label byte + 3072 pixel bytes)")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    labels = rows[:, 0]
    if labels.max() > 9:
        raise DataError(f"{path.name}: label {int(labels.max())} is out of range 0-9")
    return rows[:, 1:].reshape(-1, 3, 32, 32), labels


def load_cifar10(name: str, opts: dict[str, Any]) -> ArrayDataset:
    """CIFAR-10, binary version: ``data_batch_1.bin`` ... ``data_batch_5.bin``, ``test_batch.bin``.

    Args:
        name: ``"cifar10"``.
        opts: ``path`` (the folder, or its parent holding ``cifar-10-batches-bin``),
            ``part`` (``train``/``test``/``both``), ``limit``.

    Returns:
        x float32 ``(n, 3, 32, 32)`` in [0, 1], y int64 class ids; class names from
        ``batches.meta.txt`` when present.

    Raises:
        DataError: No batch files, corrupt records, label out of range.
    """
    folder: Path = opts["path"]
    if (folder / "cifar-10-batches-bin").is_dir():
        folder = folder / "cifar-10-batches-bin"
    wanted = {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]}
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for part in _PARTS[opts["part"]]:
        found = [folder / f for f in wanted[part] if (folder / f).is_file()]
        if not found:
            raise DataError(f"dataset.path: {folder} holds none of {', '.join(wanted[part])} "
                            f"(the CIFAR-10 binary version)")
        for path in found:
            x, y = _cifar_records(path)
            images.append(x)
            labels.append(y)
    classes = list(CIFAR10_CLASSES)
    meta = folder / "batches.meta.txt"
    if meta.is_file():
        try:
            names = [line.strip() for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError):
            names = []
        classes = names[:10] if len(names) >= 10 else classes
    x = np.concatenate(images)[: opts["limit"]]
    y = np.concatenate(labels)[: opts["limit"]]
    return ArrayDataset(
        name=name, x=x.astype(np.float32) / 255.0, y=y.astype(np.int64), target_kind="classes",
        class_names=classes, image_shape=(3, 32, 32),
        description=f"CIFAR-10 ({opts['part']}): {len(x)} colour images 32x32 of 10 classes",
        extras={"path": str(folder)})
