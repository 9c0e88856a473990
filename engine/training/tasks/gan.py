"""GAN: a generator (Noise Input -> Output) and a discriminator (Input -> Output), both drawn.

The project marks nothing special: the Output reached from a Noise Input is the generator,
the Output reached from the data Input is the discriminator. The discriminator's Input
receives real samples, and the generator's samples during training. Losses are the
non-saturating ones: D minimizes BCE(D(x), 1) + BCE(D(G(z)), 0); G minimizes BCE(D(G(z)), 1).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from engine.data.fit import check_input_fits
from engine.graph.gan import gan_parts
from engine.training.tasks.base import Task, TaskError, to_list

FIXED_SAMPLES = 16
POINTS = 500


class GanTask(Task):
    """Alternate discriminator and generator steps."""

    name = "gan"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        generator_out, discriminator_out = self._find_outputs()
        self.generator_c = self.compile([generator_out])
        self.discriminator_c = self.compile([discriminator_out])
        if len(self.discriminator_c.input_ids) != 1:
            raise TaskError(f"the discriminator (Output {discriminator_out}) must start from one data Input")
        check_input_fits(self.data.dataset, self.discriminator_c.input_ids[0], self.discriminator_c.input_specs[0])
        sample = self.data.dataset.sample_dims
        produced = self.generator_c.output_specs[0]
        if produced.dims != sample:
            raise TaskError(f"the generator (Output {generator_out}) makes samples {produced} but the data "
                            f"{self.data.dataset.name} has samples (N, {', '.join(map(str, sample))}): change the "
                            f"last generator layer ({self.output_source(generator_out)})")
        if self.discriminator_c.output_specs[0].dims != (1,):
            raise TaskError(f"the discriminator (Output {discriminator_out}) must give one logit per sample "
                            f"(N, 1), not {self.discriminator_c.output_specs[0]}: end it with a Linear of size 1")
        noise_node = self.project.graph.nodes[self.generator_c.input_ids[0]]
        self.latent_dim = int(noise_node.params["latent_dim"])
        self.uniform = noise_node.params["distribution"] == "uniform"
        self.generator = self.generator_c.module
        self.discriminator = self.discriminator_c.module
        self.add_optimizer("generator", self.generator)
        self.add_optimizer("discriminator", self.discriminator)
        fixed = torch.Generator().manual_seed(self.config.seed + 1)
        self.fixed_noise = self._noise(max(FIXED_SAMPLES, POINTS), fixed).to(self.device)

    def _find_outputs(self) -> tuple[str, str]:
        parts = gan_parts(self.project.graph)
        generator, discriminator = parts.generator_outputs, parts.discriminator_outputs
        if len(generator) != 1 or len(discriminator) != 1:
            raise TaskError("a GAN needs two Outputs: one reached from a Noise Input (the generator) and one "
                            f"reached from the data Input (the discriminator); found generator outputs "
                            f"{generator or 'none'} and discriminator outputs {discriminator or 'none'}")
        return generator[0], discriminator[0]

    def _noise(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.uniform:
            return torch.rand(count, self.latent_dim, generator=generator) * 2 - 1
        return torch.randn(count, self.latent_dim, generator=generator)

    def _sample_noise(self, count: int) -> torch.Tensor:
        if self.uniform:
            return torch.rand(count, self.latent_dim, device=self.device) * 2 - 1
        return torch.randn(count, self.latent_dim, device=self.device)

    @staticmethod
    def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits.float(), target.float())

    def train_step(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        count = len(x)
        for _ in range(self.config.gan_d_steps):
            with self.autocast():
                fake = self.generator(self._sample_noise(count)).detach()
                d_loss = self._bce(self.discriminator(x), True) + self._bce(self.discriminator(fake), False)
            self.optimize("discriminator", d_loss, self.discriminator)
        with self.autocast():
            g_loss = self._bce(self.discriminator(self.generator(self._sample_noise(count))), True)
        self.optimize("generator", g_loss, self.generator)
        d_loss, g_loss = d_loss.detach(), g_loss.detach()
        return {"loss": d_loss + g_loss, "d_loss": d_loss, "g_loss": g_loss}

    def evaluate(self, x: torch.Tensor, y: torch.Tensor | None) -> dict[str, float]:
        sums = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        with self.evaluating():
            for xb, _ in self.eval_batches(x, None):
                real = self.discriminator(xb).float()
                fake = self.discriminator(self.generator(self._sample_noise(len(xb)))).float()
                n = len(xb)
                sums["d_loss"] += float(self._bce(real, True) + self._bce(fake, False)) * n
                sums["g_loss"] += float(self._bce(fake, True)) * n
                sums["d_real"] += float(torch.sigmoid(real).sum())
                sums["d_fake"] += float(torch.sigmoid(fake).sum())
        n = max(len(x), 1)
        metrics = {key: value / n for key, value in sums.items()}
        metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]
        centers = self.data.dataset.extras.get("centers")
        if centers is not None:
            metrics["modes_covered"] = float(self.modes_covered(np.asarray(centers)))
        return metrics

    def generate(self, noise: torch.Tensor) -> np.ndarray:
        """Generator samples in the data's original units."""
        with self.evaluating():
            samples = self.generator(noise).float().cpu().numpy()
        norm = self.data.x_normalization
        return norm.invert(samples) if norm is not None else samples

    def modes_covered(self, centers: np.ndarray, min_share: float = 0.02) -> int:
        """How many mode centres attract at least ``min_share`` of the fixed generated points.

        A point counts for its nearest centre when it lies within a third of the distance from
        that centre to its closest neighbouring centre (points smeared between modes count for none).
        """
        points = self.generate(self.fixed_noise[:POINTS])
        nearest = np.argmin(((points[:, None, :] - centers[None]) ** 2).sum(-1), axis=1)
        spread = np.sqrt(((points - centers[nearest]) ** 2).sum(-1))
        if len(centers) > 1:
            gaps = np.sqrt(((centers[:, None] - centers[None]) ** 2).sum(-1))
            np.fill_diagonal(gaps, np.inf)
            close = spread < gaps.min(1)[nearest] / 3
        else:
            close = np.ones(len(points), dtype=bool)
        counts = np.bincount(nearest[close], minlength=len(centers))
        return int((counts >= min_share * len(points)).sum())

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        dataset = self.data.dataset
        if dataset.sample_dims == (2,):
            real = dataset.x[self.data.val_index[:POINTS]]
            return "gan_points", {"generated": to_list(self.generate(self.fixed_noise[:POINTS]), 3),
                                  "real": to_list(real, 3)}
        shape = dataset.image_shape or dataset.sample_dims
        samples = self.generate(self.fixed_noise[:FIXED_SAMPLES]).reshape(FIXED_SAMPLES, *shape)
        return "gan_images", {"samples": to_list(samples, 3), "is_image": dataset.image_shape is not None}
