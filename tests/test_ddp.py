"""Several processes for one training run (torchrun + DistributedDataParallel, gloo on CPU), and a
GPU slot per job on one machine.

Equality with one process. Two ranks with the same global batch and seed must train the network
a single process trains. What makes that true in vidrec's trainer (vidrec/training/trainer.py,
vidrec/training/distributed.py): the DistributedSampler's per-epoch permutation (seed + epoch) is
the one-process order, and global step s is clips [s*B, (s+1)*B) of it; the sampler's padding
repeats are dropped and each rank's summed loss is scaled by world / (real clips in the step), so
DDP's gradient average is the one-process mean even for an odd number of clips; BatchNorm is
synchronised over the global batch. torch 2.14's nn.SyncBatchNorm refuses CPU tensors (checked
below), so on CPU/gloo vidrec's CpuSyncBatchNorm computes the same statistics with
torch.distributed's differentiable all-reduce.

What the tests hold fixed, and why:
- dropout 0 in the equality tests: each rank draws its dropout masks from its own RNG stream
  (seed + rank), which cannot equal the one-process stream; the resume test uses dropout 0.5.
- no random crop/flip, for the same reason.
- float64 for the exact comparison (test_float64_*): in float32 the two runs add the same numbers
  in a different order (per-rank partial sums, then the all-reduce), and BatchNorm over a handful
  of values per channel (the deepest stages see 1x1 planes of a few clips) can amplify that
  rounding by orders of magnitude from one step to the next: two correct runs then differ by 1e-3
  or more. In float64 the rounding is 1e-16 and the comparison shows the mathematics: all weights
  and BatchNorm statistics agree to ~1e-12 (asserted: 1e-9). The harness runs the real Trainer,
  only with float64 parameters and inputs.
- the float32 test runs the real command line, `torchrun ... -m vidrec.cli train`, as the train
  rule does, on a well-conditioned case (SGD, lr 1e-3, one epoch; measured 1.5e-6), to 1e-5.
"""
from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from support import BIN, REPO, free_port, mini_config, run_cli, run_snakemake, tiny_config

pytestmark = pytest.mark.slow


HARNESS = '''
"""Run vidrec's Trainer in float64 for every job of a JSON spec (plainly or under torchrun)."""
import json, os, signal, sys
from pathlib import Path
import torch
import torch.distributed as dist
from vidrec.plan.config import load_config
from vidrec.plan.runs import run_settings
from vidrec.training.trainer import Trainer, TrainingStopped

spec = json.loads(Path(sys.argv[1]).read_text())
torch.set_default_dtype(torch.float64)  # parameters, buffers and optimizer state in float64
_inputs = Trainer._inputs
Trainer._inputs = lambda self, batch, train: (lambda xy: (xy[0].double(), xy[1]))(_inputs(self, batch, train))
world = int(os.environ.get("WORLD_SIZE", "1"))
if world > 1:
    dist.init_process_group("gloo")  # once for all jobs: a Trainer leaves a group it did not make
classes = Path(spec["classes"]).read_text().split()


class Crash(Exception):
    pass


report = {}
for job in spec["jobs"]:
    cfg = load_config(spec["config"], job["set"])
    run = run_settings(cfg, spec["model"])
    trainer = Trainer(run, run.seeds[0], Path(spec["index"]), classes, Path(job["out"]))
    if "crash_after_epoch" in job:  # every rank dies right after that epoch's checkpoint
        save = trainer.save_checkpoint

        def save_then_crash(epoch, save=save, at=job["crash_after_epoch"]):
            save(epoch)
            if epoch == at:
                raise Crash(epoch)

        trainer.save_checkpoint = save_then_crash
    if "signal_at_call" in job and int(os.environ.get("RANK", "0")) == 0:  # SIGUSR1 to rank 0 alone
        calls = [0]

        def signalling(batch, train, inputs=trainer._inputs, at=job["signal_at_call"]):
            calls[0] += train
            if train and calls[0] == at:
                os.kill(os.getpid(), signal.SIGUSR1)
            return inputs(batch, train)

        trainer._inputs = signalling
    try:
        trainer.fit()
    except (Crash, TrainingStopped) as err:
        report[job["name"] + "_stopped"] = str(err)
    report[job["name"]] = {"start_epoch": trainer.start_epoch, "world": trainer.rt.world}
    ckpt = Path(job["out"]) / "checkpoint.pt"  # only an unfinished run keeps one
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        rngs = state["rng_ranks"]
        report[job["name"]]["checkpoint_position"] = state["position"]
        report[job["name"]]["checkpoint_rng_ranks"] = len(rngs)
        report[job["name"]]["checkpoint_rng_ranks_differ"] = not torch.equal(rngs[0]["torch"], rngs[-1]["torch"])
if world > 1:
    try:  # torch's own SyncBatchNorm on CPU tensors, in a real 2-rank group
        torch.nn.SyncBatchNorm(4).train()(torch.randn(2, 4, 3))
        report["torch_syncbn_cpu"] = "no error"
    except ValueError as err:
        report["torch_syncbn_cpu"] = str(err)
    dist.destroy_process_group()
if int(os.environ.get("RANK", "0")) == 0:
    Path(spec["report"]).write_text(json.dumps(report))
'''


def _torchrun(*args: str, nproc: int = 2, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc = subprocess.run([str(BIN / "torchrun"), "--standalone", f"--nproc_per_node={nproc}", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"torchrun {' '.join(args)}:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "model.pt", weights_only=False, map_location="cpu")["state_dict"]


def _max_diff(a: dict, b: dict) -> tuple[float, str]:
    assert a.keys() == b.keys()
    return max(((a[k].double() - b[k].double()).abs().max().item(), k) for k in a)


@pytest.fixture(scope="module")
def ddp_data(tiny_run, tmp_path_factory) -> dict:
    """tiny_run's split (36 training videos) with an SGD protocol, no random augmentation, and a
    35-video copy (odd: DistributedSampler pads, the last global batch splits 2 + 1)."""
    work = tmp_path_factory.mktemp("ddp")
    base = yaml.safe_load(tiny_run["config"].read_text())
    root = Path(base["datasets"]["tiny"]["root"])
    cfg_path = tiny_config(work / "config.yaml", root, models={
        "r3d_18": {"arch": "r3d_18", "protocol": "tran", "args": {"base_width": 8}}})
    cfg = yaml.safe_load(cfg_path.read_text())
    cfg["datasets"]["tiny"]["protocol_overrides"]["tran"] = {
        "epochs": 2, "batch_size": 8, "train_clips": "centre", "dropout": 0.0,
        "augment": {"crop": None, "hflip": False}}
    cfg_path.write_text(yaml.safe_dump(cfg))
    index = pd.read_csv(tiny_run["index"])
    odd = index.drop(index.index[index["subset"] == "train"][:1])
    assert (odd["subset"] == "train").sum() == 35
    odd.to_csv(work / "index35.csv", index=False)
    return {"work": work, "config": cfg_path, "index36": tiny_run["index"], "index35": work / "index35.csv",
            "classes": tiny_run["classes"]}


def _spec(ddp_data, name: str, jobs: list[dict]) -> Path:
    work = ddp_data["work"]
    (work / "harness.py").write_text(HARNESS)
    path = work / f"{name}.json"
    path.write_text(json.dumps({"config": str(ddp_data["config"]), "model": "r3d_18",
                                "index": str(ddp_data["index35"]), "classes": str(ddp_data["classes"]),
                                "report": str(work / f"{name}_report.json"), "jobs": jobs}))
    return path


def _job(ddp_data, name, *sets, out=None, **extra):
    return {"name": name, "out": str(ddp_data["work"] / (out or name)), "set": list(sets), **extra}


DROP = "datasets.tiny.protocol_overrides.tran.dropout=0.5"


@pytest.fixture(scope="module")
def two_ranks(ddp_data) -> dict:
    """One process, and two ranks launched as train.nodes: 2 launches them without a cluster: two
    torchrun agents on this host (--nnodes 2 --nproc_per_node 1, gloo, c10d rendezvous on a free port),
    each the launch one node runs. The ranks run, in float64: a plain run; dropout 0.5 uninterrupted;
    the same killed after epoch 1 and resumed; the same stopped by a SIGUSR1 to rank 0 alone mid-epoch
    and resumed. (One agent with 2 processes, the launch of train.gpus: 2, runs the float32 test.)"""
    work = ddp_data["work"]
    spec = functools.partial(_spec, ddp_data)
    job = functools.partial(_job, ddp_data)
    one = spec("one", [job("f64_one")])
    # 35 clips, global batch 8 over 2 ranks: 5 steps per epoch; the SIGUSR1 in epoch 2's 2nd step
    two = spec("two", [job("f64_two"),
                       job("f64_ref", DROP),  # uninterrupted, 2 epochs, dropout on
                       job("f64_crash", DROP, out="f64_res", crash_after_epoch=0),  # dies after epoch 1
                       job("f64_res", DROP),  # the same command again: resumes
                       job("f64_stop", DROP, out="f64_stop_res", signal_at_call=7),
                       job("f64_stop_res", DROP)])
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    port = free_port()
    agents = [subprocess.Popen([str(BIN / "torchrun"), "--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d",
                                f"--rdzv_endpoint=localhost:{port}", "--rdzv_id=vidrec-test",
                                str(work / "harness.py"), str(two)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
              for _ in range(2)]
    subprocess.run([sys.executable, str(work / "harness.py"), str(one)], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=600)
    outs = [a.communicate(timeout=900)[0] for a in agents]
    assert all(a.returncode == 0 for a in agents), "\n".join(o[-4000:] for o in outs)
    return json.loads((work / "two_report.json").read_text())


def test_float64_two_ranks_equal_one_process_and_resume_per_rank(ddp_data, two_ranks):
    work, report = ddp_data["work"], two_ranks

    # torch's SyncBatchNorm cannot do it on CPU: why CpuSyncBatchNorm exists
    assert "expected input tensor to be on GPU" in report["torch_syncbn_cpu"]
    assert report["f64_two"]["world"] == 2

    diff, key = _max_diff(_weights(work / "f64_one"), _weights(work / "f64_two"))
    print(f"float64, 35 clips, global batch 8, 2 epochs: max |1 process - 2 ranks| = {diff:.3g} ({key})")
    assert diff < 1e-9, key
    m1, m2 = pd.read_csv(work / "f64_one/metrics.csv"), pd.read_csv(work / "f64_two/metrics.csv")
    cols = ["train_loss", "train_acc", "val_loss", "val_acc"]
    pd.testing.assert_frame_equal(m1[cols], m2[cols], atol=1e-6, rtol=0)  # padding excluded from metrics

    # resume under DDP: the second job really resumed, and with each rank's own RNG state restored
    # (dropout draws differ per rank) the weights equal the uninterrupted run bit for bit
    assert report["f64_res"]["start_epoch"] == 1
    crash = report["f64_crash"]  # the checkpoint the crash left: one RNG state per rank, and they differ
    assert crash["checkpoint_rng_ranks"] == 2 and crash["checkpoint_rng_ranks_differ"]
    assert not (work / "f64_res/checkpoint.pt").exists()  # the finished run keeps none
    ref, res = _weights(work / "f64_ref"), _weights(work / "f64_res")
    for k in ref:
        assert torch.equal(ref[k], res[k]), f"{k} differs after resuming under DDP"
    assert pd.read_csv(work / "f64_res/metrics.csv")["epoch"].tolist() == [1, 2]


def test_a_signal_to_one_rank_stops_both_at_one_step_and_the_resume_is_exact(ddp_data, two_ranks):
    """A SIGUSR1 to rank 0 alone mid-epoch stops both ranks at the same step boundary (the all-reduced
    stop flag) with one mid-epoch checkpoint, and the resumed run ends on the uninterrupted one's
    weights, bit for bit."""
    work, report = ddp_data["work"], two_ranks
    assert "stopped (SIGUSR1) in epoch 2 after 2 of its 5 steps" in report["f64_stop_stopped"]
    position = report["f64_stop"]["checkpoint_position"]  # both ranks stopped at one boundary
    assert [p["micro_step"] for p in position] == [2, 2] and [p["epoch"] for p in position] == [1, 1]
    assert report["f64_stop_res"]["start_epoch"] == 1
    ref, res = _weights(work / "f64_ref"), _weights(work / "f64_stop_res")
    for k in ref:
        assert torch.equal(ref[k], res[k]), f"{k}: stopped and resumed on 2 ranks differs from uninterrupted"


def test_float32_torchrun_cli_equals_single_process(ddp_data, tmp_path):
    """The command the train rule runs with train.gpus: 2 on CPU, against `vidrec train`."""
    common = ["--config", str(ddp_data["config"]), "--quiet",
              "--set", "protocols.tran.optimizer.lr=0.001",
              "--set", "datasets.tiny.protocol_overrides.tran.epochs=1"]
    args = ["train", "--model", "r3d_18", "--index", str(ddp_data["index36"]), "--classes",
            str(ddp_data["classes"]), "--threads", "2"]
    run_cli(*common, *args, "--out-dir", str(tmp_path / "one"))
    proc = _torchrun("-m", "vidrec.cli", *common, *args, "--out-dir", str(tmp_path / "two"))
    summary = json.loads((tmp_path / "two/train.json").read_text())
    assert summary["world_size"] == 2 and summary["train_clips"] == 36
    assert proc.stdout.count("epoch 1/1: train loss") + proc.stderr.count("epoch 1/1: train loss") == 1  # rank 0 logs
    diff, key = _max_diff(_weights(tmp_path / "one"), _weights(tmp_path / "two"))
    print(f"float32 CLI, 36 clips, global batch 8, 1 epoch: max |1 process - 2 ranks| = {diff:.3g} ({key})")
    assert diff < 1e-5, key


def test_train_rule_launches_torchrun_only_for_several_gpus(tmp_path):

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    shells = {}
    for gpus, device in [(2, "cpu"), (4, "cuda"), (1, "auto")]:
        cfg = mini_config()
        cfg.setdefault("train", {}).update({"gpus": gpus, "device": device})
        wd = tmp_path / f"g{gpus}"
        wd.mkdir()
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
        proc = run_snakemake(wd, "-n", "-p", "results/mini/split1/p3d63/seed0/evaluation.json", env=env, timeout=300)
        lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "vidrec.training.distributed" in ln]
        shells[(gpus, device)] = {"train": next(ln for ln in lines if " train " in ln),
                                  "evaluate": next(ln for ln in lines if " evaluate " in ln)}
    cpu2, gpu4, one = shells[(2, "cpu")], shells[(4, "cuda")], shells[(1, "auto")]
    py = sys.executable  # jobs run with the interpreter that runs Snakemake (not whatever is on PATH)
    torchrun = f"{py} -m torch.distributed.run --standalone --nproc_per_node="
    assert f"--gpus 0 -- {torchrun}2 -m vidrec.cli" in cpu2["train"]
    assert f"--gpus 4 -- {torchrun}4 -m vidrec.cli" in gpu4["train"]
    assert f"--gpus 1 -- {py} -m vidrec.cli " in one["train"] and "torch.distributed.run" not in one["train"]
    assert f"--gpus 1 -- {py} -m vidrec.cli " in gpu4["evaluate"] and f"--gpus 0 -- {py} -m vidrec.cli " in cpu2["evaluate"]


# ----------------------------------------------------------------------------- GPU slots
def _slot_env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    return {**env, "VIDREC_GPU_LOCK_DIR": str(tmp_path / "locks"), **extra}


def _launch(tmp_path, gpus, cmd, **env):
    return subprocess.Popen([sys.executable, "-m", "vidrec.training.distributed", "--gpus", str(gpus), *cmd],
                            cwd=REPO, env=_slot_env(tmp_path, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_plan_decides_when_to_touch_cuda_visible_devices(monkeypatch):
    from vidrec.training import distributed as d

    monkeypatch.setattr(d, "machine_gpus", lambda: ["0", "1", "2", "3"])
    assert d.plan(0, {}) == (None, "the job asks for no GPU")
    assert d.plan(2, {})[0] == ["0", "1", "2", "3"]                      # every GPU of the machine
    assert d.plan(1, {"CUDA_VISIBLE_DEVICES": "2,3"})[0] == ["2", "3"]   # restricted by the user
    pool, why = d.plan(2, {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0,1"})
    assert pool is None and "SLURM set" in why                           # the plugin's case
    assert d.plan(1, {"SLURM_JOB_ID": "7", "CUDA_VISIBLE_DEVICES": "0,1"})[0] == ["0", "1"]  # salloc
    assert d.plan(1, {"SLURM_JOB_ID": "7"})[0] is None
    with pytest.raises(d.GpuSlotError, match="asks for 5 GPUs but only 4"):
        d.plan(5, {})
    monkeypatch.setattr(d, "machine_gpus", lambda: [])
    assert d.plan(1, {}) == (None, "no GPU on this machine")
    assert d.lock_dir({"VIDREC_GPU_LOCK_DIR": "/x", "SLURM_JOB_ID": "9"}) == Path("/x/slurm-9")


def test_concurrent_jobs_get_distinct_gpus_and_locks_die_with_the_job(tmp_path):
    show = ["sh", "-c", 'echo "visible=$CUDA_VISIBLE_DEVICES"; sleep 4']
    pool = {"CUDA_VISIBLE_DEVICES": "0,1"}  # a 2-GPU machine, as far as the launcher knows
    a, b = _launch(tmp_path, 1, show, **pool), _launch(tmp_path, 1, show, **pool)
    time.sleep(2)
    # both slots held: a third job waits, and gives up after its timeout
    c = _launch(tmp_path, 1, show, **pool)  # waits for a slot
    blocked = subprocess.run([sys.executable, "-m", "vidrec.training.distributed", "--gpus", "1", "--timeout",
                              "1", "--", "true"], cwd=REPO, env=_slot_env(tmp_path, **pool),
                             capture_output=True, text=True, timeout=60)
    assert blocked.returncode == 2 and "no 1 free GPU(s)" in blocked.stderr, blocked.stderr
    outs = [p.communicate(timeout=60)[0] for p in (a, b)]
    assert sorted(o.strip() for o in outs) == ["visible=0", "visible=1"], outs
    out_c = c.communicate(timeout=60)[0]  # it waited for a slot, then ran
    assert out_c.strip() in ("visible=0", "visible=1") and c.returncode == 0
    # SIGKILL of a job releases its slot at once: the lock lives in the job's own process
    d = _launch(tmp_path, 2, ["sleep", "30"], **pool)
    time.sleep(1.5)
    d.kill()
    d.wait()
    ok = subprocess.run([sys.executable, "-m", "vidrec.training.distributed", "--gpus", "2", "--timeout", "5", "--",
                         "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"], cwd=REPO, env=_slot_env(tmp_path, **pool),
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == "0,1", ok.stderr


def test_inside_slurm_the_launcher_leaves_cuda_visible_devices_alone(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "vidrec.training.distributed", "--gpus", "2", "--",
                           "sh", "-c", "echo $CUDA_VISIBLE_DEVICES"], cwd=REPO, capture_output=True, text=True,
                          env=_slot_env(tmp_path, SLURM_JOB_ID="42", CUDA_VISIBLE_DEVICES="0,1"), timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "0,1"
    assert "SLURM job 42, SLURM set CUDA_VISIBLE_DEVICES=0,1" in proc.stderr
    assert not (tmp_path / "locks").exists()  # no lock taken
    none = subprocess.run([sys.executable, "-m", "vidrec.training.distributed", "--gpus", "0", "--", "true"],
                          cwd=REPO, capture_output=True, text=True, env=_slot_env(tmp_path), timeout=60)
    assert none.returncode == 0 and "asks for no GPU" in none.stderr
