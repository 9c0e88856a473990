"""Window arithmetic shared by convolution and pooling layers.

Sizes are tuples with one entry per spatial axis, so 1-D and 2-D layers share one rule.
"""

from __future__ import annotations

from typing import Any

from engine.layers.base import ShapeError, TensorSpec, require_float, require_rank

Size = tuple[int, ...]

#: Layout of one sample per number of spatial axes, and what to insert when the rank is off.
LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)"}
_RESHAPE = {1: "(C, L)", 2: "(C, H, W)"}


def fmt_size(size: Size) -> str:
    """``(5, 3)`` as ``"5x3"``; ``(5,)`` as ``"5"``."""
    return "x".join(map(str, size))


def as_size(value: Any, ndim: int) -> Size:
    """A parameter value as a tuple of ``ndim`` ints (an int repeats, as PyTorch does)."""
    if isinstance(value, int):
        return (value,) * ndim
    return tuple(value)


def require_spatial(x: TensorSpec, ndim: int, title: str, sibling: str = "") -> None:
    """Check that ``x`` is real-valued ``(N, C, L)`` (``ndim`` 1) or ``(N, C, H, W)`` (``ndim`` 2).

    Args:
        sibling: The layer of the other dimensionality to suggest (``"Conv1d"`` for Conv2d).
    """
    require_float(x, title)
    if x.rank == ndim + 2:
        return
    if sibling and ndim == 2 and x.rank == 3:
        hint = f"use {sibling} for sequences, or insert a Reshape to (C, H, W) before it"
    elif sibling and ndim == 1 and x.rank == 4:
        hint = f"use {sibling} for images"
    else:
        hint = f"insert a Reshape to {_RESHAPE[ndim]} before it"
    require_rank(x, (ndim + 2,), LAYOUTS[ndim], hint)


def window_out(size: Size, kernel: Size, stride: Size, padding: Size, dilation: Size | None = None) -> Size:
    """Output size of a convolution or pooling window sliding over ``size``.

    Raises:
        ShapeError: On some axis the (dilated) kernel does not fit in the padded input.
    """
    dilation = dilation or (1,) * len(size)
    padded = tuple(s + 2 * q for s, q in zip(size, padding))
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(w > s for w, s in zip(span, padded)):
        what = f"kernel {fmt_size(kernel)}"
        if span != kernel:
            what += f" with dilation {fmt_size(dilation)} spans {fmt_size(span)} and"
        raise ShapeError(f"{what} is larger than the padded input {fmt_size(padded)}: use a smaller "
                         "kernel_size, add padding, or remove a pooling layer before it", field="kernel_size")
    return tuple((s - w) // t + 1 for s, w, t in zip(padded, span, stride))


def pool_out(size: Size, kernel: Size, stride: Size, padding: Size, ceil_mode: bool = False) -> Size:
    """Output size of a pooling window sliding over ``size``, as PyTorch computes it.

    With ``ceil_mode`` the size rounds up, so a last, partial window covers what is left over,
    unless that window would start in the padding past the end.

    Raises:
        ShapeError: On some axis no window fits.
    """
    if not ceil_mode:
        return window_out(size, kernel, stride, padding)
    out = []
    for s, k, t, q in zip(size, kernel, stride, padding):
        n = (s + 2 * q - k + t - 1) // t + 1
        if (n - 1) * t >= s + q:
            n -= 1  # the last window would start in the padding past the end
        out.append(n)
    if min(out) < 1:
        padded = tuple(s + 2 * q for s, q in zip(size, padding))
        raise ShapeError(f"kernel {fmt_size(kernel)} is larger than the padded input {fmt_size(padded)}: use a "
                         "smaller kernel_size, add padding, or remove a pooling layer before it", field="kernel_size")
    return tuple(out)


def transposed_out(size: Size, kernel: Size, stride: Size, padding: Size, output_padding: Size,
                   dilation: Size) -> Size:
    """Output size of a transposed convolution.

    Raises:
        ShapeError: The padding crops some axis to nothing.
    """
    full = tuple((s - 1) * t + d * (k - 1) + o + 1
                 for s, t, k, o, d in zip(size, stride, kernel, output_padding, dilation))
    out = tuple(f - 2 * q for f, q in zip(full, padding))
    if min(out) < 1:
        raise ShapeError(f"padding {fmt_size(padding)} crops the {fmt_size(full)} output of the input "
                         f"{fmt_size(size)} to {fmt_size(out)}: reduce padding, or use a larger kernel_size "
                         "or stride", field="padding")
    return out
