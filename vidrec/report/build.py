"""`vidrec report`: the comparison report, from exactly the artifacts the configuration names.

Writes a fixed set of files under out_dir (vidrec.plan.layout.REPORT_FILES; rules/report.smk declares them
and flags each with `report()` for `snakemake --report`): index.html, self-contained with the
figures embedded as base64 PNG, plus every figure as a PNG and every table as a CSV beside it.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import yaml

from vidrec.core.io import atomic_path, remove_stale_temporaries, write_csv, write_json, write_text
from vidrec.core import provenance
from vidrec.plan import rehearsal
from vidrec.data.views import CLIP_LEVEL, VIDEO_LEVEL
from vidrec.plan.layout import EXPERIMENT_FILES, REPORT_FILES, Layout
from vidrec.report import figures, forecast, render
from vidrec.report.formatting import fmt
from vidrec.report.load import cluster_key, load_results
from vidrec.report.sections import section_titles
from vidrec.report.sections.accuracy import accuracy_table, split_accuracy_table
from vidrec.report.sections.claims import claims_table, load_claims
from vidrec.report.sections.data import (audit_applies, audit_table, dataset_summary, leakage_banner_needed, leaks,
                                         shards_summary, shards_table, skipped_repaired)
from vidrec.report.sections.efficiency import efficiency_parts, efficiency_table
from vidrec.report.sections.paired import ALPHA, TEST_METHOD, family_size, paired_comparison, paired_show, primary_text
from vidrec.report.sections.per_class import per_class_diff, per_class_show
from vidrec.report.sections.runs import runs_table
from vidrec.report.summary import INTERVAL_METHOD, model_summary, seeds_note
from vidrec.report.thesis import capacity_text, no_pair_text, primary_comparison

log = logging.getLogger("vidrec.report")


def _write_png(path: Path, png: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)


def build_report(cfg: dict, layout: Layout, out_dir: Path | None = None,
                 resources: forecast.Resources | None = None) -> Path:
    """Render the report; return the path of index.html. resources: what a rehearsal's forecast schedules
    the real DAG on (default: this machine's cores and GPUs)."""
    out = Path(out_dir) if out_dir is not None else layout.report_dir
    for name in REPORT_FILES.values():  # a killed earlier render's temporary files
        remove_stale_temporaries(out / name)
    res = load_results(cfg, layout)
    claims = load_claims()
    summary = model_summary(res, int(claims["what_if_clips_per_video"]))
    archs = summary["arch"].to_dict()
    primary = primary_comparison(res.cfg, summary)

    acc_data, acc_show = accuracy_table(res, summary)
    split_data, split_show = split_accuracy_table(res, summary)
    paired = paired_comparison(res, summary, primary)
    claims_data, claims_show = claims_table(res, summary, claims)
    eff_data, eff_show = efficiency_table(res, summary)
    diff = per_class_diff(res, summary, primary)
    audit_data, audit_show = audit_table(res)
    shards = shards_table(res)
    skipped = skipped_repaired(res)
    for key, frame in (("accuracy", acc_data), ("accuracy_splits", split_data), ("paired", paired),
                       ("claims", claims_data), ("efficiency", eff_data),
                       ("per_class", diff), ("audit", audit_data), ("shards", shards), ("skipped", skipped)):
        write_csv(out / REPORT_FILES[key], frame)

    pngs = {
        "curves": figures.training_curves(res.metrics, res.models, int(res.runs.groupby("model").size().max())),
        "cost": figures.accuracy_vs_cost(summary),
        "per_class_fig": figures.per_class_diff(diff, primary and (primary.a, primary.b),
                                                no_pair_text(summary)),
        "confusion": figures.confusion_grid(res.confusion, list(summary.index), archs),
        "shards_fig": figures.shards_figure(shards),
    }
    pngs = {k: figures.png_bytes(fig) for k, fig in pngs.items()}
    for key, png in pngs.items():
        _write_png(out / REPORT_FILES[key], png)

    fore_data, fore_body, fore_read = forecast.section(res, layout, resources)
    res.read.extend(fore_read)
    write_csv(out / REPORT_FILES["forecast"], fore_data)

    prov = provenance.collect(cfg)
    prov["runs"] = json.loads(runs_table(res).to_json(orient="records"))
    prov["inputs"] = [str(p) for p in res.read]
    prov["outputs"] = sorted(REPORT_FILES.values())
    prov["config"] = cfg
    write_json(out / REPORT_FILES["provenance"], prov)

    def fig(key: str, alt: str, caption: str) -> str:
        return render.figure(pngs[key], alt, caption, REPORT_FILES[key])

    demo = bool(res.synthetic)
    banners = []
    if rehearsal.active(cfg):
        r = rehearsal.settings(cfg)
        banners.append(render.banner(
            f"REHEARSAL: the configured job cut to {r['videos_per_class']} videos per class (every split keeps "
            f"training and test videos), {r['epochs']} epoch(s) of at most {r['train_steps']} "
            f"training steps and {r['eval_videos']} test videos per run. It checks that every stage runs on "
            "this data and set-up; none of its numbers measures anything.", "rehearsal"))
    if leakage_banner_needed(res):
        text = "; ".join(f"{s}: {len(g)} leakage units in both train and test ({', '.join(g[:8])}"
                         f"{', ...' if len(g) > 8 else ''})" for s, g in leaks(res).items())
        banners.append(render.banner(
            f"LEAKAGE ALLOWED BY A CONFIG OVERRIDE (leakage.allow: true). {text}. The videos of one unit "
            f"({res.audit['leakage_key']}) share a source, so test accuracy on these splits is inflated and not comparable with "
            "any published from-scratch number.", "leak"))
    if demo:
        banners.append(render.banner(
            f"This is the demo set ('{res.dataset}'): synthetic videos with motion-only classes, generated by "
            "`vidrec synth`. It exercises the whole pipeline; its numbers are not comparable with UCF101's "
            "or with the published figures quoted below.", "demo"))

    cpu, gpus = prov["hardware"]["cpu"], prov["hardware"]["gpus"]
    machine = f"{cpu}" + (f", GPU {', '.join(gpus)}" if gpus else ", no CUDA GPU visible")
    n = int(res.runs.groupby("model").size().max())  # runs per model: splits x seeds
    _, unit = cluster_key(res.videos)
    n_clusters = ", ".join(f"{m} {fmt(c, 0)}" for m, c in summary["n_clusters"].items())
    interval = ("its 95% interval over every test video of the splits run (each counted once; top-1: clustered, "
                "see below; top-5: Wilson score interval, unclustered, as predictions.csv stores no per-video "
                "top-5 outcome)")
    cell = (f"the mean over the runs (splits x seeds), in brackets {interval}, then the sample standard deviation "
            "of the runs (sd) and the number of runs (n)." if n > 1 else
            f"the accuracy on the one split run, in brackets {interval}, then the number of runs (n=1: no spread "
            "across runs to show).")
    clustered = (f"Test videos are not independent, so every top-1 interval and paired test takes the cluster as "
                 f"its unit: one {unit}; clusters per model: {n_clusters}. "
                 f"Top-1 intervals: {INTERVAL_METHOD}, i.e. the Wilson score interval at n / design effect "
                 "videos, where the design effect is the variance of the accuracy with clusters as the "
                 "independent unit (sum over clusters of (right - p x videos)^2 / n^2) over the binomial "
                 "p(1 - p) / n; 1 means the clusters cost nothing, 2 that the test set counts as half as many "
                 "videos. The design effect column gives it per model, clip / video top-1; * marks a level "
                 "with every video right (or wrong), where none can be estimated and each cluster counts as "
                 f"one trial. {seeds_note(summary)}")
    family = family_size(paired, "pooled")
    sections = {
        "accuracy": [
            render.para(f"Test-set accuracy per model in the thesis's table form (splits: "
                        f"{', '.join(map(str, res.splits))}). Each cell: {cell} Clip level: {CLIP_LEVEL} (the "
                        f"thesis's protocol). Video level: {VIDEO_LEVEL} (Tran et al.'s protocol), K the clip "
                        "spec's clips per video and S the crops per clip (`evaluate.crops`); each column's label "
                        "names its views and the Protocol column each run's, with any override of the named "
                        "protocol ('overridden: ...')."),
            render.table(acc_show, "accuracy"),
            render.para(clustered),
            *([render.details(f"Per split ({len(split_show)} runs, each with its interval over its own test "
                              "videos: one trained network, clusters only)",
                              render.table(split_show, "accuracy-splits"))] if n > 1 else []),
            "<h3>Paired comparison on the same test videos</h3>",
            render.para(
                "For every pair of models (the primary comparison first): each model's top-1 accuracy on the test "
                "videos both were run on, the difference A - B with its 95% interval (normal, clustered variance"
                ", plus the seed-to-seed variance of each model with two or more seeds), the videos A gets right "
                "and B misses (A only) and the reverse, with the clusters whose total favours each, and the "
                f"{TEST_METHOD}: under no difference the two models are exchangeable within a cluster, so "
                "each cluster's summed difference is as likely positive as negative; p is the share of the 2^K "
                "sign patterns whose total is at least as far from 0 as the observed one, computed exactly. With "
                "one video per cluster it is the exact McNemar test. Each model's outcome on a video is the mean "
                "over its seeds, so every seed is used; the test conditions on the trained networks. Pooled over "
                "the splits: the official splits' test sets are disjoint, and the cluster stays the unit."),
            render.para(
                ("Declared primary comparison (report.primary_comparison): "
                 f"{primary.a} vs {primary.b} at {primary.level} level, {primary.source}; its pooled test is "
                 f"the one judged at {ALPHA:.0%}. " if primary else "No primary comparison (fewer than two "
                 "models). ")
                + f"Every other test is exploratory, with Holm's step-down adjusted p-value within its family: the "
                f"{family} other pooled tests (every pair x clip and video level, less the primary), and, with two "
                "or more splits, the per-split tests (every pair x level x split) as a family of their own. "
                f"An exploratory result is a lead for a new, declared comparison, not a finding. All rows: "
                f"{REPORT_FILES['paired']}."),
            render.table(paired_show(paired), "paired", empty="Fewer than two models: no pair to compare."),
            *([render.details("Per split (exploratory, Holm-adjusted within the per-split family)",
                              render.table(paired_show(paired, pooled=False), "paired-splits"))]
              if len(res.splits) > 1 and not paired.empty else []),
        ],
        "claims": [
            render.para(
                "Published figures (labelled as claims, with their source and setting) beside what this run "
                f"measured. Dataset here: {res.dataset} "
                + ("(the synthetic demo set: NOT comparable with UCF101's numbers). " if demo else ". ")
                + f"Devices are named per row; this report was built on: {machine}."),
            render.para(f"Only the claims measured on the active dataset's benchmark are shown (claims.yaml "
                        f"entries with dataset: {cfg['datasets'][res.dataset]['format']}, the dataset's format)."),
            render.table(claims_show, "claims", empty=(
                f"No published claim for this dataset: claims.yaml holds none measured on "
                f"{cfg['datasets'][res.dataset]['format']}, so nothing published is set beside these numbers.")),
            render.para(primary_text(paired, summary, primary, res.splits)),
            render.details("Sources", render.bullets(
                [f"{k}: {' '.join(v.split())}" for k, v in claims["sources"].items()])),
        ],
        "curves": [
            render.para("The thesis's Figure 5, from metrics.csv: loss and accuracy against epoch and against "
                        "cumulative training time (validation excluded), every model on one axis set. The test "
                        "curve is the split's test set, centre clip."),
            fig("curves", "training curves", "Training curves: loss and accuracy vs epoch and training time."),
        ],
        "efficiency": [
            render.para("Per model, mean over the splits run. GFLOPs / clip: one forward pass of one clip of the "
                        "input shape in the next column (C x T x H x W, batch 1), counted by torch's "
                        "FlopCounterMode, where a multiply-add counts as 2 FLOPs (convolutions and matrix "
                        "products only; papers quoting multiply-adds as FLOPs give half). "
                        "Inference speed is measured after a warm-up at a "
                        "fixed batch on random input; videos/s divides clips/s by the clips each protocol needs "
                        f"per video: 1 (thesis), K clips x S crops (video level), and the thesis's "
                        f"{claims['what_if_clips_per_video']} clips per video for P3D (what-if). End-to-end: "
                        "whole test videos per second through `vidrec predict`'s pipeline (decoding included, "
                        "1 clip per video, as the thesis measured; n/a where evaluation.json has no such figure)."),
            *[part for title, table in efficiency_parts(eff_show)
              for part in (f"<h3>{title}</h3>", render.table(table, "efficiency"))],
            "<h3>Practical capacity (the thesis's argument, recomputed)</h3>",
            render.bullets(capacity_text(summary, primary)),
            fig("cost", "accuracy versus cost", "Accuracy vs GFLOPs per clip and vs inference time per video; "
                "filled circles video level (error bar: its clustered 95% interval), open triangles clip level."),
        ],
        "per-class": _per_class_body(diff, primary, summary, fig),
        "data": _data_body(res, audit_show, shards, skipped, fig),
        "provenance": _provenance_body(prov, res),
    }
    if res.experiments:  # experiments.in_report: true
        sections["experiments"] = _experiments_body(res)
    sections["forecast"] = fore_body  # a rehearsal's forecast of the real job, or the real run's beside it
    subtitle = (f"dataset {res.dataset}{' (synthetic demo)' if demo else ''} | splits "
                f"{', '.join(map(str, res.splits))} | models {', '.join(res.models)} | generated "
                f"{prov['generated_utc']} | commit {prov['git']['text']}")
    title = f"{'REHEARSAL ' if rehearsal.active(cfg) else ''}vidrec comparison report: {res.dataset}"
    html = render.page(title, subtitle, banners,
                       [(sid, name, sections[sid]) for sid, name in section_titles(cfg).items() if sid in sections])
    write_text(out / REPORT_FILES["html"], html)
    log.info("report: %s (%d inputs, %d models x %d splits)", out / REPORT_FILES["html"], len(res.read),
             len(res.models), n)
    return out / REPORT_FILES["html"]


def _per_class_body(diff, primary, summary, fig) -> list[str]:
    body = []
    if primary:
        body += [render.para(f"Classes where the compared pair (report.primary_comparison: {primary.source}) differs "
                             f"most: video-level top-1 of {primary.a} minus {primary.b}, per class, mean over the "
                             f"splits and seeds run (all classes in {REPORT_FILES['per_class']}). Descriptive: no "
                             "per-class test."),
                 render.table(per_class_show(diff, primary), "per-class")]
    else:
        body.append(render.para(f"The per-class comparison needs the compared pair; {no_pair_text(summary)}."))
    body += [fig("per_class_fig", "per-class difference", "Per-class difference of the compared pair."),
             "<h3>Confusion matrices</h3>",
             fig("confusion", "confusion matrices", "Video-level confusion per model, rows normalised to "
                 "the true class's test videos, summed over the splits run.")]
    return body


def _data_body(res, audit_show, shards, skipped, fig) -> list[str]:
    leaked = leaks(res)
    body = ["<h3>Dataset</h3>", render.table(dataset_summary(res), "dataset"),
            "<h3>Leakage audit (leakage units shared by train and test)</h3>"]
    if not audit_applies(res):
        body.append(render.banner(f"The leakage audit does not apply: {res.audit['leakage_note']}.", "na"))
    elif not leaked:
        body.append(render.banner(f"No split has a leakage unit ({res.audit['leakage_key']}) in both train and "
                                  "test.", "ok"))
    body.append(render.table(audit_show, "audit"))
    if res.audit.get("warnings"):
        body.append(render.bullets(res.audit["warnings"]))
    body.append("<h3>Skipped and repaired videos</h3>")
    if skipped.empty:
        body.append(render.para("No video was skipped or repaired while decoding."))
    else:
        n_skip, n_rep = int((skipped["event"] == "skipped").sum()), int((skipped["event"] == "repaired").sum())
        body += [render.para(f"{n_skip} skipped, {n_rep} repaired (decode.on_bad_video: "
                             f"{res.cfg['decode']['on_bad_video']})."),
                 render.table(skipped.rename(columns=str.capitalize), "skipped")]
    body += ["<h3>Shards and decode throughput</h3>",
             render.table(shards_summary(shards), "shards"),
             render.details(f"Per shard ({len(shards)})", render.table(shards.assign(mb=shards["mb"].round(2)))),
             fig("shards_fig", "shard sizes and decode throughput", "Shard size and decode throughput per shard (bucket of videos).")]
    return body


def _experiments_body(res) -> list[str]:
    """One sub-section per experiment, as on its own page (results/<dataset>/experiments/<name>/index.html)."""
    body = [render.para("Tran et al.'s experiments beyond the architecture comparison, each run with its own target "
                        "(`snakemake --cores N <name>`) and included here because experiments.in_report is true. The "
                        "published figures are claims measured on Kinetics-400; this run's are measured on "
                        f"{res.dataset}.")]
    for name, x in res.experiments.items():
        s = x["summary"]
        body += [f"<h3 id=\"experiment-{name}\">{render.escape(s['title'])} ({render.escape(name)})</h3>",
                 *render.experiment_section(s, x["png"], f"../experiments/{name}/{EXPERIMENT_FILES['figure']}")]
    return body


def _provenance_body(prov: dict, res) -> list[str]:
    hw, v, s = prov["hardware"], prov["versions"], prov["settings"]
    pairs = [("Generated", prov["generated_utc"]), ("Git commit", prov["git"]["text"]),
             ("Report built on", f"{hw['cpu']}; {hw['usable_cores']} of {hw['logical_cores']} logical cores; "
                                 f"{hw['memory_gb']} GB RAM; GPU: {', '.join(hw['gpus']) or 'none visible'}"),
             ("Platform", hw["platform"]),
             ("Packages", ", ".join(f"{k} {val}" for k, val in v.items())),
             ("Training settings", ", ".join(f"{k}={val}" for k, val in s.items()))]
    return [render.kv(pairs),
            "<h3>Runs: seeds and determinism</h3>",
            render.para("From each run's train.json. 'Deterministic algorithms': torch's deterministic algorithms "
                        "were enforced (train.deterministic); CPU runs resume to the bit after a kill either way.",
                        "muted"),
            render.table(runs_table(res), "runs"),
            render.details(f"Inputs read ({len(res.read)} files)", render.pre("\n".join(prov["inputs"]))),
            render.details("Configuration as run", render.pre(yaml.safe_dump(res.cfg, sort_keys=True))),
            render.details("Files written beside this page", render.pre("\n".join(prov["outputs"])))]
