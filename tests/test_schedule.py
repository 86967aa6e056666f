"""The global batch and the learning-rate schedule (vidrec/training/schedule.py), and a training that
stops at a step boundary (SIGUSR1, SIGTERM, the SLURM job's time limit) and resumes bit for bit.

In-process trainings of a base-width-4 P3D-63 on the tiny set (36 training clips of 8x32x32):
- accumulation: 4 micro-batches of 4 equal one batch of 16 (float64, BatchNorm held in eval mode, so
  every clip is normalised alike; dropout 0, no augmentation), the last step of the epoch included
  (36 = 16 + 16 + 4: one micro-batch only);
- warm-up: the lr of every optimizer step, read from the optimizer, is start_factor x lr at the first
  step, rises linearly and reaches lr exactly at the stated step, after which the scheduler takes over;
- stop and resume: SIGUSR1 raised inside the 3rd training step of epoch 2 (of 3) stops the run at the
  next optimizer-step boundary with a checkpoint; the same command resumes it mid-epoch, in the warm-up
  (per-step schedule, accumulation, dropout, random crops and one random stored clip per epoch, so the
  RNG states and the loader position matter), and ends with the uninterrupted run's weights and
  metrics, bit for bit; a stop before the SLURM time limit requeues the job (a fake scontrol).
"""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from vidrec.plan.config import load_config
from vidrec.core.errors import ConfigError
from vidrec.plan.runs import run_settings
from vidrec.training import trainer as trainer_module
from vidrec.training.schedule import batch_plan, build_schedule, effective_lr, schedule_text
from vidrec.training.trainer import STOPPED_EXIT_CODE, Trainer, TrainingStopped

P = "datasets.tiny.protocol_overrides.thesis"
BASE = [f"{P}.train_clips=centre", f"{P}.dropout=0.0", "datasets.tiny.models.p3d63.args.base_width=4",
        f"{P}.optimizer.name=SGD", f"{P}.optimizer.lr=0.05", f"{P}.optimizer.momentum=0.9", "train.threads=1"]


def _trainer(tiny_run, out: Path, *sets: str) -> Trainer:
    run = run_settings(load_config(tiny_run["config"], [*BASE, *sets]), "p3d63")
    return Trainer(run, 0, tiny_run["index"], tiny_run["classes"].read_text().split(), out, threads=1)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=False)["state_dict"]


def test_batch_plan_schedule_words_and_errors():
    proto = {"batch_size": 48, "accumulate": 3, "optimizer": {"name": "SGD", "lr": 0.01, "momentum": 0.9,
                                                              "nesterov": True},
             "lr_scaling": {"base_batch": 256}, "warmup": {"epochs": 5, "start_factor": 0.1},
             "scheduler_interval": "step"}
    plan = batch_plan(proto, devices=4, nodes=2)
    assert (plan.per_device, plan.world) == (2, 8)
    assert plan.text() == "batch 48 = 2 per device x 4 devices x 2 nodes x 3 accumulated micro-batches"
    assert batch_plan({"batch_size": 16, "accumulate": 1}, 1).text() == "batch 16"  # the label as before
    assert effective_lr(proto) == pytest.approx(0.01 * 48 / 256)
    assert schedule_text(proto) == [
        "Nesterov momentum 0.9", "linear scaling rule: lr 0.01 x 48/256 = 0.001875",
        "linear warm-up 5 epochs from 0.1 x lr", "schedule stepped per optimizer step",
        "gradients accumulated over 3 micro-batches (BatchNorm statistics per micro-batch)"]
    with pytest.raises(ConfigError, match="not divisible by 4 device.*accumulate 3 = 24"):
        batch_plan({**proto, "batch_size": 36}, devices=4, nodes=2)
    with pytest.raises(ConfigError, match="scheduler_interval: step"):
        build_schedule(None, {"warmup": {"steps": 3, "start_factor": 0.01}, "scheduler_interval": "epoch"}, 10)


def test_warmup_reaches_the_base_lr_at_the_stated_step():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    main = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    proto = {"warmup": {"steps": 4, "start_factor": 0.2}, "scheduler_interval": "step"}
    sched = build_schedule(opt, proto, steps_per_epoch=10, main=main)
    lrs = []
    for _ in range(9):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # 0.2 x lr, linear, lr at step 4 (the warm-up's end), then StepLR counting from there
    assert lrs == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1, 0.1, 0.05, 0.05, 0.025])
    assert lrs[4] == 0.1  # exactly the base lr
    # {epochs: 2} per optimizer step with 3 steps per epoch: 6 steps; per epoch: 2 scheduler steps
    assert build_schedule(torch.optim.SGD([param], lr=0.1), {"warmup": {"epochs": 2, "start_factor": 0.01}, "scheduler_interval": "step"},
                          3).total_iters == 6
    assert build_schedule(torch.optim.SGD([param], lr=0.1), {"warmup": {"epochs": 2, "start_factor": 0.01}, "scheduler_interval": "epoch"}, 3).total_iters == 2
    assert build_schedule(opt, {"warmup": None}, 3, main=main) is main  # no warm-up: the scheduler as it was


def test_accumulating_four_micro_batches_of_four_equals_one_batch_of_16(tiny_run, tmp_path, monkeypatch):
    bn = torch.nn.modules.batchnorm._BatchNorm
    monkeypatch.setattr(bn, "train", lambda self, mode=True: torch.nn.Module.train(self, False))
    inputs = Trainer._inputs
    monkeypatch.setattr(Trainer, "_inputs", lambda self, b, train: (lambda xy: (xy[0].double(), xy[1]))(
        inputs(self, b, train)))
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        one = _trainer(tiny_run, tmp_path / "one", f"{P}.batch_size=16", f"{P}.epochs=1")
        four = _trainer(tiny_run, tmp_path / "four", f"{P}.batch_size=16", f"{P}.epochs=1", f"{P}.accumulate=4")
        assert (one.batch, four.batch, four.accumulate, len(four.train_set)) == (16, 4, 4, 36)
        start = {k: v.clone() for k, v in one.model.state_dict().items()}
        one.fit()
        summary = four.fit()
    finally:
        torch.set_default_dtype(default)
    assert (summary["global_batch"], summary["per_device_batch"], summary["accumulate"]) == (16, 4, 4)
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "four")
    diff, key = max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a)
    print(f"float64, 36 clips, batch 16 against 4 x 4 accumulated: max |difference| = {diff:.3g} ({key})")
    assert all(v.dtype == torch.float64 for v in a.values() if v.is_floating_point()) and diff < 1e-10, key
    moved = max((a[k] - start[k]).abs().max().item() for k in a if a[k].is_floating_point())
    assert moved > 1e-3  # the steps did change the weights


def test_sigusr1_mid_epoch_in_the_warmup_then_resume_is_bit_exact(tiny_run, tmp_path, monkeypatch):
    sets = [f"{P}.epochs=3", f"{P}.batch_size=8", f"{P}.accumulate=2", f"{P}.dropout=0.5",
            f"{P}.train_clips=random", f"{P}.augment.crop=24", f"{P}.scheduler_interval=step",
            f"{P}.warmup.steps=7", f"{P}.warmup.start_factor=0.1",
            f"{P}.scheduler.name=StepLR", f"{P}.scheduler.step_size=3", "train.stop_margin_s=0"]
    ref = _trainer(tiny_run, tmp_path / "ref", *sets)
    assert ref.steps_per_epoch == 5  # 36 clips, batch 8 (2 x 4): the warm-up ends in epoch 2
    ref.fit()

    calls = {"n": 0}
    inputs = Trainer._inputs

    def signalling(self, batch, train):
        calls["n"] += train
        if train and calls["n"] == 9 + 3:  # epoch 2 (9 micro-batches of 4 per epoch), its 3rd micro-batch
            os.kill(os.getpid(), signal.SIGUSR1)
        return inputs(self, batch, train)

    monkeypatch.setattr(Trainer, "_inputs", signalling)
    requeues = []
    monkeypatch.setattr(trainer_module, "requeue_slurm_job", lambda: requeues.append(1) or "")
    stopped = _trainer(tiny_run, tmp_path / "res", *sets)
    with pytest.raises(TrainingStopped, match=r"stopped \(SIGUSR1\) in epoch 2 after 2 of its 5 steps") as err:
        stopped.fit()
    assert err.value.exit_code == STOPPED_EXIT_CODE == 75 and requeues == [1]
    state = torch.load(tmp_path / "res/checkpoint.pt", weights_only=True)
    assert state["epoch"] == 0 and state["position"][0]["micro_step"] == 4  # the step boundary after the signal
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # the handlers are the process's again
    monkeypatch.setattr(Trainer, "_inputs", inputs)

    resumed = _trainer(tiny_run, tmp_path / "res", *sets)
    resumed.fit()
    assert resumed.start_epoch == 1
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "res")
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after the mid-epoch stop and resume"
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    m_ref, m_res = pd.read_csv(tmp_path / "ref/metrics.csv"), pd.read_csv(tmp_path / "res/metrics.csv")
    pd.testing.assert_frame_equal(m_ref[cols], m_res[cols])
    # the lr at each epoch's start: 0.1 x lr, after 5 of 7 warm-up steps, then StepLR 3 steps after the
    # warm-up's end (its first decay, gamma 0.1)
    assert m_ref["lr"].tolist() == pytest.approx([0.005, 0.05 * (0.1 + 0.9 * 5 / 7), 0.005])


def test_a_stop_before_the_slurm_time_limit_requeues_and_resumes(tiny_run, tmp_path, monkeypatch):
    """Inside a SLURM job with 100 s left and a 300 s margin the run stops at its first step boundary,
    requeues its job with scontrol, and the next attempt ends where an uninterrupted run ends."""
    sets = [f"{P}.epochs=1", f"{P}.batch_size=12"]
    ref = _trainer(tiny_run, tmp_path / "ref", *sets)
    ref.fit()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, out in (("squeue", "1:40"), ("scontrol", "")):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "$0 $@" >> {tmp_path}/calls\necho "{out}"\n')
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    with pytest.raises(TrainingStopped, match=r"\(time limit\) in epoch 1 after 1 of its 3 steps.*SLURM job 4242 "
                                              "requeued"):
        _trainer(tiny_run, tmp_path / "res", *sets).fit()
    calls = (tmp_path / "calls").read_text().splitlines()
    assert [c.split(" ", 1)[1] for c in calls] == ["-h -j 4242 -o %L", "requeue 4242"]
    monkeypatch.delenv("SLURM_JOB_ID")
    _trainer(tiny_run, tmp_path / "res", *sets).fit()
    a, b = _weights(tmp_path / "ref"), _weights(tmp_path / "res")
    assert all(torch.equal(a[k], b[k]) for k in a)
