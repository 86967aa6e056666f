"""Channels-last memory layout for whole networks, whose weights mix 2D and 3D convolutions.

`Module.to(memory_format=torch.channels_last_3d)` fails on any 4-D tensor ("required rank 5 tensor"),
and every thesis network has some (P3D's spatial 1x3x3 kernels are 3-D, but its ConvLSTM-C2D sibling and
the frame baseline are built from Conv2d). Each weight takes the channels-last layout of its own rank,
so cuDNN picks its NDHWC / NHWC kernels for both kinds of convolution.
"""
from __future__ import annotations

import torch
from torch import nn

_CHANNELS_LAST = {4: torch.channels_last, 5: torch.channels_last_3d}


@torch.no_grad()
def to_channels_last(model: nn.Module) -> nn.Module:
    """Put every 4-D and 5-D parameter and buffer of `model` in channels-last layout, in place."""
    for tensor in (*model.parameters(), *model.buffers()):
        fmt = _CHANNELS_LAST.get(tensor.dim())
        if fmt is not None:
            tensor.data = tensor.data.contiguous(memory_format=fmt)
    return model
