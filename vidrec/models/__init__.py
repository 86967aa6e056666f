"""Model zoo: P3D, ConvLSTM-C2D (the thesis), Tran et al.'s R(2+1)D family, a frame-only baseline.

Build every network with `create_model(name, num_classes, clip_shape=..., **overrides)`; inputs are
float tensors (N, 3, T, H, W); every model has `forward_features(x) -> (N, F)` and
`forward_head(features) -> logits`, plus `base_width` (stem channels) and `dropout` arguments. A
family's module is imported when one of its models is first built (vidrec/models/registry.py).
Where and how a model runs (device, threads, process group, autocast, memory format, determinism):
vidrec/models/runtime.py, asked by training, evaluation and predict.

May import: `vidrec.data`, `vidrec.plan` and `vidrec.core`.
"""

from .complexity import count_params, model_complexity
from .convlstm import ConvLSTM, ConvLSTMCell
from .memory_format import to_channels_last
from .registry import clip_args, create_model, list_models, model_factory, register_model

__all__ = [
    "ConvLSTM",
    "ConvLSTMCell",
    "clip_args",
    "count_params",
    "create_model",
    "list_models",
    "model_complexity",
    "model_factory",
    "register_model",
    "to_channels_last",
]
