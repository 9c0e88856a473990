"""Measuring ONNX models with ONNX Runtime in a separate process: the task's metric on the
validation split and the median batch-1 latency.

A converted model can crash ONNX Runtime itself (a segmentation fault while it builds the
session: seen with fp16 recurrent networks), which would take the app or the command with it.
In a child process such a crash is only a failed check that the export reports. The child is
spawned (never forked from a process with threads) and watched with a deadline: it answers
through a pipe, and a pipe closed without an answer means it died.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

_BATCH = 256
#: Timed runs of one model before the next model's turn.
BLOCK = 20


def measure(paths: list[str], input_name: str, x_file: str, y_file: str | None, metric: str,
            rounds: int) -> list[tuple[float, float]]:
    """``(metric, median latency in ms)`` of each model, one thread each, on the saved arrays.

    Args:
        paths: The ``.onnx`` files.
        input_name: The models' input.
        x_file: ``.npy`` of the validation inputs (memory-mapped).
        y_file: ``.npy`` of the targets, or ``None`` (autoencoders).
        metric: ``accuracy`` (in %), ``mae`` or ``mse`` (reconstruction).
        rounds: Timed batch-1 runs (after as many warm-up runs).
    """
    x = np.load(x_file, mmap_mode="r")
    y = None if y_file is None else np.load(y_file, mmap_mode="r")
    sessions = [_session(path) for path in paths]
    metrics = [_metric(session, input_name, x, y, metric) for session in sessions]
    return list(zip(metrics, _latencies(sessions, input_name, x, rounds)))


def _session(path: str) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _metric(session: Any, input_name: str, x: np.ndarray, y: np.ndarray | None, metric: str) -> float:
    out = np.concatenate([session.run(None, {input_name: np.ascontiguousarray(x[i:i + _BATCH])})[0]
                          for i in range(0, len(x), _BATCH)]).astype(np.float64)
    if metric == "accuracy":
        assert y is not None
        return float((out.argmax(axis=-1) == np.asarray(y)).mean() * 100.0)
    if metric == "mae":
        assert y is not None
        return float(np.abs(out.reshape(y.shape) - y).mean())
    return float(((out.reshape(x.shape) - x) ** 2).mean())


def _latencies(sessions: list[Any], input_name: str, x: np.ndarray, rounds: int) -> list[float]:
    """Median batch-1 latency (ms) of each session over ``rounds`` runs, after as many warm-up runs.

    The models take turns, :data:`BLOCK` runs at a time, so a change of the machine's speed
    while they are timed (another process, the clock) touches them alike.
    """
    one = {input_name: np.ascontiguousarray(x[:1])}
    for session in sessions:
        for _ in range(rounds):
            session.run(None, one)
    timings: list[list[float]] = [[] for _ in sessions]
    for start in range(0, rounds, BLOCK):
        for session, times in zip(sessions, timings):
            for _ in range(min(BLOCK, rounds - start)):
                began = time.perf_counter()
                session.run(None, one)
                times.append(time.perf_counter() - began)
    return [statistics.median(times) * 1000.0 for times in timings]


def _child(connection: Any, args: tuple[Any, ...]) -> None:
    """The child's body: measure, and send back the figures or the error's text."""
    try:
        connection.send(("ok", measure(*args)))
    except Exception as exc:  # noqa: BLE001 - anything ONNX Runtime raises goes back as text
        connection.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        connection.close()


def measure_apart(paths: list[Path], input_name: str, x: np.ndarray, y: np.ndarray | None, metric: str,
                  rounds: int, folder: Path, timeout: float = 1800.0) -> list[tuple[float, float]]:
    """:func:`measure` in a spawned child process, the arrays passed as files in ``folder``.

    Raises:
        RuntimeError: ONNX Runtime crashed the child, refused a model (its message), or the
            measurement took longer than ``timeout`` seconds.
    """
    import multiprocessing

    x_file, y_file = folder / "measure_x.npy", folder / "measure_y.npy"
    np.save(x_file, np.ascontiguousarray(x))
    if y is not None:
        np.save(y_file, np.ascontiguousarray(y))
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    args = ([str(p) for p in paths], input_name, str(x_file), None if y is None else str(y_file), metric, rounds)
    child = context.Process(target=_child, args=(sender, args), name="neural-canvas-onnx-check", daemon=True)
    child.start()
    sender.close()  # the child holds the sending end: its death ends the pipe
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if receiver.poll(0.2):
                try:
                    status, value = receiver.recv()
                except EOFError:
                    break  # the child died before it answered
                if status == "ok":
                    return value
                raise RuntimeError(value)
            if not child.is_alive() and not receiver.poll(0):
                break
        else:
            raise RuntimeError(f"the check took more than {timeout:.0f} s")
        raise RuntimeError("ONNX Runtime crashed while loading or running the model")
    finally:
        if child.is_alive():
            child.kill()
        child.join(5)
        receiver.close()
