"""Training progress as text: a tqdm bar and one line per epoch (the CLI and distributed rank 0)."""

from __future__ import annotations

import sys
from typing import Any

from engine.training.events import (BatchMetrics, EpochEnd, Event, Failed, Finished, GradientHealth, RunStarted,
                                    StateChanged)


class ProgressPrinter:
    """Turns events into a tqdm progress bar and one line per epoch."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar: Any = None
        self.epochs = 0
        self.warned: set[str] = set()
        self.history: list[dict[str, Any]] = []

    def write(self, text: str) -> None:
        """Print a line without breaking the bar."""
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def show(self, event: Event) -> None:
        """Draw one event."""
        if isinstance(event, RunStarted):
            self.epochs = event.epochs
            resumed = f", resumed at epoch {event.start_epoch}" if event.start_epoch else ""
            self.write(f"training {event.task} on {event.device} ({event.device_name}): {event.parameters:,} "
                       f"parameters, {event.train_samples:,} training / {event.val_samples:,} validation samples"
                       f"{resumed}")
            if event.initial_weights:
                self.write(event.initial_weights)
            if event.run_dir:
                self.write(f"run folder: {event.run_dir}")
            if not self.quiet:
                from tqdm import tqdm

                total = event.epochs * event.steps_per_epoch
                self.bar = tqdm(total=total, initial=event.start_epoch * event.steps_per_epoch, unit="step",
                                dynamic_ncols=True, file=sys.stderr, leave=False, disable=None)
        elif isinstance(event, BatchMetrics) and self.bar is not None:
            self.bar.set_description(f"epoch {event.epoch + 1}/{self.epochs}")
            self.bar.set_postfix(loss=f"{event.metrics['loss']:.4f}", refresh=False)
            self.bar.update(event.global_step - self.bar.n)
        elif isinstance(event, EpochEnd):
            if self.bar is not None:
                self.bar.update(event.global_step - self.bar.n)
            val = "  ".join(f"val {k} {_fmt(v)}" for k, v in event.val.items())
            self.write(f"epoch {event.epoch}/{self.epochs}  train loss {_fmt(event.train.get('loss', 0))}  {val}  "
                       f"({event.seconds:.1f} s, {event.samples_per_s:,.0f} samples/s)")
            self._watch_overfitting(event)
        elif isinstance(event, GradientHealth):
            for warning in event.warnings:  # each kind of problem once a run
                if warning["kind"] not in self.warned:
                    self.warned.add(warning["kind"])
                    self.write(f"warning (step {event.global_step}): {warning['message']}")
        elif isinstance(event, StateChanged):
            self.write(f"[{event.state}]")
        elif isinstance(event, Finished):
            self.close()
            metrics = "  ".join(f"{k} {_fmt(v)}" for k, v in event.metrics.items() if k.startswith("val_"))
            self.write(f"{event.reason}: {event.epochs_completed} epoch(s), {event.global_step} steps  {metrics}")
            if event.run_dir:
                self.write(f"run folder: {event.run_dir}")
                if event.reason == "stopped":
                    self.write(f"continue it with: python main.py train --resume {event.run_dir}")
        elif isinstance(event, Failed):
            self.close()
            print(f"error: {event.message}", file=sys.stderr, flush=True)

    def _watch_overfitting(self, event: EpochEnd) -> None:
        from engine.training.overfitting import overfitting_advice, overfitting_since

        self.history.append({"epoch": event.epoch, "train": event.train, "val": event.val})
        since = overfitting_since(self.history)
        if since is not None and "overfitting" not in self.warned:
            self.warned.add("overfitting")
            self.write(f"warning (epoch {event.epoch}): {overfitting_advice(since, 'loss')}")

    def close(self) -> None:
        """Remove the bar."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fmt(value: float) -> str:
    return f"{value:.4g}"
