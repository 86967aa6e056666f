"""`vidrec evaluate`: accuracy under both protocols and efficiency, measured in the same run.

Each test video is scored on K clips x S crops (vidrec/data/views.py, which defines both levels
once): the K stored clips of its clip spec, each in S spatial crops (`evaluate.crops`). Video level
(Tran et al.): the softmax averaged over all K x S views. Clip level (the thesis): one view, clip
K // 2 in the centre crop. evaluation.json states the views and both definitions. Efficiency:
parameters, file size, GFLOPs per clip, inference clips/s and videos/s after a warm-up at a fixed
batch, peak memory, and the training time recorded by `vidrec train`.
"""
from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vidrec.data.dataset import ClipDataset, collate_batch, test_views
from vidrec.data.prefetch import DeviceFeed
from vidrec.core.io import write_csv, write_json
from vidrec.data.views import Views, run_views
from vidrec.evaluation.accuracy import accuracy_tables
from vidrec.plan.layout import EVALUATION_FILES, SCORES_FILE, TRAIN_FILES
from vidrec.models.model_file import Preprocessing, build_model_from_file
from vidrec.models.runtime import Runtime, setup_runtime

log = logging.getLogger("vidrec.evaluate")


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


@torch.no_grad()
def inference_speed(model: torch.nn.Module, clip_shape: tuple[int, ...], batch: int, batches: int,
                    rt: Runtime) -> float:
    """Clips/s of the forward pass on random input: one warm-up batch, then `batches` timed."""
    model.eval()
    x = torch.randn(batch, *clip_shape, device=rt.device).contiguous(memory_format=rt.memory_format)
    with rt.autocast():
        model(x)
        rt.synchronize()
        start = time.perf_counter()
        for _ in range(batches):
            model(x)
        rt.synchronize()
    return batch * batches / (time.perf_counter() - start)


@torch.no_grad()
def predict_clips(model: torch.nn.Module, dataset: ClipDataset, batch: int, rt: Runtime,
                  preprocess: Preprocessing, crops: int = 1) -> np.ndarray:
    """Softmax (N, S, C) of every clip of `dataset` in each of its S = `crops` spatial views
    (`test_views`: the centre crop for 1, left/centre/right along the longer side for 3),
    preprocessed and run as the model was trained, one model call per view and batch.

    No host sync per batch: the next batch is read and copied while this one runs (DeviceFeed;
    `dataset` reads into pinned memory on CUDA), and the scores stay on the device until the end."""
    dataset.pin = rt.device.type == "cuda"
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=False, collate_fn=collate_batch)
    model.eval()
    out = []
    for b in DeviceFeed(loader, rt.device):
        views = []
        for view in test_views(b["clips"], preprocess.crop, crops):  # the crop's own centre crop: itself
            x = preprocess(view, memory_format=rt.memory_format)
            with rt.autocast():
                logits = model(x)
            views.append(torch.softmax(logits.float(), dim=1))
        out.append(torch.stack(views, dim=1))
    return torch.cat(out).cpu().numpy()


def check_clip_transfer(blob: dict, clip_shape: tuple[int, ...], clip_name: str) -> None:
    """A model whose structure is fixed by its training clip (R2D's stem spans the clip) cannot test on another."""
    from vidrec.core.errors import VidrecError
    from vidrec.models import clip_args

    trained = tuple(blob["clip_shape"])
    fixed = {"num_frames": (1, "frames"), "input_size": (2, "frame size")}
    for arg in clip_args(blob["arch"]):
        i, what = fixed[arg]
        if (arg == "num_frames" and clip_shape[1] != trained[1]) or \
                (arg == "input_size" and tuple(clip_shape[2:]) != tuple(trained[2:])):
            raise VidrecError(f"{blob['arch']} is built for its training clip's {what} "
                              f"({'x'.join(map(str, trained[1:]))}); it cannot be evaluated on clip spec "
                              f"'{clip_name}' ({'x'.join(map(str, clip_shape[1:]))})")


def write_clip_scores(path: Path, scores: np.ndarray, dataset: ClipDataset, n_clips: np.ndarray) -> None:
    """scores.npz: the softmax of every test clip (with S crops: their mean, so k clips averaged are
    k x S views), with its video, clip index, label, the video's clip count and the crop count."""
    from vidrec.core.io import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, scores=scores.mean(axis=1).astype(np.float32), labels=dataset.labels,
                 video_ids=dataset.video_ids, clip_index=dataset.clip_index, n_clips=n_clips,
                 crops=scores.shape[1])


def end_to_end_speed(cfg: dict, model_path: Path, test: pd.DataFrame, rt) -> dict:
    """Videos/s with decoding included (the thesis's 2-2.d measure) on the split's own test videos.

    Uses the `vidrec predict` pipeline; skipped (empty dict) when the videos are not on disk or
    `evaluate.end_to_end_videos` is 0. On CPU one decode worker runs beside the model's threads.
    """
    from vidrec.plan.config import dataset_config
    from vidrec.data.formats import videos_dir
    from vidrec.inference import measure_end_to_end

    n = cfg["evaluate"]["end_to_end_videos"]
    if not n or "path" not in test.columns:
        return {}
    root = videos_dir(dataset_config(cfg))
    paths = [root / p for p in test["path"] if (root / p).is_file()][:n]
    if not paths:
        return {}
    return measure_end_to_end(model_path, paths, batch=cfg["evaluate"]["batch_size"], device=rt.device,
                              workers=1 if rt.device.type == "cpu" else None,
                              threads=torch.get_num_threads(), amp=rt.amp_dtype, max_videos=n)


def _test_clip_text(clip: dict, augment: dict | None, views: Views) -> str:
    """'16 frames, uniform sampling, frames at 64x64, 112x112 crops, 3 clips x 1 crop per video (...)'."""
    if not clip:
        return "unknown (the model file predates clip records)"
    size = clip.get("size")
    size = f"{size[0]}x{size[1]}" if isinstance(size, (list, tuple)) else f"{size}x{size}"
    crop = (augment or {}).get("crop")
    where = "centre crop" if views.crops == 1 else "crops along the longer side"
    text = (f"{clip.get('frames')} frames, {clip.get('sampling')} sampling, frames at {size}"
            f"{f', {where} {crop}x{crop}' if crop else ''}, {views.text()} per video")
    return text + (" (video level = clip level: one view per video)" if views.count == 1 else
                   f" (video level: the mean softmax over the {views.count} views)")


def evaluate_run(cfg: dict, model_path: Path, index_csv: Path, out_dir: Path, split: int | None = None,
                 threads: int | None = None, clip_name: str | None = None, save_scores: bool = False) -> dict:
    """Evaluate model.pt on a split index (of official split `split`, recorded in evaluation.json).

    clip_name: the clip spec the index was built from when it is not the model's own (a model trained
    on 8-frame clips tested on 32-frame clips); recorded, and used for the efficiency figures.
    save_scores: also write scores.npz (every clip's softmax) for clip-count experiments.
    With clip_name (rule evaluate_at) the end-to-end videos/s, which decodes with the model's own clip
    settings, is left out.
    """
    from vidrec.plan.config import model_input_shape
    from vidrec.models import model_complexity
    from vidrec.core.provenance import hardware

    ecfg = cfg["evaluate"]
    rt = setup_runtime(cfg["train"], threads)
    model, blob = build_model_from_file(model_path)
    clip_shape = tuple(blob["clip_shape"])
    if clip_name is not None and clip_name != blob.get("clip_name"):
        clip_shape = model_input_shape(cfg["clips"][clip_name], blob.get("augment"))
        check_clip_transfer(blob, clip_shape, clip_name)
    rt.place(model)
    index = pd.read_csv(index_csv)
    test = index[index["subset"] == "test"]
    if ecfg.get("max_videos") and len(test) > ecfg["max_videos"]:  # a rehearsal: a few videos across classes
        test = test.sample(n=ecfg["max_videos"], random_state=0).sort_index()
    dataset = ClipDataset(test, clips="all", raw=True)
    clips_per_video = int(np.median(test["n_clips"])) if len(test) else 1
    test_clip = cfg["clips"][clip_name] if clip_name else blob.get("clip") or {}
    views, fewer_crops = run_views({**test_clip, "clips_per_video": clips_per_video} if test_clip else
                                   {"size": list(clip_shape[2:]), "clips_per_video": clips_per_video},
                                   blob.get("augment"), ecfg["crops"])
    start = time.perf_counter()
    scores = predict_clips(model, dataset, ecfg["batch_size"], rt, Preprocessing.of(blob), views.crops)
    eval_seconds = time.perf_counter() - start
    n_clips_of = dict(zip(test["video_id"], test["n_clips"]))
    n_clips = np.array([n_clips_of[v] for v in dataset.video_ids])
    acc = accuracy_tables(scores, dataset.labels, dataset.video_ids, dataset.clip_index, n_clips,
                          blob["class_names"])
    complexity = model_complexity(model, clip_shape)
    clips_per_s = inference_speed(model, clip_shape, ecfg["batch_size"], ecfg["speed_batches"], rt)
    train_json = model_path.parent / TRAIN_FILES["summary"]  # train.json beside the model, when there is one
    train_info = json.loads(train_json.read_text()) if train_json.exists() else {}
    summary = {
        "model": blob["run"]["model"], "arch": blob["arch"], "dataset": blob["run"]["dataset"],
        "protocol": blob["run"]["protocol_name"], "clip_spec": clip_name or blob.get("clip_name"),
        "split": split, "seed": blob["run"].get("seed", train_info.get("seed")),
        **{k: acc[k] for k in ("clip_top1", "clip_top5", "video_top1", "video_top5", "n_videos",
                               "n_clips", "chance", "all_views_top1")},
        **views.as_record(), "test_crops_note": fewer_crops,
        "params": complexity["params"], "size_mb_fp32": complexity["size_mb_fp32"],
        "checkpoint_mb": model_path.stat().st_size / 1e6, "gflops_per_clip": complexity["gflops"],
        "clip_shape": list(clip_shape), "infer_batch": ecfg["batch_size"],
        "infer_clips_per_s": clips_per_s, "clips_per_video": clips_per_video,
        # thesis protocol: 1 clip per video; video-level protocol: every view (K clips x S crops)
        "infer_videos_per_s_one_clip": clips_per_s,
        "infer_videos_per_s_all_clips": clips_per_s / views.count,
        "eval_seconds": eval_seconds, "peak_memory_mb": peak_memory_mb(rt.device),
        "device": str(rt.device), "threads": torch.get_num_threads(),
        "hardware": {k: v for k, v in hardware().items() if k in ("cpu", "usable_cores", "gpus")},
        "train_time_total_s": train_info.get("total_time_s"),
        "train_time_per_epoch_s": train_info.get("mean_epoch_time_s"),
        "epochs": train_info.get("epochs"),
        # how the model was trained and is tested, as it ran (train.json, the model file, the index)
        "initialisation": train_info.get("initialisation"),
        "train_clip_sampling": train_info.get("train_clip_sampling"), "train_augment": train_info.get("augment"),
        "test_clip": _test_clip_text(test_clip, blob.get("augment"), views),
    }
    if clip_name is not None:
        summary["trained_clip_spec"] = blob.get("clip_name")
        summary["trained_clip_shape"] = list(blob["clip_shape"])
    out = Path(out_dir)
    if save_scores:
        write_clip_scores(out / SCORES_FILE, scores, dataset, n_clips)
    write_csv(out / EVALUATION_FILES["predictions"], acc["predictions"])
    write_csv(out / EVALUATION_FILES["per_class"], acc["per_class"])
    with_index = acc["confusion"].reset_index(names="true_class")
    write_csv(out / EVALUATION_FILES["confusion"], with_index)
    if clip_name is None:  # decoding runs the model's own clip settings: not measured on another spec
        summary.update(end_to_end_speed(cfg, model_path, test, rt))
    write_json(out / EVALUATION_FILES["evaluation"], summary)
    log.info("%s: clip top-1 %.3f, video top-1 %.3f over %s (chance %.3f), %.1f clips/s", summary["model"],
             summary["clip_top1"], summary["video_top1"], views.text(), summary["chance"], clips_per_s)
    return summary
