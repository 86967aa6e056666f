"""Training and evaluation stages: CLI run, bitwise resume after SIGKILL, NaN stop, metrics."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from support import REPO, run_cli
from vidrec.plan.config import load_config
from vidrec.plan.runs import run_settings
from vidrec.evaluation.accuracy import accuracy_tables, topk_correct
from vidrec.models.model_file import build_model_from_file
from vidrec.training.trainer import Trainer, TrainingError


def _train(tiny_run, out, *extra, check=True):
    return run_cli(*tiny_run["common"], *extra, "train", "--model", "p3d63", "--index", str(tiny_run["index"]),
                   "--classes", str(tiny_run["classes"]), "--out-dir", str(out), check=check)


@pytest.mark.slow
def test_two_epoch_run_and_evaluation_through_the_cli(tiny_run, tmp_path):
    out = tmp_path / "p3d63"
    _train(tiny_run, out)
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == [1, 2]
    assert {"train_loss", "val_acc", "lr", "epoch_time_s", "wall_time_s", "train_clips_per_s"} <= set(metrics)
    assert (metrics["wall_time_s"].diff().dropna() > 0).all()
    model, blob = build_model_from_file(out / "model.pt")
    assert blob["arch"] == "p3d63" and blob["class_names"] == ["Alpha", "Beta"]
    x = torch.zeros(1, *blob["clip_shape"])
    assert model.eval()(x).shape == (1, 2)
    run_cli(*tiny_run["common"], "evaluate", "--model-file", str(out / "model.pt"), "--index",
            str(tiny_run["index"]), "--out-dir", str(out))
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["n_videos"] == 14 and ev["n_clips"] == 28 and ev["chance"] == 0.5
    assert 0 <= ev["clip_top1"] <= 1 and ev["video_top5"] == 1.0  # 2 classes: top-5 is always right
    assert ev["params"] == sum(p.numel() for p in model.parameters())
    assert ev["infer_videos_per_s_end_to_end"] > 0 and ev["end_to_end_videos"] == 14  # decode included
    assert ev["infer_clips_per_s"] > 0 and ev["train_time_total_s"] == pytest.approx(metrics["wall_time_s"].iloc[-1])
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 14 and preds["correct_video"].mean() == pytest.approx(ev["video_top1"])
    confusion = pd.read_csv(out / "confusion.csv", index_col=0)
    assert confusion.to_numpy().sum() == 14


@pytest.mark.slow
def test_resume_after_sigkill_is_bitwise_identical(tiny_run, tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    over = ["--set", "datasets.tiny.protocol_overrides.thesis.epochs=3"]
    _train(tiny_run, ref, *over)
    cmd = [sys.executable, "-m", "vidrec.cli", *tiny_run["common"], *over, "train", "--model", "p3d63",
           "--index", str(tiny_run["index"]), "--classes", str(tiny_run["classes"]), "--out-dir", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "checkpoint.pt").exists():
        time.sleep(0.05)
    assert (killed / "checkpoint.pt").exists(), "no checkpoint after the first epoch"
    time.sleep(np.random.default_rng().uniform(0.1, 0.6))  # somewhere inside epoch 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "model.pt").exists(), "killed too late to test a resume"
    done = _train(tiny_run, killed, *over)
    assert "resumed from" in done.stderr
    a = torch.load(ref / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(killed / "model.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after resume"
    ma, mb = pd.read_csv(ref / "metrics.csv"), pd.read_csv(killed / "metrics.csv")
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    pd.testing.assert_frame_equal(ma[cols], mb[cols])


def test_non_finite_loss_stops_naming_epoch_and_step(tiny_run, tmp_path, monkeypatch):
    cfg = load_config(tiny_run["config"])
    run = run_settings(cfg, "p3d63")
    classes = tiny_run["classes"].read_text().split()
    trainer = Trainer(run, 0, tiny_run["index"], classes, tmp_path, threads=1)
    real_forward, calls = trainer.net.forward, {"n": 0}
    steps_per_epoch = len(trainer.train_loader)

    def poisoned(x):  # the 3rd training step of epoch 2 returns NaN logits
        out = real_forward(x)
        if trainer.net.training:
            calls["n"] += 1
            if calls["n"] == steps_per_epoch + 3:
                return out * float("nan")
        return out

    monkeypatch.setattr(trainer.net, "forward", poisoned)
    with pytest.raises(TrainingError, match=r"non-finite loss.*epoch 2, step 3"):
        trainer.fit()
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["epoch"] == 0 and len(state["metrics"]) == 1, "the last good checkpoint is epoch 1's"
    assert len(pd.read_csv(tmp_path / "metrics.csv")) == 1 and not (tmp_path / "model.pt").exists()


def test_accuracy_tables_on_a_hand_made_case():
    # 3 videos x 2 clips, 3 classes. Centre clip = clip 1 (n_clips // 2).
    scores = np.array([
        [0.6, 0.3, 0.1], [0.2, 0.7, 0.1],   # video 10, label 0: centre clip and mean both say 1
        [0.1, 0.8, 0.1], [0.1, 0.6, 0.3],   # video 11, label 1: both right
        [0.5, 0.1, 0.4], [0.5, 0.2, 0.3],   # video 12, label 2: both wrong; label 2 is 2nd
    ])
    labels = np.array([0, 0, 1, 1, 2, 2])
    vids = np.array([10, 10, 11, 11, 12, 12])
    clip_index = np.array([0, 1, 0, 1, 0, 1])
    acc = accuracy_tables(scores, labels, vids, clip_index, np.full(6, 2), ["a", "b", "c"])
    # centre clips: [0.2,0.7,0.1] (wrong), [0.1,0.6,0.3] (right), [0.5,0.2,0.3] (wrong) -> 1/3
    assert acc["clip_top1"] == pytest.approx(1 / 3)
    # video means: [0.4,0.5,0.1] (wrong), [0.1,0.7,0.2] (right), [0.5,0.15,0.35] (wrong) -> 1/3
    assert acc["video_top1"] == pytest.approx(1 / 3)
    assert acc["clip_top5"] == 1.0
    assert acc["confusion"].loc["a", "b"] == 1 and acc["confusion"].loc["c", "a"] == 1
    assert acc["per_class"]["video_top1"].tolist() == [0.0, 1.0, 0.0]
    top2 = topk_correct(np.array([[0.5, 0.15, 0.35]]), np.array([2]), 2)
    assert top2.tolist() == [True]


def test_torch_compile_switch_matches_eager(tiny_run, tmp_path):
    """`train.compile: true` puts a torch.compile'd network in the training loop that computes what the
    eager one does (CPU inductor): logits and gradients agree to float32 rounding.

    Gradients are compared in eval mode (BatchNorm an affine map). In train mode BatchNorm over a few
    values per channel amplifies rounding (inductor computes the variance in one pass, eager in two):
    measured against a float64 reference, eager float32 itself is off by a median 1-5% per gradient
    tensor, so only the train-mode logits are compared there, at a looser tolerance.
    Dropout is off: compiled code draws its own random masks. The network is R3D-18, whose 8 blocks
    compile in about a third of P3D-63's time (16 units of 3 kinds)."""
    cfg = load_config(tiny_run["config"], ["train.compile=true",
                                           "datasets.tiny.protocol_overrides.thesis.dropout=0.0",
                                           "datasets.tiny.models.r3d_18={arch: r3d_18, protocol: thesis, "
                                           "args: {base_width: 8}}"])
    trainer = Trainer(run_settings(cfg, "r3d_18"), 0, tiny_run["index"], tiny_run["classes"].read_text().split(),
                      tmp_path, threads=1)
    assert trainer.net is not trainer.model, "the compiled network is the one the loop calls"
    model = trainer.model
    x = torch.randn(8, 3, 8, 48, 48, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([0, 1] * 4)

    def step(net, train: bool) -> list[torch.Tensor]:
        model.train(train)
        model.zero_grad(set_to_none=True)
        logits = net(x)
        torch.nn.functional.cross_entropy(logits, target).backward()
        return [logits.detach()] + [p.grad.clone() for p in model.parameters()]

    def relative_errors(got, want) -> np.ndarray:
        return np.array([float((g - w).norm() / w.norm().clamp_min(1e-12)) for g, w in zip(got, want)])

    err = relative_errors(step(trainer.net, train=False), step(model, train=False))
    assert err[0] < 1e-4, f"eval-mode logits differ by {err[0]:.1e} (relative)"
    assert err[1:].max() < 1e-3, f"eval-mode gradient differs by {err[1:].max():.1e} (relative)"
    with torch.no_grad():
        model.train()
        err = relative_errors([trainer.net(x)], [model(x)])
    assert err[0] < 1e-2, f"train-mode logits differ by {err[0]:.1e} (relative)"


def test_deterministic_flag_states_what_was_in_force():
    """train.json's determinism fields read torch's own switches, set by `train.deterministic`."""
    import torch

    from vidrec.models.runtime import determinism_in_force, enforce_determinism

    try:
        enforce_determinism(True)
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert determinism_in_force(torch.device("cpu")) == {"deterministic_algorithms": True,
                                                              "cudnn_benchmark": None}
    finally:
        enforce_determinism(False)
    assert determinism_in_force(torch.device("cpu"))["deterministic_algorithms"] is False
