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

import sys
from collections.abc import Callable, Sequence

from torch import Tensor, nn
from torchvision.models.video.resnet import BasicBlock, Conv2Plus1D, Conv3DNoTemporal, Conv3DSimple, VideoResNet

from .registry import register_model

__all__ = ["TranVideoResNet", "Conv2Plus1DPaper", "paper_midplanes", "stem_3d", "stem_2d", "stem_r2d", "stem_r2plus1d"]

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
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.constant_(m.bias, 0)
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

_2D, _3D = Conv3DNoTemporal, Conv3DSimple


def _mixed(x: int, reverse: bool) -> list[ConvBuilder]:
    """Conv builders of conv2_x..conv5_x for MCx (3D below conv_x) or rMCx (3D from conv_x)."""
    return [(_3D if (g >= x) == reverse else _2D) for g in range(2, 6)]


def _build(stem, makers, depth, num_classes, base_width, dropout) -> TranVideoResNet:
    return TranVideoResNet(
        BasicBlock,
        makers,
        DEPTHS[depth],
        lambda: stem(base_width),
        num_classes=num_classes,
        base_width=base_width,
        dropout=dropout,
    )


def _variant(kind: str, depth: int, x: int | None = None) -> Callable[..., TranVideoResNet]:
    """A factory for one registered name (each takes num_classes, base_width, dropout)."""
    if kind == "r2d":

        def factory(num_classes: int = 400, base_width: int = 64, dropout: float = 0.0, num_frames: int = 16):
            return _build(lambda w: stem_r2d(w, num_frames), [_2D] * 4, depth, num_classes, base_width, dropout)

        return factory
    stems_makers = {
        "fr2d": (stem_2d, [_2D] * 4),
        "r3d": (stem_3d, [_3D] * 4),
        "r2plus1d": (stem_r2plus1d, [Conv2Plus1DPaper] * 4),
        "r2plus1d_tv": (stem_r2plus1d, [Conv2Plus1D] * 4),
    }
    if kind in ("mc", "rmc"):
        assert x is not None
        stem, makers = (stem_3d if kind == "mc" else stem_2d), _mixed(x, reverse=kind == "rmc")
    else:
        stem, makers = stems_makers[kind]

    def factory(num_classes: int = 400, base_width: int = 64, dropout: float = 0.0):
        return _build(stem, makers, depth, num_classes, base_width, dropout)

    return factory


_DOCS = {
    "r2d": "R2D-{d}: clip-long L x 7 x 7 stem then 2D convs (build with num_frames = clip length).",
    "fr2d": "f-R2D-{d}: 2D ResNet-{d} on every frame, one average pool over all frames.",
    "r3d": "R3D-{d}: 3x3x3 convs everywhere.",
    "mc": "MC{x}-{d}: 3D convs (stem included) below conv{x}_x, 2D from conv{x}_x up.",
    "rmc": "rMC{x}-{d}: 2D stem and convs below conv{x}_x, 3D from conv{x}_x up.",
    "r2plus1d": "R(2+1)D-{d} with the paper's per-conv mid-planes rule.",
    "r2plus1d_tv": "R(2+1)D-{d} exactly as torchvision's r2plus1d_{d} (mid-planes once per block).",
}


def _register_all() -> None:
    module = sys.modules[__name__]
    names: list[tuple[str, str, int, int | None]] = []
    for depth in (18, 34):
        for kind in ("r2d", "fr2d", "r3d", "r2plus1d"):
            names.append((f"{kind}_{depth}", kind, depth, None))
        for x in (2, 3, 4, 5):
            names.append((f"mc{x}_{depth}", "mc", depth, x))
            names.append((f"rmc{x}_{depth}", "rmc", depth, x))
    names.append(("r2plus1d_18_tv", "r2plus1d_tv", 18, None))
    for name, kind, depth, x in names:
        fn = _variant(kind, depth, x)
        fn.__name__ = fn.__qualname__ = name
        fn.__module__ = __name__
        fn.__doc__ = _DOCS[kind].format(d=depth, x=x)
        setattr(module, name, fn)
        __all__.append(name)
        register_model(fn, name)


_register_all()
