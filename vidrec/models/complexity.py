"""Measured model complexity: parameters, fp32 size and FLOPs of one clip forward."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["count_params", "model_complexity"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (materialised ones; lazy peepholes count after the first forward)."""
    return sum(
        p.numel() for p in model.parameters() if not isinstance(p, nn.parameter.UninitializedParameter)
    )


def model_complexity(model: nn.Module, clip_shape: Sequence[int] = (3, 16, 160, 160)) -> dict[str, float]:
    """Parameters, fp32 size and GFLOPs of one forward of one clip (batch 1, eval mode).

    Returns dict(params, size_mb_fp32, gflops):
    - params: all parameters (after one forward, so lazily created ones count);
    - size_mb_fp32: params x 4 bytes / 1e6 (decimal MB, the unit of the papers' "MB");
    - gflops: FLOPs / 1e9 counted by `torch.utils.flop_counter.FlopCounterMode`, which counts a
      multiply-add as 2 FLOPs and only counts matmuls/convolutions (not pooling, BN or the
      element-wise gate arithmetic of a ConvLSTM). Papers that quote "FLOPs" often mean
      multiply-adds: divide by 2 to compare with those.
    """
    ref = next((p for p in model.parameters() if not isinstance(p, nn.parameter.UninitializedParameter)), None)
    device = ref.device if ref is not None else torch.device("cpu")
    dtype = ref.dtype if ref is not None else torch.float32
    x = torch.zeros((1, *clip_shape), device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        counter = FlopCounterMode(display=False)
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    params = count_params(model)
    return {"params": params, "size_mb_fp32": params * 4 / 1e6, "gflops": counter.get_total_flops() / 1e9}
