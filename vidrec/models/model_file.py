"""The model file (model.pt): its format, how to save, load and rebuild it, and the preprocessing it implies.

Written once by `vidrec train`; read by evaluation, `vidrec predict`, `vidrec export` and fine-tuning
(`init_from`), none of which import the training package. The file holds only plain types and
tensors and is loaded with `torch.load(weights_only=True)`, so a crafted file cannot run code: it
fails with an error that names it.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vidrec.data.dataset import augment_clips, normalize_clips
from vidrec.core.errors import VidrecError
from vidrec.core.io import torch_save
from vidrec.plan.catalogue import weights_name
from vidrec.models.pretrained import PretrainedError, load_weights
from vidrec.models.registry import create_model

# What rebuilding a network needs; the rest (class names, clip settings, preprocessing, run) describes it.
REQUIRED_KEYS = ("arch", "model_args", "num_classes", "clip_shape", "state_dict")


class ModelFileError(VidrecError):
    """A model or checkpoint file is missing, unreadable, unsafe or not vidrec's."""


def safe_load(path: str | Path, what: str = "model file", map_location: str | torch.device = "cpu") -> dict:
    """`torch.load(weights_only=True)`: tensors and plain Python types only, never arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: {what} not found")
    if not zipfile.is_zipfile(path):  # torch.save's format since 1.6
        raise ModelFileError(f"{path}: cannot read this {what}: not a torch file, or damaged (truncated?)")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:unsupported|Unsupported global:?) (GLOBAL [\w.]+)", str(err))
        raise ModelFileError(
            f"{path}: refused to load this {what}: it holds objects other than tensors and plain values"
            f"{f' ({found[1]})' if found else ''}. vidrec never executes code from a model file; "
            "use a file written by `vidrec train`, or retrain") from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise ModelFileError(f"{path}: cannot read this {what} ({err}); it is damaged or not a torch file") from None
    if not isinstance(blob, dict):
        raise ModelFileError(f"{path}: not a vidrec {what} (a {type(blob).__name__}, not a dict)")
    return blob


def save_model_file(path: str | Path, *, arch: str, model_args: Mapping[str, Any], class_names: Sequence[str],
                    clip: Mapping[str, Any], clip_name: str, clip_shape: Sequence[int],
                    normalize: Mapping[str, Any], augment: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                    run: Mapping[str, Any]) -> None:
    """Write model.pt atomically; every field a plain value, every weight a CPU tensor."""
    torch_save({"arch": arch, "model_args": dict(model_args), "num_classes": len(class_names),
                "class_names": list(class_names), "clip": dict(clip), "clip_name": clip_name,
                "clip_shape": list(clip_shape), "normalize": dict(normalize), "augment": dict(augment),
                "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()}, "run": dict(run)}, path)


def load_model_file(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read model.pt and check it has what rebuilding needs."""
    blob = safe_load(path, "model file", map_location)
    for key in REQUIRED_KEYS:
        if key not in blob:
            raise ModelFileError(f"{path}: not a vidrec model file (no '{key}'); train the model with `vidrec train`")
    return blob


def build_model(blob: Mapping[str, Any]) -> nn.Module:
    """The network a loaded model file describes, with its weights."""
    model = create_model(blob["arch"], num_classes=blob["num_classes"], clip_shape=blob["clip_shape"],
                         **blob["model_args"])
    model.load_state_dict(blob["state_dict"])
    return model


def build_model_from_file(path: str | Path) -> tuple[nn.Module, dict]:
    blob = load_model_file(path)
    return build_model(blob), blob


def init_from(model: nn.Module, source: str | Path) -> list[str]:
    """Copy every matching tensor from another run's model.pt, or from torchvision's published weights
    (`torchvision:<Weights>.<member>`, vidrec/models/pretrained.py); returns the names left as
    initialised. The classifier may differ: it keeps its fresh initialisation for the new classes.
    Named weights must fit everything else (a mismatch would silently train from scratch)."""
    name = weights_name(source)
    state = load_weights(name) if name else load_model_file(source)["state_dict"]
    own = model.state_dict()
    take = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    fresh = sorted(set(own) - set(take))
    body = [k for k in fresh if not k.startswith("fc.")]
    if name and body:
        k = body[0]
        theirs = tuple(state[k].shape) if k in state else "absent"
        raise PretrainedError(f"init_from '{source}': {len(body)} tensors of this network do not fit the weights "
                              f"(first: {k}, ours {tuple(own[k].shape)}, theirs {theirs}); named weights fit the "
                              "architecture whose catalogue entry names them, at base_width 64")
    model.load_state_dict(take, strict=False)
    return fresh


@dataclass(frozen=True)
class Preprocessing:
    """uint8 clips (N, C, T, H, W) on any device -> the network's float input.

    Crop (random with optional flips when training, centre otherwise; batched, on the uint8 clips),
    then normalise, written straight in the memory format. The values are those of normalising
    first: crops commute with a per-channel affine map. One definition for training, evaluation
    and predict; export stores its fields.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop: int | None = None
    hflip: bool = False

    @classmethod
    def from_settings(cls, normalize: Mapping[str, Any], augment: Mapping[str, Any] | None) -> "Preprocessing":
        augment = augment or {}
        return cls(tuple(normalize["mean"]), tuple(normalize["std"]), augment.get("crop"),
                   bool(augment.get("hflip", False)))

    @classmethod
    def of(cls, blob: Mapping[str, Any]) -> "Preprocessing":
        """The preprocessing a model file was trained with."""
        return cls.from_settings(blob["normalize"], blob.get("augment"))

    def __call__(self, clips: torch.Tensor, *, train: bool = False,
                 memory_format: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
        x = augment_clips(clips, self.crop, self.hflip, train=train)
        if x.dim() != 5:
            return normalize_clips(x, self.mean, self.std).contiguous(memory_format=memory_format)
        return normalize_clips(x, self.mean, self.std, memory_format)
