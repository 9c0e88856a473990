"""Autoencoder: reconstruct the input (optionally from a noisy copy: denoising)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from engine.compile.fx_builder import attribute_name
from engine.training.tasks.base import check_output, to_list
from engine.training.tasks.supervised import SupervisedTask

SAMPLES_SHOWN = 8
LATENT_POINTS = 600


class AutoencoderTask(SupervisedTask):
    """Learn ``model(x) ≈ x``; with ``input_noise`` the model sees ``x + noise`` (denoising)."""

    name = "autoencoder"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        compiled = self.setup()
        check_output(self, compiled, self.data.dataset.sample_dims, "reconstructing the input")
        self.noise = self.config.input_noise
        self.latent_node = self._find_latent()

    def _find_latent(self) -> str | None:
        """The submodule of the first node whose output is a 2-D code (for the latent scatter)."""
        analysis = self.compiled.analysis
        for node_id in analysis.order:
            info = analysis.nodes[node_id]
            layer = self.project.graph.nodes[node_id].layer
            if layer.role == "layer" and info.output is not None and info.output.dims == (2,) and \
                    isinstance(getattr(self.model, attribute_name(node_id), None), nn.Module):
                return attribute_name(node_id)
        return None

    def prepare_batch(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.noise > 0:
            return x + self.noise * torch.randn_like(x), x
        return x, x

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        metrics = super().evaluate(x, y)
        if self.noise > 0:
            # the noise's own error: what doing nothing would score
            metrics["noise_mse"] = self.noise ** 2
            metrics["mse_vs_noise"] = metrics["loss"] / self.noise ** 2 if self.loss_name == "mse" else float("nan")
        return metrics

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        dataset = self.data.dataset
        count = min(SAMPLES_SHOWN, len(x))
        clean = x[:count]
        with self.evaluating():
            noisy, _ = self.prepare_batch(clean, None)
            recon = self.model(noisy).float()
        shape = dataset.image_shape or dataset.sample_dims
        payload: dict[str, Any] = {"inputs": to_list(self._original(clean).reshape(count, *shape), 3),
                                   "reconstructions": to_list(self._original(recon).reshape(count, *shape), 3),
                                   "is_image": dataset.image_shape is not None}
        if self.noise > 0:
            payload["noisy"] = to_list(self._original(noisy).reshape(count, *shape), 3)
        if self.latent_node is not None:
            payload["latent"] = self._latent(x[:LATENT_POINTS])
            if dataset.y is not None and dataset.target_kind == "classes":
                payload["latent_labels"] = [int(v) for v in dataset.y[self.data.val_index[:LATENT_POINTS]]]
                payload["class_names"] = dataset.class_names
        return "reconstruction", payload

    def _latent(self, x: torch.Tensor) -> list[list[float]]:
        codes: list[torch.Tensor] = []
        hook = getattr(self.model, str(self.latent_node)).register_forward_hook(
            lambda module, args, output: codes.append(output.detach().float().clone()))
        try:
            with self.evaluating():
                self.model(x)
        finally:
            hook.remove()
        return to_list(codes[0], 3)

    def _original(self, values: torch.Tensor) -> Any:
        array = values.detach().float().cpu().numpy()
        norm = self.data.x_normalization
        return norm.invert(array) if norm is not None else array
