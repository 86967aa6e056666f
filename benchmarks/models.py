"""Speed of the model zoo on this machine, all numbers measured in one run.

Prints, for 16x160x160 clips (configurable):
- per model: parameters, GFLOPs of one clip (FlopCounterMode: a multiply-add = 2 FLOPs),
  forward (eval, no grad) and train-step (forward + backward + SGD step) clips/s;
- ConvLSTM-C2D-63 time / P3D-199 time, forward and train step (targets on CPU: <= 1.2x, <= 1.4x);
- the recurrence's own cost: a ConvLSTM layer over T steps / the same convolutions without the
  recurrence (input and hidden convs each one call batched over all T), for the res2-res4 layers of
  ConvLSTM-C2D-63 (target <= 1.15x);
- our r3d_18 / mc3_18 / r2plus1d_18_tv forward time / torchvision's (target <= 1.05x);
- our ConvLSTM layer against the plain per-step form of public code (`PlainConvLSTM`, same weights)
  at every ConvLSTM plane size of ConvLSTM-C2D-63, batch 2 and 8: plain time / ours, forward (no
  grad) and forward + backward (target >= 1.3x).

Repetitions of the models being compared are interleaved and the median is reported, so that load
from other processes affects both sides of a ratio alike. The figures, the per-model table and the
targets go to benchmarks/results/models.json (`--out PATH` elsewhere) for benchmarks/render.py.

    python benchmarks/models.py                 # full run (about 10 minutes on 2 cores)
    python benchmarks/models.py --quick         # fewer repetitions
    python benchmarks/models.py --threads 1     # steadier on a machine shared with other jobs
    python benchmarks/models.py --quick --base-width 8 --clip 4 32 32   # a smoke run (the tests')
    python benchmarks/models.py --models p3d199,convlstm_c2d63 --batch 1
    python benchmarks/models.py --skip models,recurrence,torchvision \
        --out benchmarks/results/convlstm.json  # the ConvLSTM-vs-plain section alone, in its own file
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
import torchvision

from record import Record, add_base_width_argument, add_out_argument, interleaved, load_average, width_args

from vidrec.models import ConvLSTM, create_model, model_complexity  # noqa: E402

DEFAULT_MODELS = ["p3d63", "p3d199", "convlstm_c2d63", "r3d_18", "r2plus1d_18", "frame_resnet50"]
TV_PAIRS = [("r3d_18", "r3d_18"), ("mc3_18", "mc3_18"), ("r2plus1d_18_tv", "r2plus1d_18")]


def forward_fn(model: torch.nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run():
        model.eval()
        with torch.no_grad():
            return model(x)

    return run


def train_fn(model: torch.nn.Module, x: torch.Tensor, num_classes: int) -> Callable[[], object]:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    y = torch.randint(0, num_classes, (x.shape[0],))

    def run():
        model.train()
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return run


def to_format(model: torch.nn.Module, x: torch.Tensor, channels_last: bool):
    """A channels_last_3d input is enough: convolutions keep the input's memory format."""
    return model, (x.contiguous(memory_format=torch.channels_last_3d) if channels_last else x)


def bench_models(args: argparse.Namespace, clip: tuple[int, ...]) -> dict[str, dict[str, float]]:
    """Per model: parameters, GFLOPs/clip, seconds per forward and per train step (interleaved medians)."""
    num_classes = 101
    models, inputs, rows = {}, {}, {}
    for name in args.models:
        torch.manual_seed(0)
        model = create_model(name, num_classes=num_classes, clip_shape=clip, **width_args(args.base_width))
        c = model_complexity(model, clip)
        x = torch.randn(args.batch, *clip)
        models[name], inputs[name] = to_format(model, x, args.channels_last)
        rows[name] = {"params": c["params"], "gflops": c["gflops"]}
    fwd = interleaved({n: forward_fn(models[n], inputs[n]) for n in models}, args.warmup, args.reps)
    train = interleaved(
        {n: train_fn(models[n], inputs[n], num_classes) for n in models}, args.warmup, max(2, args.reps - 1)
    )
    print(f"\n## Models at {args.batch} x {clip} (median of interleaved repetitions)")
    print(f"{'model':<16}{'params':>12}{'GFLOPs/clip':>13}{'fwd s/batch':>13}{'fwd clips/s':>13}"
          f"{'train s/batch':>15}{'train clips/s':>15}")
    for n in models:
        r = rows[n]
        r["fwd_s"], r["train_s"] = fwd[n], train[n]
        print(f"{n:<16}{r['params']:>12,}{r['gflops']:>13.1f}{fwd[n]:>13.3f}{args.batch / fwd[n]:>13.2f}"
              f"{train[n]:>15.3f}{args.batch / train[n]:>15.2f}")
    if "convlstm_c2d63" in rows and "p3d199" in rows:
        a, b = rows["convlstm_c2d63"], rows["p3d199"]
        print(f"\nconvlstm_c2d63 / p3d199 time: forward {a['fwd_s'] / b['fwd_s']:.2f}x (target <= 1.2x), "
              f"train step {a['train_s'] / b['train_s']:.2f}x (target <= 1.4x); "
              f"FLOPs ratio {a['gflops'] / b['gflops']:.2f}x")
    return rows


def bench_recurrence(args: argparse.Namespace, clip: tuple[int, ...]) -> list[dict]:
    """ConvLSTM layer vs its convolutions without the recurrence, at the layers of ConvLSTM-C2D-63."""
    print("\n## Recurrence cost: ConvLSTM layer / (input conv + hidden conv, each batched over all T)")
    print(f"{'layer':<34}{'fwd':>8}{'fwd+bwd':>10}")
    t, h = clip[1] // 2, clip[2] // 4  # after the stem: 8 steps of 40x40 for 16x160x160
    out = []
    for ch in (64, 128, 256):
        torch.manual_seed(0)
        lstm = ConvLSTM(ch, ch, 3, peephole=True, spatial_size=(h, h))
        x = torch.randn(args.batch, ch, t, h, h).contiguous(memory_format=torch.channels_last_3d)
        xf = torch.randn(args.batch * t, ch, h, h).contiguous(memory_format=torch.channels_last)
        wx, bx, wh = lstm.cell.conv_x.weight, lstm.cell.conv_x.bias, lstm.cell.conv_h.weight
        xg, xfg = x.clone().requires_grad_(), xf.clone().requires_grad_()

        def layer_fwd():
            with torch.no_grad():
                return lstm(x)

        def convs_fwd():
            with torch.no_grad():
                return F.conv2d(xf, wx, bx, padding=1), F.conv2d(xf, wh, padding=1)

        def layer_train():
            lstm(xg).sum().backward()

        def convs_train():
            (F.conv2d(xfg, wx, bx, padding=1).sum() + F.conv2d(xfg, wh, padding=1).sum()).backward()

        r = interleaved(
            {"lf": layer_fwd, "cf": convs_fwd, "lt": layer_train, "ct": convs_train}, args.warmup, 2 * args.reps
        )
        label = f"C={ch}, T={t}, {h}x{h}, batch {args.batch}"
        print(f"{label:<34}{r['lf'] / r['cf']:>7.2f}x{r['lt'] / r['ct']:>9.2f}x   (target <= 1.15x)")
        out.append({"channels": ch, "steps": t, "plane": f"{h}x{h}", "fwd": r["lf"] / r["cf"],
                    "train": r["lt"] / r["ct"]})
        t, h = max(1, (t + 1) // 2), (h + 1) // 2
    return out


class PlainConvLSTM(torch.nn.Module):
    """The per-step ConvLSTM most public code runs (ConvLSTM_pytorch, github.com/ndrplz/ConvLSTM_pytorch):
    every step one convolution over torch.cat([x_t, h_{t-1}]), split into the gates (i, f, o, g), plain
    autograd, torch.stack of the hidden states. The reference our layer is measured against, so it is
    built from one of our layers (same weights, peepholes included: ConvLSTM-C2D-63 has them) and
    computes the same outputs; `channels_last` stores its weight as oneDNN runs fastest."""

    def __init__(self, layer: ConvLSTM, channels_last: bool = False) -> None:
        super().__init__()
        cell = layer.cell
        self.hidden, self.padding = cell.hidden_channels, cell.padding
        weight = torch.cat([cell.conv_x.weight.detach(), cell.conv_h.weight.detach()], dim=1)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.weight = torch.nn.Parameter(weight.contiguous(memory_format=fmt))
        self.bias = torch.nn.Parameter(cell.conv_x.bias.detach().clone())
        peep = cell.peephole_weight
        self.peephole = torch.nn.Parameter(peep.detach().contiguous().clone()) if peep is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, steps, height, width = x.shape
        h = x.new_zeros(n, self.hidden, height, width)
        c = torch.zeros_like(h)
        outs = []
        for t in range(steps):
            gates = F.conv2d(torch.cat([x[:, :, t], h], dim=1), self.weight, self.bias, padding=self.padding)
            i, f, o, g = torch.split(gates, self.hidden, dim=1)
            if self.peephole is not None:
                i, f = i + self.peephole[0] * c, f + self.peephole[1] * c
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            if self.peephole is not None:
                o = o + self.peephole[2] * c
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=2)


def convlstm_layers(clip: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(channels, steps, plane side) of the ConvLSTM layers of ConvLSTM-C2D-63 (res2-res4) for a
    (3, T, H, W) clip: the stem halves time and quarters the planes, each stage halves all three
    but doubles the channels (8 steps of 40x40 at 64 channels for 16x160x160)."""
    t, h, out = clip[1] // 2, clip[2] // 4, []
    for ch in (64, 128, 256):
        out.append((ch, t, h))
        t, h = max(1, (t + 1) // 2), (h + 1) // 2
    return out


def bench_plain(args: argparse.Namespace, clip: tuple[int, ...]) -> list[dict]:
    """Our ConvLSTM layer against the plain per-step form on the same weights, at every ConvLSTM plane
    size of ConvLSTM-C2D-63: forward (no grad) and forward + backward (input and weight gradients).
    The plain form runs both on contiguous input and weights (as public code does) and channels-last;
    the faster of the two is the reference, so the speed-up is the smaller one. Ours gets the
    channels_last_3d input the network gives it (benchmark default)."""
    print("\n## ConvLSTM layer: plain per-step form (cat + one conv per step) time / ours (speed-up)")
    print(f"{'layer':<34}{'ours fwd':>10}{'plain fwd':>11}{'speed-up':>10}{'ours train':>12}{'plain train':>13}"
          f"{'speed-up':>10}")
    out = []
    for ch, t, h in convlstm_layers(clip):
        for batch in args.plain_batches:
            torch.manual_seed(0)
            lstm = ConvLSTM(ch, ch, 3, peephole=True, spatial_size=(h, h))
            with torch.no_grad():  # trained-like peepholes (they start at 0): both sides do the same work anyway
                lstm.cell.peephole_weight.normal_(0, 0.1)
            plain, plain_cl = PlainConvLSTM(lstm), PlainConvLSTM(lstm, channels_last=True)
            x = torch.randn(batch, ch, t, h, h)
            inputs = {"ours": x.contiguous(memory_format=torch.channels_last_3d), "plain": x,
                      "plain_cl": x.contiguous(memory_format=torch.channels_last_3d)}
            layers = {"ours": lstm, "plain": plain, "plain_cl": plain_cl}
            with torch.no_grad():
                y = lstm(inputs["ours"])
                for k in ("plain", "plain_cl"):
                    torch.testing.assert_close(layers[k](inputs[k]), y, rtol=1e-4, atol=1e-4)

            def fwd(k: str) -> Callable[[], object]:
                def run():
                    with torch.no_grad():
                        return layers[k](inputs[k])
                return run

            def train(k: str) -> Callable[[], object]:
                xg = inputs[k].clone().requires_grad_()

                def run():
                    layers[k].zero_grad(set_to_none=True)
                    xg.grad = None
                    layers[k](xg).sum().backward()
                return run

            fns = {f"{k} fwd": fwd(k) for k in layers} | {f"{k} train": train(k) for k in layers}
            r = interleaved(fns, args.warmup, args.plain_reps)
            row = {"channels": ch, "steps": t, "plane": f"{h}x{h}", "batch": batch}
            for phase in ("fwd", "train"):
                ref = min(r[f"plain {phase}"], r[f"plain_cl {phase}"])
                row |= {f"ours_{phase}_ms": 1e3 * r[f"ours {phase}"], f"plain_{phase}_ms": 1e3 * ref,
                        f"plain_{phase}_format": "contiguous" if ref == r[f"plain {phase}"] else "channels_last",
                        f"speedup_{phase}": ref / r[f"ours {phase}"]}
            label = f"C={ch}, T={t}, {h}x{h}, batch {batch}"
            print(f"{label:<34}{row['ours_fwd_ms']:>8.1f}ms{row['plain_fwd_ms']:>9.1f}ms{row['speedup_fwd']:>9.2f}x"
                  f"{row['ours_train_ms']:>10.1f}ms{row['plain_train_ms']:>11.1f}ms{row['speedup_train']:>9.2f}x"
                  "   (target >= 1.3x)", flush=True)
            out.append(row)
    return out


def bench_torchvision(args: argparse.Namespace) -> list[dict]:
    """Our re-implementations against torchvision's, with torchvision's weights loaded into ours."""
    clip = (3, *args.tv_clip)
    print(f"\n## Ours / torchvision, forward at {args.batch} x {clip} (target <= 1.05x)")
    out = []
    for ours_name, tv_name in TV_PAIRS:
        torch.manual_seed(0)
        tv = getattr(torchvision.models.video, tv_name)()
        ours = create_model(ours_name, num_classes=400)
        ours.load_state_dict(tv.state_dict())
        x = torch.randn(args.batch, *clip)
        ours, xo = to_format(ours, x, args.channels_last)
        tv, xt = to_format(tv, x, args.channels_last)
        r = interleaved({"ours": forward_fn(ours, xo), "tv": forward_fn(tv, xt)}, args.warmup, 2 * args.reps)
        print(f"{ours_name:<16} {r['ours']:.3f} s vs torchvision {tv_name} {r['tv']:.3f} s: {r['ours'] / r['tv']:.3f}x")
        out.append({"ours": ours_name, "torchvision": tv_name, "ours_s": r["ours"], "tv_s": r["tv"]})
    return out


def record(rec: Record, args: argparse.Namespace, clip: tuple[int, ...], models: dict | None,
           recurrence: list[dict] | None, tv: list[dict] | None, plain: list[dict] | None = None) -> Record:
    """The results file: per-model table, the issue-7 ratios with their targets."""
    rec.parameters |= {
        "batch": args.batch, "threads": args.threads, "clip": "x".join(map(str, clip[1:])),
        "torchvision_clip": "x".join(map(str, args.tv_clip)), "quick": args.quick, "warmup": args.warmup,
        "reps": args.reps, "memory_format": "channels_last_3d" if args.channels_last else "contiguous",
        "models": list(args.models), "skip": sorted(s for s in args.skip.split(",") if s),
        "plain_batches": list(args.plain_batches), "plain_reps": args.plain_reps, "base_width": args.base_width}
    if models:
        rec.table("models", f"Per model at {args.batch} x (3, {', '.join(map(str, clip[1:]))}), "
                  f"{rec.parameters['memory_format']}, "
                  f"{args.threads} threads (median of interleaved repetitions)",
                  [("model", "model", None), ("params_m", "params", "M"), ("gflops", "GFLOPs/clip", None),
                   ("fwd_clips_per_s", "forward", "clips/s"), ("train_clips_per_s", "train step", "clips/s")],
                  [{"model": n, "params_m": r["params"] / 1e6, "gflops": r["gflops"],
                    "fwd_clips_per_s": args.batch / r["fwd_s"], "train_clips_per_s": args.batch / r["train_s"]}
                   for n, r in models.items()])
        if "convlstm_c2d63" in models and "p3d199" in models:
            a, b = models["convlstm_c2d63"], models["p3d199"]
            shape = f"{args.batch}x{rec.parameters['clip']}"
            rec.figure("convlstm_p3d199_forward", f"ConvLSTM-C2D-63 / P3D-199 time, forward at {shape}",
                       a["fwd_s"] / b["fwd_s"], "x", target="<= 1.2")
            rec.figure("convlstm_p3d199_train", f"ConvLSTM-C2D-63 / P3D-199 time, train step at {shape}",
                       a["train_s"] / b["train_s"], "x", target="<= 1.4")
            rec.figure("convlstm_p3d199_flops", "ConvLSTM-C2D-63 / P3D-199 FLOPs per clip",
                       a["gflops"] / b["gflops"], "x")
    for r in recurrence or []:
        layer = f"C={r['channels']} T={r['steps']} {r['plane']}"
        rec.figure(f"recurrence_fwd_c{r['channels']}", f"ConvLSTM layer / its convolutions without recurrence, "
                   f"forward, {layer}", r["fwd"], "x", target="<= 1.15")
        rec.figure(f"recurrence_train_c{r['channels']}", f"same, forward + backward, {layer}", r["train"], "x",
                   target="<= 1.15")
    for r in tv or []:
        rec.figure(f"ours_tv_{r['ours']}", f"ours / torchvision forward time, {r['ours']} vs {r['torchvision']} "
                   f"at {args.batch}x{rec.parameters['torchvision_clip']}", r["ours_s"] / r["tv_s"], "x",
                   target="<= 1.05")
    for r in plain or []:
        layer = f"C={r['channels']} T={r['steps']} {r['plane']}, batch {r['batch']}"
        key = f"c{r['channels']}_b{r['batch']}"
        rec.figure(f"plain_over_ours_fwd_{key}", f"plain per-step ConvLSTM time / ours, forward (no grad), {layer}",
                   r["speedup_fwd"], "x", target=">= 1.3")
        rec.figure(f"plain_over_ours_train_{key}", f"same, forward + backward, {layer}", r["speedup_train"], "x",
                   target=">= 1.3")
    if plain:
        rec.table("convlstm_plain", f"ConvLSTM layer (peepholes, 3x3) at the plane sizes of ConvLSTM-C2D-63, "
                  f"{args.threads} threads, median of {args.plain_reps} interleaved repetitions; the plain form's "
                  "time is the faster of its contiguous and channels-last runs (format column)",
                  [("channels", "channels", None), ("steps", "steps", None), ("plane", "plane", None),
                   ("batch", "batch", None), ("ours_fwd_ms", "ours forward", "ms"),
                   ("plain_fwd_ms", "plain forward", "ms"), ("plain_fwd_format", "format", None),
                   ("speedup_fwd", "speed-up forward", "x"), ("ours_train_ms", "ours fwd+bwd", "ms"),
                   ("plain_train_ms", "plain fwd+bwd", "ms"), ("plain_train_format", "format", None),
                   ("speedup_train", "speed-up fwd+bwd", "x")], plain)
    return rec


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clip", type=int, nargs=3, default=(16, 160, 160), metavar=("T", "H", "W"))
    p.add_argument("--tv-clip", type=int, nargs=3, default=(16, 112, 112), metavar=("T", "H", "W"),
                   help="clip of the ours/torchvision comparison (default: 16 112 112, torchvision's)")
    p.add_argument("--models", type=lambda s: [m for m in s.split(",") if m], default=DEFAULT_MODELS)
    p.add_argument("--quick", action="store_true", help="fewer repetitions (1 warm-up, 2 timed)")
    add_base_width_argument(p, "the per-model section's networks")
    p.add_argument("--contiguous", dest="channels_last", action="store_false",
                   help="keep NCTHW inputs (default: channels_last_3d inputs, faster on CPU)")
    p.add_argument("--skip", default="", help="comma list of sections to skip: models,recurrence,torchvision,plain")
    p.add_argument("--plain-batches", type=lambda s: [int(b) for b in s.split(",") if b], default=[2, 8],
                   help="batch sizes of the ConvLSTM-vs-plain section (default: 2,8)")
    p.add_argument("--plain-reps", type=int, default=None,
                   help="timed repetitions of that section (default: 2 x reps + 1)")
    add_out_argument(p, __file__)
    args = p.parse_args(argv)
    args.warmup, args.reps = (1, 2) if args.quick else (1, 4)
    args.plain_reps = args.plain_reps or 2 * args.reps + 1
    torch.set_num_threads(args.threads)
    clip = (3, *args.clip)
    skip = set(args.skip.split(","))
    cpu = platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {cpu}, "
          f"{args.threads} threads, memory format {'channels_last_3d' if args.channels_last else 'contiguous'}")
    print(f"load average at start: {load_average()} on {os.cpu_count()} CPUs (other processes slow "
          "multi-threaded runs down: every parallel op waits for all its threads to be scheduled)")
    rec = Record("models")  # the load average at start is read here
    t0 = time.perf_counter()
    models = bench_models(args, clip) if "models" not in skip else None
    recurrence = bench_recurrence(args, clip) if "recurrence" not in skip else None
    tv = bench_torchvision(args) if "torchvision" not in skip else None
    plain = bench_plain(args, clip) if "plain" not in skip else None
    print(f"\ntotal benchmark time {time.perf_counter() - t0:.0f} s, load average at end {load_average()}")
    argv = sys.argv[1:] if argv is None else argv
    record(rec, args, clip, models, recurrence, tv, plain).write(args.out, [__file__, *argv])


if __name__ == "__main__":
    main()
