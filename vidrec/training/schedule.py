"""A protocol's global batch and learning-rate schedule, as facts the trainer runs and labels state.

Torch-free at import (the report and the Snakefile ask it): `batch_plan` splits the protocol's
global batch over devices, nodes and accumulated micro-batches; `effective_lr` applies the opt-in
linear scaling rule; `schedule_text` says both in words for the protocol label. `build_schedule`
(torch imported inside) builds the warm-up and scheduler the trainer steps.

Settings (protocol keys, defaults in the schema; at the defaults a run trains exactly as before):
- `accumulate: N`: one optimizer step every N micro-batches; per-device batch = batch_size /
  (devices per node x nodes x N), so the global batch stays batch_size (mmaction2's
  `accumulative_counts`). BatchNorm then normalises over micro-batches, which the label says.
- `warmup: {epochs|steps: W, start_factor: f}`: torch's LinearLR from f x lr to lr over W scheduler
  steps, then the protocol's scheduler (SequentialLR with milestone W; the scheduler counts from 0
  after the warm-up, as in torchvision's video reference).
- `scheduler_interval: epoch | step`: the warm-up and the scheduler advance after every epoch or after
  every optimizer step; with `step`, the scheduler's arguments count optimizer steps.
- `lr_scaling: {base_batch: B}`: the linear scaling rule (Goyal et al. 2017) as an explicit opt-in:
  lr x batch_size / B.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from vidrec.core.errors import ConfigError


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's global batch is made: per_device x devices x nodes x accumulate."""

    global_batch: int
    per_device: int
    devices: int          # processes per node (GPUs, or CPU processes on device: cpu)
    nodes: int
    accumulate: int

    @property
    def world(self) -> int:
        return self.devices * self.nodes

    def to_dict(self) -> dict:
        return {"global_batch": self.global_batch, "per_device_batch": self.per_device,
                "devices_per_node": self.devices, "nodes": self.nodes, "accumulate": self.accumulate}

    def text(self) -> str:
        """'batch 48 = 8 per device x 2 devices x 1 node x 3 accumulated' (only the factors above 1)."""
        if self.world == 1 and self.accumulate == 1:
            return f"batch {self.global_batch}"
        parts = [f"{self.per_device} per device"]
        if self.devices > 1:
            parts.append(f"{self.devices} devices")
        if self.nodes > 1:
            parts.append(f"{self.nodes} nodes")
        if self.accumulate > 1:
            parts.append(f"{self.accumulate} accumulated micro-batches")
        return f"batch {self.global_batch} = " + " x ".join(parts)


def batch_plan(protocol: Mapping[str, Any], devices: int, nodes: int = 1) -> BatchPlan:
    """The protocol's global batch split over `devices` processes per node, `nodes` nodes and its
    `accumulate` micro-batches; ConfigError naming the keys when it does not divide."""
    batch, accumulate = int(protocol["batch_size"]), int(protocol["accumulate"])
    devices, nodes = max(1, int(devices)), max(1, int(nodes))
    parts = devices * nodes * accumulate
    if batch % parts:
        raise ConfigError(
            f"config key 'batch_size': the global batch {batch} is not divisible by {devices} device(s) x "
            f"{nodes} node(s) x accumulate {accumulate} = {parts} (train.gpus, train.nodes, the protocol's "
            "accumulate): per-device batch x devices x nodes x accumulate must equal batch_size")
    return BatchPlan(batch, batch // parts, devices, nodes, accumulate)


def effective_lr(protocol: Mapping[str, Any]) -> float:
    """The optimizer's lr, times batch_size / lr_scaling.base_batch when the linear scaling rule is on."""
    lr = float(protocol["optimizer"]["lr"])
    scaling = protocol.get("lr_scaling")
    return lr * int(protocol["batch_size"]) / int(scaling["base_batch"]) if scaling else lr


def warmup_length(protocol: Mapping[str, Any], steps_per_epoch: int) -> int:
    """Scheduler steps the warm-up lasts (0: none), in the unit the schedule advances in."""
    warm = protocol.get("warmup")
    if not warm:
        return 0
    interval = protocol["scheduler_interval"]
    if ("epochs" in warm) == ("steps" in warm):
        raise ConfigError("config key 'warmup': give exactly one of 'epochs' or 'steps', e.g. {epochs: 5}")
    if "steps" in warm:
        if interval != "step":
            raise ConfigError("config key 'warmup.steps': a warm-up in optimizer steps needs "
                              "scheduler_interval: step (or give warmup.epochs)")
        return int(warm["steps"])
    return int(warm["epochs"]) * (steps_per_epoch if interval == "step" else 1)


def schedule_text(protocol: Mapping[str, Any]) -> list[str]:
    """The schedule settings that differ from a plain per-epoch scheduler, in words (protocol label)."""
    out = []
    opt = protocol["optimizer"]
    if opt.get("nesterov"):
        out.append(f"Nesterov momentum {opt.get('momentum', 0):g}")
    scaling = protocol.get("lr_scaling")
    if scaling:
        out.append(f"linear scaling rule: lr {float(opt['lr']):g} x {protocol['batch_size']}/"
                   f"{scaling['base_batch']} = {effective_lr(protocol):g}")
    warm = protocol.get("warmup")
    if warm:
        unit = "epochs" if "epochs" in warm else "steps"
        out.append(f"linear warm-up {warm[unit]} {unit} from {float(warm['start_factor']):g} x lr")
    if protocol["scheduler_interval"] == "step":
        out.append("schedule stepped per optimizer step")
    if int(protocol["accumulate"]) > 1:
        out.append(f"gradients accumulated over {protocol['accumulate']} micro-batches "
                   "(BatchNorm statistics per micro-batch)")
    return out


def build_schedule(optimizer, protocol: Mapping[str, Any], steps_per_epoch: int, main=None):
    """The learning-rate schedule the trainer steps: `main` (the protocol's torch scheduler, or None)
    after the protocol's linear warm-up, if any. Without a warm-up, `main` itself (unchanged)."""
    n = warmup_length(protocol, steps_per_epoch)
    if not n:
        return main
    from torch.optim.lr_scheduler import LinearLR, SequentialLR

    warm = LinearLR(optimizer, start_factor=float(protocol["warmup"]["start_factor"]),
                    end_factor=1.0, total_iters=n)
    return warm if main is None else SequentialLR(optimizer, [warm, main], milestones=[n])
