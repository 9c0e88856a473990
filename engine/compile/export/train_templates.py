"""The text of the generated ``train.py``, in pieces.

Markers ``__NAME__`` are replaced by :mod:`engine.compile.export.train_script` with Python
literals (never raw project text). The pieces are plain PyTorch: data loading, a seeded
split, standardization with training statistics, the optimizer the project names (frozen
layers left out, per-layer learning-rate multipliers as parameter groups), and a
loop that runs under ``torchrun`` with DistributedDataParallel when ``WORLD_SIZE > 1``.
"""

HEAD = '''\
__DOC__

from __future__ import annotations

import argparse
import gc
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

import model as model_file

HERE = Path(__file__).resolve().parent
TASK = __TASK__
LOSS = __LOSS__
SETTINGS = __SETTINGS__
#: Layers the project freezes (their weights and batch-norm statistics stay as loaded).
FROZEN = __FROZEN__
#: Learning-rate multipliers of layers (the rest train at SETTINGS["lr"]).
LR_SCALES = __LR_SCALES__
#: The project's augmentation of training batches (augment_ops.py beside this script), or None.
AUGMENT = __AUGMENT__
#: (channels, height, width) of the image samples, or None; number of classes.
IMAGE_SHAPE = __IMAGE_SHAPE__
CLASSES = __CLASSES__


def load_data() -> tuple[np.ndarray, np.ndarray | None]:
    """The whole dataset: inputs x and targets y (None when the task learns from x alone)."""
__LOAD__


def split(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation row indices. The run's own rows when split.npz (written when a trained
    run is exported) describes this data; else seeded, with a test_fraction share held out (never
    trained on or validated with), as Neural Canvas holds out its test split."""
    record = HERE / "split.npz"
    if record.is_file():
        with np.load(record, allow_pickle=False) as parts:
            if int(parts["rows"]) == n:
                return parts["train_index"], parts["val_index"]
    order = np.random.default_rng(SETTINGS["seed"]).permutation(n)
    n_test = min(n - 2, round(n * SETTINGS["test_fraction"]))
    n_val = min(n - n_test - 1, max(1, round(n * SETTINGS["validation_fraction"])))
    return np.sort(order[n_test + n_val:]), np.sort(order[n_test:n_test + n_val])


def standardize(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Standardize with training statistics: per channel for images, per feature otherwise.
    Returns both parts and the statistics (mean, std)."""
    axes = {4: (0, 2, 3), 3: (0, 1), 2: (0,)}.get(train.ndim, tuple(range(train.ndim)))
    mean = train.mean(axis=axes, keepdims=True)
    std = train.std(axis=axes, keepdims=True)
    std[std < 1e-8] = 1.0
    return ((train - mean) / std).astype(np.float32), ((val - mean) / std).astype(np.float32), (mean, std)


def augmenter(statistics: tuple[np.ndarray, np.ndarray] | None, device: torch.device, rank: int):
    """The project's augmentation as a function of a training batch (x, y), or None when it has none.
    ``statistics``: the inputs' (mean, std), for colour jitter in the data's own units."""
    if AUGMENT is None:
        return None
    import augment_ops

    options = SimpleNamespace(**AUGMENT)
    generator = torch.Generator(device=device).manual_seed(augment_ops.augment_seed(SETTINGS["seed"], rank))
    normalization = augment_ops.normalization_tensors(statistics, IMAGE_SHAPE, device)
    return lambda xb, yb: augment_ops.augment_batch(xb, yb, options, generator, IMAGE_SHAPE, CLASSES, normalization)


def lr_scale_of(parameter: str) -> float:
    """The learning-rate multiplier of the layer holding ``parameter`` (``stage.0.conv.weight``: the
    layer ``stage.0.conv``, inside a block too)."""
    parts = parameter.split(".")
    for end in range(len(parts) - 1, 0, -1):
        layer = ".".join(parts[:end])
        if layer in LR_SCALES:
            return LR_SCALES[layer]
    return 1.0


def trainable_groups(model: torch.nn.Module) -> list[dict]:
    """Freeze the FROZEN layers and group the other parameters by their learning-rate multiplier."""
    for name in FROZEN:
        model.get_submodule(name).requires_grad_(False)
    groups: dict[float, list[torch.nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups.setdefault(lr_scale_of(name), []).append(parameter)
    if not groups:
        raise SystemExit(f"every layer of {type(model).__name__} is frozen: nothing would train")
    return [{"params": params, "lr_scale": scale} for scale, params in groups.items()]


def train_mode(model: torch.nn.Module) -> None:
    """Training mode, except the batch norms of FROZEN layers: they keep their running statistics."""
    model.train()
    for name in FROZEN:
        for module in model.get_submodule(name).modules():
            if isinstance(module, torch.nn.modules.batchnorm._NormBase):
                module.eval()


def make_optimizer(groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer the project names; each group learns at SETTINGS["lr"] times its lr_scale."""
    s = SETTINGS
    parameters = [{**group, "lr": s["lr"] * group["lr_scale"]} for group in groups]
    if s["optimizer"] == "sgd":
        return torch.optim.SGD(parameters, lr=s["lr"], momentum=s["momentum"],
                               nesterov=s["nesterov"] and s["momentum"] > 0, weight_decay=s["weight_decay"])
    if s["optimizer"] in ("adam", "adamw"):
        cls = torch.optim.Adam if s["optimizer"] == "adam" else torch.optim.AdamW
        return cls(parameters, lr=s["lr"], betas=(s["beta1"], 0.999), weight_decay=s["weight_decay"])
    return torch.optim.RMSprop(parameters, lr=s["lr"], momentum=s["momentum"], weight_decay=s["weight_decay"])


def setup() -> tuple[torch.device, int, bool]:
    """Device, rank and whether this is one process of a torchrun launch."""
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = dist.get_rank() if distributed else 0
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return device, rank, distributed


def batches(dataset: TensorDataset, batch_size: int, distributed: bool, epoch: int) -> DataLoader:
    """Shuffled batches; each torchrun process gets its own share."""
    sampler = DistributedSampler(dataset, seed=SETTINGS["seed"]) if distributed else None
    if sampler is not None:
        sampler.set_epoch(epoch)
    generator = torch.Generator().manual_seed(SETTINGS["seed"] + epoch)
    return DataLoader(dataset, batch_size=batch_size, shuffle=sampler is None, sampler=sampler,
                      generator=generator if sampler is None else None)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train the exported model with plain PyTorch.")
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"], help="passes over the training data")
    parser.add_argument("--batch-size", type=int, default=SETTINGS["batch_size"], help="samples per step and process")
    parser.add_argument("--lr", type=float, default=SETTINGS["lr"], help="learning rate")
    parser.add_argument("--fresh", action="store_true", help="start from new random weights, not model.safetensors")
    parser.add_argument("--out", default=str(HERE / "trained.safetensors"), help="where the trained weights go")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    device, rank, distributed = setup()
    train(args, device, rank, distributed)
    if distributed:
        # Only now, with train()'s DistributedDataParallel wrappers released (and collected: autograd
        # keeps them in reference cycles), may the process group go; a wrapper that outlives it
        # aborts the process as it exits ("terminate called without an active exception").
        gc.collect()
        dist.barrier()
        dist.destroy_process_group()
'''

SUPERVISED = '''

def compute_loss(output: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """The loss the project trains with."""
    if TASK == "autoencoder":
        return LOSSES[LOSS](output, x)
    if TASK == "language_model":
        return F.cross_entropy(output.reshape(-1, output.shape[-1]), y.reshape(-1))
    if LOSS == "bce_with_logits":
        target = y[:, 1] if y.dim() == 2 else y  # class probabilities (mixup / cutmix): the positive class's
        return F.binary_cross_entropy_with_logits(output.squeeze(1), target.to(output.dtype))
    return LOSSES[LOSS](output, y)


LOSSES = {"cross_entropy": F.cross_entropy, "mse": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None, device: torch.device) -> str:
    """Validation loss (and accuracy for classifiers) as text."""
    model.eval()
    total, correct, count = 0.0, 0.0, 0
    for start in range(0, len(x), 1024):
        xb = x[start:start + 1024].to(device)
        yb = None if y is None else y[start:start + 1024].to(device)
        output = model(xb)
        total += float(compute_loss(output, xb, yb)) * len(xb)
        if TASK == "classification":
            predicted = (output.squeeze(1) > 0).long() if LOSS == "bce_with_logits" else output.argmax(1)
            correct += float((predicted == yb).sum())
        count += len(xb)
    train_mode(model)
    text = f"val loss {total / count:.4f}"
    return text + (f"  val accuracy {correct / count:.4f}" if TASK == "classification" else "")


def train(args: argparse.Namespace, device: torch.device, rank: int, distributed: bool) -> None:
    """Train, report each epoch (rank 0) and write the weights (rank 0)."""
    torch.manual_seed(SETTINGS["seed"])
    x, y = load_data()
    train_index, val_index = split(len(x))
    x_train, x_val = x[train_index], x[val_index]
    statistics = None
    if x.dtype.kind == "f" and SETTINGS["normalize"]:
        x_train, x_val, statistics = standardize(x_train, x_val)
    y_train = y_val = None
    if y is not None:
        y_train, y_val = y[train_index], y[val_index]
        if y.dtype.kind == "f" and SETTINGS["normalize"]:
            y_train, y_val, _ = standardize(y_train.reshape(len(y_train), -1), y_val.reshape(len(y_val), -1))
    model = model_file.build_model()
    if not args.fresh:
        model.load_state_dict(load_file(str(HERE / "model.safetensors")))
    SETTINGS["lr"] = args.lr
    model.to(device)
    train_mode(model)
    groups = trainable_groups(model)  # before DistributedDataParallel, which skips frozen parameters
    trained = DistributedDataParallel(model) if distributed else model
    optimizer = make_optimizer(groups)
    augment = augmenter(statistics, device, rank)
    tensors = [torch.as_tensor(x_train)] + ([] if y_train is None else [torch.as_tensor(y_train)])
    dataset = TensorDataset(*tensors)
    for epoch in range(args.epochs):
        seen, total = 0, 0.0
        for batch in batches(dataset, args.batch_size, distributed, epoch):
            xb = batch[0].to(device)
            yb = batch[1].to(device) if len(batch) > 1 else None
            if augment is not None:
                xb, yb = augment(xb, yb)  # training batches only; class probabilities after mixup / cutmix
            loss = compute_loss(trained(xb), xb, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if SETTINGS["grad_clip"] > 0:
                torch.nn.utils.clip_grad_norm_(trained.parameters(), SETTINGS["grad_clip"])
            optimizer.step()
            seen, total = seen + len(xb), total + float(loss.detach()) * len(xb)
        if rank == 0:
            y_check = None if y_val is None else torch.as_tensor(y_val)
            print(f"epoch {epoch + 1}/{args.epochs}  train loss {total / max(seen, 1):.4f}  "
                  f"{evaluate(model, torch.as_tensor(x_val), y_check, device)}", flush=True)
    if rank == 0:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, args.out)
        print(f"weights written to {args.out}")


if __name__ == "__main__":
    main()
'''

GAN = '''
LATENT_DIM = __LATENT_DIM__
UNIFORM = __UNIFORM__


def noise(count: int, device: torch.device) -> torch.Tensor:
    """Latent vectors as the Noise Input declares them."""
    if UNIFORM:
        return torch.rand(count, LATENT_DIM, device=device) * 2 - 1
    return torch.randn(count, LATENT_DIM, device=device)


def bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def train(args: argparse.Namespace, device: torch.device, rank: int, distributed: bool) -> None:
    """Non-saturating GAN losses: D on real vs generated samples, G to fool D."""
    torch.manual_seed(SETTINGS["seed"])
    x, _ = load_data()
    train_index, val_index = split(len(x))
    x_train = x[train_index]
    if SETTINGS["normalize"]:
        x_train, _, _ = standardize(x_train, x[val_index])
    generator, discriminator = model_file.build_generator(), model_file.build_discriminator()
    if not args.fresh:
        exported = generator if EXPORTED == "generator" else discriminator
        exported.load_state_dict(load_file(str(HERE / "model.safetensors")))
    SETTINGS["lr"] = args.lr
    generator.to(device)
    discriminator.to(device)
    train_mode(generator)
    train_mode(discriminator)
    g_optimizer = make_optimizer(trainable_groups(generator))
    d_optimizer = make_optimizer(trainable_groups(discriminator))
    g = DistributedDataParallel(generator) if distributed else generator
    d = DistributedDataParallel(discriminator) if distributed else discriminator
    dataset = TensorDataset(torch.as_tensor(x_train))
    for epoch in range(args.epochs):
        seen, d_total, g_total = 0, 0.0, 0.0
        for (xb,) in batches(dataset, args.batch_size, distributed, epoch):
            xb = xb.to(device)
            for _ in range(SETTINGS["gan_d_steps"]):
                fake = g(noise(len(xb), device)).detach()
                d_loss = bce(d(xb), True) + bce(d(fake), False)
                d_optimizer.zero_grad(set_to_none=True)
                d_loss.backward()
                d_optimizer.step()
            g_loss = bce(d(g(noise(len(xb), device))), True)
            g_optimizer.zero_grad(set_to_none=True)
            g_loss.backward()
            g_optimizer.step()
            seen += len(xb)
            d_total, g_total = d_total + float(d_loss.detach()) * len(xb), g_total + float(g_loss.detach()) * len(xb)
        if rank == 0:
            print(f"epoch {epoch + 1}/{args.epochs}  d loss {d_total / seen:.4f}  g loss {g_total / seen:.4f}",
                  flush=True)
    if rank == 0:
        exported = generator if EXPORTED == "generator" else discriminator
        save_file({k: v.detach().cpu().contiguous() for k, v in exported.state_dict().items()}, args.out)
        print(f"weights written to {args.out}")


EXPORTED = __EXPORTED__

if __name__ == "__main__":
    main()
'''

UNTRAINABLE = '''

def main() -> None:
    raise SystemExit(__REASON__)


if __name__ == "__main__":
    main()
'''

LOAD_SKLEARN = '''\
    from sklearn import datasets

    name = __DATASET__
    if name == "digits":
        bunch = datasets.load_digits()
        x = (np.asarray(bunch.images, dtype=np.float32) / 16.0).reshape(__SHAPE__)
        return np.ascontiguousarray(x), np.asarray(bunch.target, dtype=np.int64)
    if name == "diabetes":
        bunch = datasets.load_diabetes(scaled=False)
        return np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, dtype=np.float32).reshape(-1, 1)
    bunch = getattr(datasets, f"load_{name}")()
    return np.asarray(bunch.data, dtype=np.float32), np.asarray(bunch.target, dtype=np.int64)'''

LOAD_NPZ = '''\
    # the data the project trained on, saved at export time
    with np.load(HERE / "data.npz") as archive:
        return archive["x"], (archive["y"] if "y" in archive.files else None)'''
