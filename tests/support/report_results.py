"""Fixture results for the report tests: 2 models (a convlstm_c2d63 and a p3d63), 2 splits, a tiny audit
and shard statistics with one skipped and one repaired video, in the layout the pipeline writes, with
accuracies chosen here (ACCURACY) so the tests know every figure the report must show."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from vidrec.plan.config import load_config
from vidrec.plan.layout import Layout

CLASSES = ["Archery", "Biking", "Diving", "Fencing"]
GROUPS = [1, 2, 3, 4]
CLIPS_PER_GROUP = 2
MODEL_SPECS = {
    "convlstm_c2d63": {"arch": "convlstm_c2d63", "protocol": "thesis", "args": {"base_width": 16}},
    "p3d63": {"arch": "p3d63", "protocol": "thesis", "args": {"base_width": 16}},
}
# (model, split) -> clip_top1, clip_top5, video_top1, video_top5 (multiples of 1/8: 8 test videos)
ACCURACY = {
    ("convlstm_c2d63", 1): (0.500, 1.000, 0.625, 1.0),
    ("convlstm_c2d63", 2): (0.750, 1.000, 0.875, 1.0),
    ("p3d63", 1): (0.250, 0.875, 0.375, 1.0),
    ("p3d63", 2): (0.375, 1.000, 0.500, 1.0),
}
# predictions.csv: ConvLSTM-C2D gets its first k test videos right, P3D its last k, so the paired counts
# (A = convlstm_c2d63 right and B = p3d63 wrong, and the reverse) are, by hand from ACCURACY:
# video level split 1: 5 first vs 3 last of 8 -> 5 / 3; split 2: 7 first vs 4 last -> 4 / 1; pooled 9 / 4
# clip level  split 1: 4 first vs 2 last      -> 4 / 2; split 2: 6 first vs 3 last -> 5 / 2; pooled 9 / 4
SPEED = {"convlstm_c2d63": 40.0, "p3d63": 210.0}  # clips/s
SIZE = {"convlstm_c2d63": 14.4, "p3d63": 16.3}    # MB fp32


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)


def make_config(splits=(1, 2), models=tuple(MODEL_SPECS), leakage_allowed=False) -> dict:
    cfg = load_config(None)
    cfg["dataset"] = "demo"
    ds = cfg["datasets"]["demo"]
    ds["splits"] = list(splits)
    ds["models"] = {m: MODEL_SPECS[m] for m in models}
    ds["clip"] = "demo16"
    ds["protocol_overrides"] = {"thesis": {"epochs": 12}}  # the fixture's own protocol, not the demo's tuning
    cfg["leakage"]["allow"] = leakage_allowed
    cfg["decode"]["videos_per_shard"] = 8  # the fixture's 32 videos: 4 shards
    return cfg


def make_results(root: Path, splits=(1, 2), models=tuple(MODEL_SPECS), leakage_allowed=False,
                 leaked=False, bad_videos=True) -> tuple[dict, Path]:
    """Write fixture artifacts where the workflow would, under root (vidrec/plan/layout.py); return
    (cfg, the results folder)."""
    cfg = make_config(splits, models, leakage_allowed)
    layout = Layout.of(cfg, root)
    rows = []
    for label, cls in enumerate(CLASSES):
        for g in GROUPS:
            for c in range(1, CLIPS_PER_GROUP + 1):
                rows.append({"path": f"{cls}/v_{cls}_g{g:02d}_c{c:02d}.avi", "class_name": cls, "label": label,
                             "leak_key": f"{cls}/g{g:02d}", "group": g, "clip": c})
    videos = pd.DataFrame(rows)
    videos.insert(0, "video_id", range(len(videos)))
    _write_csv(layout.manifest("videos"), videos)

    audit = {}
    for s in (1, 2, 3):
        leak = [f"{CLASSES[0]}/g{s:02d}"] if leaked and s == 1 else []
        audit[f"split{s}"] = {"train_videos": 24 + len(leak), "test_videos": 8, "unused_videos": 0,
                              "train_units": 12 + len(leak), "test_units": 4, "leaked": leak}
    warnings = ["LEAKAGE ALLOWED BY CONFIG: split1: 1 leakage units in both train and test"] if leaked else []
    _write_json(layout.manifest("audit"), {
        "splits": audit, "leakage_allowed": leakage_allowed, "warnings": warnings, "classes": len(CLASSES),
        "videos": len(videos), "listed_videos": len(videos), "format": "ucf101",
        "split_rule": "UCF101's three official splits", "leakage_key": "class and group", "leakage_note": ""})
    for s in splits:
        for m in models:
            _write_run(layout, m, s)
    for b in range(4):
        ids = videos.loc[videos["video_id"] // 8 == b, ["video_id", "path"]]
        bad = ids[ids["path"].str.endswith("Archery_g02_c01.avi")] if bad_videos else ids[:0]
        fixed = ids[ids["path"].str.endswith("Archery_g03_c02.avi")] if bad_videos else ids[:0]
        skipped = [{"video_id": int(v), "path": p, "reason": "no frames decoded"} for v, p in bad.itertuples(index=False)]
        repairs = [{"video_id": int(v), "path": p, "repair": "padded_last_frame"} for v, p in fixed.itertuples(index=False)]
        n = len(ids) - len(skipped)
        _write_json(layout.shard_stats("demo16", b), {
            "shard": f"b{b:03d}.h5", "videos": n, "clips": 3 * n, "skipped": skipped, "repairs": repairs,
            "backends": {"opencv": n, "ffmpeg": 0}, "seconds": 3.0 + b, "videos_per_s": round(len(ids) / (3.0 + b), 2),
            "workers": 1, "bytes": 1_000_000 * (b + 1) + 12345, "config_hash": "abc123def456"})
    return cfg, layout.results


def _write_run(layout: Layout, model: str, split: int, seed: int = 0) -> None:
    c1, c5, v1, v5 = ACCURACY[(model, split)]
    n_cls, n_test = len(CLASSES), 8
    epochs = 3
    per_epoch = 60.0 if model.startswith("convlstm") else 30.0
    metrics = pd.DataFrame({
        "epoch": range(1, epochs + 1), "train_loss": [1.4, 1.1, 0.8], "train_acc": [0.3, 0.5, 0.7],
        "val_loss": [1.39, 1.2, 1.0], "val_acc": [0.25, (0.25 + c1) / 2, c1], "lr": [1e-3] * epochs,
        "epoch_time_s": [per_epoch] * epochs, "wall_time_s": [per_epoch * (e + 1) for e in range(epochs)],
        "train_clips_per_s": [24 / per_epoch] * epochs})
    _write_csv(layout.train_file(split, model, seed, "metrics"), metrics)
    train = {"model": model, "arch": model, "dataset": "demo", "protocol": "thesis", "epochs": epochs,
             "total_time_s": per_epoch * epochs, "mean_epoch_time_s": per_epoch, "device": "cpu", "world_size": 1,
             "threads": 2, "seed": seed, "amp": "none", "train_clips": 24, "val_clips": n_test,
             "final_train_acc": 0.7, "final_val_acc": c1, "deterministic": True}
    _write_json(layout.train_file(split, model, seed, "summary"), train)
    # video-level confusion with exactly v1 * 8 correct videos (2 test videos per class)
    right_video, right_clip = _right(model, v1, n_test), _right(model, c1, n_test)
    cm = np.zeros((n_cls, n_cls), int)
    for i in range(n_test):
        true = i // 2
        cm[true, true if right_video[i] else (true + 1) % n_cls] += 1
    confusion = pd.DataFrame(cm, columns=CLASSES)
    confusion.insert(0, "true_class", CLASSES)
    _write_csv(layout.evaluation_file(split, model, seed, "confusion"), confusion)
    per_class = pd.DataFrame({"class_name": CLASSES, "label": range(n_cls), "n_videos": cm.sum(1),
                              "clip_top1": np.diag(cm) / cm.sum(1) * 0.9, "video_top1": np.diag(cm) / cm.sum(1)})
    _write_csv(layout.evaluation_file(split, model, seed, "per_class"), per_class)
    # the split's test videos are group `split`'s (2 per class), in the order of make_results' videos.csv
    per_class_videos = len(GROUPS) * CLIPS_PER_GROUP
    ids = [(i // 2) * per_class_videos + (split - 1) * CLIPS_PER_GROUP + i % 2 for i in range(n_test)]
    _write_csv(layout.evaluation_file(split, model, seed, "predictions"), pd.DataFrame({
        "video_id": ids, "label": [i // 2 for i in range(n_test)], "correct_clip": right_clip,
        "correct_video": right_video}))
    speed = SPEED[model]
    _write_json(layout.evaluation_file(split, model, seed), {
        "model": model, "arch": model, "dataset": "demo", "protocol": "thesis", "clip_spec": "demo16",
        "split": split, "clip_top1": c1, "clip_top5": c5, "video_top1": v1, "video_top5": v5, "n_videos": n_test,
        "n_clips": 3 * n_test, "chance": 1 / n_cls, "params": 3_600_000 if model.startswith("conv") else 4_075_000,
        "size_mb_fp32": SIZE[model], "checkpoint_mb": SIZE[model] + 0.1, "gflops_per_clip": 1.25 if model.startswith(
            "conv") else 0.75, "clip_shape": [3, 16, 64, 64], "infer_batch": 16, "infer_clips_per_s": speed,
        "clips_per_video": 3, "infer_videos_per_s_one_clip": speed, "infer_videos_per_s_all_clips": speed / 3,
        "eval_seconds": 1.5, "peak_memory_mb": 812.0, "device": "cpu", "threads": 2,
        "train_time_total_s": per_epoch * epochs, "train_time_per_epoch_s": per_epoch, "epochs": epochs})


def _right(model: str, accuracy: float, n: int) -> np.ndarray:
    """Which of n test videos the model gets right: ConvLSTM-C2D the first accuracy * n, P3D the last."""
    k = round(accuracy * n)
    return np.arange(n) < k if model.startswith("convlstm") else np.arange(n) >= n - k
