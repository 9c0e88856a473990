"""Download MNIST, Fashion-MNIST and CIFAR-10 from their canonical sources, on request.

Nothing here runs unless asked (``python main.py download NAME``, the Data panel's Download
button). Each file is fetched into ``<name>.part`` with HTTP ``Range`` so that an interrupted
download continues where it stopped (and starts over when the server ignores ``Range``), its
MD5 is checked against the published checksum, and only then is it renamed into place. MNIST
and Fashion-MNIST stay as the ``.gz`` idx files the loader reads; CIFAR-10's archive is
unpacked member by member (only the expected regular files; any member that points outside
the folder refuses the archive) into ``cifar-10-batches-bin``. Every failure is one
:class:`~engine.data.base.DataError` line that names the URL and the folder where the files
can be put by hand.

Headless and dependency-free: urllib, hashlib and tarfile from the standard library.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.app_data import app_data_dir
from engine.data.base import DataError

#: Environment variable naming the folder that holds one subfolder per dataset.
DATASETS_DIR_ENV = "NEURAL_CANVAS_DATASETS_DIR"
#: Seconds a connection may stay silent before it counts as unreachable.
TIMEOUT = 30.0
#: Bytes read per step (progress is reported after each).
CHUNK = 256 * 1024
#: Largest archive member unpacked (CIFAR-10's batches are 30,730,000 bytes).
MAX_MEMBER_BYTES = 256 * 1024**2
_CIFAR_DIR = "cifar-10-batches-bin"
_CIFAR_RECORD = 1 + 3 * 32 * 32


@dataclass(frozen=True)
class RemoteFile:
    """One file a dataset is published as.

    Args:
        name: File name on the server and on disk.
        md5: Its published MD5 checksum (hex).
    """

    name: str
    md5: str


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and what its loader needs on disk.

    Args:
        name: The ``dataset.name`` it serves.
        mirrors: Base URLs tried in order (each ends with ``/``).
        files: The files to fetch from a mirror.
        members: For an archive: the members to unpack (paths inside the archive); the
            loader needs all of them except those in ``optional``.
        optional: Members unpacked when present but not required.
    """

    name: str
    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    members: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()


def _idx_files(*md5s: str) -> tuple[RemoteFile, ...]:
    names = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")
    return tuple(RemoteFile(name, md5) for name, md5 in zip(names, md5s, strict=True))


#: The canonical files of each downloadable dataset (mirrors and checksums as torchvision lists them).
SOURCES: dict[str, DatasetSource] = {source.name: source for source in (
    DatasetSource("mnist", ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
                  _idx_files("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                             "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c")),
    DatasetSource("fashion_mnist", ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
                  _idx_files("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                             "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310")),
    DatasetSource("cifar10", ("https://www.cs.toronto.edu/~kriz/",),
                  (RemoteFile("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),),
                  members=tuple(f"{_CIFAR_DIR}/{n}" for n in (*(f"data_batch_{i}.bin" for i in range(1, 6)),
                                                                "test_batch.bin", "batches.meta.txt")),
                  optional=(f"{_CIFAR_DIR}/batches.meta.txt",)),
)}


@dataclass(frozen=True)
class Progress:
    """How far a download is, reported after every chunk.

    Args:
        file: The file being fetched.
        index: Its position among the files still to fetch (1-based).
        count: How many files are being fetched.
        done: Bytes of it on disk so far (a resumed download starts above 0).
        total: Its size, when the server says.
    """

    file: str
    index: int
    count: int
    done: int
    total: int | None


ProgressCallback = Callable[[Progress], None]


class DownloadCancelled(DataError):
    """The caller asked to stop; the partial file stays for the next attempt."""


def datasets_dir() -> Path:
    """The folder holding one subfolder per downloaded dataset (not created here).

    Returns:
        ``$NEURAL_CANVAS_DATASETS_DIR`` when set, else ``<app data>/datasets``.
    """
    override = os.environ.get(DATASETS_DIR_ENV, "").strip()
    return Path(override).expanduser() if override else app_data_dir() / "datasets"


def default_folder(name: str) -> Path:
    """Where ``name``'s files go when the project names no ``path``: ``datasets_dir() / name``."""
    return datasets_dir() / name


def _source(name: str) -> DatasetSource:
    if name not in SOURCES:
        raise DataError(f"{name!r} cannot be downloaded; these can: {', '.join(SOURCES)}")
    return SOURCES[name]


def _member_path(folder: Path, member: str) -> Path:
    return folder.joinpath(*PurePosixPath(member).parts)


def _idx_present(folder: Path, gz_name: str) -> bool:
    stem = gz_name.removesuffix(".gz")
    return any((folder / n).is_file() for n in (stem, stem.replace("-idx", ".idx")))


def _member_ok(path: Path) -> bool:
    if not path.is_file():
        return False
    size = path.stat().st_size
    return size > 0 and (path.suffix != ".bin" or size % _CIFAR_RECORD == 0)


def required_files(name: str) -> list[str]:
    """What ``name``'s loader needs on disk: the ``.gz`` idx files, or CIFAR-10's unpacked batches."""
    source = _source(name)
    if source.members:
        return [m for m in source.members if m not in source.optional]
    return [f.name for f in source.files]


def missing_files(name: str, folder: Path) -> list[str]:
    """The files ``name``'s loader needs that ``folder`` lacks (without checking checksums).

    Args:
        name: ``mnist``, ``fashion_mnist`` or ``cifar10``.
        folder: The dataset's folder.

    Returns:
        File names (archive members for CIFAR-10), empty when the loader will find its files.
    """
    needed = required_files(name)
    if _source(name).members:
        if all(_member_ok(folder / PurePosixPath(m).name) for m in needed):
            return []  # the loader also reads the batches straight from the folder
        return [m for m in needed if not _member_ok(_member_path(folder, m))]
    return [n for n in needed if not (folder / n).is_file() and not _idx_present(folder, n)]


def md5_of(path: Path) -> str:
    """The hex MD5 of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def by_hand(name: str, folder: Path, base_url: str | None = None) -> str:
    """What to put where when downloading is not possible, as part of one line."""
    source = _source(name)
    where = base_url or source.mirrors[0]
    files = ", ".join(f.name for f in source.files)
    unpacked = f" (or its unpacked {_CIFAR_DIR} folder)" if source.members else ""
    return f"put {files}{unpacked} from {where} into {folder} by hand"


def download_dataset(name: str, folder: Path | str | None = None, progress: ProgressCallback | None = None,
                     base_url: str | None = None, cancelled: Callable[[], bool] | None = None,
                     timeout: float | None = None) -> Path:
    """Fetch ``name``'s canonical files into ``folder``, verify and unpack them.

    A no-op (no network access) when the files are already there: the ``.gz`` idx files with
    their published checksums (or unpacked idx files put there by hand), CIFAR-10's unpacked
    batches. A ``.gz`` or archive in the folder whose checksum does not match is fetched again.

    Args:
        name: ``mnist``, ``fashion_mnist`` or ``cifar10``.
        folder: Where the files go; :func:`default_folder` when ``None``.
        progress: Called with a :class:`Progress` after each chunk (on the calling thread).
        base_url: Fetch from this base URL instead of the canonical mirrors (a local copy, tests).
        cancelled: Polled after each chunk; when it returns True the download stops with
            :class:`DownloadCancelled` and keeps its ``.part`` file to resume later.
        timeout: Seconds a connection may stay silent; :data:`TIMEOUT` when ``None``.

    Returns:
        The folder, ready for the dataset's loader.

    Raises:
        DataError: Offline or unreachable (names the URLs and where to put the files by hand),
            an interrupted transfer (run again to resume), a checksum mismatch (the file is
            removed; names expected and actual MD5), an unsafe or incomplete archive.
    """
    source = _source(name)
    target = Path(folder).expanduser() if folder is not None else default_folder(name)
    if source.members and not missing_files(name, target):
        return target
    todo = [f for f in source.files if _needs_fetch(source, f, target)]
    if not todo and not source.members:
        return target
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"cannot create {target} ({exc.strerror or exc})") from None
    mirrors = (base_url if base_url.endswith("/") else base_url + "/",) if base_url else source.mirrors
    for index, remote in enumerate(todo, 1):
        def report(done: int, total: int | None, file: str = remote.name, index: int = index) -> None:
            if progress is not None:
                progress(Progress(file, index, len(todo), done, total))

        _fetch(remote, [m + remote.name for m in mirrors], target, name, report, cancelled,
               TIMEOUT if timeout is None else timeout, base_url)
    if source.members:
        archive = target / source.files[0].name
        _unpack(archive, target, source)
        archive.unlink()
    return target


def _needs_fetch(source: DatasetSource, remote: RemoteFile, folder: Path) -> bool:
    path = folder / remote.name
    if not source.members and _idx_present(folder, remote.name):
        return False
    if path.is_file():
        if md5_of(path) == remote.md5:
            return False
        path.unlink()  # damaged or an older copy: fetch it again
    return True


class _Unreachable(Exception):
    """The server could not be reached or refused the file."""


class _Refused(_Unreachable):
    """The server answered with an HTTP error (404, 403, 5xx)."""


class _Interrupted(Exception):
    """The transfer stopped midway; the ``.part`` file keeps what arrived."""


def _fetch(remote: RemoteFile, urls: list[str], folder: Path, name: str,
           report: Callable[[int, int | None], None], cancelled: Callable[[], bool] | None,
           timeout: float, base_url: str | None) -> None:
    part = folder / (remote.name + ".part")
    problems: list[str] = []
    interrupted = refused = False
    for url in urls:
        try:
            _transfer(url, part, report, cancelled, timeout)
        except _Refused as exc:
            problems.append(f"{url} ({exc})")
            refused = True
            continue
        except _Unreachable as exc:
            problems.append(f"{url} ({exc})")
            continue
        except _Interrupted as exc:
            problems.append(f"{url} ({exc})")
            interrupted = True
            continue
        _verify(part, remote)
        os.replace(part, folder / remote.name)
        return
    hand = by_hand(name, folder, base_url)
    if interrupted:
        size = part.stat().st_size if part.is_file() else 0
        raise DataError(f"download of {remote.name} stopped after {size:,} bytes: {'; '.join(problems)}; "
                        f"run the download again to resume it, or {hand}")
    why = "the server refused it" if refused else "offline or unreachable"
    raise DataError(f"cannot download {' or '.join(problems)}: {why}; run the download again later, or {hand}")


def _verify(part: Path, remote: RemoteFile) -> None:
    actual = md5_of(part)
    if actual != remote.md5:
        part.unlink()
        raise DataError(f"{remote.name}: checksum mismatch (MD5 expected {remote.md5}, got {actual}); "
                        f"the damaged download was removed, run the download again")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__


def _transfer(url: str, part: Path, report: Callable[[int, int | None], None],
              cancelled: Callable[[], bool] | None, timeout: float, retried: bool = False) -> None:
    """Fetch ``url`` into ``part``, continuing from its current size with a ``Range`` request."""
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"User-Agent": "neural-canvas"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset and not retried:
            part.unlink()  # nothing beyond our part: it is complete or wrong; the checksum decides on a fresh copy
            _transfer(url, part, report, cancelled, timeout, retried=True)
            return
        raise _Refused(_reason(exc)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise _Unreachable(_reason(exc)) from None
    with response:
        total = _expected_total(response, offset)
        if response.status != 206:
            offset = 0  # the server ignored Range: start over
        done = offset
        try:
            with part.open("ab" if offset else "wb") as out:
                report(done, total)
                while True:
                    if cancelled is not None and cancelled():
                        raise DownloadCancelled(f"download of {part.name.removesuffix('.part')} cancelled after "
                                                f"{done:,} bytes; run it again to resume")
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    report(done, total)
        except (OSError, http.client.HTTPException) as exc:
            raise _Interrupted(_reason(exc)) from None
    if total is not None and done < total:
        raise _Interrupted(f"the connection closed at {done:,} of {total:,} bytes")


def _expected_total(response: http.client.HTTPResponse, offset: int) -> int | None:
    """The whole file's size from ``Content-Range`` (206) or ``Content-Length`` (200)."""
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        start, _, size = content_range.removeprefix("bytes ").partition("/")
        if not start.startswith(f"{offset}-"):
            raise _Interrupted(f"the server answered the range {content_range!r}, not bytes {offset}-")
        return int(size) if size.isdigit() else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None and length.isdigit() else None


def _escapes(name: str) -> bool:
    """Whether an archive path is absolute, climbs with ``..`` or uses Windows separators or drives."""
    parts = PurePosixPath(name).parts
    return name.startswith("/") or "\\" in name or ".." in parts or bool(parts and ":" in parts[0])


def _unpack(archive: Path, folder: Path, source: DatasetSource) -> None:
    """Unpack the expected regular-file members of a tar archive, each written atomically.

    Raises:
        DataError: A member that is absolute or climbs out with ``..``, an expected member that
            is a link or too large, a required member missing, a damaged archive.
    """
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                names = [member.name, member.linkname] if member.issym() or member.islnk() else [member.name]
                if any(_escapes(n) for n in names):
                    raise DataError(f"{archive.name}: member {member.name!r} points outside the folder; "
                                    f"the archive is refused and nothing was unpacked")
            found = {m.name: m for m in members if m.name in source.members}
            absent = [m for m in source.members if m not in found and m not in source.optional]
            if absent:
                raise DataError(f"{archive.name}: lacks {', '.join(absent)}; is it the right archive?")
            for member_name, member in found.items():
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    raise DataError(f"{archive.name}: member {member_name!r} is not a regular file of at most "
                                    f"{MAX_MEMBER_BYTES:,} bytes; the archive is refused")
            for member_name, member in found.items():
                path = _member_path(folder, member_name)
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = tar.extractfile(member)
                if handle is None:
                    raise DataError(f"{archive.name}: member {member_name!r} cannot be read")
                temporary = path.with_name(path.name + ".part")
                with handle, temporary.open("wb") as out:
                    shutil.copyfileobj(handle, out, CHUNK)
                os.replace(temporary, path)
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"{archive.name}: cannot be unpacked ({exc})") from None
