"""A synthetic video's frames, rendered from its class, group and clip (the draws of design.py)."""
from __future__ import annotations

import math

import numpy as np

from vidrec.data.synth.design import (CROP_FRACTION, Appearance, ClassDef, Motion, frame_times, sample_appearance,
                                      sample_motion, trajectory)

_SHIFT = 4
_ONE = 1 << _SHIFT


def crop_box(width: int, height: int) -> tuple[float, float, float]:
    """(x0, y0, side) of the centre square crop the pipeline takes (CROP_FRACTION of the shorter side)."""
    side = CROP_FRACTION * min(width, height)
    return (width - side) / 2.0, (height - side) / 2.0, side


def _to_px(x, y, width, height):
    x0, y0, side = crop_box(width, height)
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
    x0, y0, side = crop_box(w, h)
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
