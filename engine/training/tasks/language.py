"""Next-token language modeling with sampled text snapshots."""

from __future__ import annotations

import math
from typing import Any

import torch

from engine.data.fit import vocabulary_size
from engine.training.tasks.base import TaskError
from engine.training.tasks.supervised import SupervisedTask

GENERATED_CHARS = 200


class LanguageModelTask(SupervisedTask):
    """Predict each next token; reports perplexity and token accuracy, samples text."""

    name = "language_model"
    allowed_losses = ("cross_entropy",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        compiled = self.setup()
        dataset = self.data.dataset
        size = vocabulary_size(dataset)
        vocabulary = dataset.vocabulary or [str(i) for i in range(size)]
        spec = compiled.output_specs[0]
        seq_len = dataset.sample_dims[0]
        if spec.dims != (seq_len, size):
            source = self.output_source(compiled.output_ids[0])
            raise TaskError(f"node {source} ({self.project.graph.nodes[source].layer.title}) feeds the Output "
                            f"{spec} but next-token prediction needs (N, {seq_len}, {size}): one score "
                            f"per vocabulary entry at every step; set its size to {size}")
        self.vocabulary = vocabulary
        self.seq_len = seq_len

    def compute_loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn(output.reshape(-1, output.shape[-1]), target.reshape(-1))

    def metric_sums(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        correct = (output.argmax(-1) == target).float().mean(1).sum()
        return {"correct": correct}

    def finish_metrics(self, sums: dict[str, float], count: int) -> dict[str, float]:
        loss = sums["loss"] / count
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "accuracy": sums["correct"] / count}

    def generate(self, prompt: torch.Tensor, length: int, temperature: float,
                 generator: torch.Generator | None = None) -> list[int]:
        """Sample ``length`` tokens after ``prompt`` (1-D token ids), feeding the last window each step."""
        tokens = prompt.tolist()
        with self.evaluating():
            for _ in range(length):
                window = torch.tensor([tokens[-self.seq_len:]], device=self.device)
                logits = self.model(window)[0, -1].float() / temperature
                probabilities = torch.softmax(logits, dim=0).cpu()
                tokens.append(int(torch.multinomial(probabilities, 1, generator=generator)))
        return tokens[len(prompt):]

    def snapshot(self, x: torch.Tensor, y: torch.Tensor | None) -> tuple[str, dict[str, Any]] | None:
        generator = torch.Generator().manual_seed(self.config.seed)
        prompt = x[0]
        generated = self.generate(prompt, GENERATED_CHARS, self.config.temperature, generator)
        decode = "".join if all(len(entry) == 1 for entry in self.vocabulary) else " ".join
        return "text", {"prompt": decode(self.vocabulary[int(t)] for t in prompt),
                        "generated": decode(self.vocabulary[t] for t in generated),
                        "temperature": self.config.temperature}
