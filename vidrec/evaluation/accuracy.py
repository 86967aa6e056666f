"""Accuracy under both protocols from per-view softmax scores: pure numpy and pandas, no torch.

`vidrec evaluate` computes its tables with these; the report's pages recompute subsets of them (the
clips-per-video curve) from the stored scores, without loading torch.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean per row: is the label among the k highest scores?"""
    k = min(k, scores.shape[1])
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return (top == labels[:, None]).any(axis=1)


def average_over_videos(clip_scores: np.ndarray, labels: np.ndarray,
                        video_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tran et al.'s video level: the mean softmax of each video's clips.

    Returns the sorted video ids, their mean scores (V, C) and their labels."""
    videos, pos = np.unique(video_ids, return_inverse=True)
    sums = np.zeros((len(videos), clip_scores.shape[1]))
    np.add.at(sums, pos, clip_scores)
    video_labels = np.zeros(len(videos), np.int64)
    video_labels[pos] = labels
    return videos, sums / np.bincount(pos, minlength=len(videos))[:, None], video_labels


def accuracy_tables(clip_scores: np.ndarray, labels: np.ndarray, video_ids: np.ndarray,
                    clip_index: np.ndarray, n_clips: np.ndarray, class_names: list[str]) -> dict:
    """Both protocols from per-view softmax scores; pure function so tests can hand-check it.

    clip_scores: (N, C), one view per clip, or (N, S, C), S spatial crops per clip (left/top first);
    the other arrays are per clip; n_clips is the stored clip count of each clip's video.
    Video level: the mean over every view of the video; clip level: clip n_clips // 2, centre crop
    (views.py). `all_views_top1`: the top-1 of single views, averaged over every view (VMZ's clip@1).
    """
    if clip_scores.ndim == 2:
        clip_scores = clip_scores[:, None]
    n, crops, _ = clip_scores.shape
    crop_index = np.tile(np.arange(crops), n)
    labels, video_ids = np.repeat(labels, crops), np.repeat(video_ids, crops)
    clip_index, n_clips = np.repeat(clip_index, crops), np.repeat(n_clips, crops)
    clip_scores = clip_scores.reshape(n * crops, -1)  # clip-major rows: every view of clip i, then i + 1
    centre = (clip_index == n_clips // 2) & (crop_index == crops // 2)
    videos, video_scores, video_labels = average_over_videos(clip_scores, labels, video_ids)
    c_scores, c_labels = clip_scores[centre], labels[centre]
    c_order = np.argsort(video_ids[centre])
    c_scores, c_labels = c_scores[c_order], c_labels[c_order]
    n_cls = clip_scores.shape[1]
    video_pred = video_scores.argmax(1)
    clip_pred = c_scores.argmax(1)
    confusion = np.zeros((n_cls, n_cls), np.int64)
    np.add.at(confusion, (video_labels, video_pred), 1)
    per_class = pd.DataFrame({"class_name": class_names, "label": range(n_cls),
                              "n_videos": np.bincount(video_labels, minlength=n_cls)})
    per_class["clip_top1"] = [
        (clip_pred[c_labels == c] == c).mean() if (c_labels == c).any() else np.nan for c in range(n_cls)]
    per_class["video_top1"] = [
        (video_pred[video_labels == c] == c).mean() if (video_labels == c).any() else np.nan for c in range(n_cls)]
    top5 = np.argsort(-video_scores, axis=1)[:, :5]
    predictions = pd.DataFrame({
        "video_id": videos, "label": video_labels, "class_name": [class_names[i] for i in video_labels],
        "pred_clip": clip_pred, "pred_video": video_pred,
        "pred_video_name": [class_names[i] for i in video_pred],
        "prob_video": video_scores[np.arange(len(videos)), video_pred],
        "correct_clip": clip_pred == c_labels, "correct_video": video_pred == video_labels,
        "top5_video": [" ".join(map(str, r)) for r in top5],
    })
    return {
        "clip_top1": float(topk_correct(c_scores, c_labels, 1).mean()),
        "clip_top5": float(topk_correct(c_scores, c_labels, 5).mean()),
        "video_top1": float(topk_correct(video_scores, video_labels, 1).mean()),
        "video_top5": float(topk_correct(video_scores, video_labels, 5).mean()),
        "all_views_top1": float(topk_correct(clip_scores, labels, 1).mean()),
        "n_videos": int(len(videos)), "n_clips": n,
        "chance": 1.0 / n_cls,
        "per_class": per_class, "predictions": predictions,
        "confusion": pd.DataFrame(confusion, index=class_names, columns=class_names),
    }
