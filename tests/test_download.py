"""Downloading MNIST, Fashion-MNIST and CIFAR-10: resume, checksums, safe unpacking, clear
offline messages, and the default datasets folder. A local HTTP server stands in for the
canonical sources; nothing touches the internet."""

from __future__ import annotations

import gzip
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engine.cli import run_cli
from engine.data import DATASETS, DataError, download, load_dataset
from engine.data.download import (
    DownloadCancelled,
    Progress,
    download_dataset,
    missing_files,
)
from tests.download_server import (
    FileServer,
    cifar_archive,
    md5,
    mnist_files,
    serve_sources,
)

IMAGES = "train-images-idx3-ubyte.gz"


@pytest.fixture
def server() -> Iterator[FileServer]:
    files = FileServer()
    yield files
    files.close()


@pytest.fixture(autouse=True)
def _datasets_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(download.DATASETS_DIR_ENV, str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_canonical_table_lists_the_published_files() -> None:
    assert set(download.SOURCES) == {"mnist", "fashion_mnist", "cifar10"}
    mnist = download.SOURCES["mnist"]
    assert mnist.mirrors[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert [f.name for f in mnist.files] == [IMAGES, "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                                             "t10k-labels-idx1-ubyte.gz"]
    assert all(len(f.md5) == 32 for s in download.SOURCES.values() for f in s.files)
    assert download.SOURCES["cifar10"].files[0].md5 == "c32a1d4ab5d03f1284b67883e8d87530"
    for name in download.SOURCES:  # the project file may leave the path out
        assert not next(o for o in DATASETS[name].options if o.name == "path").required


def test_full_download_then_loads_from_the_default_folder(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                          _datasets_dir: Path) -> None:
    files, labels = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    seen: list[Progress] = []
    folder = download_dataset("mnist", progress=seen.append)
    assert folder == _datasets_dir / "mnist" and sorted(p.name for p in folder.iterdir()) == sorted(files)
    last = [p for p in seen if p.file == IMAGES][-1]
    assert last.done == last.total == len(files[IMAGES]) and (last.index, last.count) == (1, 4)
    train = load_dataset({"name": "mnist"})
    assert train.x.shape == (60, 1, 28, 28) and train.x.dtype == np.float32
    assert np.array_equal(train.y, labels)
    assert len(load_dataset({"name": "mnist", "part": "both"})) == 80


def test_a_truncated_download_resumes_with_range(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    server.truncate_once[IMAGES] = 10_000
    with pytest.raises(DataError, match=r"download of train-images-idx3-ubyte\.gz stopped after 10,000 bytes.*"
                                        r"run the download again to resume") as caught:
        download_dataset("mnist", tmp_path / "m")
    assert "\n" not in str(caught.value) and str(tmp_path / "m") in str(caught.value)
    assert (tmp_path / "m" / f"{IMAGES}.part").stat().st_size == 10_000
    server.requests.clear()
    download_dataset("mnist", tmp_path / "m")
    assert server.requests[0] == (IMAGES, "bytes=10000-")
    assert (tmp_path / "m" / IMAGES).read_bytes() == files[IMAGES]
    assert not list((tmp_path / "m").glob("*.part"))
    assert len(load_dataset({"name": "mnist", "path": str(tmp_path / "m")})) == 60


def test_a_server_that_ignores_range_restarts_from_zero(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / f"{IMAGES}.part").write_bytes(b"junk from an older attempt")
    server.ignore_range = True
    download_dataset("mnist", tmp_path / "m")
    assert server.requests[0] == (IMAGES, "bytes=26-")
    assert (tmp_path / "m" / IMAGES).read_bytes() == files[IMAGES]


def test_a_part_as_long_as_the_file_but_wrong_is_fetched_again(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / f"{IMAGES}.part").write_bytes(b"\0" * len(files[IMAGES]))  # the server answers 416
    download_dataset("mnist", tmp_path / "m")
    assert [r for r in server.requests if r[0] == IMAGES] == [(IMAGES, f"bytes={len(files[IMAGES])}-"),
                                                             (IMAGES, None)]
    assert (tmp_path / "m" / IMAGES).read_bytes() == files[IMAGES]


def test_a_bad_checksum_removes_the_file_and_names_both_sums(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files, checksums={IMAGES: "0" * 32})
    with pytest.raises(DataError) as caught:
        download_dataset("mnist", tmp_path / "m")
    actual = md5(files[IMAGES])
    assert str(caught.value) == (f"{IMAGES}: checksum mismatch (MD5 expected {'0' * 32}, got {actual}); the damaged "
                                 f"download was removed, run the download again")
    assert not (tmp_path / "m" / IMAGES).exists() and not (tmp_path / "m" / f"{IMAGES}.part").exists()


def test_offline_names_the_url_and_the_folder(tmp_path: Path) -> None:
    url = _closed_port_url()
    with pytest.raises(DataError) as caught:
        download_dataset("mnist", tmp_path / "m", base_url=url, timeout=5)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"cannot download {url}{IMAGES} (")
    assert "offline or unreachable" in message and f"into {tmp_path / 'm'} by hand" in message
    assert not list((tmp_path / "m").glob("*.part"))


def test_cancelling_keeps_the_part_to_resume(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    monkeypatch.setattr(download, "CHUNK", 4096)
    polls = iter([False, False, True])
    with pytest.raises(DownloadCancelled, match=r"cancelled after 8,192 bytes; run it again to resume"):
        download_dataset("mnist", tmp_path / "m", cancelled=lambda: next(polls))
    assert (tmp_path / "m" / f"{IMAGES}.part").stat().st_size == 8192
    download_dataset("mnist", tmp_path / "m")
    assert server.requests[-4] == (IMAGES, "bytes=8192-")


def test_present_files_need_no_network(server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    download_dataset("mnist", tmp_path / "m")
    count = len(server.requests)
    assert download_dataset("mnist", tmp_path / "m", base_url=_closed_port_url()) == tmp_path / "m"
    assert len(server.requests) == count
    # uncompressed idx files put there by hand count too
    hand = tmp_path / "hand"
    hand.mkdir()
    for name, data in files.items():
        (hand / name.removesuffix(".gz")).write_bytes(gzip.decompress(data))
    assert missing_files("mnist", hand) == []
    download_dataset("mnist", hand, base_url=_closed_port_url())
    assert len(server.requests) == count


def test_a_damaged_gz_in_the_folder_is_fetched_again(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "fashion_mnist", files)
    download_dataset("fashion_mnist", tmp_path / "f")
    (tmp_path / "f" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    server.requests.clear()
    download_dataset("fashion_mnist", tmp_path / "f")  # all four there, one with the wrong checksum
    assert server.requests == [("t10k-labels-idx1-ubyte.gz", None)]
    (tmp_path / "f" / IMAGES).unlink()
    (tmp_path / "f" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"damaged")
    server.requests.clear()
    download_dataset("fashion_mnist", tmp_path / "f")
    assert sorted(name for name, _ in server.requests) == sorted([IMAGES, "t10k-labels-idx1-ubyte.gz"])
    data = load_dataset({"name": "fashion_mnist", "path": str(tmp_path / "f"), "part": "test"})
    assert data.class_names[0] == "T-shirt/top" and len(data) == 20


def test_cifar_archive_is_unpacked_and_loads(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                             _datasets_dir: Path) -> None:
    serve_sources(monkeypatch, server, "cifar10", {"cifar-10-binary.tar.gz": cifar_archive(per_batch=3)})
    folder = download_dataset("cifar10")
    batches = folder / "cifar-10-batches-bin"
    assert sorted(p.name for p in batches.iterdir()) == sorted(
        [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin", "batches.meta.txt"])
    assert not (folder / "cifar-10-binary.tar.gz").exists() and not list(folder.rglob("*.part"))
    train = load_dataset({"name": "cifar10"})
    assert train.x.shape == (15, 3, 32, 32) and train.class_names[1] == "car"
    assert list(train.y[:3]) == [0, 1, 2] and list(train.y[3:6]) == [1, 2, 3]
    assert len(load_dataset({"name": "cifar10", "part": "test"})) == 3
    server.requests.clear()
    download_dataset("cifar10")
    assert server.requests == []


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "cifar-10-batches-bin/../../evil.txt"])
def test_cifar_archive_with_a_path_traversal_member_is_refused(server: FileServer, monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path, member: str) -> None:
    serve_sources(monkeypatch, server, "cifar10",
                  {"cifar-10-binary.tar.gz": cifar_archive(extra={member: b"owned"})})
    folder = tmp_path / "deep" / "c"
    with pytest.raises(DataError, match=r"member '.*evil\.txt' points outside the folder; the archive is refused"):
        download_dataset("cifar10", folder)
    assert not (folder / "cifar-10-batches-bin").exists()
    assert not (tmp_path / "deep" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_missing_default_files_say_how_to_get_them(_datasets_dir: Path) -> None:
    with pytest.raises(DataError) as caught:
        load_dataset({"name": "cifar10"})
    message = str(caught.value)
    assert str(_datasets_dir / "cifar10") in message and "`python main.py download cifar10`" in message
    assert "Download button" in message and "\n" not in message
    with pytest.raises(DataError, match=r"^dataset\.path: no such folder"):  # an explicit path keeps its check
        load_dataset({"name": "mnist", "path": "nope"}, base_dir=_datasets_dir)


def test_cli_download(server: FileServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                      capsys: pytest.CaptureFixture[str]) -> None:
    files, _ = mnist_files()
    serve_sources(monkeypatch, server, "mnist", files)
    sources = download.SOURCES["mnist"]
    monkeypatch.setitem(download.SOURCES, "mnist", download.DatasetSource("mnist", (_closed_port_url(),), sources.files))
    assert run_cli(["download", "mnist", "--to", str(tmp_path / "m"), "--url", server.url]) == 0
    assert capsys.readouterr().out.strip() == f"mnist: downloaded and verified in {tmp_path / 'm'}"
    assert run_cli(["download", "mnist", "--to", str(tmp_path / "m")]) == 0
    assert capsys.readouterr().out.strip() == f"mnist: already in {tmp_path / 'm'}"
    url = _closed_port_url()
    assert run_cli(["download", "fashion_mnist", "--url", url]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot download {url}")
    assert run_cli(["download", "digits"]) == 1
