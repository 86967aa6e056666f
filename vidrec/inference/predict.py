"""`vidrec predict`: classify new videos with a trained model, decoding overlapped with the model.

A pool of decode workers (`DecodePool`) turns videos into uint8 clips with the model's stored clip
spec (`decode_clips`: the shards' sampling and crop/resize, byte for byte); the calling process
batches clips as they arrive and runs the model while the workers decode the next videos, so the
end-to-end rate approaches min(decode rate x workers, model rate) when the two do not share cores.
Preprocessing after decoding is `vidrec evaluate`'s: normalise, then the centre crop of the
training augmentation (if any), or with crops=3 three crops along the longer side. Scores are softmax
probabilities, averaged over a video's K clips x S crops (vidrec/data/views.py).
"""
from __future__ import annotations

import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from vidrec.plan.config import clip_hw
from vidrec.data.dataset import test_views
from vidrec.data.video import ClipSpec
from vidrec.core.errors import VidrecError
from vidrec.data.views import SPATIAL_CROPS, Views, spatial_crops
from vidrec.inference.decode import Decoded, DecodePool, clip_plan, collect_videos
from vidrec.core.io import write_csv, write_json
from vidrec.models.model_file import Preprocessing, build_model_from_file
from vidrec.models.runtime import Runtime, pick_device

log = logging.getLogger("vidrec.predict")


# ----------------------------------------------------------------------------- results
@dataclass
class VideoPrediction:
    video: str
    probs: np.ndarray            # (C,) mean of the softmax over every view (K clips x S crops)
    view_probs: np.ndarray       # (K, S, C): clip k in crop s (crops left/top first)
    frame_indices: np.ndarray    # (K, T) source frames of each clip
    n_frames: int
    repairs: str = ""
    backend: str = ""

    @property
    def clip_probs(self) -> np.ndarray:
        """(K, C): each clip's softmax, averaged over its crops."""
        return self.view_probs.mean(axis=1)

    def top(self, k: int) -> list[int]:
        """Labels of the k highest probabilities, best first (ties: lower label first)."""
        return [int(i) for i in np.argsort(-self.probs, kind="stable")[:k]]


@dataclass
class PredictRun:
    predictions: list[VideoPrediction]
    errors: list[tuple[str, str]]            # (video, reason)
    clips: int                               # clips scored per video
    seconds: float                           # decode + model, first submission to last score
    workers: int
    batch: int
    device: str
    threads: int
    extra: dict = field(default_factory=dict)
    crops: int = 1                           # spatial crops per clip: views = clips x crops

    @property
    def videos_per_s(self) -> float:
        n = len(self.predictions) + len(self.errors)
        return n / self.seconds if self.seconds > 0 else math.nan


# ----------------------------------------------------------------------------- the model side
class Predictor:
    """A trained model (model.pt from `vidrec train`) ready to score uint8 clips."""

    def __init__(self, model_path: str | Path, device: str | torch.device = "auto", threads: int | None = None,
                 amp: torch.dtype | None = None):
        self.path = Path(model_path)
        self.device = pick_device(device)
        cuda = self.device.type == "cuda"
        # on CUDA: the autocast dtype `evaluate` uses, channels-last, cuDNN's autotuner
        self.rt = Runtime(self.device, amp_dtype=amp if cuda else None, channels_last=cuda)
        if self.device.type == "cpu" and threads:
            torch.set_num_threads(max(1, int(threads)))
        model, blob = build_model_from_file(self.path)
        self.model = self.rt.place(model.eval())
        if cuda:
            torch.backends.cudnn.benchmark = True
        self.blob = {k: v for k, v in blob.items() if k != "state_dict"}
        if "clip" not in blob:
            raise VidrecError(f"{self.path}: the model file has no stored clip settings ('clip'); "
                              "re-train it with this version of vidrec")
        self.spec = ClipSpec.from_config(blob["clip"])
        self.preprocess = Preprocessing.of(blob)
        n = int(blob["num_classes"])
        self.class_names = list(blob.get("class_names") or [f"class_{i}" for i in range(n)])
        self.clip_shape = tuple(blob["clip_shape"])

    def to_input(self, clips: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (N, T, H, W, 3) -> the model's float input (N, 3, T, h, w), as `vidrec evaluate` builds it."""
        x = torch.as_tensor(clips).permute(0, 4, 1, 2, 3).contiguous()
        return self.preprocess(x.to(self.device, non_blocking=True), memory_format=self.rt.memory_format)

    @torch.no_grad()
    def scores(self, clips: np.ndarray | torch.Tensor, crops: int = 1) -> np.ndarray:
        """Softmax probabilities (N, C) of uint8 clips (N, T, H, W, 3); with crops=3, (N, 3, C): each
        clip in the 3 crops along the longer side (left/top first), one model call per crop."""
        if crops == 1:
            x = self.to_input(clips)
            with self.rt.autocast():
                logits = self.model(x)
            return torch.softmax(logits.float(), dim=1).cpu().numpy()
        self.views(crops)  # refuses a model with one spatial view
        x = torch.as_tensor(clips).permute(0, 4, 1, 2, 3).to(self.device, non_blocking=True)
        out = []
        for view in test_views(x, self.preprocess.crop, crops):  # Preprocessing's centre crop of a crop: itself
            with self.rt.autocast():
                logits = self.model(self.preprocess(view.contiguous(), memory_format=self.rt.memory_format))
            out.append(torch.softmax(logits.float(), dim=1))
        return torch.stack(out, dim=1).cpu().numpy()

    def views(self, crops: int, clips: int = 1) -> Views:
        """K clips x S crops of this model, or VidrecError when it has fewer spatial views than asked."""
        if crops not in SPATIAL_CROPS:
            raise VidrecError(f"--crops {crops}: use one of {SPATIAL_CROPS}")
        got, why = spatial_crops(crops, self.preprocess.crop, *clip_hw(self.blob["clip"]["size"]))
        if got != crops:
            raise VidrecError(f"--crops {crops}: {why}")
        return Views(clips, crops)

    @torch.no_grad()
    def warm_up(self, batch: int) -> None:
        """One forward at the batch size (oneDNN/cuDNN pick their kernels on the first call)."""
        with self.rt.autocast():
            self.model(torch.zeros(batch, *self.clip_shape, device=self.device).contiguous(
                memory_format=self.rt.memory_format))  # the layout real batches have
        self.rt.synchronize()

    # ------------------------------------------------------------------------- the pipeline
    def predict(self, videos: Sequence[str | Path], clips: int = 1, batch: int = 16, workers: int = 2,
                threads_per_worker: int = 1, progress: bool = False,
                on_video: Callable[[VideoPrediction | None, Decoded], None] | None = None,
                pool: DecodePool | None = None, crops: int = 1) -> PredictRun:
        """Classify `videos` (paths) on `clips` clips x `crops` crops each (views.py; clips=1, crops=1:
        `evaluate`'s clip level); unreadable ones are collected in `errors`, never raised.

        batch: clips per model call (whole videos per batch; a call holds at least one video), per crop.
        workers: decode processes (0: decode in this process, no overlap).
        """
        self.views(crops, clips)
        spec, keep = clip_plan(self.spec, clips)
        tasks = ((i, str(p), spec, tuple(keep), threads_per_worker) for i, p in enumerate(videos))
        videos_per_batch = max(1, math.ceil(batch / clips))
        preds: list[VideoPrediction] = []
        errors: list[tuple[str, str]] = []
        own_pool = pool is None
        if own_pool:  # workers start before the clock (and the progress bar) starts
            pool = DecodePool(workers, threads_per_worker, window=2 * videos_per_batch + 2 * max(workers, 1))
            pool.__enter__()
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(videos), desc="predict", unit="video", file=sys.stderr,
                       mininterval=0.5 if sys.stderr.isatty() else 30)
        pending: list[Decoded] = []

        def flush() -> None:
            x = np.concatenate([d.clips for d in pending])
            probs = self.scores(x, crops).reshape(len(x), crops, -1)
            pos = 0
            for d in pending:
                k = len(d.clips)
                views = probs[pos:pos + k]
                p = VideoPrediction(d.path, views.reshape(k * crops, -1).mean(0), views, d.frame_indices,
                                    d.n_frames, d.repairs, d.backend)
                pos += k
                preds.append(p)
                if on_video:
                    on_video(p, d)
                if bar:
                    bar.update()
            pending.clear()

        start = time.perf_counter()
        try:
            for d in pool.imap(tasks):
                if d.error is not None:
                    errors.append((d.path, d.error))
                    if on_video:
                        on_video(None, d)
                    if bar:
                        bar.update()
                    continue
                pending.append(d)
                if sum(len(p.clips) for p in pending) >= batch:
                    flush()
            if pending:
                flush()
            self.rt.synchronize()
            seconds = time.perf_counter() - start
        finally:
            if own_pool:
                pool.__exit__(None, None, None)
            if bar:
                bar.close()
        return PredictRun(preds, errors, clips, seconds, pool.workers, batch, str(self.device),
                          torch.get_num_threads(), crops=crops)


# ----------------------------------------------------------------------------- outputs
def result_rows(run: PredictRun, class_names: list[str], top_k: int) -> pd.DataFrame:
    """One row per input video: top-k classes and probabilities, or the error."""
    k = min(top_k, len(class_names))
    cols = ["video", "clips", "crops", "n_frames"] + [c for j in range(1, k + 1)
                                             for c in (f"top{j}_class", f"top{j}_label", f"top{j}_prob")]
    cols += ["repairs", "error"]
    rows = []
    for p in run.predictions:
        row = {"video": p.video, "clips": len(p.clip_probs), "crops": p.view_probs.shape[1],
               "n_frames": p.n_frames, "repairs": p.repairs, "error": ""}
        for j, label in enumerate(p.top(k), 1):
            row |= {f"top{j}_class": class_names[label], f"top{j}_label": label,
                    f"top{j}_prob": float(p.probs[label])}
        rows.append(row)
    for video, reason in run.errors:
        rows.append({"video": video, "clips": 0, "crops": 0, "n_frames": 0, "repairs": "", "error": reason})
    return pd.DataFrame(rows, columns=cols)


def result_json(run: PredictRun, predictor: Predictor, top_k: int) -> dict:
    k = min(top_k, len(predictor.class_names))
    return {
        "model": str(predictor.path), "arch": predictor.blob["arch"],
        "clip": {**predictor.spec.__dict__, "crop_after_decode": predictor.preprocess.crop},
        "clips_per_video": run.clips, "crops": run.crops, "views": Views(run.clips, run.crops).text(),
        "video_level": Views(run.clips, run.crops).video_level_text(), "top_k": k,
        "videos": [{"video": p.video, "clips": len(p.clip_probs), "crops": p.view_probs.shape[1],
                    "n_frames": p.n_frames, "repairs": p.repairs,
                    "frame_indices": p.frame_indices.tolist(),
                    "top": [{"class_name": predictor.class_names[i], "label": i, "probability": float(p.probs[i])}
                            for i in p.top(k)]} for p in run.predictions],
        "errors": [{"video": v, "reason": r} for v, r in run.errors],
        "timing": {"seconds": run.seconds, "videos_per_s": run.videos_per_s, "workers": run.workers,
                   "batch": run.batch, "device": run.device, "threads": run.threads},
    }


def format_line(p: VideoPrediction, class_names: list[str], top_k: int) -> str:
    return p.video + "\t" + "  ".join(f"{class_names[i]} {p.probs[i]:.3f}" for i in p.top(top_k))


def predict_command(model: Path, inputs: Sequence[str], clips: int = 1, top_k: int = 5, batch: int = 16,
                    workers: int = 2, device: str = "auto", threads: int | None = None,
                    output: Path | None = None, progress: bool = True, out=None, crops: int = 1) -> PredictRun:
    """The CLI verb: print top-k per video (stdout), report unreadable files (stderr), write --output."""
    out = out or sys.stdout
    if output is not None and Path(output).suffix.lower() not in (".csv", ".json"):
        raise VidrecError(f"--output {output}: use a .csv or .json file name")
    if clips < 1 or top_k < 1 or batch < 1 or workers < 0:
        raise VidrecError("--clips, --top-k and --batch must be >= 1 and --workers >= 0")
    videos, problems, any_folder = collect_videos(inputs)
    if threads is None and workers > 0 and len(videos) > 1 and pick_device(device).type == "cpu":
        threads = max(1, (os.cpu_count() or 1) - workers)  # decode workers and the model on separate cores
    predictor = Predictor(model, device, threads)
    predictor.views(crops, clips)  # before any decoding: a model with one spatial view refuses --crops 3
    names = predictor.class_names
    show_bar = progress and (any_folder or len(videos) > 1)
    bar_write = None
    if show_bar:
        from tqdm import tqdm

        bar_write = tqdm.write

    def note(msg: str) -> None:
        (bar_write(msg, file=sys.stderr) if bar_write else print(msg, file=sys.stderr))

    def emit(p: VideoPrediction | None, d: Decoded) -> None:
        if p is None:
            note(f"unreadable: {d.path}: {d.error}")
            return
        if p.repairs:  # what the decoder's own messages meant for this file, in one line (-v shows them raw)
            note(f"repaired: {p.video}: {p.repairs}")
        line = format_line(p, names, top_k)
        (bar_write(line, file=out) if bar_write else print(line, file=out))

    for path, reason in problems:
        print(f"unreadable: {path}: {reason}", file=sys.stderr)
    run = predictor.predict(videos, clips=clips, batch=batch, workers=workers, progress=show_bar, on_video=emit,
                            crops=crops)
    run.errors = problems + run.errors
    if output is not None:
        if Path(output).suffix.lower() == ".csv":
            write_csv(output, result_rows(run, names, top_k))
        else:
            write_json(output, result_json(run, predictor, top_k))
    log.info("%d videos classified, %d unreadable, %.1f s (%.1f videos/s, %d decode workers, %s)",
             len(run.predictions), len(run.errors), run.seconds, run.videos_per_s, run.workers, run.device)
    if not run.predictions:
        raise VidrecError(f"no video could be classified ({len(run.errors)} unreadable, listed above)")
    return run


# ----------------------------------------------------------------------------- speed for evaluate
def measure_end_to_end(model_path: str | Path, videos: Iterable[str | Path], *, clips: int = 1, batch: int = 16,
                       workers: int | None = None, device: str | torch.device = "auto",
                       threads: int | None = None, amp: torch.dtype | None = None,
                       max_videos: int | None = 64) -> dict:
    """End-to-end inference speed on real video files: videos/s, decoding included.

    Times the predict pipeline (decode workers + batched model) over up to `max_videos` of
    `videos`, after starting the workers and one warm-up forward (one-time costs, excluded).
    `workers` defaults to the CPU cores left after the model's threads on CPU (at least 1), or
    all cores but one beside a GPU. Returns figures named for evaluation.json; the report shows
    `infer_videos_per_s_end_to_end`.
    """
    videos = [Path(v) for v in videos][:max_videos]
    if not videos:
        raise VidrecError("measure_end_to_end: no videos to time")
    predictor = Predictor(model_path, device, threads, amp)
    cores = os.cpu_count() or 1
    if workers is None:
        workers = (max(1, cores - 1) if predictor.device.type == "cuda"
                   else max(1, cores - torch.get_num_threads()))
    spec, _ = clip_plan(predictor.spec, clips)
    predictor.warm_up(min(batch, len(videos) * clips))
    vpb = max(1, math.ceil(batch / clips))
    with DecodePool(workers, 1, window=2 * vpb + 2 * workers) as pool:
        run = predictor.predict(videos, clips=clips, batch=batch, workers=workers, pool=pool)
    return {
        "infer_videos_per_s_end_to_end": run.videos_per_s,
        "end_to_end_videos": len(videos), "end_to_end_unreadable": len(run.errors),
        "end_to_end_clips_per_video": clips, "end_to_end_batch": batch, "end_to_end_workers": workers,
        "end_to_end_seconds": run.seconds, "end_to_end_device": run.device, "end_to_end_threads": run.threads,
        "end_to_end_clip": spec.text(),
    }
