"""`vidrec` command line: one verb per pipeline stage; the Snakemake rules are thin shells over these.

Every verb takes `--config config.yaml` and repeatable `--set key.sub=value` overrides, validates the
configuration first, and exits with one clear line (exit code 2) on bad input.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vidrec.plan import rehearsal
from vidrec.plan.config import ConfigError, dataset_config, load_config
from vidrec.core.errors import VidrecError
from vidrec.plan.experiments import EXPERIMENTS
from vidrec.core.io import is_disk_full
from vidrec.core.workers import set_library_logging

log = logging.getLogger("vidrec")


def _cfg(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config, args.set, from_env=getattr(args, "config_env", None))
    if getattr(args, "dataset", None):
        cfg["dataset"] = args.dataset
        dataset_config(cfg)
    return cfg


# ----------------------------------------------------------------------------- data verbs
def cmd_synth(args: argparse.Namespace) -> None:
    from vidrec.data.synth import generate_dataset

    cfg = _cfg(args)
    synth = dataset_config(cfg).get("synthetic")
    if not synth:
        raise ConfigError(f"dataset '{cfg['dataset']}' has no 'synthetic' section: nothing to generate "
                          "(real data is read from its root)")
    from vidrec.data.formats import format_of, root

    ds = dataset_config(cfg)
    videos, lists = format_of(ds).inputs(root(ds), ds)  # a synthetic set is in the ucf101 format
    summary = generate_dataset(videos, lists, progress=not args.quiet, workers=args.workers, **synth)
    log.info("synthetic dataset: %s", json.dumps(summary, default=str)[:300])


def cmd_manifest(args: argparse.Namespace) -> None:
    from vidrec.data.formats import build_manifest, check_leakage, leakage_audit, missing_inputs
    from vidrec.core.io import write_csv, write_json, write_text

    cfg = _cfg(args)
    ds = dataset_config(cfg)
    missing = missing_inputs(ds)
    if missing:
        raise ConfigError("\n  ".join([f"config key 'datasets.{cfg['dataset']}.root':", *missing]))
    manifest = build_manifest(ds, missing=cfg["decode"]["on_bad_video"])
    listed = len(manifest.videos)
    videos, membership = rehearsal.subset(manifest.videos, manifest.membership, cfg)  # a few videos per class
    audit = leakage_audit(videos, membership)
    warnings = check_leakage(audit, cfg["leakage"]["allow"], manifest.leakage_key)
    for w in warnings:
        log.warning(w)
    out = Path(args.out_dir)
    write_csv(out / "videos.csv", videos)
    write_csv(out / "splits.csv", membership)
    write_text(out / "classes.txt", "\n".join(manifest.classes) + "\n")
    write_json(out / "audit.json", {"splits": audit, "leakage_allowed": cfg["leakage"]["allow"],
                                    "warnings": warnings, "classes": int(videos["label"].nunique()),
                                    "videos": len(videos), "listed_videos": listed, "format": ds["format"],
                                    "split_rule": manifest.split_rule, "leakage_key": manifest.leakage_key,
                                    "leakage_note": manifest.leakage_note})
    log.info("manifest: %d videos, %d classes -> %s", len(videos), videos["label"].nunique(), out)


def cmd_decode(args: argparse.Namespace) -> None:
    import pandas as pd

    from vidrec.data.formats import videos_dir
    from vidrec.data.shards import write_shard
    from vidrec.data.video import ClipSpec, ffmpeg_exe
    from vidrec.core.io import write_json
    from vidrec.plan.layout import bucket_of

    cfg = _cfg(args)
    ffmpeg_exe()  # fail early, with the fix, when there is no ffmpeg at all
    spec = ClipSpec.from_config(cfg["clips"][args.clip]) if args.clip in cfg["clips"] else None
    if spec is None:
        raise ConfigError(f"clip spec '{args.clip}' is not defined under 'clips' in the config")
    videos = pd.read_csv(args.manifest)
    size = cfg["decode"]["videos_per_shard"]
    if args.buckets is not None and len(videos) and bucket_of(int(videos["video_id"].max()), size) >= args.buckets:
        raise VidrecError(f"{args.manifest} has {int(videos['video_id'].max()) + 1} videos, more than the "
                          f"{args.buckets} planned shards of {size} hold: the dataset's lists changed after the "
                          "workflow was planned; run snakemake again")
    if args.buckets is not None and not 0 <= args.bucket < args.buckets:
        raise VidrecError(f"--bucket {args.bucket}: not one of the {args.buckets} planned shards")
    bucket = videos[videos["video_id"].map(lambda v: bucket_of(v, size)) == args.bucket]
    if cfg["disk"]["check"]:
        from vidrec.data.diskspace import Need, check_free_space, shard_bytes

        check_free_space([Need(Path(args.out), shard_bytes(spec, len(bucket)), f"shard {args.out}")],
                         f"To need less: fewer clips per video (clips.{args.clip}.clips_per_video), or decode onto "
                         "another disk (--out)")
    stats = write_shard(bucket, videos_dir(dataset_config(cfg)), spec, Path(args.out), workers=args.workers,
                        threads=cfg["decode"]["threads"], on_bad_video=cfg["decode"]["on_bad_video"],
                        progress=not args.quiet)
    write_json(args.stats, stats)
    log.info("shard %s: %d videos, %d skipped, %.1f videos/s", args.out, stats["videos"],
             len(stats["skipped"]), stats["videos_per_s"])


def cmd_index(args: argparse.Namespace) -> None:
    import pandas as pd

    from vidrec.data.shards import build_split_index
    from vidrec.core.io import write_csv

    membership = pd.read_csv(args.splits)
    videos = pd.read_csv(args.videos or Path(args.splits).with_name("videos.csv"))
    index = build_split_index(membership, [Path(p) for p in args.shards], args.split, videos)
    write_csv(args.out, index)
    counts = index["subset"].value_counts().to_dict()
    log.info("split %d index: %s -> %s", args.split, counts, args.out)


# ----------------------------------------------------------------------------- model verbs
def cmd_models(args: argparse.Namespace) -> None:
    from vidrec.models import list_models
    from vidrec.models.summary import TABLE_FORMATS, models_table, render_models_table

    if args.format not in TABLE_FORMATS:  # before minutes of model building
        raise VidrecError(f"--format {args.format}: use one of {', '.join(TABLE_FORMATS)}")
    names = args.names or list_models()
    table = models_table(names, clip_shape=(3, args.frames, args.size, args.size), num_classes=args.classes)
    sys.stdout.write(render_models_table(table, args.format))


def cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    import torch

    from vidrec.plan.runs import run_settings
    from vidrec.models.runtime import out_of_memory_error
    from vidrec.training.trainer import train_run

    cfg = _cfg(args)
    run = run_settings(cfg, args.model)
    if args.init_from:
        run = replace(run, init_from=args.init_from)  # the file of init_from_run, or any model file
    elif run.init_from_run:  # the workflow passes the file (rules/common.smk, train_inputs)
        raise ConfigError(f"run '{args.model}' starts from run '{run.init_from_run}' (its init_from): pass that "
                          "run's model.pt of the same split and seed with --init-from")
    seed = run.seeds[0] if args.seed is None else args.seed
    try:
        train_run(run, seed=seed, index_csv=Path(args.index), classes_txt=Path(args.classes),
                  out_dir=Path(args.out_dir), threads=args.threads, check_disk=cfg["disk"]["check"])
    except torch.OutOfMemoryError as err:
        raise out_of_memory_error(f"the training of run '{run.name}' (seed {seed})", run.protocol["batch_size"],
                                  f"protocols.{run.protocol_name}.batch_size, or batch_size under "
                                  f"datasets.{run.dataset}.protocol_overrides") from err


def cmd_evaluate(args: argparse.Namespace) -> None:
    import torch

    from vidrec.evaluation.evaluate import evaluate_run
    from vidrec.models.runtime import out_of_memory_error

    cfg = _cfg(args)
    if args.clip is not None and args.clip not in cfg["clips"]:
        raise ConfigError(f"--clip: clip spec '{args.clip}' is not defined under 'clips'")
    try:
        evaluate_run(cfg, model_path=Path(args.model_file), index_csv=Path(args.index),
                     out_dir=Path(args.out_dir), split=args.split, threads=args.threads, clip_name=args.clip,
                     save_scores=args.scores)
    except torch.OutOfMemoryError as err:
        raise out_of_memory_error(f"the evaluation of {args.model_file}", cfg["evaluate"]["batch_size"],
                                  "evaluate.batch_size") from err


def cmd_experiment(args: argparse.Namespace) -> None:
    from vidrec.report.experiment_pages.build import run_experiment

    cfg = _cfg(args)
    run_experiment(cfg, args.name, results_dir=Path(args.results), out_dir=Path(args.out_dir))


def cmd_report(args: argparse.Namespace) -> None:
    from vidrec.plan.layout import Layout
    from vidrec.report.progress import build_progress_report, final_inputs_complete

    cfg = _cfg(args)
    layout, out = Layout.of(cfg, args.root), Path(args.out_dir) if args.out_dir else None
    # By hand on unfinished runs: the progress report (results/<dataset>/progress), never the final one;
    # with --out-dir (the workflow's rule) and no --progress, the final report or an error naming what is missing.
    if args.progress or (out is None and not final_inputs_complete(cfg, layout)):
        build_progress_report(cfg, layout, out_dir=out)
        return
    from vidrec.report.build import build_report

    from vidrec.report.forecast import Resources

    given = None if args.cores is None else Resources(args.cores, args.jobs or args.cores, args.gpus)
    build_report(cfg, layout, out_dir=out, resources=given)


# ----------------------------------------------------------------------------- inference verbs
def cmd_predict(args: argparse.Namespace) -> None:
    from vidrec.inference.predict import predict_command

    predict_command(Path(args.model), args.inputs, clips=args.clips, crops=args.crops, top_k=args.top_k,
                    batch=args.batch, workers=args.workers, device=args.device, threads=args.threads,
                    output=Path(args.output) if args.output else None, progress=not args.quiet)


def cmd_export(args: argparse.Namespace) -> None:
    from vidrec.inference.export import export_model

    info = export_model(Path(args.model), args.format, out=Path(args.out) if args.out else None,
                        check=not args.no_check, atol=args.atol, rtol=args.rtol)
    checked = (f"max |exported - PyTorch| = {info['max_abs_diff']:.2e} on a fixed clip "
               f"(tolerance {info['tolerance']:.2e})"
               if info["checked"] else "not checked")
    log.info("%s (%s) -> %s, %.1f MB, input (N, %s); %s", info["model"], info["arch"], info["out"],
             info["bytes"] / 1e6, ", ".join(map(str, info["clip_shape"])), checked)


# ----------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    def common(parser: argparse.ArgumentParser, suppress: bool) -> None:
        """The shared options work before or after the verb."""
        d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
        parser.add_argument("--config", default=d(None), help="config.yaml (default: the repository's)")
        parser.add_argument("--config-env", default=d(None), metavar="NAME",
                            help="read the config as JSON from environment variable NAME (set by the workflow)")
        parser.add_argument("--set", action="append", default=d([]), metavar="KEY=VALUE",
                            help="override a config value, e.g. --set train.seed=1")
        parser.add_argument("--dataset", default=d(None), help="dataset key (default: config 'dataset')")
        parser.add_argument("--quiet", action="store_true", default=d(False), help="no progress bars")
        parser.add_argument("-v", "--verbose", action="store_true", default=d(False),
                            help="debug log lines, and what OpenCV and FFmpeg say about each file (silenced "
                            "by default: vidrec reports every damaged or unreadable file itself)")

    p = argparse.ArgumentParser(prog="vidrec", description=__doc__.splitlines()[0])
    common(p, suppress=False)
    sub = p.add_subparsers(dest="verb", required=True)

    def verb(name: str, func, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        common(sp, suppress=True)
        sp.set_defaults(func=func)
        return sp

    sp = verb("synth", cmd_synth, "generate the synthetic UCF101-shaped dataset")
    sp.add_argument("--workers", type=int, default=1, help="processes rendering and encoding videos")
    sp = verb("manifest", cmd_manifest, "read the split lists: manifest tables and leakage audit")
    sp.add_argument("--out-dir", required=True)
    sp = verb("decode", cmd_decode, "decode one bucket of videos (video_id // decode.videos_per_shard) into an HDF5 shard")
    sp.add_argument("--manifest", required=True, help="videos.csv from `vidrec manifest`")
    sp.add_argument("--bucket", type=int, required=True, help="the shard's bucket: videos with video_id // "
                    "decode.videos_per_shard == BUCKET")
    sp.add_argument("--buckets", type=int, default=None, help="the number of shards planned (the workflow's): "
                    "stop if the manifest needs more")
    sp.add_argument("--clip", required=True, help="clip spec name (config 'clips')")
    sp.add_argument("--out", required=True)
    sp.add_argument("--stats", required=True)
    sp.add_argument("--workers", type=int, default=1)
    sp = verb("index", cmd_index, "build a split's index over the shards")
    sp.add_argument("--splits", required=True, help="splits.csv from `vidrec manifest`")
    sp.add_argument("--videos", default=None, help="videos.csv from `vidrec manifest` (default: beside --splits)")
    sp.add_argument("--split", type=int, required=True)
    sp.add_argument("--shards", nargs="+", required=True)
    sp.add_argument("--out", required=True)
    sp = verb("models", cmd_models, "table of registered models: parameters, MB, GFLOPs (one clip; a multiply-add = 2 FLOPs)")
    sp.add_argument("names", nargs="*", help="registered names (default: all of them; slow on CPU at full size)")
    sp.add_argument("--frames", type=int, default=16, help="clip length the GFLOPs are measured at")
    sp.add_argument("--size", type=int, default=160, help="clip side the GFLOPs are measured at")
    sp.add_argument("--classes", type=int, default=101)
    sp.add_argument("--format", default="text",
                    help="text: fits 100 columns, published figures as numbered notes below (default); "
                    "wide: one line per model; csv; markdown (a pipe table)")
    sp = verb("train", cmd_train, "train one model on one split (resumes after a kill)")
    sp.add_argument("--model", required=True, help="run name under datasets.<dataset>.models")
    sp.add_argument("--seed", type=int, default=None, help="the training seed (default: the run's first seed)")
    sp.add_argument("--index", required=True)
    sp.add_argument("--classes", required=True, help="classes.txt from `vidrec manifest`")
    sp.add_argument("--out-dir", required=True)
    sp.add_argument("--init-from", default=None,
                    help="model.pt to start from (default: train.init_from; required for a run with init_from)")
    sp.add_argument("--threads", type=int, default=None)
    sp = verb("evaluate", cmd_evaluate, "evaluate a trained model: accuracy and efficiency")
    sp.add_argument("--model-file", required=True, help="model.pt from `vidrec train`")
    sp.add_argument("--index", required=True)
    sp.add_argument("--split", type=int, default=None, help="the official split the index is of (recorded)")
    sp.add_argument("--out-dir", required=True)
    sp.add_argument("--threads", type=int, default=None)
    sp.add_argument("--clip", default=None,
                    help="clip spec the index was built from, when not the model's own (e.g. test 8-frame models on 32)")
    sp.add_argument("--scores", action="store_true", help="also write scores.npz: every clip's softmax")
    sp = verb("experiment", cmd_experiment, "aggregate one of Tran et al.'s experiments: table, figure, claims, page")
    sp.add_argument("name", help=" | ".join(EXPERIMENTS))
    sp.add_argument("--results", required=True, help="results/<dataset>")
    sp.add_argument("--out-dir", required=True, help="results/<dataset>/experiments/<name>")
    sp = verb("report", cmd_report, "render the comparison report, or a progress report while runs are unfinished")
    sp.add_argument("--root", default=".", help="the workflow's folder, holding results/ and data/ (default: .)")
    sp.add_argument("--out-dir", default=None,
                    help="default: results/<dataset>/report, or results/<dataset>/progress while any run the "
                    "report needs is unfinished (the final report's folder is then left alone)")
    sp.add_argument("--progress", action="store_true",
                    help="write the progress report (run status, evaluations so far, training curves) even when "
                    "every run is finished")
    sp.add_argument("--cores", type=int, default=None,
                    help="a rehearsal's forecast schedules the real DAG on this many cores (0: no local limit, "
                    "a cluster; default: this machine's), --jobs job slots and --gpus GPUs (default: every visible)")
    sp.add_argument("--jobs", type=int, default=None)
    sp.add_argument("--gpus", type=int, default=None)
    sp = verb("predict", cmd_predict, "classify videos (files or folders) with a trained model")
    sp.add_argument("inputs", nargs="+", metavar="VIDEO_OR_FOLDER")
    sp.add_argument("--model", required=True, help="model.pt from `vidrec train`")
    sp.add_argument("--clips", type=int, default=1,
                    help="clips per video, softmax averaged (1: the centre clip, the thesis protocol)")
    sp.add_argument("--crops", type=int, default=1, choices=[1, 3],
                    help="spatial crops per clip, softmax averaged over clips x crops (1: the centre crop; "
                    "3: left, centre, right along the longer side, as SlowFast; needs a model trained on crops)")
    sp.add_argument("--top-k", type=int, default=5)
    sp.add_argument("--output", default=None, help="also write the results to a .csv or .json file")
    sp.add_argument("--batch", type=int, default=16, help="clips per model call")
    sp.add_argument("--workers", type=int, default=2, help="decode processes (0: decode in the main process)")
    sp.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    sp.add_argument("--threads", type=int, default=None,
                    help="model threads on CPU (default: the cores not used by --workers)")
    sp = verb("export", cmd_export, "export a trained model to TorchScript or ONNX (checked against PyTorch)")
    sp.add_argument("--model", required=True, help="model.pt from `vidrec train`")
    sp.add_argument("--format", required=True, choices=["torchscript", "onnx"])
    sp.add_argument("--out", default=None, help="default: beside the model (model.ts.pt / model.onnx)")
    sp.add_argument("--atol", type=float, default=1e-4, help="check: accepted |exported - PyTorch| logit ...")
    sp.add_argument("--rtol", type=float, default=1e-5, help="... plus rtol x the largest |logit|")
    sp.add_argument("--no-check", action="store_true", help="skip the output comparison")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    set_library_logging(args.verbose)  # before any video is opened, here or in a worker process
    try:
        args.func(args)
    except (VidrecError, FileNotFoundError, PermissionError) as err:
        print(f"vidrec {args.verb}: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)  # 2, or the error's own (a stopped training: 75)
    except OSError as err:  # a full disk outside an atomic write (those raise DiskSpaceError)
        if not is_disk_full(err):
            raise
        print(f"vidrec {args.verb}: error: {err}; free space there and rerun", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
