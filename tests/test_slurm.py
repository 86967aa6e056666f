"""The workflow on a real SLURM: Debian's slurm-wlm on this machine, a single-node cluster.

As root (`.ci/run` is root) the test installs `slurm-wlm` and `munge` when missing, writes a
single-node slurm.conf (select/cons_tres, proctrack/linuxproc, task/none, no accounting, the node's
hostname from `slurmd -C`, one fake GPU `Name=gpu File=/dev/null` in gres.conf), starts its own
munged, slurmctld and slurmd (own ports, munge key and socket, state folders under a temporary
folder), builds the miniature demo's data stage locally, then runs the rest of the DAG (train asking
for a GPU, evaluate, the report) with `--profile workflow/profiles/slurm` plus the site overrides a
user would give (partition, account, small memory and runtime). It checks that those jobs went
through SLURM (job ids in Snakemake's output, SLURM's per-job logs, the training log's SLURM job id
and the fake GPU handed over as CUDA_VISIBLE_DEVICES=0) and that the outputs are right, and finally
stops exactly the daemons it started, by pid. Not root, no way to install the packages, or a SLURM
already configured on this machine: skipped, with the reason.

The configuration goes to /etc/slurm/slurm.conf (and gres.conf), the compiled-in default, because
the plugin's job step clears every SLURM_* variable (SLURM_CONF included) before its inner `srun`;
the two files carry a marker and are removed at the end. An existing slurm.conf without the marker
is never touched: the test skips.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from support import BIN, REPO, free_port, mini_config, run_snakemake, snakemake_argv

pytestmark = pytest.mark.slow

ETC = Path("/etc/slurm")
MARK = "# written by vidrec tests/test_slurm.py (removed when the test ends)"
TOOLS = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "munged", "mungekey"]


def _missing_tools() -> list[str]:
    return [t for t in TOOLS if not shutil.which(t, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")]


def _ensure_slurm_installed() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: installs slurm-wlm and munge and starts munged, slurmctld and slurmd "
                    "(.ci/run runs the suite as root)")
    if not _missing_tools():
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = [["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "slurm-wlm", "munge"]]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"cannot install slurm-wlm/munge: {' '.join(cmd)}: {err}")
        if proc.returncode != 0:
            pytest.skip(f"cannot install slurm-wlm/munge: {' '.join(cmd)} exited {proc.returncode}: "
                        f"{(proc.stderr or proc.stdout)[-500:]}")
    if _missing_tools():
        pytest.skip(f"slurm-wlm/munge installed but {_missing_tools()} still missing")


def _node_facts() -> dict:
    """NodeHostname, CPUs and memory as slurmd itself sees this machine (`slurmd -C`)."""
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    facts = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    return {"hostname": facts["NodeName"], "cpus": int(facts["CPUs"]), "memory": int(facts["RealMemory"])}


class MiniSlurm:
    """munged + slurmctld + slurmd of our own, configured in `root`; stop() ends exactly them."""

    def __init__(self, root: Path):
        self.root = root
        self.procs: dict[str, subprocess.Popen] = {}
        node = _node_facts()
        self.cpus = node["cpus"]
        self.memory = min(node["memory"] - 512, 8000)
        for d in ("state", "spool", "munge", "log"):
            (root / d).mkdir(mode=0o700, parents=True, exist_ok=True)
        self.munge_socket = root / "munge" / "munge.socket"
        self.conf = ETC / "slurm.conf"
        for f in (self.conf, ETC / "gres.conf"):
            if f.exists() and MARK not in f.read_text():
                pytest.skip(f"{f} exists and was not written by this test: a SLURM is configured here; "
                            "not touching it")
        ETC.mkdir(parents=True, exist_ok=True)
        self.written = [self.conf, ETC / "gres.conf"]
        self.conf.write_text("\n".join([
            MARK,
            "ClusterName=vidrec-test",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "GresTypes=gpu",
            "ReturnToService=2",
            "MpiDefault=none",
            "MinJobAge=300",  # finished jobs stay visible to squeue (the profile's status command)
            "KillWait=5",
            "InactiveLimit=0",
            f"NodeName=localhost NodeHostname={node['hostname']} CPUs={self.cpus} "
            f"RealMemory={self.memory} Gres=gpu:1 State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        # one fake GPU: File=/dev/null (without File= the node is INVAL); srun --gpus=1 then
        # exports CUDA_VISIBLE_DEVICES=0
        (ETC / "gres.conf").write_text(f"{MARK}\nNodeName=localhost Name=gpu File=/dev/null\n")
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}

    def _start(self, name: str, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            start_new_session=True)
        time.sleep(0.5)
        if self.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited at start ({self.procs[name].returncode}): "
                               f"{(self.root / 'log' / f'{name}.out').read_text()[-2000:]}")

    def start(self) -> None:
        key = self.root / "munge" / "munge.key"
        subprocess.run(["mungekey", "--create", "--keyfile", str(key)], check=True, capture_output=True)
        key.chmod(0o600)
        self._start("munged", ["munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                               f"--key-file={key}", f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}",
                               f"--seed-file={self.root / 'munge' / 'munged.seed'}"])
        self._start("slurmctld", ["slurmctld", "-D", "-i"])
        self._start("slurmd", ["slurmd", "-D", "-N", "localhost"])
        deadline = time.time() + 60
        state = ""
        while time.time() < deadline:
            state = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.strip()
            if state in ("idle", "mixed"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the node never became idle (state {state!r}):\n{self.logs()}")

    def run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check, timeout=60)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted((self.root / "log").glob("*"))
                         if p.is_file())

    def stop(self) -> None:
        """Cancel what is left of our jobs, SIGTERM each daemon we started (by its pid, SIGKILL after
        15 s), remove the two configuration files we wrote. Nothing else is touched."""
        if self.procs.get("slurmctld") and self.procs["slurmctld"].poll() is None:
            self.run(["scancel", "--user", "root"], check=False)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)
        for f in self.written:
            if f.exists() and MARK in f.read_text():
                f.unlink()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    _ensure_slurm_installed()
    cluster = MiniSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def slurm_config() -> dict:
    """The miniature synthetic set cut to 2 classes (one shard of the default 1,000 videos), one narrow
    model, one epoch; GPU requested (auto)."""
    cfg = mini_config()
    mini = cfg["datasets"]["mini"]
    mini["synthetic"].update(classes=2, max_seconds=1.2)
    mini["models"] = {"p3d63": mini["models"]["p3d63"]}
    mini["protocol_overrides"] = {"thesis": mini["protocol_overrides"]["thesis"]}
    del cfg["decode"]
    cfg["train"] = {"device": "auto", "gpus": 1, "threads": 1}  # auto: asks SLURM for 1 GPU
    return cfg


# What a user adapting workflow/profiles/slurm to this one-node site gives on the command line:
# its partition and account, memory and runtime that fit the node, one CPU per job.
SITE_OVERRIDES = [
    "--default-resources", "slurm_partition=debug", "slurm_account=vidrec", "runtime=10", "mem_mb=400",
    "--set-resources", "train:cpus_per_gpu=1", "train:mem_mb=1500", "train:runtime=10",
    "evaluate:cpus_per_gpu=1", "evaluate:mem_mb=1000", "evaluate:runtime=10",
    "render_report:mem_mb=1000",
    "--set-threads", "decode=1",
    # the plugin checks at this many seconds after a submission, then each next wait 10 s longer (6, 22,
    # 48 s): this test's jobs end 10-20 s after their submission, seen at the second check
    "--slurm-init-seconds-before-status-checks", "6",
    "--latency-wait", "10",
]


def test_demo_dag_runs_through_slurm(slurm, tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "config.yaml").write_text(yaml.safe_dump(slurm_config()))
    env = {**slurm.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    # The data stage (synth, manifest, the shard, index) runs locally first: on this 2-core node
    # every SLURM job costs ~10 s of Snakemake job-step start-up plus the plugin's status polling,
    # and the data jobs would take minutes. Everything after it (train asking for a GPU,
    # evaluate, the report) goes through SLURM.
    run_snakemake(wd, "shards", env=env, timeout=300)
    start = time.monotonic()
    proc = run_snakemake(wd, "--profile", str(REPO / "workflow/profiles/slurm"), *SITE_OVERRIDES, "report",
                         check=False, cores=None, env=env, timeout=600)
    out = proc.stdout + proc.stderr
    print(f"snakemake through SLURM: {time.monotonic() - start:.0f} s")
    assert proc.returncode == 0, f"{out[-6000:]}\n{slurm.logs()}"

    # every job was submitted with sbatch: "Job N has been submitted with SLURM jobid X (log: ...)"
    submitted = re.findall(r"submitted with SLURM jobid (\d+) \(log: (\S+?)\)", out)
    ids = {int(i) for i, _ in submitted}
    print("SLURM job ids:", sorted(ids))
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", out[out.index("Job stats"):], re.M)) if "Job stats" in out else {}
    n_jobs = sum(int(v) for k, v in jobs.items() if k not in ("total", "report"))  # `report` is local
    assert set(jobs) == {"train", "evaluate", "render_report", "report", "total"}, jobs
    assert len(ids) == n_jobs == 3, (jobs, sorted(ids))
    # SLURM's own per-job logs (kept by the profile) exist, one per job id
    for _, log in submitted:
        assert Path(log if os.path.isabs(log) else wd / log).exists(), log
    # the train job ran inside SLURM and got the fake GPU from SLURM, not from vidrec's slot locks
    train_log = (wd / "logs/mini/train/split1/p3d63/seed0.log").read_text()
    m = re.search(r"CUDA_VISIBLE_DEVICES=0 \(SLURM job (\d+), SLURM set", train_log)
    assert m and int(m.group(1)) in ids, train_log[:2000]

    res = wd / "results/mini"
    ev = json.loads((res / "split1/p3d63/seed0/evaluation.json").read_text())
    assert ev["model"] == "p3d63" and ev["n_videos"] == 14 and 0 <= ev["video_top1"] <= 1
    assert len(list((wd / "data/mini/shards/mini8").glob("b*.h5"))) == 1  # 42 videos, shards of 1,000
    assert (res / "report/index.html").exists()
    train = json.loads((res / "split1/p3d63/seed0/train.json").read_text())
    assert train["epochs"] == 1 and train["device"] == "cpu"  # the fake GPU is /dev/null


# ----------------------------------------------------------------------------- several nodes
def _fake_tools(bin_dir: Path, record: Path) -> None:
    """sbatch that records its command line and answers a job id; sacctmgr that knows the account."""
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {record}\ncat > /dev/null\necho 777\n")
    (bin_dir / "sacctmgr").write_text("#!/bin/sh\necho my_account\n")
    for tool in ("sbatch", "sacctmgr"):
        (bin_dir / tool).chmod(0o755)


def test_multinode_training_is_one_sbatch_job_over_the_nodes(tmp_path):
    """train.nodes: 2, train.gpus: 4 through workflow/profiles/slurm: the sbatch line the executor plugin
    itself builds for the train job (a recording sbatch stands in for SLURM's), the launch the job's
    shell runs, and the refusal of a local run."""

    wd = tmp_path / "wd"
    cfg = mini_config()
    cfg.setdefault("train", {}).update({"nodes": 2, "gpus": 4, "device": "cuda"})
    for f in ("results/mini/mini8/split1/index.csv", "results/mini/manifest/classes.txt"):  # the train job's inputs
        (wd / f).parent.mkdir(parents=True, exist_ok=True)
        (wd / f).write_text("")
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    record = tmp_path / "sbatch_calls"
    _fake_tools(tmp_path / "bin", record)
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("SLURM_JOB_ID", None)
    target = "results/mini/split1/p3d63/seed0/model.pt"
    argv = snakemake_argv(wd, "--allowed-rules", "train", cores=None)
    local = subprocess.run([*argv, "--cores", "1", target], capture_output=True, text=True, env=env, timeout=300)
    assert local.returncode != 0
    assert "train.nodes is 2: a training across several nodes runs only on a SLURM cluster" in local.stdout + local.stderr
    log = tmp_path / "snakemake.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*argv, "--profile", str(REPO / "workflow/profiles/slurm"), target], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            for _ in range(240):  # the submission comes within seconds; no status check is needed
                if record.exists() or proc.poll() is not None:
                    break
                time.sleep(0.5)
        finally:  # the recorded job never ends: stop Snakemake (and its status polling) at once
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    text = log.read_text()
    assert record.exists(), text[-4000:]
    sbatch = record.read_text().splitlines()[0]
    options = sbatch.split(" --wrap=")[0].split()
    print("sbatch", " ".join(options))
    # one job over 2 nodes: 2 tasks (one per node: a torchrun agent each), 4 GPUs on every node as
    # GRES, CPUs per GPU and per-node memory from the profile, requeue-able (stop before the limit)
    for opt in ("--nodes=2", "--ntasks=2", "--gres=gpu:4", "--cpus-per-gpu=8", "--requeue"):
        assert opt in options, (opt, options)
    assert options[options.index("--mem") + 1] == "64000" and options[options.index("-t") + 1] == "2880"
    assert not any(o.startswith(("--gpus", "--ntasks-per-gpu", "--cpus-per-task")) for o in options), options
    assert "--target-jobs 'train:split=1,model=p3d63,seed=0'" in sbatch
    # the job's shell: the launcher with 2 nodes x 4 processes (it starts srun -> torchrun there)
    assert re.search(r"vidrec\.training\.distributed --gpus 4 --nodes 2 --procs 4 -- \S+ -m vidrec\.cli .* train ",
                     text), text[-3000:]
    assert "mpi=srun" in text and "gres=gpu:4" in text



def test_multinode_launch_line(monkeypatch):
    """What the launcher runs on the first node: srun, one torchrun agent per node, c10d rendezvous on
    this node at a port from the job id; outside SLURM it refuses, naming train.nodes."""
    import socket

    from vidrec.training.distributed import GpuSlotError, main, multinode_command, rendezvous_port

    cmd = multinode_command(2, 4, 4, ["py", "-m", "vidrec.cli", "train"], {"SLURM_JOB_ID": "123456"})
    assert cmd == ["srun", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1", "--gres=gpu:4",
                   "py", "-m", "torch.distributed.run", "--nnodes=2", "--nproc_per_node=4", "--rdzv_backend=c10d",
                   "--rdzv_id=vidrec-123456", f"--rdzv_endpoint={socket.gethostname()}:23456", "-m", "vidrec.cli",
                   "train"]
    assert rendezvous_port("123456") == 23456 and "--gres" not in " ".join(
        multinode_command(2, 2, 0, ["py", "-m", "m"], {"SLURM_JOB_ID": "1"}))  # CPU processes: no GRES
    with pytest.raises(GpuSlotError, match="train.nodes is 2: .* runs only as a SLURM job"):
        multinode_command(2, 4, 4, ["py", "-m", "vidrec.cli"], {})
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    assert main(["--gpus", "4", "--nodes", "2", "--procs", "4", "--", "py", "-m", "vidrec.cli"]) == 2


def test_slurm_time_left_and_requeue_ask_slurm():
    from subprocess import CompletedProcess

    from vidrec.training.distributed import parse_slurm_duration, requeue_slurm_job, slurm_time_left

    assert [parse_slurm_duration(t) for t in ("1-02:03:04", "02:03:04", "3:04", "UNLIMITED", "NOT_SET")] == [
        93784.0, 7384.0, 184.0, None, None]
    calls = []

    def run(cmd, **kw):
        calls.append(cmd)
        return CompletedProcess(cmd, 0, "  12:00\n" if cmd[0] == "squeue" else "", "")

    env = {"SLURM_JOB_ID": "99"}
    assert slurm_time_left(env, run) == 720.0 and calls == [["squeue", "-h", "-j", "99", "-o", "%L"]]
    assert requeue_slurm_job(env, run) == "SLURM job 99 requeued: it resumes when SLURM starts it again"
    assert calls[-1] == ["scontrol", "requeue", "99"]
    assert slurm_time_left({}, run) is None and requeue_slurm_job({}, run) == "" and len(calls) == 2  # not in SLURM
