"""The synthetic demo set's classes and the distribution of every random parameter.

A class is a rotation sense x an angular-speed profile of a pinwheel seen through the centre crop;
appearance is drawn per group and motion details per clip from class-independent distributions, so
neither one frame nor a bag of frames carries the class (docs/synthetic_demo.md: the design, its
argument and its history). Everything here is a pure function of (seed, class, group, clip).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

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
