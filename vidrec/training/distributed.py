"""Several GPUs (or CPU processes) for one training run, and one GPU slot per job on one machine.

Two independent pieces, both small:

1. **Synchronised BatchNorm on every backend.** Under DistributedDataParallel each rank sees
   global_batch / world clips; plain BatchNorm would normalise with statistics of that slice, so a
   2-GPU run would not train the same network as a 1-GPU run with the same global batch.
   `convert_sync_batchnorm` swaps every BatchNorm for one whose training statistics cover the
   whole global batch: torch's `nn.SyncBatchNorm` on CUDA; on CPU (gloo), where torch 2.14's
   SyncBatchNorm refuses CPU tensors ("SyncBatchNorm expected input tensor to be on GPU ..."),
   `CpuSyncBatchNorm`, the same statistics computed with a differentiable all-reduce (forward: sum
   over ranks; backward: sum of the gradients over ranks, as torch's deprecated
   `torch.distributed.nn.functional.all_reduce`), on a process group of its own so its
   collectives never interleave with DDP's gradient buckets. Evaluation mode uses the running
   statistics, as plain BatchNorm does.

2. **A GPU slot per job** (`python -m vidrec.training.distributed --gpus N -- CMD ...`).
   Core Snakemake counts `resources: gpu` against `--resources gpu=N` but sets no
   CUDA_VISIBLE_DEVICES, so two concurrent jobs would both use GPU 0. This launcher takes N free
   devices, each guarded by an exclusive `flock` on `<lock dir>/gpu-<id>.lock`, exports
   CUDA_VISIBLE_DEVICES=<those ids> and *execs* CMD with the lock descriptors inherited: the locks
   live exactly as long as the job's process (a crash or SIGKILL releases them; no stale lock
   files to clean). Taking all N or none (retrying every second) cannot deadlock. Rules:
     - inside a SLURM job (SLURM_JOB_ID set) with CUDA_VISIBLE_DEVICES set and N at least the
       number of visible devices (the executor plugin's case: one SLURM job per Snakemake job):
       nothing is changed, SLURM already gave the job its GPUs;
     - inside a SLURM allocation shared by several jobs (`salloc` + a local Snakemake): slots are
       taken among the allocation's devices, locks namespaced by the SLURM job id;
     - otherwise the pool is CUDA_VISIBLE_DEVICES when set (restrict a run to some GPUs), else
       every GPU that `nvidia-smi -L` lists; the lock dir is shared by every run on the machine
       (`$VIDREC_GPU_LOCK_DIR`, default `<tmp>/vidrec-gpu-locks`);
     - N = 0 or a machine without GPUs: CMD runs unchanged (CPU); N > pool size: an error.
   This module imports no torch at the top: the launcher starts in milliseconds.

3. **Several nodes** (`--nodes N --procs P`, train.nodes > 1; SLURM only). The train rule then is one
   SLURM job over N nodes whose shell runs on the first node (the executor plugin's `mpi` jobs run
   their shell directly, without its `srun -n1`); the launcher execs `srun` with one task per node,
   each a torchrun agent with P processes, joined by a c10d rendezvous: id = the SLURM job id,
   endpoint = this (the first) node at a port derived from the job id. SLURM hands each node its
   GPUs (`--gres=gpu:<train.gpus>` per node), so no slot is locked. Outside a SLURM job it refuses,
   naming train.nodes.

4. **The SLURM job's time limit.** `slurm_time_left()` asks SLURM (`squeue -o %L`) how long the batch
   job may still run (the trainer stops with a checkpoint `train.stop_margin_s` before it);
   `requeue_slurm_job()` puts the job back in the queue (`scontrol requeue`), so a training stopped
   before its limit continues in a fresh allocation as the same SLURM job: Snakemake's status checks
   see it pending, then running, and no retry is spent (the profile submits with --requeue).
"""
from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOCK_DIR_ENV = "VIDREC_GPU_LOCK_DIR"


# ----------------------------------------------------------------------------- synchronised BN
@functools.cache
def _cpu_sync_batchnorm_class():
    import torch
    import torch.distributed as dist

    class AllReduceSum(torch.autograd.Function):
        """Sum over the ranks of `group`; the gradient of every rank's input is the sum of the
        gradients of every rank's output (each rank's loss depends on every rank's input)."""

        @staticmethod
        def forward(ctx, x, group):
            ctx.group = group
            y = x.clone()
            dist.all_reduce(y, group=group)
            return y

        @staticmethod
        def backward(ctx, grad):
            grad = grad.clone()
            dist.all_reduce(grad, group=ctx.group)
            return grad, None

    def all_reduce(x, group):
        return AllReduceSum.apply(x, group)

    class CpuSyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
        """BatchNorm whose training statistics span every rank (any backend, gloo included).

        Forward: global count and sum -> mean; global sum of squared deviations -> biased variance
        (two passes, as plain BatchNorm, no E[x^2] - E[x]^2 cancellation); running statistics
        updated with the unbiased variance and the momentum exactly as `F.batch_norm` does.
        Backward: autograd through the differentiable all-reduce, i.e. the gradient of the sum of
        every rank's loss with respect to the shared statistics, as torch's SyncBatchNorm.
        A rank with an empty batch contributes zeros and still joins the collectives.
        """

        process_group = None

        def _check_input_dim(self, x):
            if x.dim() < 2:
                raise ValueError(f"expected at least 2D input (got {x.dim()}D input)")

        def forward(self, x):
            self._check_input_dim(x)
            group = self.process_group or dist.group.WORLD
            if not (self.training and dist.is_available() and dist.is_initialized()
                    and dist.get_world_size(group) > 1):
                return super().forward(x)
            dims = [0, *range(2, x.dim())]
            shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
            count = x.new_full((1,), x.numel() // max(x.shape[1], 1))
            stats = all_reduce(torch.cat([count, x.sum(dims)]), group=group)
            n, mean = stats[0], stats[1:] / stats[0]
            centred = x - mean.view(shape)
            var = all_reduce((centred * centred).sum(dims), group=group) / n
            y = centred * torch.rsqrt(var + self.eps).view(shape)
            if self.affine:
                y = y * self.weight.view(shape) + self.bias.view(shape)
            if self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked.add_(1)
                    m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                         else self.momentum)
                    unbiased = var.detach() * (n / (n - 1)) if n > 1 else var.detach()
                    self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                    self.running_var.mul_(1 - m).add_(unbiased, alpha=m)
            return y

    return CpuSyncBatchNorm


def __getattr__(name: str):
    if name == "CpuSyncBatchNorm":
        return _cpu_sync_batchnorm_class()
    raise AttributeError(name)


def convert_sync_batchnorm(module, device, process_group=None):
    """Every BatchNorm of `module` synchronised across the ranks of `process_group` (default: a
    new group of all ranks). CUDA: torch's nn.SyncBatchNorm; other devices: CpuSyncBatchNorm.
    Parameters and buffers are the same tensors (an optimizer built before still holds them)."""
    import torch
    import torch.distributed as dist

    if device.type != "cpu":
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(module, process_group)
    group = process_group if process_group is not None else dist.new_group(backend="gloo")
    cls = _cpu_sync_batchnorm_class()

    def convert(m):
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(m, cls):
            new = cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats)
            if m.affine:
                new.weight, new.bias = m.weight, m.bias
            new.running_mean, new.running_var = m.running_mean, m.running_var
            new.num_batches_tracked = m.num_batches_tracked
            new.training = m.training
            new.process_group = group
            return new
        for name, child in m.named_children():
            m.add_module(name, convert(child))
        return m

    return convert(module)


# ----------------------------------------------------------------------------- SLURM
def parse_slurm_duration(text: str) -> float | None:
    """Seconds of a SLURM duration ('[days-]hours:minutes:seconds', 'minutes:seconds'); None for
    UNLIMITED, NOT_SET, INVALID or anything unparsable."""
    m = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text.strip())
    if not m:
        return None
    days, hours, minutes, seconds = (int(g) if g else 0 for g in m.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)


def slurm_time_left(env: dict | None = None, run=subprocess.run) -> float | None:
    """Seconds before the time limit of the SLURM job this process runs in (squeue's %L); None
    outside SLURM, without a limit, or when squeue cannot tell."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        return None
    try:
        out = run(["squeue", "-h", "-j", job, "-o", "%L"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_slurm_duration(out.stdout) if out.returncode == 0 else None


def requeue_slurm_job(env: dict | None = None, run=subprocess.run) -> str:
    """`scontrol requeue <SLURM_JOB_ID>`: what happened, in words ('' outside a SLURM job)."""
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        return ""
    try:
        out = run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as err:
        return f"scontrol requeue {job} failed ({err}); resubmit to resume"
    if out.returncode != 0:
        return (f"scontrol requeue {job} failed ({(out.stderr or out.stdout).strip()}); Snakemake's retry (or "
                "a rerun) resumes")
    return f"SLURM job {job} requeued: it resumes when SLURM starts it again"


def rendezvous_port(job_id: str) -> int:
    """The c10d rendezvous port of a multi-node training: 20000-29999 (below Linux's ephemeral
    ports), from the job id, so two trainings that share a first node do not collide."""
    return 20000 + int(re.sub(r"\D", "", job_id) or 0) % 10000


def multinode_command(nodes: int, procs: int, gpus: int, cmd: list[str], env: dict | None = None) -> list[str]:
    """The srun line of a training across `nodes` nodes: one torchrun agent per node with `procs`
    processes (`gpus` GPUs per node), c10d rendezvous on this node. cmd = [python, -m, module, ...]."""
    import socket

    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job:
        raise GpuSlotError(f"train.nodes is {nodes}: a training across several nodes runs only as a SLURM job "
                           "(snakemake --profile workflow/profiles/slurm); on one machine set train.nodes: 1 "
                           "and train.gpus to its GPUs")
    if len(cmd) < 3 or cmd[1] != "-m":
        raise GpuSlotError(f"expected 'python -m module ...' to launch on every node, got {cmd[:3]}")
    endpoint = f"{socket.gethostname()}:{rendezvous_port(job)}"
    return ["srun", f"--nodes={nodes}", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=1",
            *([f"--gres=gpu:{gpus}"] if gpus > 0 else []),
            cmd[0], "-m", "torch.distributed.run", f"--nnodes={nodes}", f"--nproc_per_node={procs}",
            "--rdzv_backend=c10d", f"--rdzv_id=vidrec-{job}", f"--rdzv_endpoint={endpoint}", *cmd[1:]]


# ----------------------------------------------------------------------------- GPU slots
class GpuSlotError(RuntimeError):
    pass


def machine_gpus() -> list[str]:
    """Indices of the GPUs this machine shows (nvidia-smi -L; [] without a driver)."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
            return [str(i) for i, line in enumerate(l for l in out.splitlines() if l.startswith("GPU "))]
        except (OSError, subprocess.SubprocessError):
            pass
    proc = Path("/proc/driver/nvidia/gpus")
    return [str(i) for i in range(len(list(proc.iterdir())))] if proc.is_dir() else []


def lock_dir(env: dict | None = None) -> Path:
    env = os.environ if env is None else env
    base = Path(env.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "vidrec-gpu-locks")
    if env.get("SLURM_JOB_ID"):
        base = base / f"slurm-{env['SLURM_JOB_ID']}"
    return base


def _ensure_dir(path: Path) -> None:
    for p in reversed([path, *path.parents]):
        if not p.exists():
            try:
                p.mkdir()
                p.chmod(0o1777)  # shared by every user's runs, like /tmp
            except FileExistsError:
                pass


def plan(n: int, env: dict | None = None) -> tuple[list[str] | None, str]:
    """(pool to take n slots from, or None to leave the environment alone; why)."""
    env = os.environ if env is None else env
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if n <= 0:
        return None, "the job asks for no GPU"
    if visible is not None:
        pool = [d.strip() for d in visible.split(",") if d.strip()]
        if env.get("SLURM_JOB_ID") and n >= len(pool):
            return None, f"SLURM set CUDA_VISIBLE_DEVICES={visible}"
    elif env.get("SLURM_JOB_ID"):
        return None, "inside a SLURM job that was given no GPU"
    else:
        pool = machine_gpus()
    if not pool:
        return None, "no GPU on this machine"
    if n > len(pool):
        raise GpuSlotError(f"the job asks for {n} GPUs but only {len(pool)} are visible ({','.join(pool)}); "
                           "lower train.gpus or run where more GPUs are available")
    return pool, ""


def acquire(n: int, pool: list[str], directory: Path, timeout: float | None = None,
            poll: float = 1.0, announce=None) -> tuple[list[str], list[int]]:
    """Lock n devices of pool (all or none, retried until free): (device ids, open lock fds)."""
    import fcntl

    _ensure_dir(directory)
    start, said = time.monotonic(), False
    while True:
        got: list[tuple[str, int]] = []
        for dev in pool:
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", dev)
            fd = os.open(directory / f"gpu-{name}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            got.append((dev, fd))
            if len(got) == n:
                return [d for d, _ in got], [fd for _, fd in got]
        for _, fd in got:  # not enough free: release everything, try again later
            os.close(fd)
        if timeout is not None and time.monotonic() - start > timeout:
            raise GpuSlotError(f"no {n} free GPU(s) among {pool} after {timeout:.0f}s ({directory})")
        if not said and announce:
            announce(f"waiting for {n} free GPU(s) among {','.join(pool)} (locks in {directory})")
            said = True
        time.sleep(poll)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m vidrec.training.distributed",
        description="Run CMD with CUDA_VISIBLE_DEVICES set to N GPUs no other job holds.")
    p.add_argument("--gpus", type=int, required=True, help="GPUs the job needs (its resources.gpu)")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    p.add_argument("--nodes", type=int, default=1, help="nodes of one training (train.nodes; > 1: SLURM only)")
    p.add_argument("--procs", type=int, default=1, help="with --nodes > 1: processes per node (torchrun agents' "
                   "--nproc_per_node)")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command and arguments")
    args = p.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        p.error("no command given")

    def say(msg: str) -> None:
        print(f"[vidrec gpus] {msg}", file=sys.stderr, flush=True)

    if args.nodes > 1:  # SLURM gives every node its GPUs; srun starts one torchrun agent per node
        try:
            cmd = multinode_command(args.nodes, args.procs, args.gpus, cmd)
        except GpuSlotError as err:
            say(f"error: {err}")
            return 2
        say(f"SLURM job {os.environ['SLURM_JOB_ID']}, {args.nodes} nodes x {args.procs} processes: {' '.join(cmd)}")
        return _exec(cmd, say)
    try:
        pool, why = plan(args.gpus)
        if pool is not None:
            devices, fds = acquire(args.gpus, pool, lock_dir(), args.timeout, announce=say)
            for fd in fds:
                os.set_inheritable(fd, True)  # the locks live as long as the command does
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(devices)
            why = "locked GPU slot(s) " + ",".join(devices)
    except GpuSlotError as err:
        say(f"error: {err}")
        return 2
    where = f"SLURM job {os.environ['SLURM_JOB_ID']}, " if os.environ.get("SLURM_JOB_ID") else ""
    say(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')} ({where}{why})")
    return _exec(cmd, say)


def _exec(cmd: list[str], say) -> int:
    """Replace this process by `cmd` (signals then reach it directly); 127 when it cannot start."""
    try:
        os.execvp(cmd[0], cmd)
    except OSError as err:
        say(f"error: cannot run {cmd[0]}: {err}")
    return 127


if __name__ == "__main__":
    sys.exit(main())
