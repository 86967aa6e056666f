"""Does the device wait for data? Train and evaluation clips/s through the real loader vs the model alone.

Issue 19, part 3. For each network (the thesis pair at clip spec thesis16, batch 48, no augmentation;
R(2+1)D-18 at tran16 with protocol tran's random 112 crops and flips, batch 32; specs and protocols
read from config.yaml), it generates --videos XviD AVIs, decodes them at full size with the decode
stage (write_shard) into shards, and measures in one run, interleaved:
  * model only: the train step and the forward pass on one preprocessed batch already on the device;
  * pipeline: the same train step fed by the training DataLoader as `vidrec train` builds it
    (make_loader: in-process, random clips across the shards, page-locked on CUDA) through DeviceFeed
    (the next batch read and copied while the step runs) and Preprocessing on the device; evaluation
    through predict_clips, `vidrec evaluate`'s own loop, against inference_speed.
On CUDA: pipeline / model-only per network, train and evaluation (target >= 0.9), and the host syncs
the pipeline's loop makes per step (torch.cuda.set_sync_debug_mode). On a CPU the model is the
bottleneck by orders of magnitude, so it reports the loader's headroom instead: clips/s of the loader
+ DeviceFeed + Preprocessing alone over the train step's (one timed step at --cpu-batch).

    python benchmarks/feed.py                      # CUDA when visible: benchmarks/results/feed-<GPU name>.json
    python benchmarks/feed.py --device cpu         # benchmarks/results/feed.json
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from loader import build_index as loader_index  # noqa: E402
from record import RESULTS_DIR, Record, add_base_width_argument, default_out, interleaved, slug, width_args

from vidrec.plan.config import load_config  # noqa: E402
from vidrec.data.dataset import ClipDataset  # noqa: E402
from vidrec.data.prefetch import DeviceFeed  # noqa: E402
from vidrec.data.video import ClipSpec  # noqa: E402
from vidrec.evaluation.evaluate import inference_speed, predict_clips  # noqa: E402
from vidrec.models import create_model  # noqa: E402
from vidrec.models.model_file import Preprocessing  # noqa: E402
from vidrec.models.runtime import Runtime, setup_runtime  # noqa: E402
from vidrec.training.trainer import make_loader  # noqa: E402

# network -> (clip spec, protocol) as the ucf101 dataset of config.yaml trains it
NETWORKS = {"convlstm_c2d63": ("thesis16", "thesis"), "p3d199": ("thesis16", "thesis"),
            "r2plus1d_18": ("tran16", "tran")}


def build_index(tmp: Path, spec: ClipSpec, videos: int, copies: int) -> pd.DataFrame:
    """Decode `videos` generated AVIs into 4 shards; the split index lists every video `copies` times
    (as distinct videos), so an epoch spans many batches without decoding more."""
    index = loader_index(tmp, videos, spec, seconds=4.0)
    parts = [index.assign(video_id=index["video_id"] + c * videos, label=(index["video_id"] + c) % 101)
             for c in range(copies)]
    return pd.concat(parts, ignore_index=True)


class Network:
    """One network, its optimizer and preprocessing, and the ways of feeding its train step."""

    def __init__(self, name: str, clip: dict, protocol: dict, index: pd.DataFrame, rt: Runtime, batch: int,
                 normalize: dict, base_width: int | None = None):
        self.rt, self.batch = rt, batch
        self.pre = Preprocessing.from_settings(normalize, protocol["augment"])
        crop = protocol["augment"].get("crop")
        size = clip["size"] if isinstance(clip["size"], list) else [clip["size"]] * 2
        self.shape = (3, clip["frames"], *((crop, crop) if crop else size))
        torch.manual_seed(0)
        self.model = rt.place(create_model(name, num_classes=101, clip_shape=self.shape, **width_args(base_width)))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-4, momentum=0.9)
        clips = "all" if protocol["train_clips"] == "all" else protocol["train_clips"]
        self.train_set = ClipDataset(index, "train", clips=clips, raw=True)
        self.loader, self.sampler = make_loader(self.train_set, batch, rt, seed=0, shuffle=True, workers=0)
        self.eval_set = ClipDataset(index, clips="all", raw=True)
        self.epoch, self.batches = 0, iter(())
        first = next(iter(DeviceFeed(self.loader, rt.device)))
        self.x = self.pre(first["clips"], train=True, memory_format=rt.memory_format)
        self.y = first["labels"]

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """The trainer's step: autocast forward, summed cross-entropy, backward, optimizer step."""
        self.model.train()
        with self.rt.autocast():
            loss = F.cross_entropy(self.model(x).float(), y, reduction="sum") / len(y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()

    def _next_batch(self) -> dict:
        for batch in self.batches:
            return batch
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        self.batches = iter(DeviceFeed(self.loader, self.rt.device))
        return next(self.batches)

    def fed_steps(self, steps: int) -> None:
        for _ in range(steps):
            b = self._next_batch()
            self.step(self.pre(b["clips"], train=True, memory_format=self.rt.memory_format), b["labels"])
        self.rt.synchronize()

    def model_steps(self, steps: int) -> None:
        for _ in range(steps):
            self.step(self.x, self.y)
        self.rt.synchronize()

    def feed_only(self, steps: int) -> None:
        """The loader, the copy and the preprocessing, without the network."""
        for _ in range(steps):
            b = self._next_batch()
            self.pre(b["clips"], train=True, memory_format=self.rt.memory_format)
        self.rt.synchronize()

    def evaluate(self) -> None:
        predict_clips(self.model, self.eval_set, self.batch, self.rt, self.pre)


def syncs_per_step(net: Network, steps: int) -> float:
    """Host syncs CUDA reports (set_sync_debug_mode) per pipeline train step."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            for _ in range(steps):
                b = net._next_batch()
                net.step(net.pre(b["clips"], train=True, memory_format=net.rt.memory_format), b["labels"])
        finally:
            torch.cuda.set_sync_debug_mode("default")
    net.rt.synchronize()
    return sum("synchroniz" in str(w.message) for w in caught) / steps


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--models", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    ap.add_argument("--videos", type=int, default=48, help="videos generated and decoded per clip spec")
    ap.add_argument("--copies", type=int, default=8, help="times the index lists each video")
    ap.add_argument("--steps", type=int, default=20, help="train steps per timed repetition (CUDA)")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions (CUDA)")
    ap.add_argument("--cpu-batch", type=int, default=4,
                    help="batch of the CPU train step (the loader uses the protocol's)")
    ap.add_argument("--threads", type=int, default=2)
    add_base_width_argument(ap)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    cuda = torch.cuda.is_available() and args.device in ("auto", "cuda")
    if args.device == "cuda" and not cuda:
        print("no CUDA device visible: run with --device cpu for the CPU figures; no results file written")
        return 0
    cfg = load_config()
    rt = setup_runtime({**cfg["train"], "device": "cuda" if cuda else "cpu", "amp": "bf16", "channels_last": True,
                        "threads": args.threads}, args.threads)
    hw = torch.cuda.get_device_name(rt.device) if cuda else "CPU"
    rec = Record("feed", parameters={"device": hw, "models": args.models, "videos": args.videos, "copies": args.copies,
                                     "steps": args.steps, "reps": args.reps, "cpu_batch": args.cpu_batch,
                                     "threads": args.threads, "base_width": args.base_width, "amp": "bf16" if cuda else "off",
                                     "channels_last_3d": rt.channels_last, "loader_workers": 0})
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        indexes: dict[str, pd.DataFrame] = {}
        for name in args.models:
            clip_name, proto_name = NETWORKS[name]
            clip, protocol = cfg["clips"][clip_name], cfg["protocols"][proto_name]
            if clip_name not in indexes:
                folder = Path(tmp) / clip_name
                folder.mkdir()
                indexes[clip_name] = build_index(folder, ClipSpec.from_config(clip), args.videos, args.copies)
            batch = protocol["batch_size"]
            net = Network(name, clip, protocol, indexes[clip_name], rt, batch, cfg["normalize"], args.base_width)
            row = {"model": name, "clip": clip_name, "batch": batch, "train_clips": len(net.train_set)}
            if cuda:
                secs = interleaved({"model": lambda: net.model_steps(args.steps),
                                    "fed": lambda: net.fed_steps(args.steps)}, warmup=1, reps=args.reps)
                row |= {"model_clips_per_s": batch * args.steps / secs["model"],
                        "fed_clips_per_s": batch * args.steps / secs["fed"]}
                row["train_ratio"] = row["fed_clips_per_s"] / row["model_clips_per_s"]
                shape = net.shape
                infer_model = inference_speed(net.model, shape, batch, args.steps, rt)
                net.evaluate()  # warm-up
                start = time.perf_counter()
                net.evaluate()
                infer_fed = len(net.eval_set) / (time.perf_counter() - start)
                row |= {"infer_model_clips_per_s": infer_model, "infer_fed_clips_per_s": infer_fed,
                        "infer_ratio": infer_fed / infer_model, "syncs_per_step": syncs_per_step(net, 5)}
                rec.figure(f"{name}_train_ratio", f"{name}: training through the loader / model only",
                           row["train_ratio"], "x", target=">= 0.9")
                rec.figure(f"{name}_infer_ratio", f"{name}: evaluation through the loader / model only",
                           row["infer_ratio"], "x", target=">= 0.9")
            else:
                feed_steps = max(1, 2 * len(net.train_set) // batch)
                secs = interleaved({"feed": lambda: net.feed_only(feed_steps)}, warmup=1, reps=3)
                row["feed_clips_per_s"] = batch * feed_steps / secs["feed"]
                x, y = net.x[:args.cpu_batch].contiguous(), net.y[:args.cpu_batch]
                net.step(x, y)  # warm-up
                start = time.perf_counter()
                net.step(x, y)
                row["model_clips_per_s"] = len(y) / (time.perf_counter() - start)
                row["headroom"] = row["feed_clips_per_s"] / row["model_clips_per_s"]
                rec.figure(f"{name}_headroom", f"{name}: loader + DeviceFeed + preprocessing / train step, CPU",
                           row["headroom"], "x")
            print({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
            rows.append(row)
            net = None  # frees the model before the next one is built
    if cuda:
        rec.table("feed", f"Through the loader vs model only on {hw} (bf16, channels_last_3d, {args.steps} steps "
                          f"x {args.reps} interleaved)",
                  [("model", "model", None), ("clip", "clip", None), ("batch", "batch", None),
                   ("model_clips_per_s", "train, model only", "clips/s"),
                   ("fed_clips_per_s", "train, through the loader", "clips/s"), ("train_ratio", "ratio", "x"),
                   ("infer_model_clips_per_s", "eval, model only", "clips/s"),
                   ("infer_fed_clips_per_s", "eval, predict_clips", "clips/s"), ("infer_ratio", "ratio", "x"),
                   ("syncs_per_step", "host syncs per train step", None)], rows)
    else:
        rec.table("feed", f"Loader headroom over the train step on the CPU ({args.threads} threads; loader at the "
                          f"protocol's batch, train step at batch {args.cpu_batch})",
                  [("model", "model", None), ("clip", "clip", None), ("batch", "loader batch", None),
                   ("feed_clips_per_s", "loader + feed + preprocessing", "clips/s"),
                   ("model_clips_per_s", "train step", "clips/s"), ("headroom", "headroom", "x")], rows)
    out = args.out or (RESULTS_DIR / f"feed-{slug(hw)}.json" if cuda else default_out(__file__))
    rec.write(out, [__file__, *(sys.argv[1:] if argv is None else argv)])
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=2)
    sys.exit(main())
