"""Where and how a network runs: device, threads, process group, autocast, memory format, determinism.

Training, evaluation, predict and the benchmarks all ask this module, so a model trained with bf16
autocast and channels_last_3d on a GPU is evaluated and timed the same way, and `train.json` states
exactly which reproducibility switches were in force.
"""
from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from vidrec.core.errors import ConfigError, VidrecError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "none": None}


@dataclass
class Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    amp_dtype: torch.dtype | None = None
    owns_group: bool = False  # this run initialised the process group (and destroys it at the end)
    channels_last: bool = False  # CUDA only: activations and weights in channels_last(_3d)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last_3d if self.channels_last else torch.contiguous_format

    def autocast(self) -> contextlib.AbstractContextManager:
        """The autocast context of every forward pass (none on CPU or with amp: none)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the device in the runtime's memory format (in place; returns it)."""
        from vidrec.models import to_channels_last

        model.to(self.device)
        if self.channels_last:
            to_channels_last(model)
        return model

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' (CUDA when visible), 'cpu', 'cuda' or 'cuda:N'; a CUDA request without CUDA is an error."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise VidrecError(f"--device {device}: no CUDA device is visible; use auto or cpu")
    return torch.device(device)


def enforce_determinism(on: bool) -> None:
    """`train.deterministic`: torch's deterministic algorithms (an op without one raises) and cuDNN's
    deterministic kernels. cuBLAS needs its workspace setting before its first call, hence the env var.
    torch's switch is only called to change its state: calling it imports torch's compiler (seconds)."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if torch.are_deterministic_algorithms_enabled() != on:
        torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on


def determinism_in_force(device: torch.device) -> dict:
    """What train.json states about reproducibility: only settings that were actually in force."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark if device.type == "cuda" else None}


def memory_peak(device: torch.device) -> dict:
    """This process's peak memory on its device beside the device's total (train.json; the rehearsal's
    forecast checks the batch fits): CUDA's max allocated and the card's memory, or on the CPU the
    peak resident set size and the physical memory."""
    if device.type == "cuda":
        return {"peak_memory_mb": torch.cuda.max_memory_allocated(device) / 2**20,
                "memory_total_mb": torch.cuda.get_device_properties(device).total_memory / 2**20}
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"peak_memory_mb": rss / 2**20 if sys.platform == "darwin" else rss / 1024,
            "memory_total_mb": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20}


def setup_runtime(train_cfg: dict, threads: int | None) -> Runtime:
    """train_cfg: a validated config's `train` block. Pick the device (CUDA when present unless told otherwise), set its fast paths or the
    deterministic ones, and join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    want = train_cfg["device"]
    use_cuda = torch.cuda.is_available() and want in ("auto", "cuda")
    deterministic = bool(train_cfg["deterministic"])
    if want == "cuda" and not torch.cuda.is_available():
        raise ConfigError("config key 'train.device' is 'cuda' but no CUDA device is visible; "
                          "use 'auto' or 'cpu'")
    channels_last = False
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ConfigError(
                f"config key 'train.gpus': {os.environ.get('LOCAL_WORLD_SIZE', world)} processes per node but "
                f"{torch.cuda.device_count()} visible GPU(s) (CUDA_VISIBLE_DEVICES="
                f"{os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}); the job's gpu resource must equal "
                "train.gpus (do not override it with set-resources)")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        amp = AMP_DTYPES[train_cfg["amp"]]
        channels_last = bool(train_cfg["channels_last"])
    else:
        device, amp = torch.device("cpu"), None
        # CPU processes on one machine share its cores: the rule's threads are split among them
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (threads or train_cfg["threads"]) // local_world))
    enforce_determinism(deterministic)
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if rank > 0:  # rank 0 alone logs (and writes files); the others only warn
        logging.getLogger("vidrec").setLevel(logging.WARNING)
    return Runtime(device, rank, world, amp, owns_group, channels_last)


def out_of_memory_error(what: str, batch: int, setting: str) -> "OutOfMemoryError":
    """The one-line error for CUDA running out of memory in `what` (a run's training or evaluation)
    at `batch` clips per step: the device's memory, the peak reached, and what to do."""
    from vidrec.core.errors import OutOfMemoryError

    device = "the GPU"
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        device = (f"cuda:{index} ({props.name}, {props.total_memory / 2**30:.1f} GiB; "
                  f"{torch.cuda.max_memory_allocated(index) / 2**30:.1f} GiB allocated at the peak)")
    return OutOfMemoryError(
        f"CUDA out of memory in {what} at batch size {batch} on {device}. Use a smaller batch "
        f"({setting}) with gradient accumulation to keep the protocol's global batch, or find the largest "
        "batch that fits first with the rehearsal (snakemake report --config rehearsal=true); then rerun "
        "(training resumes from its last checkpoint).")
