"""R2D, f-R2D, R3D, MCx, rMCx and R(2+1)D residual networks.

Paper: D. Tran, H. Wang, L. Torresani, J. Ray, Y. LeCun, M. Paluri, "A Closer Look at
Spatiotemporal Convolutions for Action Recognition", CVPR 2018 (arXiv 1711.11248).

All are built on torchvision's `VideoResNet` (basic blocks, `_make_layer`, conv builders that carry
their downsample stride in `get_downsample_stride`), with custom stems and conv builders:

- R2D: stem L x 7 x 7 without temporal padding (time collapses at the stem; needs `num_frames`),
  then 2D (1x3x3) convs everywhere.
- f-R2D: stem 1x7x7 and 2D convs: every frame alone; the final average pool spans all frames.
- R3D: 3x7x7 stem and 3x3x3 convs everywhere.
- MCx: 3D (stem included) below group conv_x, 2D from conv_x up; rMCx the reverse (2D stem).
- R(2+1)D: every 3x3x3 conv -> 1xdxd (M_i filters) -> BN -> ReLU -> tx1x1 with the paper's per-conv
  rule M_i = floor(t d^2 N_{i-1} N_i / (d^2 N_{i-1} + t N_i)), so each conv matches R3D's count
  (about 33.4M parameters for 18 layers). `r2plus1d_18_tv` is torchvision's variant, which computes
  M once per block (31.5M) and loads torchvision's weights.

Downsampling: stride (2,2,2) in 3D blocks, (1,2,2) in 2D blocks, 1x1x1 projection shortcut.
Width multiplier `base_width` (stem channels; stages x1, x2, x4, x8) and `dropout` before the fc
(default 0, as in the paper).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import Tensor, nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple, VideoResNet

from .init import resnet_init
from .registry import register_model

__all__ = [
    "TranVideoResNet", "Conv2Plus1DPaper", "paper_midplanes", "stem_3d", "stem_2d", "stem_r2d", "stem_r2plus1d",
    "r2d_18", "r2d_34", "fr2d_18", "fr2d_34", "r3d_18", "r3d_34",
    "mc2_18", "mc3_18", "mc4_18", "mc5_18", "mc2_34", "mc3_34", "mc4_34", "mc5_34",
    "rmc2_18", "rmc3_18", "rmc4_18", "rmc5_18", "rmc2_34", "rmc3_34", "rmc4_34", "rmc5_34",
    "r2plus1d_18", "r2plus1d_34", "r2plus1d_18_tv",
]

DEPTHS = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3]}


def paper_midplanes(in_planes: int, out_planes: int, t: int = 3, d: int = 3) -> int:
    """M_i of Tran et al. (eq. in sec. 3.5): a (2+1)D conv with as many parameters as the t x d x d one."""
    return (t * d * d * in_planes * out_planes) // (d * d * in_planes + t * out_planes)


class Conv2Plus1DPaper(Conv2Plus1D):
    """torchvision's Conv2Plus1D with M_i computed per conv (the block's `midplanes` is ignored)."""

    def __init__(
        self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1, padding: int = 1
    ) -> None:
        super().__init__(in_planes, out_planes, paper_midplanes(in_planes, out_planes), stride, padding)


def _stem(width: int, temporal_kernel: int, temporal_padding: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(
            3,
            width,
            kernel_size=(temporal_kernel, 7, 7),
            stride=(1, 2, 2),
            padding=(temporal_padding, 3, 3),
            bias=False,
        ),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


def stem_3d(width: int = 64) -> nn.Sequential:
    """3x7x7 stem (torchvision's BasicStem at width 64)."""
    return _stem(width, 3, 1)


def stem_2d(width: int = 64) -> nn.Sequential:
    """1x7x7 stem (f-R2D, rMCx)."""
    return _stem(width, 1, 0)


def stem_r2d(width: int = 64, num_frames: int = 16) -> nn.Sequential:
    """L x 7 x 7 stem without temporal padding: the clip's time collapses to one frame."""
    return _stem(width, num_frames, 0)


def stem_r2plus1d(width: int = 64) -> nn.Sequential:
    """(2+1)D stem: 1x7x7 to 45 channels (at width 64), BN, ReLU, 3x1x1 to `width` (torchvision's R2Plus1dStem)."""
    mid = max(1, (45 * width) // 64)
    return nn.Sequential(
        nn.Conv3d(3, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
        nn.BatchNorm3d(mid),
        nn.ReLU(inplace=True),
        nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
        nn.BatchNorm3d(width),
        nn.ReLU(inplace=True),
    )


ConvBuilder = type[nn.Module]


class TranVideoResNet(VideoResNet):
    """torchvision's VideoResNet with a width multiplier, dropout and a features/head split.

    Module names and order equal torchvision's (stem, layer1..4, avgpool, fc), so at base_width 64
    the state_dict of the matching torchvision model loads strictly.
    """

    def __init__(
        self,
        block: type[nn.Module],
        conv_makers: Sequence[ConvBuilder],
        layers: Sequence[int],
        stem: Callable[[], nn.Module],
        num_classes: int = 400,
        base_width: int = 64,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        # VideoResNet.__init__ hard-codes 64..512 channels; rebuild the same attributes at any width
        # and reuse its _make_layer (which reads self.inplanes).
        nn.Module.__init__(self)
        w = base_width
        self.inplanes = w
        self.stem = stem()
        self.layer1 = self._make_layer(block, conv_makers[0], w, layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], w * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], w * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], w * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(dropout)
        self.num_features = w * 8 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        resnet_init(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.constant_(m.conv2[1].weight, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, T, H, W) -> (N, num_features) after global average pooling over time and space."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


# -- variants ------------------------------------------------------------------------------------
# One factory per registered name. Each takes num_classes (default 400, Kinetics), base_width and
# dropout; R2D also num_frames, since its stem spans the clip.

_2D, _3D = Conv3DNoTemporal, Conv3DSimple
_ALL_2D, _ALL_3D = [_2D] * 4, [_3D] * 4


def _mixed(x: int, reverse: bool) -> list[ConvBuilder]:
    """Conv builders of conv2_x..conv5_x for MCx (3D below conv_x) or rMCx (3D from conv_x)."""
    return [(_3D if (g >= x) == reverse else _2D) for g in range(2, 6)]


def _tran(
    stem: Callable[[int], nn.Module],
    makers: Sequence[ConvBuilder],
    depth: int,
    num_classes: int = 400,
    base_width: int = 64,
    dropout: float = 0.0,
) -> TranVideoResNet:
    return TranVideoResNet(BasicBlock, makers, DEPTHS[depth], lambda: stem(base_width), num_classes=num_classes,
                           base_width=base_width, dropout=dropout)


def _r2d(depth: int, num_frames: int = 16, **kwargs: Any) -> TranVideoResNet:
    return _tran(partial(stem_r2d, num_frames=num_frames), _ALL_2D, depth, **kwargs)


def _mc(x: int, depth: int, **kwargs: Any) -> TranVideoResNet:
    return _tran(stem_3d, _mixed(x, reverse=False), depth, **kwargs)


def _rmc(x: int, depth: int, **kwargs: Any) -> TranVideoResNet:
    return _tran(stem_2d, _mixed(x, reverse=True), depth, **kwargs)


# R2D: clip-long L x 7 x 7 stem, then 2D convs (build with num_frames = clip length).
@register_model
def r2d_18(**kwargs: Any) -> TranVideoResNet:
    return _r2d(18, **kwargs)


@register_model
def r2d_34(**kwargs: Any) -> TranVideoResNet:
    return _r2d(34, **kwargs)


# f-R2D: 2D ResNet on every frame, one average pool over all frames.
@register_model
def fr2d_18(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_2d, _ALL_2D, 18, **kwargs)


@register_model
def fr2d_34(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_2d, _ALL_2D, 34, **kwargs)


# R3D: 3x3x3 convs everywhere.
@register_model
def r3d_18(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_3d, _ALL_3D, 18, **kwargs)


@register_model
def r3d_34(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_3d, _ALL_3D, 34, **kwargs)


# MCx: 3D convs (stem included) below conv{x}_x, 2D from conv{x}_x up.
@register_model
def mc2_18(**kwargs: Any) -> TranVideoResNet:
    return _mc(2, 18, **kwargs)


@register_model
def mc3_18(**kwargs: Any) -> TranVideoResNet:
    return _mc(3, 18, **kwargs)


@register_model
def mc4_18(**kwargs: Any) -> TranVideoResNet:
    return _mc(4, 18, **kwargs)


@register_model
def mc5_18(**kwargs: Any) -> TranVideoResNet:
    return _mc(5, 18, **kwargs)


@register_model
def mc2_34(**kwargs: Any) -> TranVideoResNet:
    return _mc(2, 34, **kwargs)


@register_model
def mc3_34(**kwargs: Any) -> TranVideoResNet:
    return _mc(3, 34, **kwargs)


@register_model
def mc4_34(**kwargs: Any) -> TranVideoResNet:
    return _mc(4, 34, **kwargs)


@register_model
def mc5_34(**kwargs: Any) -> TranVideoResNet:
    return _mc(5, 34, **kwargs)


# rMCx: 2D stem and convs below conv{x}_x, 3D from conv{x}_x up.
@register_model
def rmc2_18(**kwargs: Any) -> TranVideoResNet:
    return _rmc(2, 18, **kwargs)


@register_model
def rmc3_18(**kwargs: Any) -> TranVideoResNet:
    return _rmc(3, 18, **kwargs)


@register_model
def rmc4_18(**kwargs: Any) -> TranVideoResNet:
    return _rmc(4, 18, **kwargs)


@register_model
def rmc5_18(**kwargs: Any) -> TranVideoResNet:
    return _rmc(5, 18, **kwargs)


@register_model
def rmc2_34(**kwargs: Any) -> TranVideoResNet:
    return _rmc(2, 34, **kwargs)


@register_model
def rmc3_34(**kwargs: Any) -> TranVideoResNet:
    return _rmc(3, 34, **kwargs)


@register_model
def rmc4_34(**kwargs: Any) -> TranVideoResNet:
    return _rmc(4, 34, **kwargs)


@register_model
def rmc5_34(**kwargs: Any) -> TranVideoResNet:
    return _rmc(5, 34, **kwargs)


# R(2+1)D with the paper's per-conv mid-planes rule.
@register_model
def r2plus1d_18(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_r2plus1d, [Conv2Plus1DPaper] * 4, 18, **kwargs)


@register_model
def r2plus1d_34(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_r2plus1d, [Conv2Plus1DPaper] * 4, 34, **kwargs)


# R(2+1)D-18 exactly as torchvision's r2plus1d_18 (mid-planes once per block): loads its weights.
@register_model
def r2plus1d_18_tv(**kwargs: Any) -> TranVideoResNet:
    return _tran(stem_r2plus1d, [Conv2Plus1D] * 4, 18, **kwargs)
