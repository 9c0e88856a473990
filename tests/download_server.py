"""A local HTTP server and tiny dataset files for the download tests (never the internet).

:class:`FileServer` serves bytes from memory on 127.0.0.1 with ``Range`` support and can
misbehave on purpose: drop the connection midway once, or ignore ``Range``.
:func:`mnist_files` and :func:`cifar_archive` make small files in the canonical formats, and
:func:`serve_sources` points :data:`engine.data.download.SOURCES` at them with their real MD5s.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from engine.data import download


class FileServer:
    """Serves ``files`` (name -> bytes) at ``url`` and records every request.

    Attributes:
        files: What is served, by name.
        requests: ``(name, Range header or None)`` of every request, in order.
        truncate_once: name -> bytes after which the next response for it drops the connection.
        ignore_range: Answer every request with the whole file (200).
        gate: Every request waits until it is set (it is, unless a test clears it).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.truncate_once: dict[str, int] = {}
        self.ignore_range = False
        self.gate = threading.Event()
        self.gate.set()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.gate.wait(30)
                name = self.path.rsplit("/", 1)[-1]
                wanted = self.headers.get("Range")
                owner.requests.append((name, wanted))
                data = owner.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if wanted and not owner.ignore_range:
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = owner.truncate_once.pop(name, None)
                self.wfile.write(body if cut is None else body[:cut])
                self.wfile.flush()
                if cut is not None:
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/data/"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def _idx(array: np.ndarray, magic: int) -> bytes:
    return gzip.compress(struct.pack(">I", magic) + struct.pack(f">{array.ndim}I", *array.shape)
                         + array.astype(np.uint8).tobytes(), mtime=0)


def mnist_files(train: int = 60, test: int = 20, seed: int = 0) -> tuple[dict[str, bytes], np.ndarray]:
    """Four gzipped idx files of random 28x28 images; also returns the train labels."""
    rng = np.random.default_rng(seed)
    labels = {"train": rng.integers(0, 10, train), "t10k": rng.integers(0, 10, test)}
    files = {}
    for prefix, count in (("train", train), ("t10k", test)):
        files[f"{prefix}-images-idx3-ubyte.gz"] = _idx(rng.integers(0, 256, (count, 28, 28)), 0x803)
        files[f"{prefix}-labels-idx1-ubyte.gz"] = _idx(labels[prefix], 0x801)
    return files, labels["train"]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar_archive(per_batch: int = 3, extra: dict[str, bytes] | None = None) -> bytes:
    """A ``cifar-10-binary.tar.gz`` with five train batches, a test batch, the meta file and a readme.

    Args:
        per_batch: Records per batch; labels cycle 0..9.
        extra: More members (name -> bytes), e.g. ``{"../evil.txt": b"x"}``.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for index, name in enumerate([*(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin"]):
            rows = np.zeros((per_batch, 3073), np.uint8)
            rows[:, 0] = (np.arange(per_batch) + index) % 10
            rows[:, 1:] = (index * 40 + np.arange(3072)) % 256
            _add(tar, f"cifar-10-batches-bin/{name}", rows.tobytes())
        _add(tar, "cifar-10-batches-bin/batches.meta.txt",
             b"plane\ncar\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n")
        _add(tar, "cifar-10-batches-bin/readme.html", b"<p>readme</p>")
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return buffer.getvalue()


def md5(data: bytes) -> str:
    """Hex MD5 of bytes."""
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def serve_sources(monkeypatch: pytest.MonkeyPatch, server: FileServer, name: str, files: dict[str, bytes],
                  checksums: dict[str, str] | None = None) -> None:
    """Serve ``files`` for dataset ``name`` and make the download table list them (real MD5s
    unless ``checksums`` overrides some), with the server as the only mirror."""
    server.files.update(files)
    known = download.SOURCES[name]
    remote = tuple(download.RemoteFile(n, (checksums or {}).get(n, md5(data))) for n, data in files.items())
    monkeypatch.setitem(download.SOURCES, name, download.DatasetSource(
        name, (server.url,), remote, known.members, known.optional))
