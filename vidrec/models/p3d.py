"""Pseudo-3D residual networks, and the generic skeleton shared with ConvLSTM-C2D.

Paper: Z. Qiu, T. Yao, T. Mei, "Learning Spatio-Temporal Representation with Pseudo-3D Residual
Networks", ICCV 2017 (arXiv 1711.10305). Unit definitions, ReLU placement and layout follow the
official network:

- bottleneck `1x1x1 (C) -> BN -> ReLU`, spatio-temporal part, `1x1x1 (4C) -> BN`, `+ shortcut`, ReLU;
  S = 1x3x3 conv, T = 3x1x1 conv, no conv biases; a downsampling unit puts its spatial stride on
  the first 1x1x1 conv and uses a projection shortcut (1x1x1 conv + BN).
  * A: `S -> BN -> ReLU -> T -> BN -> ReLU`
  * B: `ReLU(BN(S(x)))` and `BN(T(x))`, summed, then ReLU
  * C: `s = ReLU(BN(S(x)))`, `t = BN(T(s))`, then `ReLU(s + t)`
  Types cycle A, B, C on one unit index that runs on across stages.
- stem 1x7x7 stride (1,2,2) + max-pool (2,3,3) stride 2 (16x160x160 -> 8x40x40); a temporal
  max-pool (kernel 2, stride 2) before res3, res4, res5; res5 purely 2D with the remaining time
  folded into the batch and averaged back; adaptive average pool, dropout, linear.

Unlike a popular public port, any clip length >= 2 and any plane size the strides allow work: the
pools are adaptive, res5 folds whatever time is left, and a temporal pool that meets a single frame
is skipped (odd lengths are ceil-pooled so the last frame is kept).

`P3DNet` is parameterised by a *temporal builder* (the module that plays T in every unit), so
ConvLSTM-C2D (convlstm_c2d.py) is the same network with a ConvLSTM in place of the 3x1x1 conv.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .init import resnet_init
from .registry import register_model

__all__ = [
    "P3DNet",
    "P3DStem",
    "SpatioTemporalBottleneck",
    "Bottleneck2D",
    "TemporalMaxPool",
    "TemporalBuilder",
    "Conv3dAs2d",
    "conv3x1x1",
    "p3d63",
    "p3d131",
    "p3d199",
]

# (planes, plane size (H, W) or None when unknown) -> the module playing T in a unit
TemporalBuilder = Callable[[int, "tuple[int, int] | None"], nn.Module]

UNIT_KINDS = ("A", "B", "C")
DEPTHS = {63: [3, 4, 6, 3], 131: [3, 4, 23, 3], 199: [3, 8, 36, 3]}


class Conv3dAs2d(nn.Conv3d):
    """nn.Conv3d that runs 1x1x1 and tx1x1 kernels as a 2D convolution on a view of the input.

    Profiled on CPU: single-threaded ATen runs 1x1x1 Conv3d on its native slow_conv3d path (3-4x
    slower than the 2D product) and oneDNN's 3D primitive is 3-8x slower on tx1x1 than the same
    product as a 2D conv; these convs were the largest item in P3D's profile. A view
    (N, C, T, H*W) (tx1x1) or (N, C, T*H, W) (1x1x1, spatial stride dividing H)
    exists for both contiguous and channels_last_3d tensors, so nothing is copied. Parameters,
    state_dict, FLOP counts and results are those of nn.Conv3d; other kernels use it unchanged.
    """

    def forward(self, x: Tensor) -> Tensor:
        kt, kh, kw = self.kernel_size
        st, sh, sw = self.stride
        dense = x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last_3d)
        if (kh, kw) != (1, 1) or self.padding[1:] != (0, 0) or self.dilation != (1, 1, 1) or not dense:
            return super().forward(x)
        n, _, t, h, w = x.shape
        o = self.out_channels
        if (sh, sw) == (1, 1):  # tx1x1 (incl. 1x1x1): conv over (T, H*W)
            y = F.conv2d(
                x.view(n, -1, t, h * w),
                self.weight.view(o, -1, kt, 1),
                self.bias,
                (st, 1),
                (self.padding[0], 0),
                1,
                self.groups,
            )
            return y.view(n, o, y.shape[2], h, w)
        if kt == 1 and st == 1 and h % sh == 0:  # strided 1x1x1: rows t*H + h keep h % sh == 0
            y = F.conv2d(x.view(n, -1, t * h, w), self.weight.view(o, -1, 1, 1), self.bias, (sh, sw), 0, 1, self.groups)
            return y.view(n, o, t, h // sh, y.shape[3])
        return super().forward(x)


def conv3x1x1(planes: int, plane_size: tuple[int, int] | None = None) -> nn.Module:
    """P3D's temporal conv T: 3x1x1, same padding in time, no bias."""
    return Conv3dAs2d(planes, planes, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class P3DStem(nn.Sequential):
    """conv 1x7x7 stride (1,2,2), BN, ReLU, max-pool (2,3,3) stride 2 padding (0,1,1)."""

    def __init__(self, width: int = 64) -> None:
        super().__init__(
            nn.Conv3d(3, width, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(2, 3, 3), stride=2, padding=(0, 1, 1)),
        )

    @staticmethod
    def plane_size(size: int) -> int:
        """Output plane side for an input side (conv k7 s2 p3, then pool k3 s2 p1)."""
        return _out(_out(size, 7, 2, 3), 3, 2, 1)


class TemporalMaxPool(nn.Module):
    """Max-pool kernel 2 stride 2 in time only (= max_pool3d((2,1,1), ceil_mode=True)).

    Identity when a single frame is left (short clips); an odd length keeps its last frame (ceil
    mode): clips of any length >= 2 run through the network. Computed as the element-wise
    maximum of even and odd frames, 5x faster than max_pool3d on CPU (exact ties share the
    gradient instead of giving it to one frame: both are valid subgradients).
    """

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[2]
        if t < 2:
            return x
        pairs = torch.maximum(x[:, :, 0 : t - 1 : 2], x[:, :, 1:t:2])
        if t % 2:
            pairs = torch.cat([pairs, x[:, :, t - 1 :]], dim=2)
        return pairs


def _projection(conv: type[nn.Module], bn: type[nn.Module], inplanes: int, outplanes: int, stride) -> nn.Module:
    """1x1(x1) conv + BN projection shortcut."""
    return nn.Sequential(conv(inplanes, outplanes, kernel_size=1, stride=stride, bias=False), bn(outplanes))


class SpatioTemporalBottleneck(nn.Module):
    """P3D bottleneck unit of kind A, B or C with any module as the temporal operator T.

    `temporal` maps (N, C, T, H, W) -> (N, C, T, H, W) (3x1x1 conv for P3D, ConvLSTM for
    ConvLSTM-C2D); it is always followed by its own BN, as every op before a ReLU in P3D.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, kind: str, temporal: nn.Module, stride: int = 1) -> None:
        super().__init__()
        if kind not in UNIT_KINDS:
            raise ValueError(f"unit kind must be one of {UNIT_KINDS}, got {kind!r}")
        self.kind = kind
        outplanes = planes * self.expansion
        self.conv1 = Conv3dAs2d(inplanes, planes, kernel_size=1, stride=(1, stride, stride), bias=False)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv_s = nn.Conv3d(planes, planes, kernel_size=(1, 3, 3), padding=(0, 1, 1), bias=False)
        self.bn_s = nn.BatchNorm3d(planes)
        self.conv_t = temporal
        self.bn_t = nn.BatchNorm3d(planes)
        self.conv3 = Conv3dAs2d(planes, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm3d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            _projection(Conv3dAs2d, nn.BatchNorm3d, inplanes, outplanes, (1, stride, stride))
            if stride != 1 or inplanes != outplanes
            else None
        )

    def spatiotemporal(self, x: Tensor) -> Tensor:
        """The A/B/C middle part on the output of the first 1x1x1 conv."""
        s = self.relu(self.bn_s(self.conv_s(x)))
        if self.kind == "A":  # cascade: T(S(x))
            return self.relu(self.bn_t(self.conv_t(s)))
        if self.kind == "B":  # parallel: S(x) + T(x)
            return self.relu(s + self.bn_t(self.conv_t(x)))
        return self.relu(s + self.bn_t(self.conv_t(s)))  # C: S(x) + T(S(x))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn3(self.conv3(self.spatiotemporal(out)))
        out += identity
        return self.relu(out)


class Bottleneck2D(nn.Module):
    """Plain 2D ResNet bottleneck for res5 (stride on the first 1x1 conv, as in P3D/ResNet v1)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        outplanes = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            _projection(nn.Conv2d, nn.BatchNorm2d, inplanes, outplanes, stride)
            if stride != 1 or inplanes != outplanes
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)


class P3DNet(nn.Module):
    """Generic P3D-style network (torchvision VideoResNet style: one class, variants are factories).

    Args:
        temporal_builder: builds the T operator of every 3D unit from (planes, plane size).
        layers: units per stage res2..res5.
        num_classes, dropout: classifier head (dropout before the linear layer).
        base_width: stem channels; stage widths are base_width x (1, 2, 4, 8), outputs x4.
        input_size: (H, W) of the clips, only used to tell the temporal builder the plane size
            of each stage (per-position peepholes); None when the builder does not need it.
        stem: builds the stem from its width.
        zero_init_residual: start every unit's last BatchNorm at zero, so each residual unit begins
            as the identity (Goyal et al. 2017; torchvision's option of the same name). From scratch
            on small data the deep nets then fit in far fewer steps (README, demo set).
    """

    def __init__(
        self,
        temporal_builder: TemporalBuilder,
        layers: Sequence[int],
        num_classes: int = 101,
        base_width: int = 64,
        dropout: float = 0.5,
        input_size: int | Sequence[int] | None = None,
        stem: Callable[[int], nn.Module] = P3DStem,
        zero_init_residual: bool = False,
    ) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError("layers must give the units of res2..res5")
        self.stem = stem(base_width)
        plane: tuple[int, int] | None = None
        if input_size is not None:
            hw = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
            side = getattr(self.stem, "plane_size", None)
            if side is None:
                raise ValueError("input_size needs a stem with a plane_size(side) method")
            plane = (side(hw[0]), side(hw[1]))
        self.inplanes = base_width
        self._unit_index = 0
        self.layer1, plane = self._make_stage(temporal_builder, base_width, layers[0], 1, plane)
        self.pool2 = TemporalMaxPool()
        self.layer2, plane = self._make_stage(temporal_builder, base_width * 2, layers[1], 2, plane)
        self.pool3 = TemporalMaxPool()
        self.layer3, plane = self._make_stage(temporal_builder, base_width * 4, layers[2], 2, plane)
        self.pool4 = TemporalMaxPool()
        self.layer4 = nn.Sequential(
            *(
                Bottleneck2D(self.inplanes if k == 0 else base_width * 32, base_width * 8, 2 if k == 0 else 1)
                for k in range(layers[3])
            )
        )
        self.num_features = base_width * 8 * Bottleneck2D.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)
        _init_weights(self, zero_init_residual)

    def _make_stage(
        self, builder: TemporalBuilder, planes: int, units: int, stride: int, plane: tuple[int, int] | None
    ) -> tuple[nn.Sequential, tuple[int, int] | None]:
        if plane is not None and stride != 1:
            plane = (_out(plane[0], 1, stride, 0), _out(plane[1], 1, stride, 0))
        blocks = []
        for k in range(units):
            kind = UNIT_KINDS[self._unit_index % 3]
            self._unit_index += 1
            blocks.append(
                SpatioTemporalBottleneck(self.inplanes, planes, kind, builder(planes, plane), stride if k == 0 else 1)
            )
            self.inplanes = planes * SpatioTemporalBottleneck.expansion
        return nn.Sequential(*blocks), plane

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, T, H, W) -> pooled features (N, num_features)."""
        x = self.stem(x)
        x = self.layer1(x)
        x = self.layer2(self.pool2(x))
        x = self.layer3(self.pool3(x))
        x = self.pool4(x)
        n, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(n * t, c, h, w)  # res5 is 2D: remaining time -> batch
        x = self.avgpool(self.layer4(x)).flatten(1)
        return x.view(n, t, -1).mean(1)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


def _init_weights(model: nn.Module, zero_init_residual: bool = False) -> None:
    """torchvision's ResNet init; modules that declare `owns_init` (ConvLSTM cells) keep their own."""
    resnet_init(model)
    for m in model.modules():
        if getattr(m, "owns_init", False):
            m.reset_parameters()
        if zero_init_residual and isinstance(m, (SpatioTemporalBottleneck, Bottleneck2D)):
            nn.init.zeros_(m.bn3.weight)


def _p3d(depth: int, num_classes: int = 101, base_width: int = 64, dropout: float = 0.5,
         zero_init_residual: bool = False) -> P3DNet:
    return P3DNet(conv3x1x1, DEPTHS[depth], num_classes=num_classes, base_width=base_width, dropout=dropout,
                  zero_init_residual=zero_init_residual)


@register_model
def p3d63(**kwargs: Any) -> P3DNet:
    """P3D ResNet on the ResNet-50 layout [3, 4, 6, 3] (the thesis's "P3D ResNet(50)" row)."""
    return _p3d(63, **kwargs)


@register_model
def p3d131(**kwargs: Any) -> P3DNet:
    """P3D ResNet on the ResNet-101 layout [3, 4, 23, 3]."""
    return _p3d(131, **kwargs)


@register_model
def p3d199(**kwargs: Any) -> P3DNet:
    """P3D ResNet on the ResNet-152 layout [3, 8, 36, 3] (the paper's and the thesis's P3D-199)."""
    return _p3d(199, **kwargs)
