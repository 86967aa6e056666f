"""ConvLSTM-C2D residual networks (the thesis).

Thesis: C. Park, "ConvLSTM-C2D Residual Network for Video Recognition", B.Eng. thesis, Chung-Ang
University, 2020 (sections 2-1.c, 2-1.d). Builds on P3D (Qiu et al., ICCV 2017) and ConvLSTM
(Shi et al., NeurIPS 2015).

The network is P3D's (`p3d.P3DNet`: same stem, temporal pools, A/B/C unit wiring, 2D res5, dropout
0.5 head) with every temporal conv T of res2-res4 replaced by a ConvLSTM with the unit's channels
and plane size (3x3 kernels): A = LSTM(S(x)), B = S(x) + LSTM(x), C = s + LSTM(s) with s = S(x),
each LSTM output followed by BN as T is. With a 16-frame clip the LSTMs unroll over 8, 4, 2 steps.

Peepholes default to on (per channel and position): the thesis reports 236 MB; the layout gives
about 59.6M parameters = 238 MB with per-position peepholes and 57.6M = 231 MB without, so
peepholes match best. They need the plane sizes, hence `input_size` (H, W of the clip, default
160 as in the thesis); `input_size=None` creates them lazily at the first forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from .convlstm import ConvLSTM
from .p3d import DEPTHS, P3DNet, TemporalBuilder
from .registry import register_model

__all__ = ["convlstm_builder", "convlstm_c2d63", "convlstm_c2d131", "convlstm_c2d199"]


def convlstm_builder(peephole: bool = True, kernel_size: int = 3) -> TemporalBuilder:
    """Temporal builder for P3DNet: a ConvLSTM with the unit's channels and plane size."""

    def build(planes: int, plane_size: tuple[int, int] | None) -> nn.Module:
        return ConvLSTM(planes, planes, kernel_size, peephole=peephole, spatial_size=plane_size)

    return build


def _convlstm_c2d(
    depth: int,
    num_classes: int = 101,
    base_width: int = 64,
    dropout: float = 0.5,
    peephole: bool = True,
    input_size: int | Sequence[int] | None = 160,
    zero_init_residual: bool = False,
) -> P3DNet:
    return P3DNet(
        convlstm_builder(peephole),
        DEPTHS[depth],
        num_classes=num_classes,
        base_width=base_width,
        dropout=dropout,
        input_size=input_size if peephole else None,
        zero_init_residual=zero_init_residual,
    )


@register_model
def convlstm_c2d63(**kwargs: Any) -> P3DNet:
    """The thesis's "ConvLSTM-C2D ResNet(63)": ResNet-50 layout [3, 4, 6, 3]."""
    return _convlstm_c2d(63, **kwargs)


@register_model
def convlstm_c2d131(**kwargs: Any) -> P3DNet:
    """ConvLSTM-C2D on the ResNet-101 layout [3, 4, 23, 3]."""
    return _convlstm_c2d(131, **kwargs)


@register_model
def convlstm_c2d199(**kwargs: Any) -> P3DNet:
    """ConvLSTM-C2D on the ResNet-152 layout [3, 8, 36, 3]."""
    return _convlstm_c2d(199, **kwargs)
