"""The comparison report: content from small fixture results, a real headless browser, the rule.

The fixtures are built here (2 models incl. a convlstm_c2d63 and a p3d63, 2 splits, a tiny audit,
shard statistics with one skipped and one repaired video) in the layout the pipeline writes.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from support import REPO
from support.report_results import ACCURACY, MODEL_SPECS, make_results
from vidrec.core.errors import ConfigError
from vidrec.evaluation.stats import wilson_interval
from vidrec.plan.layout import REPORT_FILES, Layout
from vidrec.report.build import build_report
from vidrec.report.load import cluster_key, input_files, load_results
from vidrec.report.sections import SECTIONS
from vidrec.report.sections.paired import family_size, paired_comparison, paired_show, primary_text
from vidrec.report.summary import seeds_note
from vidrec.report.thesis import primary_comparison

def no_images(html: str) -> str:
    """The page without its base64 figures (which may contain any letters, 'NaN' included)."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:", html)


def assert_no_nan(html: str) -> None:
    text = no_images(html)
    assert not re.search(r"\bnan\b", text, re.I), re.search(r".{80}\bnan\b.{80}", text, re.I | re.S)


def section(html: str, sid: str) -> str:
    m = re.search(rf'<section id="{sid}">(.*?)</section>', html, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def _layout(cfg: dict, results: Path) -> Layout:
    """The dataset's layout whose results folder is `results` (results/<dataset> under the fixture's root)."""
    layout = Layout(cfg["dataset"], results.parent.parent)
    assert layout.results == results
    return layout


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    cfg, results = make_results(root)
    out = results / "report"
    out.mkdir(parents=True, exist_ok=True)
    # a killed earlier render's temporary files (its pid is gone), and one of a writer still running (our parent)
    (out / ".provenance.json.999999999.tmp").write_text("{")
    (out / f".index.html.{os.getppid()}.tmp").write_text("<html")
    index = build_report(cfg, _layout(cfg, results), out_dir=out)
    assert not (out / ".provenance.json.999999999.tmp").exists()
    (out / f".index.html.{os.getppid()}.tmp").unlink()  # left alone while its writer runs
    return cfg, results, out, index.read_text()


# ----------------------------------------------------------------------------- content
def test_every_output_and_section(built):
    _, _, out, html = built
    for name in REPORT_FILES.values():
        assert (out / name).stat().st_size > 0, name
    for sid in ("accuracy", "claims", "curves", "efficiency", "per-class", "data", "provenance"):
        section(html, sid)
    assert html.count("data:image/png;base64,") == 5
    assert_no_nan(html)
    assert "±" not in html  # every accuracy: [95% interval] (sd, n), never "± n/a"
    assert not re.search(r'(src|href)="https?:', html), "no network resources"


def test_accuracy_table_matches_inputs(built):
    """Top-1: clustered intervals (class x group: here 2 test videos per cluster, 4 clusters per split), worked out
    by hand from the fixture's predictions (see _right); top-5: the unclustered Wilson interval of the counts."""
    _, _, out, html = built
    acc = section(html, "accuracy")
    table = pd.read_csv(out / "accuracy.csv")
    for model in MODEL_SPECS:
        row = table[table["model"] == model].iloc[0]
        assert row["n_videos"] == 16 and row["n_splits"] == 2 and row["n_clusters"] == 8
        for i, metric in enumerate(["clip_top1", "clip_top5", "video_top1", "video_top5"]):
            values = [ACCURACY[(model, s)][i] for s in (1, 2)]
            correct = round(sum(values) * 8)  # 8 test videos per split
            assert row[f"{metric}_correct"] == correct
            if metric.endswith("top5"):
                lo, hi = wilson_interval(correct, 16)
                assert (row[f"{metric}_lo"], row[f"{metric}_hi"]) == (pytest.approx(lo), pytest.approx(hi))
            else:
                lo, hi = row[f"{metric}_lo"], row[f"{metric}_hi"]
                assert row[f"{metric}_design_effect"] >= 1 and "design-effect-adjusted Wilson" in row[f"{metric}_interval"]
            text = (f"{np.mean(values) * 100:.2f} [{lo * 100:.2f}, {hi * 100:.2f}] "
                    f"(sd {np.std(values, ddof=1) * 100:.2f}, n=2)")
            assert text in acc, (model, metric, text)
    conv = table.set_index("model").loc["convlstm_c2d63"]
    # clip top-1: the first 4 (split 1) and 6 (split 2) test videos right fill whole clusters (2 videos each): per
    # cluster 2, 2, 0, 0 | 2, 2, 2, 0, every cluster alike inside, so it counts once: 5 of 8 clusters, design effect 2
    assert conv["clip_top1_design_effect"] == pytest.approx(2.0)
    assert (conv["clip_top1_lo"], conv["clip_top1_hi"]) == pytest.approx(wilson_interval(5, 8))
    assert "62.50 [30.57, 86.32] (sd 17.68, n=2)" in acc          # 10 of 16 unclustered was [38.64, 81.52]
    # video top-1: per cluster 2, 2, 1, 0 | 2, 2, 2, 1, p = 12/16; (k_c - 1.5)^2 sums to 4, variance 4 / 256,
    # binomial 0.75 * 0.25 / 16: design effect 4/3, effective n 12: the Wilson interval of 9 of 12
    assert conv["video_top1_design_effect"] == pytest.approx(4 / 3)
    assert (conv["video_top1_lo"], conv["video_top1_hi"]) == pytest.approx(wilson_interval(9, 12))
    # every run on its own: 4 of 8 videos in clusters 2, 2, 0, 0 -> 2 of 4 clusters, [15.00, 85.00]
    assert "<td>50.00 [15.00, 85.00]</td>" in acc
    runs = pd.read_csv(out / "accuracy_per_split.csv")
    assert len(runs) == 4 and runs["clip_top1_lo"].notna().all() and (runs["n_clusters"] == 4).all()
    assert "ConvLSTM-C2D ResNet (convlstm_c2d63)" in acc and "P3D ResNet (p3d63)" in acc
    assert "no (from scratch)" in acc
    assert "takes the cluster as its unit: one class x group" in acc and "2.00 / 1.33" in acc  # unit, design effects
    assert "design-effect-adjusted Wilson" in acc and "clusters per model: convlstm_c2d63 8, p3d63 8" in acc
    assert "conditional on one trained network" in acc and "train.seeds" in acc   # one seed: said, and how to add
    # the thesis's head is labelled where ours differs (dropout before the classifier, the thesis's after it)
    assert "deviation from the thesis" in acc and "after the fully connected layer (2-1.d)" in acc
    # the protocol column names what the dataset (epochs) and the run (base_width) change in the thesis's,
    # and every accuracy label its views (demo16: 3 clips, 1 crop)
    assert "thesis, overridden: epochs 12, base_width 16: 12 epochs" in acc
    assert "Video top-1 (%), 3 clips x 1 crop" in acc and "Clip top-1 (%), 1 view" in acc
    assert "clip level clip 1 of 3 (0-based, K // 2: the centre clip), centre crop" in acc
    assert set(table["views"]) == {"3 clips x 1 crop"}
    assert table.loc[table["model"] == "p3d63", "video_top1_mean"].item() == pytest.approx(0.4375)


def test_paired_comparison_primary_first(built):
    """The fixture's predictions, per class x group cluster (A = convlstm_c2d63 minus B = p3d63, see _right):
    clip level  split 1: +2, +2, 0, -2; split 2: +2, +2, +1, -2 -> pooled: six clusters of 2 and one of 1, total 5;
    video level split 1: +2, +2, 0, -2; split 2: +2, +2, 0, -1 -> pooled: five clusters of 2 and one of 1, total 5."""
    _, _, out, html = built
    acc = section(html, "accuracy")
    paired = pd.read_csv(out / "paired_comparison.csv")
    assert paired.iloc[0][["model_a", "model_b", "primary_pair"]].tolist() == ["convlstm_c2d63", "p3d63", True]
    by_split = paired.set_index("split")
    assert by_split.loc["1", ["video_a_only", "video_b_only", "clip_a_only", "clip_b_only"]].tolist() == [5, 3, 4, 2]
    assert by_split.loc["2", ["video_a_only", "video_b_only", "clip_a_only", "clip_b_only"]].tolist() == [4, 1, 5, 2]
    pooled = by_split.loc["pooled"]
    assert pooled[["n_videos", "n_clusters", "video_a_only", "video_b_only", "clip_clusters_a", "clip_clusters_b"]
                  ].tolist() == [16, 8, 9, 4, 5, 2]
    # sign patterns with |T| >= 5, clip: j of the six 2s positive, T = 4j - 12 +- 1: 2 + 12 + 15 + 15 + 12 + 2 = 58
    # of 128; video: T = 4j - 10 +- 1 over five 2s: 2 + 10 + 10 + 2 = 24 of 64 (unclustered McNemar, 9 vs 4: 0.267)
    assert pooled["clip_p"] == pytest.approx(58 / 128) and pooled["video_p"] == pytest.approx(24 / 64)
    assert pooled["clip_role"] == "primary" and pooled["clip_p_adjusted"] == pooled["clip_p"]
    # the only other pooled test (the pair at video level) is a family of one: Holm leaves it as it is
    assert pooled["video_role"] == "exploratory" and pooled["video_family"] == "pooled"
    assert pooled["video_p_adjusted"] == pytest.approx(24 / 64)
    assert (paired.loc[paired["split"] != "pooled", "clip_family"] == "per split").all()
    assert pooled["clip_diff"] == pytest.approx(0.3125) and pooled["clip_diff_lo"] < 0 < pooled["clip_diff_hi"]
    assert "primary: p = 0.453, not significant at 5%" in acc and "<td>62.50 / 31.25</td>" in acc
    assert "exploratory: Holm-adjusted p = 0.375 (unadjusted p = 0.375)" in acc
    assert "pooled" in acc and "disjoint" in acc and "Holm" in acc
    claims = section(html, "claims")
    assert ("Primary comparison (the thesis pair (report.primary_comparison&#x27;s default)): convlstm_c2d63 vs "
            "p3d63 at clip level (the thesis&#x27;s protocol), on the same 16 test videos in 8 clusters of splits "
            "1, 2, pooled over the splits") in claims
    assert "62.50% vs 31.25%, difference +31.25 pp" in claims and "9 vs 4 discordant videos in 5 vs 2 clusters" in claims
    assert "exact sign-flip (randomisation) test over clusters p = 0.453, not significant at 5%" in claims
    assert "at video level is exploratory: Holm-adjusted p = 0.375" in claims
    # no uncorrected verdict anywhere: 'significant' only in the primary comparison's own sentence and cell
    for text in (claims, acc):
        assert text.count("significant at 5%") == 1, text.count("significant at 5%")


# report.primary_comparison as the schema fills it in
PRIMARY_DEFAULT = {"report": {"primary_comparison": {"pair": None, "level": "clip"}}}


def _paired_inputs(correct: dict, cfg: dict | None = None) -> tuple[SimpleNamespace, pd.DataFrame]:
    """Results stand-in: (split, model[, seed]) -> list of (video_id, right?) at both levels (seed 0 if absent).

    Every video is its own cluster (a group of its own), so the clustered test is McNemar's exact test."""
    rows = [{"split": key[0], "model": key[1], "seed": key[2] if len(key) > 2 else 0, "video_id": v,
             "correct_clip": ok, "correct_video": ok} for key, videos in correct.items() for v, ok in videos]
    models = list(dict.fromkeys(key[1] for key in correct))
    ids = sorted({r["video_id"] for r in rows})
    videos = pd.DataFrame({"video_id": ids, "class_name": "c", "group": ids})
    res = SimpleNamespace(predictions=pd.DataFrame(rows), splits=sorted({key[0] for key in correct}), videos=videos,
                          cfg=cfg or PRIMARY_DEFAULT)
    summary = pd.DataFrame({"arch": models}, index=models)  # run names are architecture names here
    return res, summary


def test_paired_comparison_order_roles_and_holm():
    six = [(v, True) for v in range(6)]
    wrong = [(v, False) for v in range(6)]
    res, summary = _paired_inputs({(1, "frame_resnet50"): wrong, (1, "p3d63"): wrong, (1, "convlstm_c2d63"): six})
    primary = primary_comparison(res.cfg, summary)
    assert primary[:3] == ("convlstm_c2d63", "p3d63", "clip")     # the thesis pair, ConvLSTM-C2D as A, whatever the order
    paired = paired_comparison(res, summary, primary)
    assert list(zip(paired["model_a"], paired["model_b"])) == [
        ("convlstm_c2d63", "p3d63"), ("frame_resnet50", "p3d63"), ("frame_resnet50", "convlstm_c2d63")]
    assert (paired["split"] == "pooled").all()  # one split: no per-split rows beside the pooled ones
    first = paired.iloc[0]  # 6 vs 0 discordant videos, one per cluster: McNemar's 2 / 64
    assert first["clip_p"] == 2 / 64 and first["clip_role"] == "primary" and first["clip_reject_at_5pct"]
    # the exploratory family: 3 pairs x 2 levels less the primary = 5 tests, p = 2/64 (conv-p3d video, frame-conv
    # clip and video) and 1, 1 (frame-p3d); Holm: 5 x 2/64, then max(4 x 2/64, ...), ...: all three 0.15625
    assert family_size(paired, "pooled") == 5
    assert paired["video_p_adjusted"].tolist() == pytest.approx([0.15625, 1.0, 0.15625])
    assert paired["clip_p_adjusted"].tolist() == pytest.approx([2 / 64, 1.0, 0.15625])
    assert not paired["video_reject_at_5pct"].any()
    show = paired_show(paired)
    assert show["Clip: clustered test"].tolist()[0] == "primary: p = 0.0312, significant at 5%"
    assert show["Video: clustered test"].tolist()[0] == "exploratory: Holm-adjusted p = 0.156 (unadjusted p = 0.0312)"
    assert not any("significant" in cell for cell in show["Video: clustered test"])
    text = primary_text(paired, summary, primary, res.splits)
    assert "p = 0.0312, significant at 5%" in text and "one seed each" in text
    # a configured pair and level win over the default
    res.cfg = {"report": {"primary_comparison": {"pair": ["frame_resnet50", "convlstm_c2d63"], "level": "video"}}}
    primary = primary_comparison(res.cfg, summary)
    paired = paired_comparison(res, summary, primary)
    assert paired.iloc[0][["model_a", "model_b", "video_role", "clip_role"]].tolist() == [
        "frame_resnet50", "convlstm_c2d63", "primary", "exploratory"]
    assert "report.primary_comparison.pair" in primary_text(paired, summary, primary, res.splits)
    res.cfg["report"]["primary_comparison"]["pair"] = ["frame_resnet50", "r3d_18"]
    with pytest.raises(ConfigError, match="r3d_18"):
        primary_comparison(res.cfg, summary)
    # no thesis pair: the first two runs; fewer than two runs: none
    assert primary_comparison(PRIMARY_DEFAULT, summary.drop(index="p3d63"))[:2] == ("frame_resnet50", "convlstm_c2d63")
    assert primary_comparison(PRIMARY_DEFAULT, summary.iloc[:1]) is None


def test_paired_comparison_uses_every_seed_and_counts_a_cluster_once():
    """Seeds: a video's outcome is the mean over the model's seeds; a video tested in two splits is one cluster."""
    six = [(v, True) for v in range(6)]
    wrong = [(v, False) for v in range(6)]
    half = [(v, v < 3) for v in range(6)]
    res, summary = _paired_inputs({(1, "convlstm_c2d63", 0): six, (1, "p3d63", 0): wrong,
                                   (1, "convlstm_c2d63", 1): half, (1, "p3d63", 1): half,
                                   (1, "frame_resnet50", 0): wrong})  # one seed only
    primary = primary_comparison(res.cfg, summary)
    paired = paired_comparison(res, summary, primary).set_index(["model_a", "model_b"])
    # per video: A's mean (1, 1, 1, .5, .5, .5) minus B's (.5, .5, .5, 0, 0, 0) = 0.5 each: six clusters alike
    thesis = paired.loc[("convlstm_c2d63", "p3d63")]
    assert thesis[["seeds_a", "seeds_b", "clip_a_only", "clip_b_only"]].tolist() == [2, 2, 6, 0]
    assert thesis["clip_diff"] == pytest.approx(0.5) and thesis["clip_p"] == pytest.approx(2 / 64)
    assert paired.loc[("p3d63", "frame_resnet50"), ["seeds_a", "seeds_b"]].tolist() == [2, 1]
    assert "Seeds A / B" in paired_show(paired.reset_index()).columns
    assert "every seed used (2 of convlstm_c2d63, 2 of p3d63)" in primary_text(
        paired.reset_index(), summary, primary, res.splits)
    # the same six videos tested in two splits: each video is one cluster (+2), not two independent trials
    res, summary = _paired_inputs({(1, "convlstm_c2d63"): six, (1, "p3d63"): wrong,
                                   (2, "convlstm_c2d63"): six, (2, "p3d63"): wrong})
    paired = paired_comparison(res, summary, primary_comparison(res.cfg, summary))
    pooled = paired[paired["split"] == "pooled"].iloc[0]
    assert pooled["video_a_only"] == 12 and pooled["n_clusters"] == 6
    assert pooled["video_p"] == pytest.approx(2 / 64)             # unclustered, 12 vs 0 would give 2 / 4096


def test_seeds_note():
    one = pd.DataFrame({"n_seeds": [1, 2]}, index=["a", "b"])
    assert "a: one seed, so its interval is conditional on one trained network" in seeds_note(one)
    assert "train.seeds" in seeds_note(one)
    assert "adds the seed-to-seed variance" in seeds_note(one.assign(n_seeds=2))


def test_claims_beside_measurements(built):
    _, _, out, html = built
    claims = section(html, "claims")
    for text in ("95.57%", "88.79%", "88.6%", "236 MB", "261 MB", "36.9-37 videos/s", "194.1-195 clips/s",
                 "8 h 56 min", "15 h 25 min", "about 41-44%", "Sports-1M", "9.2 clips per second"):
        assert text in claims, text
    assert "NOT comparable with UCF101" in claims
    assert "62.50 % [30.57, 86.32] (sd 17.68, n=2)" in claims  # measured ConvLSTM-C2D clip top-1 beside 95.57%
    assert "14.4 MB" in claims and "210.0 clips/s" in claims
    # the thesis's videos/s beside the end-to-end figure (decoding included), the model-only one named as such
    assert "end to end (decoding included): " in claims
    assert "model only (forward passes on random clips, 1 clip per video): " in claims
    # corrected labels: settings the thesis does not state, an inference named as one, sizes at 101 classes
    assert "epochs: not stated" in claims and "is an inference" in claims and "one hypothesis" in claims
    assert "Our count (vidrec's P3D-199, not a published figure): 65.9M parameters" in claims
    assert "averages 20 clips" in claims and "(2-2.a)" in claims and "(2-2.b), not pre-trained" not in claims
    assert "41-55" not in claims and "would explain it" not in claims
    assert "convlstm_c2d63 (base_width=16) on demo (synthetic demo set), splits 1, 2, seed 0, cpu, 2 threads" in claims
    assert 'data-banner="demo"' in html
    data = pd.read_csv(out / "claims.csv")
    speed = data[data["id"] == "thesis_convlstm_speed"]
    assert list(speed["measure"]) == ["infer_videos_per_s_end_to_end", "infer_videos_per_s_one_clip"]
    p3d_capacity = data[(data["id"] == "thesis_p3d_capacity")]["measured_value"].item()
    assert p3d_capacity == pytest.approx(210 / 21)
    ratio = data[(data["id"] == "thesis_practical_ratio")]["measured_value"].item()
    assert ratio == pytest.approx((1 / 40) / (21 / 210) * 100)
    assert set(data.loc[data["id"] == "scratch_range", "model"]) == set(MODEL_SPECS)


def test_efficiency_per_class_and_data(built):
    _, _, out, html = built
    eff = section(html, "efficiency")
    assert "3.60" in eff and "1 min 00 s" in eff and "3 min 00 s" in eff   # params (M), train time
    assert "10.00" in eff  # P3D at 21 clips per video: 210 / 21
    assert "25.0% (the thesis claims 24%" in eff
    per = section(html, "per-class")
    diff = pd.read_csv(out / "per_class_diff.csv")
    assert diff["diff_video_top1_pp"].abs().is_monotonic_decreasing
    top = diff.iloc[0]
    assert f"{top['diff_video_top1_pp']:+.1f}" in per and top["class_name"] in per
    data = section(html, "data")
    assert "v_Archery_g02_c01.avi" in data and "no frames decoded" in data      # skipped
    assert "v_Archery_g03_c02.avi" in data and "padded_last_frame" in data      # repaired
    assert "1 skipped, 1 repaired" in data
    assert "OK: no leakage unit in both train and test" in data
    shards = pd.read_csv(out / "shards.csv")
    assert shards["skipped"].sum() == 1 and shards["repaired"].sum() == 1 and len(shards) == 4
    assert 'data-banner="leak"' not in html


def test_provenance(built):
    cfg, _, out, html = built
    prov = section(html, "provenance")
    for name in ("torch", "torchvision", "snakemake", "h5py", "opencv", "numpy", "pandas", "matplotlib"):
        assert f"{name} " in prov, name
    assert "Git commit" in prov and "Configuration as run" in prov and "seeds=[0]" in prov
    data = json.loads((out / "provenance.json").read_text())
    assert data["hardware"]["logical_cores"] and data["config"]["dataset"] == "demo"
    assert {r["Seed"] for r in data["runs"]} == {"0"}


def test_reads_exactly_the_rule_inputs(built):
    cfg, results, _, _ = built
    res = load_results(cfg, _layout(cfg, results))
    files = input_files(cfg, _layout(cfg, results), [0, 1, 2, 3])
    expected = {p for paths in files.values() for p in paths}
    assert set(res.read) == expected and len(res.read) == len(expected)
    assert len(expected) == 2 * 2 * 6 + 2 + 4  # 6 files per run, predictions.csv included
    # the rule declares the same output names and a caption for each
    smk = (REPO / "rules" / "report.smk").read_text()
    rows = re.findall(r'^    "(\w+)": \("(\w+)", (?:"([\w-]+)"|None)\),$', smk, re.M)
    captions = {key: caption for key, caption, _ in rows}
    assert set(captions) == set(REPORT_FILES)
    assert {section for _, _, section in rows} - {""} <= set(SECTIONS)  # categories: the sections' own titles
    for caption in captions.values():
        assert (REPO / "workflow" / "report" / f"{caption}.rst").exists(), caption


@pytest.mark.parametrize("allowed,leaked,banner", [(True, True, True), (True, False, False), (False, True, False),
                                                   (False, False, False)])
def test_leakage_banner(tmp_path, allowed, leaked, banner):
    cfg, results = make_results(tmp_path, splits=(1,), leakage_allowed=allowed, leaked=leaked)
    html = build_report(cfg, _layout(cfg, results), out_dir=tmp_path / "out").read_text()
    assert ('data-banner="leak"' in html) is banner
    assert ("LEAK: 1 leakage units" in section(html, "data")) is leaked


def test_single_split_missing_partner_no_bad_videos(tmp_path):
    cfg, results = make_results(tmp_path, splits=(1,), models=("convlstm_c2d63",), bad_videos=False)
    ev_path = results / "split1" / "convlstm_c2d63" / "seed0" / "evaluation.json"
    ev = json.loads(ev_path.read_text())
    ev["train_time_total_s"] = None  # e.g. evaluated without a train.json beside the model
    ev_path.write_text(json.dumps(ev))
    html = build_report(cfg, _layout(cfg, results), out_dir=tmp_path / "out").read_text()
    assert "<td>50.00 [15.00, 85.00] (n=1)</td>" in section(html, "accuracy")  # 2 of 4 clusters of 2, one run
    assert "50.00 % [15.00, 85.00] (n=1)" in section(html, "claims")
    assert "± n/a" not in html and "sd " not in section(html, "accuracy")
    assert "No primary comparison: this run has 1 model (convlstm_c2d63)" in section(html, "claims")
    assert "Fewer than two models" in section(html, "accuracy")
    assert_no_nan(html)
    assert "needs the compared pair; this run has 1 model" in section(html, "per-class")
    assert "needs the compared pair; this run has 1 model" in section(html, "efficiency")
    assert "<td>n/a</td>" in section(html, "efficiency")  # the missing training time
    assert "not measured: no p3d* model in this configuration" in section(html, "claims")
    assert "No video was skipped or repaired" in section(html, "data")
    assert html.count("data:image/png;base64,") == 5


def test_missing_run_names_the_file(tmp_path):
    cfg, results = make_results(tmp_path, splits=(1,))
    (results / "split1" / "p3d63" / "seed0" / "evaluation.json").unlink()
    with pytest.raises(FileNotFoundError, match="split1/p3d63/seed0/evaluation.json"):
        build_report(cfg, _layout(cfg, results), out_dir=tmp_path / "out")


# ----------------------------------------------------------------------------- headless browser
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


class DevTools:
    """Chrome DevTools protocol over --remote-debugging-pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, exe: str, profile: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        # keep the child's ends well above 3 and 4 so dup2 onto 3 and 4 cannot clobber them
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 20)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 20)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def child_fds() -> None:
            os.dup2(hi_r, 3)   # dup2 makes them inheritable
            os.dup2(hi_w, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-extensions", "--mute-audio", f"--user-data-dir={profile}", "--remote-debugging-pipe",
                 "about:blank"]
        self.proc = subprocess.Popen([exe, *flags], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=child_fds, close_fds=False)
        os.close(hi_r)
        os.close(hi_w)
        self._buf, self._id, self.events = b"", 0, []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe: " + self.proc.stderr.read().decode()[-2000:])
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 15) -> dict:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 15) -> dict:
        deadline = time.monotonic() + timeout
        for e in self.events:
            if e.get("method") == method:
                return e
        while True:
            e = self._read(deadline)
            self.events.append(e)
            if e.get("method") == method:
                return e

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 (closing anyway)
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


CHECK_IMAGES = """(async () => {
  const imgs = Array.from(document.images);
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {count: imgs.length,
          broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60)),
          sections: Array.from(document.querySelectorAll('section')).map(s => s.id)};
})()"""


# Tables at the page's width: each one's scroll width against the room its box gives it, and the cells
# that refuse to wrap (white-space: nowrap) although their text has several words over 200 px.
CHECK_TABLES = """(() => {
  const textWidth = c => { const r = document.createRange(); r.selectNodeContents(c); return r.getBoundingClientRect().width; };
  return Array.from(document.querySelectorAll('table')).map(t => ({
  table: (t.closest('section') || {}).id + ' ' + t.className,
  width: t.scrollWidth, room: t.parentElement.clientWidth,
  unwrapped: Array.from(t.querySelectorAll('th, td')).filter(c => getComputedStyle(c).whiteSpace === 'nowrap'
      && c.textContent.trim().split(/\\s+/).length > 1 && textWidth(c) > 200)
      .map(c => c.textContent.trim().slice(0, 40))}));
})()"""
LAPTOP = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}


def open_in_browser(page: Path, profile: Path) -> dict:
    """Load a page in headless chromium at a laptop's width (1280 px); return its images, sections,
    tables (their widths against the room they have), errors and requested URLs."""
    chrome = DevTools(CHROMIUM, profile)
    try:
        target = chrome.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = chrome.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            chrome.send(f"{domain}.enable", session=session)
        chrome.send("Emulation.setDeviceMetricsOverride", LAPTOP, session=session)
        chrome.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        chrome.wait_event("Page.loadEventFired")
        result = chrome.send("Runtime.evaluate", {"expression": CHECK_IMAGES, "awaitPromise": True,
                                                  "returnByValue": True}, session=session)["result"]["value"]
        result["tables"] = chrome.send("Runtime.evaluate", {"expression": CHECK_TABLES, "returnByValue": True},
                                       session=session)["result"]["value"]
        time.sleep(0.3)  # let late console messages arrive
        chrome.send("Runtime.evaluate", {"expression": "1"}, session=session)
    finally:
        chrome.close()
    ev = chrome.events
    errors = [e["params"]["exceptionDetails"]["text"] for e in ev if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e["params"]["args"] for e in ev if e.get("method") == "Runtime.consoleAPICalled"
               and e["params"]["type"] in ("error", "assert")]
    errors += [e["params"]["entry"]["text"] for e in ev if e.get("method") == "Log.entryAdded"
               and e["params"]["entry"]["level"] == "error"]
    urls = [e["params"]["request"]["url"] for e in ev if e.get("method") == "Network.requestWillBeSent"]
    return {**result, "errors": errors, "urls": urls}


needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian: apt-get install -y chromium; CI's .ci/run installs it)")


@needs_chromium
def test_report_in_headless_browser(built, tmp_path):
    """What the page shows; how fast it loads is benchmarks/pipeline.py's (on the demo's real report)."""
    _, _, out, _ = built
    seen = open_in_browser(out / "index.html", tmp_path / "profile")
    assert seen["count"] == 5 and seen["broken"] == [], seen
    assert seen["sections"] == [s for s in SECTIONS if s != "experiments"]  # the fixture shows no experiment
    assert seen["errors"] == []
    assert seen["tables"], "no table seen"
    too_wide = [t for t in seen["tables"] if t["width"] > t["room"]]
    assert too_wide == [], f"tables wider than a 1280-px page gives them: {too_wide}"
    assert [t for t in seen["tables"] if t["unwrapped"]] == [], "cells that will not wrap"
    assert seen["urls"] and all(u.startswith(("file:", "data:")) for u in seen["urls"]), seen["urls"]


@needs_chromium
def test_browser_check_catches_failures(tmp_path):
    """The harness itself: a broken image, a console error and an exception are all reported."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body>'
                    '<img src="missing.png" alt="missing"><script>console.error("boom");'
                    'undefinedFunction();</script></body></html>')
    seen = open_in_browser(page, tmp_path / "profile")
    assert seen["broken"] == ["missing"]
    assert any("boom" in json.dumps(e) for e in seen["errors"])
    assert any("undefinedFunction" in json.dumps(e) or "Uncaught" in json.dumps(e) for e in seen["errors"])


# ----------------------------------------------------------------------------- the Snakemake rule
def _snakemake_workdir(tmp_path: Path) -> Path:
    """A working directory holding fixture results, as the workflow lays them out."""
    cfg, _ = make_results(tmp_path)
    # the Snakefile plans shards from the synthetic set's size (1,500 videos): one shard of them all, the
    # fixture's first (the report's shards come from audit.json's listed_videos: the same one)
    cfg["decode"]["videos_per_shard"] = 1500
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=True))
    return tmp_path


def _snakemake(workdir: Path, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                    reason="snakemake not installed in this environment")
def test_rule_renders_and_snakemake_report(tmp_path):
    """The rule alone, on fixture results (other rules disabled): outputs, then `snakemake --report`."""
    workdir = _snakemake_workdir(tmp_path)
    target = "results/demo/report/index.html"
    run = _snakemake(workdir, "--cores", "1", "--allowed-rules", "render_report", target)
    assert run.returncode == 0, run.stderr[-3000:]
    for name in REPORT_FILES.values():
        assert (workdir / "results" / "demo" / "report" / name).exists(), name
    rep = _snakemake(workdir, "--allowed-rules", "render_report", "--report", "report.zip", target)
    assert rep.returncode == 0, rep.stderr[-3000:]
    with zipfile.ZipFile(workdir / "report.zip") as z:
        names = {Path(n).name for n in z.namelist()}
    assert set(REPORT_FILES.values()) <= names


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("snakemake", path=str(Path(sys.executable).parent)) is None,
                    reason="snakemake not installed in this environment")
def test_dry_run_plans_the_report_from_scratch(tmp_path):
    """`snakemake -n report` in an empty working directory plans every stage up to the report."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    run = _snakemake(tmp_path, "-n", "report")
    assert run.returncode == 0, run.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", run.stdout, re.M))
    assert counts.get("render_report") == "1" and int(counts.get("evaluate", 0)) >= 2, run.stdout[-2000:]


def test_cluster_key_is_class_x_group_or_the_video():
    videos = pd.DataFrame({"video_id": [0, 1, 2], "class_name": ["A", "A", "B"], "group": [1, 1, 1]})
    keys, unit = cluster_key(videos)
    assert keys.to_dict() == {0: "A/g01", 1: "A/g01", 2: "B/g01"} and unit.startswith("class x group")
    keys, unit = cluster_key(videos.drop(columns="group"))  # a format without groups: every video on its own
    assert keys.to_dict() == {0: "0", 1: "1", 2: "2"} and "each test video is its own cluster" in unit
