"""Frame-only 2D baseline: ResNet-50 on every frame, averaged over time.

Paper: K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(torchvision's `ResNet`, weights=None). It sees no motion at all: any gain of a temporal model over
it is what that model gets from time. Frames are folded into the batch; per-frame features are
averaged over time before the linear classifier, which equals averaging per-frame logits (the fc is
linear), so the output is invariant to the order of the frames.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torchvision.models.resnet import Bottleneck, ResNet

from .init import resnet_init
from .registry import register_model

__all__ = ["FrameResNet", "frame_resnet50"]


class FrameResNet(ResNet):
    """torchvision ResNet with stem width `base_width` (stages x1, x2, x4, x8) applied per frame."""

    def __init__(
        self,
        layers: tuple[int, int, int, int] = (3, 4, 6, 3),
        num_classes: int = 101,
        base_width: int = 64,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
    ) -> None:
        # ResNet.__init__ hard-codes 64..512 channels; set the attributes its _make_layer reads and
        # build the same modules at any width (at 64 this is exactly torchvision's resnet50).
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.dilation = 1
        self.groups = 1
        self.base_width = 64  # torchvision's width_per_group: bottleneck width = planes
        w = base_width
        self.inplanes = w
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(Bottleneck, w, layers[0])
        self.layer2 = self._make_layer(Bottleneck, w * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(Bottleneck, w * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(Bottleneck, w * 8, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.num_features = w * 8 * Bottleneck.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        resnet_init(self, init_linear=False)  # as torchvision's 2-D ResNet
        if zero_init_residual:  # as torchvision's ResNet(zero_init_residual=True)
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, T, H, W) -> per-frame ResNet features averaged over time, (N, num_features)."""
        n, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(n * t, c, h, w)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x).flatten(1)
        return x.view(n, t, -1).mean(1)

    def forward_head(self, features: Tensor) -> Tensor:
        return self.fc(self.dropout(features))

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))


@register_model
def frame_resnet50(**kwargs: Any) -> FrameResNet:
    """ResNet-50 per frame, logits averaged over time (no temporal modelling)."""
    return FrameResNet((3, 4, 6, 3), **kwargs)
