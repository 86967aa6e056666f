"""`vidrec train`: one model on one split, resumable to the bit, on CPU or CUDA, one or many GPUs.

Resumability: a checkpoint holding model, optimizer, scheduler, AMP scaler, every RNG state, the
metrics so far and the cumulative training time is written atomically at the end of every epoch.
The data order of epoch e is a permutation drawn from seed + e (DistributedSampler's rule), so a
run killed mid-epoch restarts that epoch from its start with identical state: on CPU the final
weights equal an uninterrupted run's bit for bit.

Several GPUs: launched under torchrun (WORLD_SIZE > 1), the same loop runs with
DistributedDataParallel, a DistributedSampler over the same permutation, the global batch split
across ranks, and rank 0 alone writing checkpoints and logs. BatchNorm is synchronised over the
global batch (distributed.convert_sync_batchnorm), the sampler's padding repeats are dropped and
the loss is weighted by the real clips of each global step, so with dropout 0 and no random
augmentation N processes compute the one-process run (tests/test_ddp.py, CPU/gloo: to 1e-9 in
float64; in float32 the different summation order rounds differently, which BatchNorm over few
values can amplify, so float32 runs agree only as far as the network's conditioning allows).
Dropout and augmentation draw from per-rank RNG streams (seed + rank), saved per rank in checkpoints.

Global batch and schedule (vidrec/training/schedule.py): the protocol's batch_size is the global batch
of one optimizer step = per-device batch x devices x nodes x `accumulate` micro-batches, whose losses
are weighted as one batch (float64: 4 micro-batches of 4 = one batch of 16, tests/test_schedule.py);
an optional linear warm-up (LinearLR inside SequentialLR) precedes the scheduler, which advances per
epoch or per optimizer step (`scheduler_interval`); the linear scaling rule is an opt-in.

Stopping before a time limit: on SIGUSR1 or SIGTERM, or inside a SLURM batch job `train.stop_margin_s`
before its time limit, every rank stops at the same optimizer-step boundary (a flag all-reduced each
step), rank 0 writes a mid-epoch checkpoint (model, optimizer, scheduler, scaler, every rank's RNG
state, the position in the epoch's permutation and the epoch's running totals) and the run exits with
status 75 (STOPPED_EXIT_CODE); on the SLURM time limit or SIGUSR1 it first requeues its batch job
(`scontrol requeue`), so the training goes on in a fresh allocation without a Snakemake retry. The
resumed run skips the epoch's consumed clips and restores the RNG states once the epoch's loader has
started: on CPU it ends bit for bit where an uninterrupted run ends (tests/test_schedule.py).
"""
from __future__ import annotations

import itertools
import logging
import math
import os
import random
import signal
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from vidrec.plan.config import ConfigError, stable_hash
from vidrec.data.dataset import ClipDataset, collate_batch
from vidrec.data.prefetch import DeviceFeed
from vidrec.data.diskspace import Need, check_free_space, training_bytes
from vidrec.core.errors import VidrecError
from vidrec.core.io import remove_stale_temporaries, torch_save, write_csv, write_json
from vidrec.plan.layout import CHECKPOINT_FILE, TRAIN_FILES
from vidrec.models import create_model
from vidrec.models.model_file import ModelFileError, Preprocessing, init_from, safe_load, save_model_file
from vidrec.plan.runs import RunSettings
from vidrec.models.runtime import Runtime, determinism_in_force, memory_peak, setup_runtime
from vidrec.training.distributed import convert_sync_batchnorm, requeue_slurm_job, slurm_time_left
from vidrec.training.schedule import batch_plan, build_schedule, effective_lr
from vidrec.training.tensorboard import open_sink

log = logging.getLogger("vidrec.train")

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_time_s",
                  "wall_time_s", "train_clips_per_s"]


STOPPED_EXIT_CODE = 75  # EX_TEMPFAIL: stopped on request with a checkpoint; the same command resumes


class TrainingError(VidrecError):
    """Training cannot go on (a non-finite loss, a bad checkpoint to initialise from, ...)."""


class TrainingStopped(TrainingError):
    """Stopped on a signal or before the job's time limit, after writing a checkpoint to resume from."""

    exit_code = STOPPED_EXIT_CODE


# ----------------------------------------------------------------------------- state
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """Every RNG's state as tensors and plain values, so checkpoints load with weights_only=True."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ----------------------------------------------------------------------------- building blocks
def build_optimizer(params, spec: dict) -> torch.optim.Optimizer:
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    cls = getattr(torch.optim, spec["name"], None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ConfigError(f"config key 'optimizer.name': torch.optim has no optimizer '{spec['name']}'")
    try:
        return cls(params, **kwargs)
    except TypeError as err:
        raise ConfigError(f"config key 'optimizer': {spec['name']} rejects {kwargs}: {err}") from err


def build_scheduler(optimizer: torch.optim.Optimizer, spec: dict | None):
    if not spec:
        return None
    kwargs = {k: v for k, v in spec.items() if k != "name"}
    cls = getattr(torch.optim.lr_scheduler, spec["name"], None)
    if cls is None:
        raise ConfigError(f"config key 'scheduler.name': torch.optim.lr_scheduler has no '{spec['name']}'")
    try:
        return cls(optimizer, **kwargs)
    except TypeError as err:
        raise ConfigError(f"config key 'scheduler': {spec['name']} rejects {kwargs}: {err}") from err


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start its epoch after the first `skip` indices of this rank (a
    mid-epoch resume: the permutation is the epoch's own, drawn from seed + epoch, so skipping gives
    exactly the clips the interrupted run had left)."""

    skip = 0

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.skip, None)

    def __len__(self) -> int:
        return self.num_samples - self.skip


def make_loader(dataset: ClipDataset, batch: int, rt: Runtime, seed: int, shuffle: bool,
                workers: int) -> tuple[DataLoader, ResumableSampler]:
    """The DataLoader of `vidrec train` (and benchmarks/loader.py). In-process on CUDA, batches are
    read straight into page-locked memory, for DeviceFeed's asynchronous copies."""
    dataset.pin = rt.device.type == "cuda" and workers == 0
    sampler = ResumableSampler(dataset, num_replicas=rt.world, rank=rt.rank, shuffle=shuffle,
                               seed=seed, drop_last=False)
    loader = DataLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=collate_batch,
                        num_workers=workers, pin_memory=rt.device.type == "cuda",
                        persistent_workers=workers > 0)
    return loader, sampler


def cap_index(index: pd.DataFrame, max_clips: int, train_clips: str, seed: int) -> pd.DataFrame:
    """A split index cut to at most `max_clips` training and test items (videos drawn across classes
    from `seed`): with one item per video (centre, random) or every stored clip (all)."""
    def cap(df: pd.DataFrame, per_video: bool) -> pd.DataFrame:
        df = df.sample(frac=1.0, random_state=seed)
        items = df["n_clips"] if per_video else pd.Series(1, index=df.index)
        return df[items.cumsum() <= max(max_clips, int(items.iloc[0]) if len(df) else 0)].sort_index()

    train, test = index[index["subset"] == "train"], index[index["subset"] == "test"]
    return pd.concat([cap(train, train_clips == "all"), cap(test, False)]).sort_index()


# ----------------------------------------------------------------------------- the loop
class Trainer:
    """One (run, seed) on one split's index, writing into out_dir."""

    def __init__(self, run: RunSettings, seed: int, index_csv: Path, class_names: list[str], out_dir: Path,
                 threads: int | None = None):
        self.run, self.seed, self.out = run, seed, Path(out_dir)
        self.proto, self.tcfg = run.protocol, run.train
        self.rt = setup_runtime(self.tcfg, threads)
        self.class_names = class_names
        seed_everything(seed + self.rt.rank)
        index = pd.read_csv(index_csv)
        if self.tcfg.get("max_steps"):  # a rehearsal: at most max_steps steps per epoch and of validation
            index = cap_index(index, self.tcfg["max_steps"] * self.proto["batch_size"], self.proto["train_clips"], seed)
        self.preprocess = Preprocessing.from_settings(run.normalize, run.augment)
        self.train_set = ClipDataset(index, "train", clips=self.proto["train_clips"], raw=True)
        self.val_set = ClipDataset(index, "test", clips="centre", raw=True)
        if len(self.train_set) == 0 or len(self.val_set) == 0:
            raise TrainingError(f"{index_csv}: the split has {len(self.train_set)} training and "
                                f"{len(self.val_set)} test clips; both must be non-empty")
        # the protocol's global batch = per-device batch x devices per node x nodes x accumulate
        local = int(os.environ.get("LOCAL_WORLD_SIZE", self.rt.world)) if self.rt.distributed else 1
        self.plan = batch_plan(self.proto, local, self.rt.world // local)
        self.batch, self.accumulate = self.plan.per_device, self.plan.accumulate
        workers = self.tcfg["num_workers"]
        self.train_loader, self.train_sampler = make_loader(self.train_set, self.batch, self.rt,
                                                            seed, True, workers)
        self.val_loader, _ = make_loader(self.val_set, self.batch, self.rt, 0, False, workers)
        self.clip_shape = run.input_shape
        self.model = create_model(run.arch, num_classes=len(class_names), clip_shape=self.clip_shape,
                                  **run.model_args)
        if run.init_from:
            fresh = init_from(self.model, run.init_from)
            log.info("initialised from %s (kept fresh: %s)", run.init_from, fresh)
        self.rt.place(self.model)
        spec = self.proto["optimizer"]
        if self.proto.get("lr_scaling"):  # the linear scaling rule, opted into by the protocol
            spec = {**spec, "lr": effective_lr(self.proto)}
        self.optimizer = build_optimizer(self.model.parameters(), spec)
        # the protocol's scheduler after its warm-up (if any), stepped per epoch or per optimizer step
        self.steps_per_epoch = math.ceil(len(self.train_loader) / self.accumulate)
        self.scheduler = build_schedule(self.optimizer, self.proto, self.steps_per_epoch,
                                        build_scheduler(self.optimizer, self.proto.get("scheduler")))
        self.per_step_schedule = self.proto["scheduler_interval"] == "step"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.rt.amp_dtype == torch.float16)
        self.net = self.ddp = self.model
        # Stopping at a step boundary (module docstring): why (a signal's name), the deadline inside a
        # SLURM batch job, and a gloo group of its own for the per-step agreement of the ranks.
        self._stop: str | None = None
        self._deadline: float | None = None
        self._stop_group = dist.new_group(backend="gloo") if self.rt.distributed else None
        self.position: dict | None = None  # where a mid-epoch checkpoint left the epoch
        self._epoch_lr = self.optimizer.param_groups[0]["lr"]  # the lr metrics.csv shows for the epoch
        if self.rt.distributed:
            # BatchNorm statistics over the global batch, as in a one-process run: torch's
            # SyncBatchNorm on CUDA, vidrec's CpuSyncBatchNorm on CPU/gloo (distributed.py)
            self.model = convert_sync_batchnorm(self.model, self.rt.device)
            self.net = self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.rt.device.index] if self.rt.device.type == "cuda" else None)
        if self.tcfg["compile"]:
            self.net = torch.compile(self.net)
        self.ckpt_path = self.out / CHECKPOINT_FILE
        # What a checkpoint must match to be resumed: everything but the epoch count (so a run
        # can be extended) and the evaluation settings.
        identity = run.identity()
        identity["protocol"].pop("epochs")
        self.identity = stable_hash(identity | {"seed": seed, "classes": class_names, "world": self.rt.world})
        self.metrics: list[dict] = []
        self.start_epoch, self.wall = 0, 0.0

    # -- checkpointing
    def save_checkpoint(self, epoch: int, position: list | None = None) -> None:
        # every rank's RNG state (per-rank seeds: dropout and augmentation draw differ by rank)
        rngs = [rng_state()]
        if self.rt.distributed:
            rngs = [None] * self.rt.world
            dist.all_gather_object(rngs, rng_state())
        if not self.rt.is_main:
            return
        torch_save({"epoch": epoch, "identity": self.identity, "model": self.model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                    "scaler": self.scaler.state_dict(), "rng": rngs[0], "rng_ranks": rngs,
                    "metrics": self.metrics, "wall_time_s": self.wall, "position": position}, self.ckpt_path)

    def try_resume(self) -> None:
        if not self.ckpt_path.exists():
            return
        # loaded on the CPU: RNG states must stay CPU byte tensors; load_state_dict moves the rest
        try:
            state = safe_load(self.ckpt_path, "checkpoint")
        except ModelFileError as err:
            log.warning("cannot resume: %s; starting from scratch", err)
            return
        if state.get("identity") != self.identity:
            log.warning("%s belongs to another configuration; starting from scratch", self.ckpt_path)
            return
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler and state["scheduler"]:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        rng = state.get("rng_ranks", [state["rng"]])[self.rt.rank]
        self.metrics, self.wall = state["metrics"], state["wall_time_s"]
        self.start_epoch = state["epoch"] + 1
        if state.get("position"):  # mid-epoch: the RNG states are set once the epoch's loader has started
            self.position = {**state["position"][self.rt.rank], "rng": rng}
            log.info("resumed from %s in epoch %d after %d of its steps", self.ckpt_path, self.start_epoch + 1,
                     self.position["micro_step"] // self.accumulate)
        else:
            set_rng_state(rng)
            log.info("resumed from %s after epoch %d", self.ckpt_path, state["epoch"] + 1)

    # -- steps
    def _inputs(self, batch: dict, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x = batch["clips"].to(self.rt.device, non_blocking=True)
        y = batch["labels"].to(self.rt.device, non_blocking=True)
        return self.preprocess(x, train=train, memory_format=self.rt.memory_format), y

    def train_epoch(self, epoch: int) -> dict:
        self.net.train()
        pos, self.position = (self.position, None) if self.position and self.position["epoch"] == epoch else (None, None)
        self.train_sampler.skip = pos["micro_step"] * self.batch if pos else 0  # a mid-epoch resume
        self.train_sampler.set_epoch(epoch)
        self.train_set.set_epoch(epoch, seed=self.seed)  # train_clips: random draws this epoch's clips
        # No host sync per step: the loss sum and correct clips stay on the device, as does the first
        # non-finite loss (step, loss per clip); they are read at the bar's pace and after the epoch.
        totals = torch.zeros(2, dtype=torch.float64, device=self.rt.device)
        first_bad = torch.full((2,), -1.0, dtype=torch.float64, device=self.rt.device)
        count, first = 0, 0
        if pos:  # the running totals of the interrupted epoch
            totals, first_bad = totals.new_tensor(pos["totals"]), first_bad.new_tensor(pos["first_bad"])
            count, first = pos["count"], pos["micro_step"]
        start = shown = time.perf_counter() - (pos["seconds"] if pos else 0.0)
        bar = self._bar(DeviceFeed(self.train_loader, self.rt.device), f"epoch {epoch + 1}/{self.proto['epochs']}")
        n_total, global_batch = len(self.train_set), self.proto["batch_size"]
        n_micro = first + len(self.train_loader)  # micro-batches of this epoch, the same on every rank
        rng = pos["rng"] if pos else None
        for micro, batch in enumerate(bar, start=first):
            if rng is not None:  # after the loader's start (it draws its base seed from the torch RNG)
                set_rng_state(rng)
                rng = None
            step, cycle = divmod(micro, self.accumulate)
            last = cycle == self.accumulate - 1 or micro == n_micro - 1  # the optimizer steps after it
            x, y = self._inputs(batch, train=True)  # random crop/flip before slicing: never empty
            # Global step `step` is clips [step*B, (step+1)*B) of the epoch's permutation, as in one
            # process; its micro-batch `cycle` is this rank's share of the micro-step's clips.
            # DistributedSampler pads the epoch to a multiple of the world size by repeating clips at
            # its end: those are dropped (a rank's last batch may even be empty), and each rank's summed
            # loss is scaled by world / (real clips in this global step), so DDP's gradient average,
            # accumulated over the micro-batches, is the mean over exactly the one-process batch.
            keep = self._real_clips(micro, len(y), n_total)
            x, y = x[:keep], y[:keep]
            n_step = min(global_batch, n_total - step * global_batch)
            if cycle == 0:
                self.optimizer.zero_grad(set_to_none=True)
            sync = self.ddp.no_sync() if self.rt.distributed and not last else nullcontext()
            with sync:
                with self.rt.autocast():
                    logits = self.net(x)
                    ce = F.cross_entropy(logits.float(), y, reduction="sum")
                    loss = ce * (self.rt.world / n_step)
                bad = ~torch.isfinite(loss.detach()) & (first_bad[0] < 0)
                first_bad = torch.where(bad, torch.stack([torch.full_like(first_bad[0], step),
                                                          ce.detach().double() / max(len(y), 1)]), first_bad)
                self.scaler.scale(loss).backward()
            if last:
                self.scaler.step(self.optimizer)
                self.scaler.update()
                if self.scheduler and self.per_step_schedule:
                    self.scheduler.step()
            totals += torch.stack([ce.detach().double(), (logits.argmax(1) == y).sum().double()])
            count += len(y)
            if last and self._stop_requested():  # every rank agrees at this optimizer-step boundary
                self._raise_if_non_finite(first_bad, epoch)
                self._stop_here(epoch, {"epoch": epoch, "lr": self._epoch_lr, "micro_step": micro + 1,
                                        "totals": totals.tolist(),
                                        "first_bad": first_bad.tolist(), "count": count,
                                        "seconds": time.perf_counter() - start})
            if hasattr(bar, "set_postfix") and time.perf_counter() - shown >= bar.mininterval:
                shown = time.perf_counter()  # one host read per refresh of the bar (every 30 s in log files)
                self._raise_if_non_finite(first_bad, epoch)
                bar.set_postfix(loss=f"{totals[0].item() / max(count, 1):.3f}",
                                clips_s=f"{count * self.rt.world / (shown - start):.1f}", refresh=False)
        self.train_sampler.skip = 0
        if rng is not None:  # resumed after the epoch's last step: nothing left to read
            set_rng_state(rng)
        self._raise_if_non_finite(first_bad, epoch)
        totals = self._all_reduce(torch.cat([totals, totals.new_tensor([count])]))
        seconds = time.perf_counter() - start
        return {"train_loss": totals[0].item() / totals[2].item(), "train_acc": totals[1].item() / totals[2].item(),
                "epoch_time_s": seconds, "train_clips_per_s": totals[2].item() / seconds}

    # -- stopping at a step boundary
    def _on_signal(self, signum: int, frame) -> None:
        if self._stop is None:
            self._stop = signal.Signals(signum).name
            log.warning("%s received: stopping at the next step boundary with a checkpoint", self._stop)

    def _stop_requested(self) -> bool:
        """Whether any rank was asked to stop (a signal, or the SLURM job's time limit in sight): the
        same answer on every rank, at the same step (a MAX all-reduce on a gloo group of its own)."""
        if self._stop is None and self._deadline is not None and time.monotonic() >= self._deadline:
            self._stop = "time limit"
        if not self.rt.distributed:
            return self._stop is not None
        flag = torch.tensor([0 if self._stop is None else 2 if self._stop == "SIGTERM" else 1])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self._stop_group)
        if flag.item() and self._stop is None:
            self._stop = "SIGTERM" if flag.item() == 2 else "another rank's stop request"
        return bool(flag.item())

    def _stop_here(self, epoch: int, position: dict | None) -> None:
        """Write the checkpoint to resume from (mid-epoch: at `position`), requeue the SLURM batch job
        on a planned stop, and raise TrainingStopped on every rank."""
        if position is not None:
            positions = [position]
            if self.rt.distributed:
                positions = [None] * self.rt.world
                dist.all_gather_object(positions, position)
            self.save_checkpoint(epoch - 1, positions)
        where = (f"in epoch {epoch + 1} after {position['micro_step'] // self.accumulate} of its "
                 f"{self.steps_per_epoch} steps" if position else f"after epoch {epoch}")
        requeued = ""
        if self.rt.is_main and self._stop != "SIGTERM":  # SIGTERM: a cancel or preemption, SLURM decides
            requeued = requeue_slurm_job()
        if self.rt.distributed:
            dist.barrier()  # nobody exits (and lets torchrun stop the others) before rank 0 has written
        raise TrainingStopped(
            f"stopped ({self._stop}) {where}; {self.ckpt_path} holds the state to resume from, bit for bit: "
            + (requeued or "run the same command (or Snakemake) again"))

    @torch.no_grad()
    def validate(self) -> dict:
        self.net.eval()
        totals, count = torch.zeros(2, dtype=torch.float64, device=self.rt.device), 0  # read once, at the end
        for step, batch in enumerate(DeviceFeed(self.val_loader, self.rt.device)):
            x, y = self._inputs(batch, train=False)
            with self.rt.autocast():
                logits = self.net(x).float()
            keep = self._real_clips(step, len(y), len(self.val_set))  # padded repeats left out
            logits, y = logits[:keep], y[:keep]
            totals += torch.stack([F.cross_entropy(logits, y, reduction="sum").double(),
                                   (logits.argmax(1) == y).sum().double()])
            count += len(y)
        totals = self._all_reduce(torch.cat([totals, totals.new_tensor([count])]))
        return {"val_loss": totals[0].item() / totals[2].item(), "val_acc": totals[1].item() / totals[2].item()}

    def _raise_if_non_finite(self, first_bad: torch.Tensor, epoch: int) -> None:
        """Stop on the first non-finite loss of the epoch (noted on the device by train_epoch).

        Read at the bar's pace and after the epoch, so the steps after it ran on broken weights;
        the epoch's checkpoint is never written, so the run resumes from the last good one."""
        step, loss = first_bad.tolist()
        if step >= 0:
            raise TrainingError(
                f"non-finite loss ({loss}) at epoch {epoch + 1}, step {int(step) + 1}; the last good "
                f"checkpoint is {self.ckpt_path} (after epoch {epoch}). Lower the learning rate "
                "(protocols.<name>.optimizer.lr) or check the input data, then rerun.")

    def _real_clips(self, step: int, batch_len: int, n_total: int) -> int:
        """How many clips of this rank's batch `step` are real, not DistributedSampler padding.

        The rank's j-th clip is position j * world + rank of the padded permutation; positions
        >= n_total are the repeats, all at the end, so the real clips are a prefix of the batch."""
        own = (n_total - self.rt.rank + self.rt.world - 1) // self.rt.world
        return max(0, min(batch_len, own - step * self.batch))

    def _all_reduce(self, t: torch.Tensor) -> torch.Tensor:
        if self.rt.distributed:
            t = t.to(self.rt.device)
            dist.all_reduce(t)
            t = t.cpu()
        return t

    def _bar(self, loader, desc: str):
        if not self.rt.is_main:
            return loader
        from tqdm import tqdm

        interactive = sys.stderr.isatty()
        return tqdm(loader, desc=desc, unit="batch", leave=False, mininterval=0.5 if interactive else 30,
                    disable=None if interactive else False)

    # -- the run
    def fit(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        for name in (CHECKPOINT_FILE, *TRAIN_FILES.values()):  # a killed attempt's temporaries
            remove_stale_temporaries(self.out / name)
        self.try_resume()
        progress = open_sink(self.tcfg["tensorboard"], self.out, self.rt.is_main, self.metrics)  # train.tensorboard
        handlers = {}
        if threading.current_thread() is threading.main_thread():  # a stop request waits for a step boundary
            handlers = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGUSR1, signal.SIGTERM)}
        margin = self.tcfg.get("stop_margin_s", 0)
        left = slurm_time_left() if margin and self.rt.is_main else None
        if left is not None:
            self._deadline = time.monotonic() + left - margin
            log.info("SLURM job: %.0f s left; stopping with a checkpoint %d s before the limit", left, margin)
        try:
            self._fit_epochs(progress)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
        summary = self.finish()
        if self.rt.distributed:
            dist.barrier()  # nobody exits (and lets torchrun tear down) before rank 0 has written
            if self.rt.owns_group:
                dist.destroy_process_group()
        return summary

    def _fit_epochs(self, progress) -> None:
        epochs = self.proto["epochs"]
        for epoch in range(self.start_epoch, epochs):
            resumed = self.position and self.position["epoch"] == epoch  # mid-epoch: its lr at the start
            self._epoch_lr = self.position["lr"] if resumed else self.optimizer.param_groups[0]["lr"]
            row = {"epoch": epoch + 1, "lr": self._epoch_lr}
            row |= self.train_epoch(epoch)
            row |= self.validate()
            if self.scheduler and not self.per_step_schedule:
                self.scheduler.step()
            self.wall += row["epoch_time_s"]
            row["wall_time_s"] = self.wall
            self.metrics.append(row)
            self.save_checkpoint(epoch)
            if self.rt.is_main:
                write_csv(self.out / TRAIN_FILES["metrics"], pd.DataFrame(self.metrics, columns=METRIC_COLUMNS))
                progress.epoch(row)
                log.info("epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1fs, %.1f clips/s",
                         epoch + 1, epochs, row["train_loss"], row["train_acc"], row["val_loss"],
                         row["val_acc"], row["epoch_time_s"], row["train_clips_per_s"])
            if epoch + 1 < epochs and self._stop_requested():  # e.g. a signal during validation
                self._stop_here(epoch + 1, None)

    def finish(self) -> dict:
        summary = {
            "model": self.run.name, "arch": self.run.arch, "dataset": self.run.dataset,
            "protocol": self.run.protocol_name, "epochs": len(self.metrics),
            "total_time_s": self.wall, "mean_epoch_time_s": self.wall / max(len(self.metrics), 1),
            "device": str(self.rt.device), "world_size": self.rt.world, "threads": torch.get_num_threads(),
            "seed": self.seed, "amp": str(self.rt.amp_dtype) if self.rt.amp_dtype else "none",
            # what ran, as the report and evaluation.json name it
            "initialisation": self.run.initialisation, "epochs_planned": self.run.epochs,
            "clip_spec": self.run.clip_name, "train_clip_sampling": self.proto["train_clips"],
            "augment": dict(self.run.augment), "adjustments": list(self.run.adjustments),
            "train_clips": len(self.train_set), "val_clips": len(self.val_set),
            # the global batch as it was made (per-device batch x devices x nodes x accumulate) and the lr
            **self.plan.to_dict(), "lr": effective_lr(self.proto),
            "lr_scaling_rule": bool(self.proto.get("lr_scaling")), "warmup": self.proto.get("warmup"),
            "scheduler_interval": self.proto["scheduler_interval"],
            "final_train_acc": self.metrics[-1]["train_acc"] if self.metrics else math.nan,
            "final_val_acc": self.metrics[-1]["val_acc"] if self.metrics else math.nan,
            **determinism_in_force(self.rt.device),
            **memory_peak(self.rt.device),  # the rehearsal's forecast: does the batch fit (vidrec/report/forecast_arithmetic.py)
        }
        if self.rt.is_main:
            write_csv(self.out / TRAIN_FILES["metrics"], pd.DataFrame(self.metrics, columns=METRIC_COLUMNS))
            plain = self.run.to_dict()
            save_model_file(self.out / TRAIN_FILES["model"], arch=self.run.arch, model_args=plain["model_args"],
                            class_names=self.class_names, clip=plain["clip"], clip_name=self.run.clip_name,
                            clip_shape=self.clip_shape, normalize=plain["normalize"],
                            augment=plain["protocol"]["augment"], state_dict=self.model.state_dict(),
                            run={"dataset": self.run.dataset, "model": self.run.name,
                                 "protocol_name": self.run.protocol_name, "seed": self.seed})
            write_json(self.out / TRAIN_FILES["summary"], summary)
            # The checkpoint is the resume point of an unfinished run only: once model.pt is in place
            # it must not stand in for training (a forced rerun retrains from scratch).
            self.ckpt_path.unlink(missing_ok=True)
        return summary


def train_run(run: RunSettings, seed: int, index_csv: Path, classes_txt: Path, out_dir: Path,
              threads: int | None = None, check_disk: bool = False) -> dict:
    """Train one (run, seed) into out_dir. check_disk: first make sure its checkpoints fit (disk.check)."""
    classes = [c for c in Path(classes_txt).read_text().splitlines() if c.strip()]
    trainer = Trainer(run, seed, index_csv, classes, out_dir, threads)
    if check_disk and trainer.rt.is_main:
        n_parameters = sum(p.numel() for p in trainer.model.parameters())
        check_free_space([Need(trainer.ckpt_path, training_bytes(n_parameters), f"checkpoints of {run.name}")],
                         "Free space there, or train from a working directory on a larger disk")
    return trainer.fit()
