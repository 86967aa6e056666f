"""Multi-view testing (issue 28, part 2): K clips x S crops per video, softmax averaged over all of them;
the clip level is one view, clip K // 2 in the centre crop (vidrec/data/views.py)."""
from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from vidrec.data.dataset import ClipDataset, augment_clips, normalize_clips, spatial_crop_corners, test_views
from vidrec.evaluation.accuracy import accuracy_tables
from vidrec.evaluation.evaluate import predict_clips
from vidrec.data.views import Views, run_views
from vidrec.models.model_file import Preprocessing
from vidrec.models.runtime import Runtime

MEAN, STD = (0.43, 0.40, 0.37), (0.23, 0.22, 0.22)


def test_three_crops_run_along_the_longer_side():
    assert spatial_crop_corners(128, 171, 112, 3) == [(8, 0), (8, 29), (8, 59)]
    assert spatial_crop_corners(171, 128, 112, 3) == [(0, 8), (29, 8), (59, 8)]
    assert spatial_crop_corners(40, 40, 32, 3) == [(4, 0), (4, 4), (4, 8)]  # square: along the width
    assert spatial_crop_corners(128, 171, 112, 1) == [(8, 29)]
    x = torch.arange(12 * 20).view(1, 1, 1, 12, 20)
    centre = test_views(x, 8, 1)[0]
    assert torch.equal(centre, augment_clips(x, 8, False, train=False)), "1 crop = evaluation's centre crop"
    left, mid, right = test_views(x, 8, 3)
    assert torch.equal(mid, centre) and torch.equal(left, x[..., 2:10, 0:8]) and torch.equal(right, x[..., 2:10, 12:20])
    assert test_views(x, None, 1)[0] is x
    with pytest.raises(ValueError):
        test_views(x, None, 3)


def test_views_text_and_a_whole_frame_model_keeps_one_crop():
    v = Views(10, 3)
    assert v.text() == "10 clips x 3 crops" and v.count == 30 and (v.centre_clip, v.centre_crop) == (5, 1)
    assert "later of the two middle clips" in v.clip_level_text() and "clip 5 of 10" in v.clip_level_text()
    assert Views(3).clip_level_text().startswith("clip 1 of 3 (0-based, K // 2: the centre clip)")
    tran = {"size": [128, 171], "clips_per_video": 10}
    assert run_views(tran, {"crop": 112}, 3) == (Views(10, 3), None)
    views, why = run_views({"size": 160, "clips_per_video": 1}, {"crop": None}, 3)
    assert views == Views(1, 1) and "whole stored 160x160 frame" in why
    with pytest.raises(ValueError):
        Views(3, 2)


class _Net(torch.nn.Module):
    """Small, position-sensitive: a strided convolution and a linear map over the flattened features."""

    def __init__(self, classes: int = 4):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv3d(3, 4, 3, stride=2)
        self.fc = torch.nn.LazyLinear(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))


def _shard_index(tmp_path, n_clips=(3, 2)) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    clips = rng.integers(0, 256, (sum(n_clips), 4, 12, 20, 3), dtype=np.uint8)  # wide frames: 3 crops along W
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["clips"] = clips
    starts = np.cumsum([0, *n_clips[:-1]])
    index = pd.DataFrame({"video_id": range(len(n_clips)), "shard": str(tmp_path / "g.h5"), "row": starts,
                          "n_clips": n_clips, "label": [1, 2], "subset": "test"})
    return index, clips


def test_k_x_3_views_equal_the_mean_of_the_single_view_softmaxes(tmp_path):
    index, raw = _shard_index(tmp_path)
    net = _Net().eval()
    pre = Preprocessing(MEAN, STD, crop=8)
    rt = Runtime(torch.device("cpu"))
    ds = ClipDataset(index, clips="all", raw=True)
    with torch.no_grad():
        net(torch.zeros(1, 3, 4, 8, 8))
        scores = predict_clips(net, ds, 2, rt, pre, crops=3)
        assert scores.shape == (5, 3, 4)
        # each view by hand: crop the stored uint8 clip at the SlowFast corner, normalise, run the model alone
        single = np.zeros_like(scores)
        for i in range(5):
            x = torch.from_numpy(raw[i]).permute(3, 0, 1, 2)[None]
            for s, (y0, x0) in enumerate([(2, 0), (2, 6), (2, 12)]):
                view = normalize_clips(x[..., y0:y0 + 8, x0:x0 + 8], MEAN, STD)
                single[i, s] = torch.softmax(net(view), 1)[0].numpy()
        np.testing.assert_allclose(scores, single, atol=1e-6)
        assert not np.allclose(single[:, 0], single[:, 2]), "the crops really differ"
        one = predict_clips(net, ds, 2, rt, pre, crops=1)  # 1 crop: the centre crop, as before
        np.testing.assert_array_equal(one[:, 0], scores[:, 1])
    acc = accuracy_tables(scores, ds.labels, ds.video_ids, ds.clip_index, np.array([3, 3, 3, 2, 2]), list("abcd"))
    pred = acc["predictions"]
    for v, rows in ((0, slice(0, 3)), (1, slice(3, 5))):
        mean = single[rows].reshape(-1, 4).mean(0)  # the K x 3 single views of the video
        assert pred.loc[v, "pred_video"] == mean.argmax()
        assert pred.loc[v, "prob_video"] == pytest.approx(mean.max(), abs=1e-6)
    # clip level: clip K // 2 (video 0: clip 1 of 3; video 1: clip 1 of 2), centre crop
    assert pred["pred_clip"].tolist() == [single[1, 1].argmax(), single[4, 1].argmax()]
    assert acc["n_clips"] == 5


def test_clip_level_is_the_centre_clip_in_the_centre_crop():
    # one video, 3 clips x 3 crops, 2 classes: only clip 1 in crop 1 says class 1; the mean says class 0
    scores = np.full((3, 3, 2), [0.9, 0.1])
    scores[1, 1] = [0.2, 0.8]
    acc = accuracy_tables(scores, np.array([1, 1, 1]), np.zeros(3, int), np.arange(3), np.full(3, 3), ["a", "b"])
    assert acc["clip_top1"] == 1.0 and acc["video_top1"] == 0.0
    assert acc["all_views_top1"] == pytest.approx(1 / 9)
    flat = accuracy_tables(scores[:, 1], np.array([1, 1, 1]), np.zeros(3, int), np.arange(3), np.full(3, 3),
                           ["a", "b"])
    assert flat["clip_top1"] == 1.0 and flat["n_clips"] == 3


def test_evaluate_states_its_views_and_both_levels(tmp_path):
    """`vidrec evaluate` with evaluate.crops 3 on a model trained on 32-pixel crops of 40-pixel clips:
    evaluation.json names the views and both levels; the video level is the mean over K x 3 views."""
    import json

    from support import PREDICT_CLIP, make_model_file
    from vidrec.plan.config import load_config
    from vidrec.evaluation.evaluate import evaluate_run

    model = make_model_file(tmp_path / "model.pt")
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["clips"] = rng.integers(0, 256, (4, PREDICT_CLIP["frames"], 40, 40, 3), dtype=np.uint8)
    pd.DataFrame({"video_id": [0, 1], "shard": str(tmp_path / "g.h5"), "row": [0, 2], "n_clips": 2,
                  "label": [0, 1], "subset": "test"}).to_csv(tmp_path / "index.csv", index=False)
    torch.set_num_threads(1)
    cfg = load_config(None, ["evaluate.crops=3", "evaluate.speed_batches=1", "evaluate.end_to_end_videos=0",
                             "train.device=cpu"])
    summary = evaluate_run(cfg, model, tmp_path / "index.csv", tmp_path / "out", save_scores=True)
    record = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert record["views"] == "2 clips x 3 crops" and (record["test_clips"], record["test_crops"]) == (2, 3)
    assert record["clip_level"].startswith("clip 1 of 2") and record["test_crops_note"] is None
    assert "2 clips x 3 crops per video (video level: the mean softmax over the 6 views)" in record["test_clip"]
    with np.load(tmp_path / "out" / "scores.npz") as z:
        assert z["scores"].shape == (4, 3) and int(z["crops"]) == 3
    assert summary["infer_videos_per_s_all_clips"] == pytest.approx(summary["infer_clips_per_s"] / 6)
