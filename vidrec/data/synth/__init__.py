"""Synthetic demo dataset in the exact UCF101 layout, with classes defined by motion only.

UCF101 cannot be downloaded everywhere, so the default (`demo`) dataset is generated: the same
folder layout, file names, XviD AVI container, 320x240 @ 25 fps, and official-format split lists
(CRLF, official group rule, written by vidrec/data/formats/ucf101.py). A class is a pinwheel's
rotation sense x its angular-speed profile; no single frame and no bag of frames tells the class.

- design.py: the classes and the distribution of every random parameter;
- render.py: a video's frames from its class, group and clip;
- generate.py: the dataset on disk, atomic and resumable, byte-identical for the same arguments.

docs/synthetic_demo.md holds the design argument and its history. Flips (and time reversal) change
the class: a dataset of these videos declares `hflip_safe: false`.
"""
from vidrec.data.synth.design import (CLASS_DEFS, GENERATOR_VERSION, MAX_CLASSES, PROFILES, Appearance, ClassDef,
                                      Motion, class_definitions, class_names, frame_times, profile_curve,
                                      sample_appearance, sample_motion, time_reversed_motion, trajectory)
from vidrec.data.synth.generate import generate_dataset, write_avi
from vidrec.data.synth.render import render_background, render_frame, render_video

__all__ = [
    "ClassDef", "Appearance", "Motion", "CLASS_DEFS", "MAX_CLASSES", "PROFILES",
    "class_definitions", "class_names", "profile_curve", "sample_appearance", "sample_motion",
    "trajectory", "render_background", "render_frame", "render_video", "write_avi",
    "generate_dataset", "time_reversed_motion", "frame_times", "GENERATOR_VERSION",
]
