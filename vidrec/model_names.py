"""Names of every architecture in the model registry, importable without torch.

The workflow validates config.yaml at the start of every `snakemake` call, a no-op rerun included;
asking the registry (`vidrec.models.list_models()`) would import torch and torchvision for that,
about 4 s of a 5 s rerun. `register_model` refuses a name missing here, and tests/test_models.py
checks that this set equals the registry"s.
"""
from __future__ import annotations

MODEL_NAMES: frozenset[str] = frozenset({
    "convlstm_c2d131", "convlstm_c2d199", "convlstm_c2d63",
    "fr2d_18", "fr2d_34",
    "frame_resnet50",
    "mc2_18", "mc2_34", "mc3_18", "mc3_34", "mc4_18", "mc4_34", "mc5_18", "mc5_34",
    "p3d131", "p3d199", "p3d63",
    "r2d_18", "r2d_34",
    "r2plus1d_18", "r2plus1d_34",
    "r2plus1d_18_tv",
    "r3d_18", "r3d_34",
    "rmc2_18", "rmc2_34", "rmc3_18", "rmc3_34", "rmc4_18", "rmc4_34", "rmc5_18", "rmc5_34",
})
