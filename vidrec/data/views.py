"""Test-time views and the two accuracy levels, defined once (torch-free: the report states them too).

A video is tested on K clips x S crops = K x S views (`evaluate.crops`, `vidrec predict --clips/--crops`):
the K clips are the clip spec's test clips (`clips_per_video`), the S crops are spatial crops of each:
S = 1 the centre crop, S = 3 three crops along the longer side of the stored frame (left, centre,
right; top, centre, bottom when it is taller than wide), the shorter side centred, as SlowFast
(`TEST.NUM_SPATIAL_CROPS: 3`) and mmaction2 (`ThreeCrop`) take them.

- Video level: the softmax averaged over all K x S views of the video.
- Clip level: one view, clip K // 2 (0-based) of the video's K clips, centre crop: the centre clip for
  odd K, the later of the two middle clips for even K (the thesis's one-clip protocol; K = 1: that clip).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vidrec.plan.config import clip_hw

SPATIAL_CROPS = (1, 3)  # the crop counts a run can be tested with
# the two levels in words, for every text that states them (the report's accuracy section)
CLIP_LEVEL = ("one view: clip K // 2 (0-based) of the video's K test clips (the centre clip for odd K, the "
              "later of the two middle ones for even K), centre crop")
VIDEO_LEVEL = "the softmax averaged over all K clips x S crops of the video"


@dataclass(frozen=True)
class Views:
    """K clips x S crops per test video."""

    clips: int
    crops: int = 1

    def __post_init__(self) -> None:
        if self.clips < 1 or self.crops not in SPATIAL_CROPS:
            raise ValueError(f"views: clips must be >= 1 and crops one of {SPATIAL_CROPS}, "
                             f"not {self.clips} x {self.crops}")

    @property
    def count(self) -> int:
        return self.clips * self.crops

    @property
    def centre_clip(self) -> int:
        """The clip of the clip level (0-based)."""
        return self.clips // 2

    @property
    def centre_crop(self) -> int:
        """The crop of the clip level: the centre one (0-based, crops listed left/top first)."""
        return self.crops // 2

    def text(self) -> str:
        """'10 clips x 3 crops'."""
        return f"{_count(self.clips, 'clip')} x {_count(self.crops, 'crop')}"

    def video_level_text(self) -> str:
        """How the video-level figure is made from the views."""
        if self.count == 1:
            return "1 clip x 1 crop (one view: video level equals clip level)"
        return f"{self.text()} ({self.count} views), softmax averaged"

    def clip_level_text(self) -> str:
        """Which single view the clip-level figure scores."""
        if self.clips == 1:
            return "the one clip, centre crop"
        which = "the centre clip" if self.clips % 2 else "the later of the two middle clips"
        return f"clip {self.centre_clip} of {self.clips} (0-based, K // 2: {which}), centre crop"

    def as_record(self) -> dict:
        """The evaluation.json fields that state the views and both levels."""
        return {"views": self.text(), "test_clips": self.clips, "test_crops": self.crops,
                "video_level": self.video_level_text(), "clip_level": self.clip_level_text()}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def train_clips_text(train_clips: str, sampling: str) -> str:
    """A protocol's `train_clips` in words on a clip spec's sampling: 'random (any start)' on an any-start
    spec, 'random (jitter over K fixed offsets)' on stored clips, else the setting itself."""
    if train_clips != "random":
        return train_clips
    return f"random ({'any start' if sampling == 'any_start' else 'jitter over K fixed offsets'})"


def spatial_crops(crops: int, crop: int | None, height: int, width: int) -> tuple[int, str | None]:
    """The crops a model is tested with, and why it is fewer than asked (None when as asked).

    Three crops need a crop shorter than the longer side of the stored frame (`augment.crop`); a model
    that sees the whole stored frame has one spatial view, so it is tested on that one and says so."""
    if crops == 1:
        return 1, None
    if crop is None or crop >= max(height, width):
        return 1, (f"1 crop, not {crops}: the model sees the whole stored {height}x{width} frame "
                   "(no crop in its protocol), which has one spatial view")
    return crops, None


def run_views(clip: Mapping[str, Any], augment: Mapping[str, Any] | None, crops: int) -> tuple[Views, str | None]:
    """A run's test views from its clip spec, its protocol's augmentation and `evaluate.crops`."""
    s, why = spatial_crops(crops, (augment or {}).get("crop"), *clip_hw(clip["size"]))
    return Views(int(clip["clips_per_video"]), s), why
