"""Model registry (timm style): every family file registers its factories with `register_model`.

`create_model(name, num_classes, clip_shape=..., **overrides)` is the only way the pipeline builds
networks, so a model name in `config.yaml` is all a stage needs. What the pipeline knows about a
model without building it (names, clip arguments, published figures, the module of its family) is in
vidrec/plan/catalogue.py. A family's module is imported when one of its models is first asked for, so a
job imports only the code (and libraries: torchvision for Tran et al.'s family and the frame
baseline) of the networks it builds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module

from torch import nn

from vidrec.plan.catalogue import CARDS, MODEL_NAMES, card

ModelFactory = Callable[..., nn.Module]

_MODELS: dict[str, ModelFactory] = {}


def register_model(fn: ModelFactory, name: str | None = None) -> ModelFactory:
    """Register `fn` under `name` (default: its `__name__`); returns `fn` so it works as a decorator."""
    key = name or fn.__name__
    if key not in MODEL_NAMES:
        raise ValueError(f"model {key!r} is not in vidrec/plan/catalogue.py; add its entry there "
                         "(config validation reads that list without importing torch)")
    if key in _MODELS and _MODELS[key] is not fn:
        raise ValueError(f"model {key!r} registered twice")
    _MODELS[key] = fn
    return fn


def _register_family_of(name: str) -> None:
    """Import the module that registers `name`'s family (a no-op once it has)."""
    if name not in _MODELS and name in MODEL_NAMES:
        import_module(f"{__package__}.{card(name).family.module}")


def list_models() -> list[str]:
    """Names of all registered models, sorted (imports every family's module)."""
    for name in CARDS:
        _register_family_of(name)
    return sorted(_MODELS)


def model_factory(name: str) -> ModelFactory:
    """The factory registered under `name` (KeyError listing the known names otherwise)."""
    _register_family_of(name)
    try:
        return _MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None


def clip_args(name: str) -> tuple[str, ...]:
    """Which clip-geometry arguments (`num_frames`, `input_size`) the factory of `name` takes, as its
    catalogue entry declares (tests/test_models.py checks the declaration against the factory)."""
    model_factory(name)  # KeyError for a model that is not registered
    return card(name).clip_args


def create_model(
    name: str,
    num_classes: int = 101,
    *,
    clip_shape: Sequence[int] | None = None,
    **overrides,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: registered name (see `list_models()`).
        num_classes: size of the classifier.
        clip_shape: optional (C, T, H, W) of the clips the model will see. Models whose structure
            depends on the clip (R2D: stem kernel = clip length; ConvLSTM-C2D with peepholes: plane
            sizes) take `num_frames` / `input_size` from it unless `overrides` sets them; all other
            models ignore it. Pass it whenever the clip geometry is known.
        **overrides: any factory keyword (`base_width`, `dropout`, `peephole`, ...).
    """
    fn = model_factory(name)
    kwargs = dict(overrides)
    if clip_shape is not None:
        if len(clip_shape) != 4:
            raise ValueError(f"clip_shape must be (C, T, H, W), got {tuple(clip_shape)}")
        geometry = {"num_frames": int(clip_shape[1]), "input_size": (int(clip_shape[2]), int(clip_shape[3]))}
        for arg in card(name).clip_args:
            kwargs.setdefault(arg, geometry[arg])
    return fn(num_classes=num_classes, **kwargs)
