"""Synthetic demo dataset in the exact UCF101 layout, with classes defined by motion only.

UCF101 cannot be downloaded everywhere, so the default (`demo`) dataset is generated here: the same
folder layout, file names, XviD AVI container, 320x240 @ 25 fps, and official-format split lists
(CRLF, official group rule), written by the ucf101 format module (vidrec/data/formats/ucf101.py).

Class design
------------
Every video shows one big pinwheel (3-4 wedge-shaped blades) whose hub sits on the left edge of the
centre crop, in front of a static textured background, seen only through the crop: the blades sweep
across the crop, downwards when it turns clockwise, upwards when counter-clockwise. A class is

    rotation sense (Clockwise / CounterClockwise)  x  angular-speed profile over time

with the profiles (design order; a dataset with N classes takes the first N classes, both senses
of a profile next to each other):

    Steady    constant angular speed                                   (its own time reversal)
    Start     rests, then turns at constant speed                      (time reversal of Stop)
    Stop      turns at constant speed, then rests                      (time reversal of Start)
    Pause     turns, rests midway, turns on                            (its own time reversal)
    Reverse   a long leg in the class sense and a shorter leg back,
              in either order (net rotation in the class sense)        (its own time reversal)
    SpeedUp   angular speed ramps up from ~0                           (time reversal of SlowDown)
    SlowDown  angular speed ramps down to ~0                           (time reversal of SpeedUp)

so at most MAX_CLASSES = 14 classes; the default 10 uses the first five profiles. (SpeedUp and
SlowDown, classes 11-14, are subtler than the others and were not tuned: expect lower accuracy.)

Why a single frame carries no class: the angle of wheel 0 is theta(t) = theta0 + s * Phi * g(t),
with the start angle theta0 uniform on the circle and independent of everything else, and wheel i
is turned by a further uniform random offset. Whatever the profile g and the sense s, the wheel
angles at any fixed time are therefore independent and uniform, and the wheel positions and size,
the appearance and the video length are drawn from the same distribution for every class: the
distribution of a single frame (at any given time, hence also at a random time) is exactly the same
for all classes. Sense and profile are only visible in the order of frames.

Bags of frames (unordered sets): the profile set is closed under time reversal, and time reversal
maps (sense s, profile g) to (sense -s, reversed profile) with the same distribution of every
random parameter (`time_reversed_motion`). So every class has a twin with exactly the same
distribution of unordered frame sets (Steady CW/CCW, Pause CW/CCW, Reverse CW/CCW, Start CW/Stop CCW,
Stop CW/Start CCW, SpeedUp CW/SlowDown CCW, SlowDown CW/SpeedUp CCW); telling them apart needs the
order. A model that averages per-frame scores cannot use bag structure at all (its expected score is
the same for every class); a genuine set model could at best identify the twin pair (50% on the
default 10 classes) from the spacing of the sampled angles; no design with several speed profiles
avoids that.

Other per-frame leaks avoided: no motion blur or trails, nothing is rendered from the frame index
except the angle, colour/brightness distributions are class independent, and the swept angle Phi,
wheel size, rest fractions and reversal legs are drawn from class-independent distributions. The
XviD encoding at OpenCV's default bit rate is near-lossless for these images (mean absolute error
about 2 levels, on edges, the same for moving and resting frames).

Groups: each group has its own appearance (background colour and texture, static distractors,
wheel colour, blade count and width, hub size), seeded by (seed, group) and shared by every class
of that group; clips differ in motion details (wheel position and size, start angle, swept angle,
rest/reversal timing, length). So appearance says nothing about the class, not even inside the
training set. (An earlier version gave each (class, group) its own look, as a UCF101 group is one
class's actor and scene: deep nets from scratch then memorised the 180 training looks (P3D-63:
train 96%, test 36%) instead of learning the motion, and a leaked group was measurably easier for
a frame model. Group leakage is still audited from the lists; on this set it no longer changes
accuracy.)

Geometry: the wheel is drawn only inside the central square crop (side 0.8 * min(width, height),
i.e. the 192x192 centre crop of a 320x240 frame); outside it the background is static. Its hub is
on the crop's left edge (x -0.05..0.05, y 0.4..0.6 of the crop) and its radius 1.0-1.15 crops, so
blade edges cross the whole crop. Sizes are relative to the crop, so smaller test videos are scaled
copies. Between 16 frames sampled uniformly over a video the wheel turns by 6-13 degrees (5th-95th
percentile of moving steps over the default classes: an edge half-way across the crop moves by 3-7
px at 64x64), and by at most about 31 degrees between every other sampled frame: the P3D /
ConvLSTM-C2D stems max-pool pairs of frames before any temporal layer, and a step must stay below
the 45 degrees at which a 4-blade wheel aliases, after that pooling too.

Design history (why a fan seen from its edge): the sense of a wheel seen whole is a "curl": local
motion says nothing without knowing where the hub is. Three small wheels (radius 0.15-0.19, turning
twice as fast) were learnt by a small 3D CNN at full resolution (~91%) but not by P3D-63 (chance):
their stems reduce 64x64 to 16x16 before any temporal layer, leaving aliased 3-pixel wheels. One
wheel of radius 0.30-0.38 turning at this speed: P3D-63 learnt the profile (95%) but the sense
slowly (68% after 10 epochs). With the hub on the crop edge the local motion direction is the sense:
P3D-63 and ConvLSTM-C2D-63 (base_width 16, zero_init_residual, RMSprop 1e-3) reached 99% test
after 6 and 7 epochs (centre clips of split 1, 1,080 training videos).

NOTE for training: horizontal or vertical flips (and time reversal) swap the rotation sense, i.e.
change the class: do not use flip augmentation on this dataset.

Files are written atomically (hidden temporary name ending in `.tmp.avi` in the target folder,
fsync, `os.replace`); a marker `videos_root/.synth.json` with the generation parameters is written
last, and a rerun with the same parameters keeps the videos that exist (they are complete, being
written atomically) and regenerates the missing ones; with other parameters it rewrites them all and
removes videos of its own classes that the new parameters do not produce (e.g. after lowering
`classes` or `groups`), so the folders always match the lists. Same arguments -> byte-identical files (checked
by hashing; OpenCV's FFMPEG MPEG-4 encoder gave identical bytes whatever its thread setting, so
files should match across machines with the same OpenCV/FFmpeg build).
"""
from __future__ import annotations

import functools
import json
import math
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from vidrec.data.formats import ucf101
from vidrec.workers import process_context

__all__ = [
    "ClassDef", "Appearance", "Motion", "CLASS_DEFS", "MAX_CLASSES", "PROFILES",
    "class_definitions", "class_names", "profile_curve", "sample_appearance", "sample_motion",
    "trajectory", "render_background", "render_frame", "render_video", "write_avi",
    "generate_dataset", "time_reversed_motion", "frame_times", "GENERATOR_VERSION",
]

SENSES = (("Clockwise", 1), ("CounterClockwise", -1))
# profile name -> name of its time reversal
PROFILES = {
    "Steady": "Steady",
    "Start": "Stop",
    "Stop": "Start",
    "Pause": "Pause",
    "Reverse": "Reverse",
    "SpeedUp": "SlowDown",
    "SlowDown": "SpeedUp",
}
CROP_FRACTION = 0.8  # 192 / 240: the pipeline's centre crop
RADIUS = (1.0, 1.15)  # wheel radius, crop units
HUB_X, HUB_Y = (-0.05, 0.05), (0.4, 0.6)  # hub position, crop units (0..1 across the crop)
SWEEP_TURNS = (0.275, 0.375)  # angle swept by a moving wheel over a video, in turns
GENERATOR_VERSION = 3  # bump when the rendered pixels change (invalidates kept videos)


@dataclass(frozen=True)
class ClassDef:
    name: str
    sense: int      # +1 clockwise on screen (image y axis points down), -1 counter-clockwise
    profile: str
    index: int      # position in the design order (seeds depend on it, not on the class index's label)


def _all_class_defs() -> tuple[ClassDef, ...]:
    out = []
    for profile in PROFILES:
        for sense_name, sense in SENSES:
            out.append(ClassDef(f"Spin{sense_name}{profile}", sense, profile, len(out)))
    return tuple(out)


CLASS_DEFS = _all_class_defs()
MAX_CLASSES = len(CLASS_DEFS)


def class_definitions(classes: int = 10) -> list[ClassDef]:
    """The first `classes` classes of the design order (2 <= classes <= MAX_CLASSES)."""
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)):
        raise TypeError(f"classes must be an int, got {classes!r}")
    if not 2 <= classes <= MAX_CLASSES:
        raise ValueError(f"the synthetic dataset supports 2 to {MAX_CLASSES} classes "
                         f"(rotation sense x {len(PROFILES)} speed profiles), got {classes}")
    return list(CLASS_DEFS[:classes])


def class_names(classes: int = 10) -> list[str]:
    """Class names in label order (case-insensitive sort, as UCF101's class index)."""
    return sorted((c.name for c in class_definitions(classes)), key=str.lower)


# ----------------------------------------------------------------------------- motion
@dataclass(frozen=True)
class Motion:
    """Per-clip motion details, in crop units (the centre crop is the unit square)."""
    wheels: tuple       # ((cx, cy, angle offset), ...) for each wheel; wheel 0 has offset 0
    radius: float       # wheel radius
    theta0: float       # start angle (radians), uniform
    sweep: float        # Phi (radians): the arc turned by every profile (Reverse: its long leg)
    rest: float         # rest fraction of Start / Stop / Pause
    rest_shift: float   # Pause: offset of the rest interval from the middle
    back: float         # Reverse: length of the backward leg relative to the forward leg
    back_first: bool    # Reverse: the backward leg comes first
    ramp: float         # SpeedUp / SlowDown: start speed relative to the mean (0 = from rest)
    n_frames: int


def profile_curve(profile: str, u: np.ndarray, m: Motion) -> np.ndarray:
    """Turned fraction g(u) of the arc Phi at normalised time u in [0, 1]; g(0) = 0.

    Every profile ends at g(1) = 1 except Reverse, which ends at 1 - back (it turns 1 one way and
    `back` the other way). See `time_reversed_motion` for the time-reversal identity.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    p = m.rest
    if profile == "Steady":
        return u.copy()
    if profile == "Start":
        return np.clip((u - p) / (1.0 - p), 0.0, 1.0)
    if profile == "Stop":
        return np.clip(u / (1.0 - p), 0.0, 1.0)
    if profile == "Pause":
        a = (1.0 - p) / 2.0 + m.rest_shift
        return np.clip(u / (1.0 - p), 0.0, a / (1.0 - p)) + np.clip((u - a - p) / (1.0 - p), 0.0, 1.0)
    if profile == "Reverse":
        # constant speed along a path of length 1 + back: a forward leg of the full arc and a
        # shorter backward leg, in either order; the net rotation is always in the class sense
        s = u * (1.0 + m.back)
        if m.back_first:
            return np.where(s <= m.back, -s, s - 2.0 * m.back)
        return np.where(s <= 1.0, s, 2.0 - s)
    if profile in ("SpeedUp", "SlowDown"):
        # speed ramps linearly from r to 2 - r (mean 1): g = r u + (1 - r) u^2
        r = m.ramp
        uu = u if profile == "SpeedUp" else 1.0 - u
        g = r * uu + (1.0 - r) * uu * uu
        return g if profile == "SpeedUp" else 1.0 - g
    raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")


def time_reversed_motion(m: Motion) -> Motion:
    """Motion details of the time-reversed clip, for the time-reversed profile (see PROFILES).

    `profile_curve(PROFILES[p], u, time_reversed_motion(m)) == g(1) - g(1 - u)` with
    g = profile_curve(p, ., m); the map leaves the parameter distribution of sample_motion unchanged
    (rest_shift is symmetric about 0, back_first is a fair coin), which is what makes each class's
    time reversal another class with identical (unordered) frame statistics.
    """
    return replace(m, rest_shift=-m.rest_shift, back_first=not m.back_first)


def trajectory(cdef: ClassDef, m: Motion, u: np.ndarray) -> np.ndarray:
    """Wheel angle theta (radians; wheel i is turned by its offset more) at normalised times u."""
    return m.theta0 + cdef.sense * m.sweep * profile_curve(cdef.profile, u, m)


def frame_times(n_frames: int) -> np.ndarray:
    """Normalised time of every frame: 0 for the first, 1 for the last."""
    return np.arange(n_frames) / max(n_frames - 1, 1)


# ----------------------------------------------------------------------------- appearance
@dataclass(frozen=True)
class Appearance:
    """Per-group look, shared by every class of the group."""
    bg_rgb: tuple[float, float, float]
    texture: str                 # "noise" | "stripes" | "blobs"
    texture_amp: float
    texture_scale: float
    texture_angle: float
    texture_seed: int
    n_distractors: int           # static soft shapes on the background
    wheel_rgb: tuple[float, float, float]
    blades: int                  # wedge-shaped blades per wheel, equally spaced
    blade_halfwidth: float       # half opening angle of a blade (radians)
    hub_size: float              # crop units


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) for k in key]])


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def _luma(rgb) -> float:
    return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]


def sample_appearance(seed: int, group: int) -> Appearance:
    """The look of one group, the same for all its classes."""
    rng = _rng(seed, 1, group)
    bg = _hsv_to_rgb(rng.uniform(), rng.uniform(0.1, 0.7), rng.uniform(0.2, 0.8))
    # wheels clearly brighter or darker than the background (luma gap >= 0.35)
    bright = bool(rng.uniform() < 0.5) if 0.45 < _luma(bg) < 0.55 else _luma(bg) < 0.5
    hue, sat = rng.uniform(), rng.uniform(0.3, 1.0)
    for _ in range(100):  # rejection sampling on luma; deterministic given the rng
        wheel = _hsv_to_rgb(hue, sat, rng.uniform(0.05, 1.0))
        if (_luma(wheel) - _luma(bg) >= 0.35) if bright else (_luma(bg) - _luma(wheel) >= 0.35):
            break
        sat *= 0.9
    else:
        wheel = (1.0, 1.0, 1.0) if bright else (0.0, 0.0, 0.0)
    return Appearance(
        bg_rgb=bg,
        texture=str(rng.choice(["noise", "stripes", "blobs"])),
        texture_amp=float(rng.uniform(0.03, 0.08)),
        texture_scale=float(rng.uniform(0.1, 0.3)),
        texture_angle=float(rng.uniform(0, math.pi)),
        texture_seed=int(rng.integers(2**31)),
        n_distractors=int(rng.integers(0, 4)),
        wheel_rgb=wheel,
        blades=int(rng.integers(3, 5)),
        blade_halfwidth=float(rng.uniform(math.radians(12), math.radians(25))),
        hub_size=float(rng.uniform(0.02, 0.03)),
    )


def sample_motion(seed: int, group: int, class_index: int, clip: int, *, fps: int = 25,
                  min_seconds: float = 2.0, max_seconds: float = 4.0) -> Motion:
    """Motion details of one clip. Their distribution is the same for every class: the class
    only selects the random stream (and, in `trajectory`, the sense and the profile)."""
    rng = _rng(seed, 2, group, class_index, clip)
    radius = float(rng.uniform(*RADIUS))
    wheels = ((float(rng.uniform(*HUB_X)), float(rng.uniform(*HUB_Y)), 0.0),)
    seconds = rng.uniform(min_seconds, max_seconds)
    return Motion(
        wheels=wheels,
        radius=radius,
        theta0=float(rng.uniform(0, 2 * math.pi)),
        sweep=float(rng.uniform(*SWEEP_TURNS) * 2 * math.pi),
        rest=float(rng.uniform(0.3, 0.45)),
        rest_shift=float(rng.uniform(-0.1, 0.1)),
        back=float(rng.uniform(0.35, 0.6)),
        back_first=bool(rng.uniform() < 0.5),
        ramp=float(rng.uniform(0.0, 0.2)),
        n_frames=max(2, int(round(seconds * fps))),
    )


# ----------------------------------------------------------------------------- rendering
_SHIFT = 4
_ONE = 1 << _SHIFT


def _crop_box(width: int, height: int) -> tuple[float, float, float]:
    side = CROP_FRACTION * min(width, height)
    return (width - side) / 2.0, (height - side) / 2.0, side


def _to_px(x, y, width, height):
    x0, y0, side = _crop_box(width, height)
    return x0 + np.asarray(x) * side, y0 + np.asarray(y) * side


def _bgr255(rgb) -> tuple[float, float, float]:
    return (rgb[2] * 255.0, rgb[1] * 255.0, rgb[0] * 255.0)


def render_background(app: Appearance, width: int, height: int) -> np.ndarray:
    """Static background (height, width, 3) uint8 BGR for one group."""
    import cv2
    rng = np.random.default_rng(app.texture_seed)
    side = CROP_FRACTION * min(width, height)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64) / side
    if app.texture == "stripes":
        period = 0.5 * app.texture_scale + 0.04
        proj = xx * math.cos(app.texture_angle) + yy * math.sin(app.texture_angle)
        tex = np.sin(2 * math.pi * proj / period + rng.uniform(0, 2 * math.pi))
    else:
        cells = max(2, int(round(1.0 / app.texture_scale)))
        gw = int(math.ceil(cells * width / side)) + 1
        gh = int(math.ceil(cells * height / side)) + 1
        grid = rng.standard_normal((gh, gw))
        tex = cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        if app.texture == "blobs":
            tex = np.tanh(2.0 * tex)
        tex = tex / max(float(np.abs(tex).max()), 1e-6)
    tint = rng.uniform(0.6, 1.4, size=3)
    img = np.empty((height, width, 3), np.float64)
    for c, base in enumerate(_bgr255(app.bg_rgb)):
        img[..., c] = base + 255.0 * app.texture_amp * tint[c] * tex
    img = np.clip(img, 0, 255).astype(np.uint8)
    # static distractors: soft low-contrast rectangles / ellipses anywhere in the frame
    for _ in range(app.n_distractors):
        col = np.clip(np.array(_bgr255(app.bg_rgb)) * rng.uniform(0.75, 1.25, 3), 0, 255)
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        a, b = rng.uniform(0.04, 0.12) * side, rng.uniform(0.04, 0.12) * side
        if rng.uniform() < 0.5:
            cv2.ellipse(img, (int(cx), int(cy)), (int(a), int(b)), float(rng.uniform(0, 180)),
                        0, 360, tuple(float(v) for v in col), -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (int(cx - a), int(cy - b)), (int(cx + a), int(cy + b)),
                          tuple(float(v) for v in col), -1, cv2.LINE_AA)
    return img


def render_frame(background: np.ndarray, app: Appearance, m: Motion, theta: float) -> np.ndarray:
    """One frame: the static background and the pinwheels turned to `theta` (plus their offsets).

    Nothing but theta changes between frames of a clip: no blur, no trail.
    """
    import cv2
    h, w = background.shape[:2]
    img = background.copy()
    x0, y0, side = _crop_box(w, h)
    R = m.radius * side
    col = _bgr255(app.wheel_rgb)
    fx = lambda v: int(round(float(v) * _ONE))  # noqa: E731  fixed-point coordinates
    arc = np.linspace(-app.blade_halfwidth, app.blade_halfwidth, 7)
    for cx, cy, offset in m.wheels:
        hx, hy = _to_px(cx, cy, w, h)
        for b in range(app.blades):
            a = theta + offset + 2 * math.pi * b / app.blades + arc
            pts = np.concatenate([[[hx, hy]], np.stack([hx + R * np.cos(a), hy + R * np.sin(a)], 1)])
            cv2.fillPoly(img, [np.round(pts * _ONE).astype(np.int32)], col, cv2.LINE_AA, _SHIFT)
        cv2.circle(img, (fx(hx), fx(hy)), fx(app.hub_size * side), col, -1, cv2.LINE_AA, _SHIFT)
    view = np.s_[round(y0):round(y0 + side), round(x0):round(x0 + side)]  # the wheel is seen through the crop only
    out = background.copy()
    out[view] = img[view]
    return out


def render_video(cdef: ClassDef, group: int, clip: int, *, width: int = 320, height: int = 240,
                 fps: int = 25, min_seconds: float = 2.0, max_seconds: float = 4.0,
                 seed: int = 0) -> np.ndarray:
    """All frames (n, height, width, 3) uint8 BGR of one clip, before encoding."""
    app = sample_appearance(seed, group)
    m = sample_motion(seed, group, cdef.index, clip, fps=fps, min_seconds=min_seconds,
                      max_seconds=max_seconds)
    bg = render_background(app, width, height)
    thetas = trajectory(cdef, m, frame_times(m.n_frames))
    return np.stack([render_frame(bg, app, m, t) for t in thetas])


# ----------------------------------------------------------------------------- files
def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _tmp_name(path: Path, suffix: str) -> Path:
    # the encoder picks the container from the extension, so AVIs keep `.avi` at the end
    return path.with_name(f".{path.name}.{os.getpid()}.tmp{suffix}")


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = _tmp_name(path, ".txt")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_avi(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode BGR frames as MPEG-4 (XviD fourcc) in AVI, atomically (temp name, fsync, replace)."""
    import cv2
    path = Path(path)
    if len(frames.shape) != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (n, height, width, 3) uint8 BGR, got {frames.shape}")
    n, h, w = frames.shape[:3]
    tmp = _tmp_name(path, ".avi")
    try:
        writer = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"XVID"),
                                 float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"cv2.VideoWriter could not open {tmp} (XVID/AVI via FFMPEG); "
                               f"is opencv built with FFMPEG? ({cv2.__version__})")
        try:
            for f in frames:
                writer.write(np.ascontiguousarray(f))
        finally:
            writer.release()
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise RuntimeError(f"encoding {path} produced no data")
        _fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


_TMP_RE = re.compile(r"^\..+\.\d+\.tmp\.(?:avi|txt)$")   # names made by _tmp_name


def _cleanup_tmp(folder: Path) -> int:
    """Remove temporary files left by a killed run (only names this module makes)."""
    n = 0
    if folder.is_dir():
        for p in folder.iterdir():
            if _TMP_RE.match(p.name) and p.is_file():
                p.unlink()
                n += 1
    return n


def _remove_stale_videos(videos_root: Path, wanted: set[str]) -> int:
    """Remove videos of this generator's classes that the current parameters do not produce
    (e.g. left by an earlier run with more classes or groups), and their emptied folders."""
    n = 0
    for cdef in CLASS_DEFS:
        folder = videos_root / cdef.name
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if ucf101.is_video_name(p.name) and p.is_file() and f"{cdef.name}/{p.name}" not in wanted:
                p.unlink()
                n += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return n


def _write_video(job: tuple[ClassDef, int, int, Path], **render_args) -> int:
    """Render one video and write it atomically; return its number of frames (a worker's task)."""
    cdef, group, clip, path = job
    frames = render_video(cdef, group, clip, **render_args)
    write_avi(path, frames, render_args["fps"])
    return len(frames)


def _map_in_workers(fn, jobs: list, workers: int) -> Iterator:
    """fn over jobs, in order: in this process, or in `workers` processes."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with process_context().Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(fn, jobs, chunksize=4)


def generate_dataset(videos_root: Path, lists_dir: Path, *, classes: int = 10, groups: int = 25,
                     clips_per_group: int = 2, width: int = 320, height: int = 240, fps: int = 25,
                     min_seconds: float = 2.0, max_seconds: float = 4.0, seed: int = 0,
                     progress: bool = True, workers: int = 1) -> dict:
    """Write the synthetic dataset; return a summary (counts, class names, parameters).

    Deterministic in its arguments (byte-identical files, whatever `workers`: each video depends
    only on its class, group and clip). A rerun with the same arguments regenerates only missing
    videos (existing ones were written atomically, hence complete); with different arguments (or no
    marker from a finished run) it rewrites every video. `workers` > 1 renders and encodes videos
    in that many processes.
    """
    import time
    t0 = time.perf_counter()
    defs = class_definitions(classes)
    if groups < 1 or clips_per_group < 1:
        raise ValueError("groups and clips_per_group must be >= 1")
    if groups > 99 or clips_per_group > 99:
        raise ValueError("groups and clips_per_group are written with two digits (<= 99)")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and >= 16 (MPEG-4 drops an odd last "
                         f"row/column), got {width}x{height}")
    if fps < 1 or not (0 < min_seconds <= max_seconds):
        raise ValueError("need fps >= 1 and 0 < min_seconds <= max_seconds")
    videos_root, lists_dir = Path(videos_root), Path(lists_dir)
    videos_root.mkdir(parents=True, exist_ok=True)
    lists_dir.mkdir(parents=True, exist_ok=True)
    params = dict(classes=int(classes), groups=int(groups), clips_per_group=int(clips_per_group),
                  width=int(width), height=int(height), fps=int(fps),
                  min_seconds=float(min_seconds), max_seconds=float(max_seconds), seed=int(seed),
                  generator_version=GENERATOR_VERSION)
    marker = videos_root / ".synth.json"
    previous = None
    if marker.exists():
        try:
            previous = json.loads(marker.read_text()).get("params")
        except (OSError, ValueError):
            previous = None
    reuse = previous == params
    if marker.exists() and not reuse:
        marker.unlink()
    names = sorted((d.name for d in defs), key=str.lower)
    by_name = {d.name: d for d in defs}
    jobs = [(by_name[n], g, c) for n in names for g in range(1, groups + 1)
            for c in range(1, clips_per_group + 1)]
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc="synth", unit="video", file=sys.stderr)
        except ImportError:
            bar = None
    written = kept = frames_total = 0
    for folder in [videos_root, lists_dir, *(videos_root / d.name for d in CLASS_DEFS)]:
        _cleanup_tmp(folder)
    stale = _remove_stale_videos(videos_root, {ucf101.video_relpath(d.name, g, c) for d, g, c in jobs})
    for name in names:
        (videos_root / name).mkdir(exist_ok=True)
    todo = []
    for cdef, g, c in jobs:
        path = videos_root / ucf101.video_relpath(cdef.name, g, c)
        if reuse and path.exists():
            kept += 1
            if bar is not None:
                bar.update(1)
        else:
            todo.append((cdef, g, c, path))
    render = functools.partial(_write_video, width=width, height=height, fps=fps, min_seconds=min_seconds,
                               max_seconds=max_seconds, seed=seed)
    for n_frames in _map_in_workers(render, todo, workers):
        frames_total += n_frames
        written += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for name in names:
        _fsync_dir(videos_root / name)
    for fname, text in ucf101.list_files(names, groups, clips_per_group).items():
        _atomic_write_bytes(lists_dir / fname, text.encode("ascii"))
    _fsync_dir(lists_dir)
    summary = {
        "params": params,
        "class_names": names,
        "classes": [{"label": i, "name": n, "sense": by_name[n].sense,
                     "profile": by_name[n].profile} for i, n in enumerate(names, 1)],
        "videos": len(jobs),
        "videos_written": written,
        "videos_kept": kept,
        "stale_videos_removed": stale,
        "frames_written": frames_total,
        "splits": {},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    for split, test_groups in ucf101.TEST_GROUPS.items():
        n_test = sum(1 for _, g, _ in jobs if g in test_groups)
        summary["splits"][f"split{split}"] = {"train": len(jobs) - n_test, "test": n_test}
    _atomic_write_bytes(marker, json.dumps({"params": params}, indent=1).encode())
    _fsync_dir(videos_root)
    return summary

