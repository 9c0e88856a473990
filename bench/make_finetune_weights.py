"""Write the pretrained weights the fine-tuning template starts from.

templates/finetune_digits.json fine-tunes a small CNN on the digits 5-9 of scikit-learn's
8x8 digits. Its weights file, templates/finetune_digits.safetensors, is that CNN trained on
the *other* digits, 0-4, by this script: the template's own graph with every layer trainable
and its classifier named ``fc1`` and ``fc2`` (the original model's 64 hidden units and 5-way
head for 0-4). The template replaced those two layers by ``new_fc1`` and ``new_fc2`` for 5-9,
so when it trains, the convolutions conv1 and conv2 load from the file and the new classifier
starts fresh (the file's ``fc1`` and ``fc2`` are left unused: features that separate 0-4 late in
the network transfer worse than a fresh classifier on the convolutions' features).

Training runs on the CPU with the engine's own Trainer (as ``python main.py train`` does),
seeded and deterministic, so the same versions of torch and scikit-learn write the same file.
This is a generator, not a benchmark; bench/finetune.py measures what the weights are worth.

Usage::

    python bench/make_finetune_weights.py [--out templates/finetune_digits.safetensors] [--epochs 15]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TEMPLATE = ROOT / "templates" / "finetune_digits.json"
WEIGHTS = TEMPLATE.with_suffix(".safetensors")
#: The digits the original model learned; the template fine-tunes on the others.
PRETRAIN_CLASSES = [0, 1, 2, 3, 4]
#: The template's new classifier layers -> the original model's layers they replaced.
ORIGINAL_IDS = {"new_fc1": "fc1", "new_fc2": "fc2"}


def pretraining_project(epochs: int, seed: int) -> Any:
    """The original model: the template's graph, all layers trainable, its classifier ``fc1``, ``fc2``, on 0-4."""
    from engine.graph.fileformat import loads

    data = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    data["meta"] = {"name": "CNN on digits 0-4", "family": "cnn", "task": "classification"}
    for node in data["graph"]["nodes"]:
        node.pop("trainable", None)
        node.pop("lr_scale", None)
        node["id"] = ORIGINAL_IDS.get(node["id"], node["id"])
    for edge in data["graph"]["edges"]:
        for end in ("source", "target"):
            edge[end] = ORIGINAL_IDS.get(edge[end], edge[end])
    data["dataset"] = {"name": "digits", "classes": PRETRAIN_CLASSES}
    data["training"].update(epochs=epochs, seed=seed, deterministic=True, device="cpu")
    return loads(json.dumps(data), source="pretraining project")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=WEIGHTS, help="weights file to write")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from engine.compile.weights import save_weights
    from engine.training.events import Finished
    from engine.training.trainer import Trainer, TrainOptions

    torch.set_num_threads(1)  # the same float sums on every machine size
    trainer = Trainer(TrainOptions(pretraining_project(args.epochs, args.seed), None, TEMPLATE.parent,
                                   {"device": "cpu"}), lambda event: None)
    result = trainer.run()
    if not isinstance(result, Finished) or result.reason != "completed":
        print(f"pretraining failed: {getattr(result, 'message', result)}", file=sys.stderr)
        return 1
    weights = {key: tensor.detach().cpu().float() for key, tensor in trainer.task.weights().items()}
    save_weights(weights, args.out)
    parameters = sum(t.numel() for t in weights.values())
    print(f"digits 0-4: val accuracy {result.metrics['val_accuracy']:.4f} after {args.epochs} epochs "
          f"(seed {args.seed})")
    print(f"wrote {args.out.name}: {len(weights)} tensors, {parameters:,} parameters, "
          f"{args.out.stat().st_size:,} bytes ({', '.join(sorted({k.split('.')[0] for k in weights}))})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
