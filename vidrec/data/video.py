"""Frame sampling, decoding and the one crop/resize path.

Decoding uses OpenCV: `grab()` every frame, `retrieve()` only the sampled ones (about 3x faster
than `read()` on 7 s UCF101 AVIs; `python benchmarks/decode.py` measures both). ffmpeg (through ffmpeg-python,
the binary from PATH or the imageio-ffmpeg wheel) probes files and decodes what OpenCV cannot.
Every frame of every path goes through `crop_resize`, so tests, shards and `predict` agree to the byte.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from vidrec.plan.config import clip_hw
from vidrec.core.errors import VidrecError
from vidrec.core.workers import libraries_verbose


class VideoError(VidrecError, RuntimeError):
    """A video cannot be used; the message names the file, the reason and what to do."""

    def __init__(self, path: str | Path, reason: str, fix: str = ""):
        self.path, self.reason, self.fix = str(path), reason, fix
        super().__init__(f"{path}: {reason}" + (f". {fix}" if fix else ""))

    def __reduce__(self) -> tuple[type, tuple[str, str, str]]:
        """Pickle with all three arguments: a decode worker returns it to the parent, and an error that
        cannot be rebuilt there kills multiprocessing.Pool's result thread (the shard never finishes)."""
        return type(self), (self.path, self.reason, self.fix)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """ffmpeg from PATH, else the static binary shipped in the imageio-ffmpeg wheel."""
    exe = shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as err:
        raise VidrecError("no ffmpeg found: install it (apt-get install ffmpeg) or "
                           "`pip install imageio-ffmpeg`") from err


# ----------------------------------------------------------------------------- sampling
# Frames per video that an any-start spec's disk figures assume (vidrec/data/diskspace.py, the forecast):
# UCF101's mean length, about 7 s at 25 fps. The manifest records no frame counts, so this is the one
# place the assumption is made; a dataset of longer videos needs proportionally more disk.
MEAN_FRAMES_PER_VIDEO = 7 * 25

@dataclass(frozen=True)
class ClipSpec:
    """How a video becomes stored clips.

    crop: side of the centre square cut from each frame before resizing; None keeps the whole frame
      (Tran et al. resize the whole 320x240 frame to 128x171).
    size: an int (size x size) or (height, width). Kept as given, so the shard identity of square
      specs (the hash of these fields) is what it was before non-square sizes existed.
    sampling: uniform | consecutive store K clips per video (`sample_indices`); any_start stores every
      frame of the video once, and clips of `frames` consecutive frames at `stride` are cut at load
      time: in training from any start frame (Tran et al.'s temporal jitter), in testing the K
      (`clips_per_video`) evenly spaced clips a consecutive spec with the same K stores.
    """

    frames: int = 16
    crop: int | None = 192
    size: int | tuple[int, int] = 160
    sampling: str = "uniform"
    clips_per_video: int = 1
    stride: int = 1

    @classmethod
    def from_config(cls, spec: dict) -> "ClipSpec":
        kwargs = {k: spec[k] for k in cls.__dataclass_fields__ if k in spec}
        if isinstance(kwargs.get("size"), (list, tuple)):
            kwargs["size"] = tuple(int(v) for v in kwargs["size"])
        return cls(**kwargs)

    @property
    def height(self) -> int:
        return clip_hw(self.size)[0]

    @property
    def width(self) -> int:
        return clip_hw(self.size)[1]

    @property
    def any_start(self) -> bool:
        """Every frame stored, clips cut at load time (sampling: any_start)."""
        return self.sampling == "any_start"

    @property
    def span(self) -> int:
        """Frames one clip of consecutive frames covers: (T - 1) x stride + 1."""
        return (self.frames - 1) * self.stride + 1

    @property
    def test_clips_spec(self) -> "ClipSpec":
        """The spec whose stored clips are this spec's test clips: an any-start spec's K evenly spaced
        clips are those of the consecutive spec with the same fields; any other spec is its own."""
        return replace(self, sampling="consecutive") if self.any_start else self

    @property
    def frames_per_video(self) -> float:
        """Frames a shard stores per video: K x T stored clips, or, for an any-start spec, every frame
        (at least one span), taken as MEAN_FRAMES_PER_VIDEO since the manifest records no frame counts."""
        if self.any_start:
            return float(max(MEAN_FRAMES_PER_VIDEO, self.span))
        return float(self.clips_per_video * self.frames)

    @property
    def bytes_per_video(self) -> int:
        """Stored uint8 RGB bytes of one video: frames_per_video x H x W x 3 (shards are uncompressed)."""
        return int(self.frames_per_video * self.height * self.width * 3)

    def text(self) -> str:
        """'16x128x171 consecutive' (frames x height x width, sampling)."""
        return f"{self.frames}x{self.height}x{self.width} {self.sampling}"

    @property
    def centre_clip(self) -> int:
        """The clip that the thesis's one-clip protocol uses."""
        return self.clips_per_video // 2


def clip_starts(n_frames: int | np.ndarray, span: int, clips: int) -> np.ndarray:
    """First frames of `clips` clips of `span` frames evenly spaced over a video of `n_frames` frames
    (all at 0 when the video is shorter than a span): the consecutive spec's stored clips and an
    any-start spec's test clips. An array of n_frames gives one row of starts per video."""
    last = np.maximum(np.asarray(n_frames, np.int64) - span, 0)
    return np.round(np.linspace(0, last, clips, axis=-1)).astype(np.int64)


def sample_indices(n_frames: int, spec: ClipSpec) -> tuple[np.ndarray, str]:
    """Frame numbers (clips_per_video, frames) to keep, and the repair applied ("" if none).

    uniform: frame t of clip k is floor((t + (k + 0.5) / K) * n / T): T frames spread over the
      whole video, each clip phase-shifted within the T segments (K=1: segment centres).
    consecutive: K clips of T frames at `stride`, starts evenly spaced over the video (`clip_starts`).
    any_start: every frame, as one row (1, max(n, span)).
    Short videos: uniform sampling repeats frames (nearest frame); consecutive clips that run
    past the end, and an any-start video shorter than a span, repeat the last frame. Either is
    recorded as a repair.
    """
    if n_frames < 1:
        raise ValueError("a video needs at least one frame")
    T, K = spec.frames, spec.clips_per_video
    if spec.sampling == "uniform":
        t = np.arange(T)[None, :] + (np.arange(K)[:, None] + 0.5) / K
        idx = np.floor(t * n_frames / T).astype(np.int64)
        repair = "repeated_frames" if n_frames < T else ""
    elif spec.sampling == "consecutive":
        starts = clip_starts(n_frames, spec.span, K)
        idx = starts[:, None] + np.arange(T)[None, :] * spec.stride
        repair = "padded_last_frame" if n_frames < spec.span else ""
    elif spec.sampling == "any_start":
        idx = np.arange(max(n_frames, spec.span))[None, :]
        repair = "padded_last_frame" if n_frames < spec.span else ""
    else:
        raise ValueError(f"unknown sampling mode {spec.sampling!r} (uniform | consecutive | any_start)")
    return np.minimum(idx, n_frames - 1), repair


# ----------------------------------------------------------------------------- crop / resize
def crop_resize(frame: np.ndarray, crop: int | None, size: int | Sequence[int]) -> tuple[np.ndarray, str]:
    """Centre square crop of side `crop` (None: the whole frame), resized to `size` (an int for a
    square, or (height, width)), INTER_AREA when shrinking.

    A frame smaller than the crop (e.g. 176x144) gets the largest centred square instead,
    recorded as the repair `crop_shrunk_to_<side>`.
    """
    h, w = frame.shape[:2]
    out_h, out_w = clip_hw(size)
    if crop is None:
        out, repair = frame, ""
    else:
        side = min(crop, h, w)
        repair = "" if side == crop else f"crop_shrunk_to_{side}"
        y, x = (h - side) // 2, (w - side) // 2
        out = frame[y:y + side, x:x + side]
    in_h, in_w = out.shape[:2]
    if (in_h, in_w) != (out_h, out_w):
        interp = cv2.INTER_AREA if in_h >= out_h and in_w >= out_w else cv2.INTER_LINEAR
        out = cv2.resize(out, (out_w, out_h), interpolation=interp)
    return np.ascontiguousarray(out), repair


# ----------------------------------------------------------------------------- probing
_FRAME_RE = re.compile(r"frame=\s*(\d+)")


def probe(path: str | Path) -> dict:
    """Stream facts from ffmpeg's own parser: has_video, width, height, fps, codec, audio."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                          capture_output=True, text=True, errors="replace")
    text = proc.stderr
    # ffmpeg's last lines, less its complaint that `-i` alone names no output file
    lines = [ln.strip() for ln in text.strip().splitlines()
             if ln.strip() and "At least one output file must be specified" not in ln]
    info = {"has_video": False, "has_audio": " Audio: " in text, "raw": lines[-3:]}
    audio = re.search(r"Audio: (\w+)", text)
    if audio:
        info["audio_codec"] = audio[1]
    m = re.search(r"Video: (\w+).*?, (\d{2,5})x(\d{2,5})", text)
    if m:
        info.update(has_video=True, codec=m[1], width=int(m[2]), height=int(m[3]))
        fps = re.search(r"([\d.]+) fps", text)
        info["fps"] = float(fps[1]) if fps else None
    return info


def _count_frames_ffmpeg(path: str | Path) -> int:
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
                           "-f", "null", "-"], capture_output=True, text=True, errors="replace")
    counts = _FRAME_RE.findall(proc.stderr)
    return int(counts[-1]) if counts else 0


# Frames kept short of the first decode error in a damaged (e.g. truncated) file: decoders emit a
# few concealed frames before ffmpeg reports the error (measured: up to 2 with x264's default 3
# B-frames and MPEG-4 with B-frames, 0 with XviD), so the last 3 frames before it are dropped too.
DAMAGE_MARGIN = 3


def _frames_before_damage(path: str | Path) -> int | None:
    """Frames ffmpeg decodes before its first decode error; None when the stream decodes cleanly."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-err_detect", "explode", "-xerror",
                           "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                          capture_output=True, text=True, errors="replace")
    if proc.returncode == 0:
        return None
    counts = _FRAME_RE.findall(proc.stderr)
    return int(counts[-1]) if counts else 0


def _explain_unreadable(path: Path) -> VideoError:
    skip = "or set decode.on_bad_video: skip to leave it out (it is then listed in gGG.json and the report)"
    if not path.exists():
        return VideoError(path, "file not found", "Check datasets.<name>.root in config.yaml, restore the "
                          f"file, {skip}")
    if path.stat().st_size == 0:
        return VideoError(path, "empty file (0 bytes)", f"Re-copy or re-download it, {skip}")
    info = probe(path)
    if not info["has_video"]:
        if info["has_audio"]:
            return VideoError(path, f"only an audio stream ({info.get('audio_codec', 'audio')}), no video stream",
                              f"Replace it with the original video, {skip}")
        said = [re.sub(r"^\[[^]]*\]\s*", "", ln) for ln in info["raw"]]  # drop "[in#0 @ 0x...]"
        why = next((ln.split(": ", 1)[1] for ln in said if ln.startswith("Error opening input:")),
                   said[-1] if said else "no video stream")
        return VideoError(path, f"not a readable video (ffmpeg: {why[-200:]})",
                          f"Re-download the file, {skip}")
    return VideoError(path, f"{info.get('codec', 'video')} stream with no decodable frame (corrupt or truncated)",
                      f"Re-download the file, {skip}")


# ----------------------------------------------------------------------------- decoding
@dataclass
class DecodedVideo:
    clips: np.ndarray            # (K, T, height, width, 3) uint8 RGB; any_start: (1, frames, ...), every frame
    frame_indices: np.ndarray    # (K, T) int
    n_frames: int
    repairs: list[str] = field(default_factory=list)  # per clip, "" or ";"-joined repairs
    backend: str = "opencv"


def _decode_opencv(path: Path, wanted: np.ndarray, threads: int) -> tuple[dict[int, np.ndarray], int, bool]:
    """Grab every frame to the end of the stream; retrieve only the wanted ones (BGR).

    Returns the frames, the number of frames the stream really has (the container's count can be
    wrong: truncated files, dropped-frame placeholders, estimated counts) and whether the frame
    timestamps show a variable frame rate. Grabbing past the last wanted frame costs ~3% of the
    decode for uniform 16-frame clips (the last sampled frame is at ~97% of the video).
    """
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    if not cap.isOpened():
        return {}, 0, False
    frames: dict[int, np.ndarray] = {}
    want = set(int(i) for i in wanted)
    stamps: list[float] = []
    i = 0
    try:
        while cap.grab():
            stamps.append(cap.get(cv2.CAP_PROP_POS_MSEC))
            if i in want:
                ok, img = cap.retrieve()
                if ok:
                    frames[i] = img
            i += 1
    finally:
        cap.release()
    return frames, i, _variable_rate(stamps)


def _variable_rate(stamps_ms: list[float]) -> bool:
    """True when increasing frame timestamps are unevenly spaced (> 10% off the median step).

    Out-of-order or missing timestamps (e.g. H.264 with B-frames inside AVI) give no verdict."""
    d = np.diff(np.asarray(stamps_ms, np.float64))
    if len(d) < 2 or (d <= 0).any():
        return False
    med = float(np.median(d))
    return bool(np.abs(d - med).max() > 0.1 * med + 0.5)


def _opencv_frame_count(path: Path) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()


def _decode_ffmpeg(path: Path, wanted: np.ndarray) -> tuple[dict[int, np.ndarray], int]:
    """Fallback: stream raw RGB frames from ffmpeg, keep the wanted ones (converted to BGR)."""
    import ffmpeg

    info = probe(path)
    if not info["has_video"]:
        return {}, 0
    w, h = info["width"], info["height"]
    # ffmpeg's complaints about a damaged stream go to the terminal only after `vidrec -v`; its
    # stderr is never a pipe (an unread pipe fills up and stalls the decode)
    proc = (ffmpeg.input(str(path)).output("pipe:", format="rawvideo", pix_fmt="bgr24", map="0:v:0")
            .global_args("-nostdin", "-loglevel", "error" if libraries_verbose() else "quiet")
            .run_async(cmd=ffmpeg_exe(), pipe_stdout=True))
    want, frames, i = set(int(x) for x in wanted), {}, 0
    size = w * h * 3
    try:
        while True:
            buf = proc.stdout.read(size)
            if len(buf) < size:
                break
            if i in want:
                frames[i] = np.frombuffer(buf, np.uint8).reshape(h, w, 3).copy()
            i += 1
    finally:
        proc.stdout.close()
        proc.kill()
        proc.wait()
    return frames, i


def decode_clips(path: str | Path, spec: ClipSpec, threads: int = 1) -> DecodedVideo:
    """Decode the sampled clips of one video (each frame decoded once; any_start: every frame); raise VideoError."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise _explain_unreadable(path)
    backend = "opencv"
    declared = _opencv_frame_count(path)  # the container's count (an estimate in some formats)
    frames: dict[int, np.ndarray] = {}
    n, vfr, damaged = 0, False, False
    if declared > 0:
        idx, _ = sample_indices(declared, spec)
        frames, n, vfr = _decode_opencv(path, np.unique(idx), threads)
        if 0 < n < declared:  # the stream ends early: a damaged (truncated) tail, or just a wrong count?
            clean = _frames_before_damage(path)
            if clean is not None:  # damaged: keep only the frames safely before the first decode error
                damaged, n = True, max(min(clean, n) - DAMAGE_MARGIN, 0)
                if n == 0:
                    raise VideoError(path, f"damaged from its first frames (decode error at frame {clean} "
                                     f"of {declared})", "Re-download the file, or set decode.on_bad_video: "
                                     "skip to leave it out (it is then listed in gGG.json and the report)")
        if 0 < n != declared:  # sample the frames the stream really holds
            idx, _ = sample_indices(n, spec)
            frames, _, vfr = _decode_opencv(path, np.unique(idx), threads)
    if n == 0:  # OpenCV could not read it: count and decode with ffmpeg
        backend, declared = "ffmpeg", 0
        n = _count_frames_ffmpeg(path)
        if n == 0:
            raise _explain_unreadable(path)
        idx, _ = sample_indices(n, spec)
        frames, _ = _decode_ffmpeg(path, np.unique(idx))
    idx, sample_repair = sample_indices(n, spec)
    missing = sorted(set(int(i) for i in np.unique(idx)) - frames.keys())
    if missing:
        raise VideoError(path, f"frames {missing[:5]} of {n} could not be decoded",
                         "The file is damaged; re-download it or set decode.on_bad_video: skip")
    K, T = idx.shape
    out = np.empty((K, T, spec.height, spec.width, 3), np.uint8)
    crop_repairs: set[str] = set()
    converted: dict[int, np.ndarray] = {}
    for i in np.unique(idx):
        rgb = cv2.cvtColor(frames.pop(int(i)), cv2.COLOR_BGR2RGB)  # each source frame freed once converted
        converted[int(i)], rep = crop_resize(rgb, spec.crop, spec.size)
        if rep:
            crop_repairs.add(rep)
    for k in range(K):
        for t in range(T):
            out[k, t] = converted[int(idx[k, t])]
    # The documented repairs (README "Troubleshooting"), in the order they apply
    repairs = ";".join(r for r in [
        f"truncated({declared}->{n})" if damaged else
        f"frame_count_corrected({declared}->{n})" if declared and declared != n else "",
        "variable_frame_rate" if vfr else "",  # sampled by frame order; timestamps are not used
        f"{sample_repair}({n}_frames)" if sample_repair else "",
        *sorted(crop_repairs)] if r)
    return DecodedVideo(out, idx, n, [repairs] * K, backend)
