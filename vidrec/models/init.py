"""torchvision's ResNet weight initialisation, shared by every family that follows it."""
from __future__ import annotations

from torch import nn


def resnet_init(model: nn.Module, init_linear: bool = True) -> None:
    """In place, module by module (so a seed gives the weights it gave torchvision's own loop):
    convolutions Kaiming-normal (fan_out, ReLU) with zero bias, BatchNorm weight 1 and bias 0, and
    with `init_linear` linear layers N(0, 0.01) with zero bias (torchvision's video ResNets; its 2-D
    ResNet leaves them at PyTorch's default). The zero-init of residual branches is each family's own."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif init_linear and isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
