"""The overfitting watch: the validation metric has stopped improving for some epochs while
the training loss keeps falling. The dashboard marks the epoch on the curves and the CLI says
it once, pointing to early stopping, dropout and weight decay."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

#: Epochs of diverging curves before the watch speaks.
WATCH_EPOCHS = 3
#: Metrics where lower is better (the validation metric's direction).
_LOWER = ("loss", "mae", "perplexity")


def overfitting_since(history: Sequence[Mapping[str, Any]], metric: str = "loss",
                      epochs: int = WATCH_EPOCHS) -> int | None:
    """The epoch after which the run overfits, or ``None``.

    Args:
        history: Per epoch ``{"epoch", "train": {...}, "val": {...}}`` (as EpochEnd events carry).
        metric: The validation metric watched (``loss``, ``accuracy``...).
        epochs: How many epochs the validation metric must have stopped improving while the
            training loss fell in each of them.

    Returns:
        The epoch of the best validation value, when every one of the last ``epochs`` epochs
        after it lowered the training loss and none improved on it.
    """
    if len(history) <= epochs:
        return None
    lower = metric in _LOWER
    values = [float(h["val"].get(metric, h["val"].get("loss", 0.0))) for h in history]
    best = min(range(len(values)), key=values.__getitem__) if lower else max(range(len(values)),
                                                                             key=values.__getitem__)
    if len(history) - 1 - best < epochs:
        return None
    train = [float(h["train"].get("loss", 0.0)) for h in history[-epochs - 1:]]
    if all(b < a for a, b in zip(train, train[1:])):
        return int(history[best]["epoch"])
    return None


def overfitting_advice(since: int, metric: str) -> str:
    """The line the dashboard and the CLI show."""
    return (f"overfitting: validation {metric} has not improved since epoch {since} while the training loss keeps "
            f"falling; stop earlier (training.early_stopping_patience), add dropout, or set training.weight_decay")
