"""`vidrec predict`: output formats, unreadable files, --clips averaging, equality with the shard path.

The model files are built here (random weights, the layout `vidrec train` writes), so no training
runs; the videos are tiny generated AVI/MP4 files at several resolutions and frame rates.
"""
from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from support import PREDICT_CLASSES, PREDICT_CROP, index_frame, make_model_file, write_avi
from vidrec.cli import main
from vidrec.data.shards import write_shard
from vidrec.data.video import ClipSpec, decode_clips, sample_indices
from vidrec.inference.decode import DecodePool, clip_plan, collect_videos
from vidrec.inference.predict import Predictor, measure_end_to_end, predict_command, result_json

def moving_frames(n: int, w: int, h: int, seed: int) -> list[np.ndarray]:
    """Index-striped frames (see conftest) with a moving block, so clips differ by content."""
    rng = np.random.default_rng(seed)
    tint = rng.integers(0, 60, 3)
    out = []
    for i in range(n):
        f = np.clip(index_frame(i, w, h).astype(int) + tint, 0, 255).astype(np.uint8)
        x = (i * 5) % max(w - 20, 1)
        f[h // 3:h // 3 + 20, x:x + 20] = (250, 30, 30)
        out.append(f)
    return out


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict_videos")
    folder = root / "in"
    v = {
        "avi": write_avi(folder / "a_320x240_25fps.avi", moving_frames(40, 320, 240, 1), fps=25),
        "mp4": write_avi(folder / "sub" / "b_400x300_30fps.mp4", moving_frames(45, 400, 300, 2), fps=30,
                         fourcc="mp4v"),
        "small": write_avi(folder / "c_176x144_15fps.avi", moving_frames(9, 176, 144, 3), fps=15, fourcc="MJPG"),
    }
    corrupt = folder / "d_corrupt.avi"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST" + os.urandom(3000))
    (folder / "notes.txt").write_text("not a video")
    v["corrupt"], v["folder"], v["root"] = corrupt, folder, root
    return v


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return make_model_file(tmp_path_factory.mktemp("predict_model") / "model.pt")


@pytest.fixture(scope="module")
def predictor(model_file) -> Predictor:
    torch.set_num_threads(1)
    return Predictor(model_file, device="cpu")


def _reference_scores(predictor: Predictor, clips: np.ndarray) -> np.ndarray:
    """The model on uint8 clips, the way `vidrec evaluate` scores shard clips."""
    from vidrec.data.dataset import augment_clips, normalize_clips

    pre = predictor.preprocess  # the model file's settings; the steps are spelled out here
    x = normalize_clips(torch.from_numpy(clips).permute(0, 4, 1, 2, 3).contiguous(), pre.mean, pre.std)
    x = augment_clips(x, pre.crop, False, train=False)
    with torch.no_grad():
        return torch.softmax(predictor.model(x), 1).numpy()


# ----------------------------------------------------------------------------- the CLI
def test_cli_prints_topk_writes_csv_and_reports_the_corrupt_file(videos, model_file, tmp_path, capsys):
    out = tmp_path / "preds.csv"
    rc = main(["predict", "--model", str(model_file), str(videos["folder"]), "--top-k", "2",
               "--workers", "2", "--output", str(out), "--quiet", "--threads", "1"])
    proc = capsys.readouterr()
    assert rc == 0, proc.err
    lines = [ln for ln in proc.out.splitlines() if ln.strip()]
    assert len(lines) == 3, proc.out  # the three readable videos, one line each, in sorted order
    assert [ln.split("\t")[0] for ln in lines] == sorted(str(videos[k]) for k in ("avi", "mp4", "small"))
    for ln in lines:
        fields = ln.split("\t")[1].split("  ")
        assert len(fields) == 2 and all(f.split()[0] in PREDICT_CLASSES for f in fields)
    assert f"unreadable: {videos['corrupt']}:" in proc.err
    assert "notes.txt" not in proc.err + proc.out
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["video", "clips", "crops", "n_frames", "top1_class", "top1_label", "top1_prob",
                                "top2_class", "top2_label", "top2_prob", "repairs", "error"]
    ok = df[df["error"] == ""]
    assert len(df) == 4 and len(ok) == 3
    assert df.loc[df["error"] != "", "video"].tolist() == [str(videos["corrupt"])]
    assert (ok["top1_prob"].astype(float) >= ok["top2_prob"].astype(float)).all()
    assert (ok["top1_prob"].astype(float) + ok["top2_prob"].astype(float) <= 1 + 1e-6).all()
    assert set(ok["top1_class"]) <= set(PREDICT_CLASSES) and (ok["clips"] == 1).all()
    small = ok[ok["video"] == str(videos["small"])].iloc[0]
    assert int(small["n_frames"]) == 9 and "crop_shrunk_to_144" in small["repairs"]


def test_json_output_and_per_file_errors(videos, model_file, tmp_path, capsys):
    out = tmp_path / "preds.json"
    missing = tmp_path / "nope.mkv"
    run = predict_command(model_file, [str(videos["mp4"]), str(missing), str(videos["corrupt"]),
                                       str(videos["avi"])], clips=2, top_k=5, workers=0, device="cpu",
                          output=out, progress=False)
    err = capsys.readouterr().err
    assert f"unreadable: {missing}: file not found" in err and f"unreadable: {videos['corrupt']}:" in err
    data = json.loads(out.read_text())
    assert [v["video"] for v in data["videos"]] == [str(videos["mp4"]), str(videos["avi"])]
    assert {e["video"] for e in data["errors"]} == {str(missing), str(videos["corrupt"])}
    assert all(e["reason"] for e in data["errors"])
    for v in data["videos"]:
        assert v["clips"] == 2 and len(v["top"]) == 3  # top-5 of 3 classes
        probs = [t["probability"] for t in v["top"]]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1, abs=1e-5)
        assert [PREDICT_CLASSES[t["label"]] for t in v["top"]] == [t["class_name"] for t in v["top"]]
        assert np.array(v["frame_indices"]).shape == (2, 8)
    assert data["clip"]["size"] == 40 and data["clip"]["crop_after_decode"] == PREDICT_CROP
    assert run.videos_per_s > 0


def test_nothing_readable_exits_2(videos, model_file, capsys):
    rc = main(["predict", "--model", str(model_file), str(videos["corrupt"]), "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "no video could be classified" in err and str(videos["corrupt"]) in err


# ----------------------------------------------------------------------------- same bytes as the shards
def test_predictions_equal_the_shard_path(videos, predictor, tmp_path):
    """Decode through `write_shard` (what training/evaluation read) and through predict: same bytes, same scores."""
    names = ["avi", "mp4", "small"]
    table = pd.DataFrame({"video_id": range(3), "path": [str(videos[k].relative_to(videos["folder"])) for k in names],
                          "label": 0, "group": 1})
    shard = tmp_path / "g01.h5"
    write_shard(table, videos["folder"], predictor.spec, shard)
    with h5py.File(shard, "r") as f:
        stored, vid, cidx = f["clips"][:], f["video_ids"][:], f["clip_index"][:]
    seen = {}
    run1 = predictor.predict([videos[k] for k in names], clips=1, batch=2, workers=0,
                             on_video=lambda p, d: seen.__setitem__(d.path, d.clips))
    runk = predictor.predict([videos[k] for k in names], clips=2, batch=4, workers=0)
    for i, k in enumerate(names):
        rows = stored[vid == i]
        assert rows.shape[0] == 2 and (cidx[vid == i] == [0, 1]).all()
        centre = rows[predictor.spec.centre_clip]
        assert np.array_equal(seen[str(videos[k])][0], centre), f"{k}: predict decoded other bytes than the shard"
        ref = _reference_scores(predictor, rows)
        np.testing.assert_allclose(run1.predictions[i].probs, ref[1], atol=1e-5)       # clip level
        np.testing.assert_allclose(runk.predictions[i].probs, ref.mean(0), atol=1e-5)  # video level
    # a different answer per video: the equality above is not the same number three times
    assert not np.allclose(run1.predictions[0].probs, run1.predictions[1].probs)


def test_clips_k_averages_k_clips(videos, predictor):
    spec3 = replace(predictor.spec, clips_per_video=3)
    run = predictor.predict([videos["avi"]], clips=3, workers=0)
    p = run.predictions[0]
    assert p.clip_probs.shape == (3, 3)
    np.testing.assert_allclose(p.probs, p.clip_probs.mean(0), rtol=1e-6)
    expected_idx, _ = sample_indices(40, spec3)
    assert np.array_equal(p.frame_indices, expected_idx) and len({tuple(r) for r in expected_idx}) == 3
    ref = _reference_scores(predictor, decode_clips(videos["avi"], spec3).clips)
    np.testing.assert_allclose(p.clip_probs, ref, atol=1e-5)
    assert not np.allclose(ref[0], ref[2])  # the clips really differ
    one = predictor.predict([videos["avi"]], clips=1, workers=0).predictions[0]
    assert not np.allclose(one.probs, p.probs)


def test_crops_3_average_clips_x_crops_single_views(videos, predictor, tmp_path):
    """--clips 2 --crops 3: 6 views, each the model on one crop of one decoded clip; their mean is the answer."""
    from vidrec.data.dataset import normalize_clips
    from vidrec.core.errors import VidrecError

    run = predictor.predict([videos["avi"]], clips=2, crops=3, workers=0)
    p = run.predictions[0]
    assert p.view_probs.shape == (2, 3, 3) and run.crops == 3
    clips = torch.from_numpy(decode_clips(videos["avi"], replace(predictor.spec, clips_per_video=2)).clips)
    x = clips.permute(0, 4, 1, 2, 3)
    pre = predictor.preprocess
    with torch.no_grad():  # 40x40 frames, crop 32: along the width at x = 0, 4, 8, centred vertically
        single = np.stack([torch.softmax(predictor.model(normalize_clips(x[..., 4:36, x0:x0 + 32], pre.mean,
                                                                          pre.std)), 1).numpy()
                           for x0 in (0, 4, 8)], axis=1)
    np.testing.assert_allclose(p.view_probs, single, atol=1e-5)
    np.testing.assert_allclose(p.probs, single.reshape(6, -1).mean(0), atol=1e-5)
    assert not np.allclose(single[:, 0], single[:, 2])
    one = predictor.predict([videos["avi"]], clips=2, workers=0).predictions[0]  # 1 crop: the centre one
    np.testing.assert_allclose(one.view_probs[:, 0], single[:, 1], atol=1e-5)
    assert result_json(run, predictor, 2)["views"] == "2 clips x 3 crops"
    whole = Predictor(make_model_file(tmp_path / "whole.pt", crop=None), device="cpu")
    with pytest.raises(VidrecError, match="whole stored 40x40 frame"):
        whole.predict([videos["avi"]], crops=3, workers=0)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_uniform_odd_centre_clip_is_the_one_clip_spec(k):
    """clip_plan decodes only the centre clip for odd uniform specs: the frames must be identical."""
    spec = ClipSpec(frames=16, size=32, clips_per_video=k)
    plan, keep = clip_plan(spec, 1)
    assert plan.clips_per_video == 1 and keep == [0]
    for n in list(range(1, 80)) + [173, 251, 1000]:
        assert np.array_equal(sample_indices(n, spec)[0][k // 2], sample_indices(n, plan)[0][0]), (k, n)


def test_clip_plan_even_and_consecutive_keep_the_stored_centre():
    for spec in (ClipSpec(clips_per_video=2), ClipSpec(sampling="consecutive", clips_per_video=10)):
        plan, keep = clip_plan(spec, 1)
        assert plan == spec and keep == [spec.centre_clip]
        plan, keep = clip_plan(spec, 4)
        assert plan.clips_per_video == 4 and keep == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        clip_plan(ClipSpec(), 0)


# ----------------------------------------------------------------------------- the pool
def test_worker_pool_matches_in_process_in_input_order(videos, predictor):
    paths = [videos["small"], videos["corrupt"], videos["avi"], videos["mp4"]]
    a = predictor.predict(paths, clips=2, batch=3, workers=0)
    b = predictor.predict(paths, clips=2, batch=3, workers=2)
    assert [p.video for p in a.predictions] == [p.video for p in b.predictions] == \
        [str(videos[k]) for k in ("small", "avi", "mp4")]
    for x, y in zip(a.predictions, b.predictions):
        np.testing.assert_allclose(x.probs, y.probs, atol=1e-6)
    assert [e[0] for e in b.errors] == [str(videos["corrupt"])] and b.workers == 2


HELPERS = """
import os
import time
from pathlib import Path
from vidrec.inference.decode import decode_task

def crashing_decode(task):
    # kills its worker process on files named *crash*, as a crashing decoder would
    if "crash" in Path(task[1]).name:
        os._exit(1)
    return decode_task(task)

def wait_for(path, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} never happened")
        time.sleep(0.005)

def handshake_decode(task):
    # the second video's decode waits until the model scores the first, then says it has started
    path = Path(task[1])
    if path.name.startswith("v1"):
        wait_for(path.parent / "model_started", "the model never started while a decode was pending")
        (path.parent / "decode1_started").touch()
    return decode_task(task)
"""


@pytest.fixture
def helpers(tmp_path, monkeypatch):
    """Task functions in a module without torch, so worker processes start fast."""
    (tmp_path / "vidrec_test_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    import vidrec_test_helpers

    return vidrec_test_helpers


def test_a_crashing_decoder_is_isolated(videos, predictor, tmp_path, helpers):
    crash = tmp_path / "crash.avi"
    crash.write_bytes(videos["avi"].read_bytes())
    spec, keep = clip_plan(predictor.spec, 1)
    paths = [videos["avi"], crash, videos["mp4"], videos["small"], videos["avi"]]
    tasks = [(i, str(p), spec, tuple(keep), 1) for i, p in enumerate(paths)]
    with DecodePool(2, fn=helpers.crashing_decode, window=4) as pool:
        out = list(pool.imap(tasks))
    assert [d.index for d in out] == list(range(5))
    assert [d.error is None for d in out] == [True, False, True, True, True]
    assert "crashed" in out[1].error
    assert np.array_equal(out[0].clips, out[4].clips)


def test_decoding_overlaps_the_model(videos, predictor, helpers, monkeypatch, tmp_path):
    """With a worker, the next video is decoded while the model scores the previous one: a handshake
    (video 1's decode waits for the model to start on video 0; the model waits for that decode to
    start) that only a pipeline completes, so the check is of order, never of speed (how much the
    overlap gains is `benchmarks/predict.py`'s "model off the CPU" figure). test_worker_pool_matches_
    in_process_in_input_order checks that pipelined and serial give the same predictions."""
    folder = tmp_path / "overlap"
    folder.mkdir()
    paths = [folder / f"v{i}.avi" for i in range(4)]
    for p in paths:
        p.write_bytes(videos["small"].read_bytes())
    calls = []

    def model(clips, crops=1):
        if not calls:
            (folder / "model_started").touch()
            helpers.wait_for(folder / "decode1_started", "video 1's decode never started while the model ran")
        calls.append(len(clips))
        return np.full((len(clips), len(PREDICT_CLASSES)), 1 / len(PREDICT_CLASSES))

    monkeypatch.setattr(predictor, "scores", model)
    with DecodePool(1, fn=helpers.handshake_decode, window=4) as pool:
        run = predictor.predict(paths, batch=1, workers=1, pool=pool)
    assert [p.video for p in run.predictions] == [str(p) for p in paths] and not run.errors
    assert calls == [1, 1, 1, 1]


def test_collect_videos(videos, tmp_path):
    found, problems, any_folder = collect_videos([videos["folder"], tmp_path / "missing.avi", tmp_path])
    assert any_folder and [p.name for p in found] == ["a_320x240_25fps.avi", "c_176x144_15fps.avi",
                                                      "d_corrupt.avi", "b_400x300_30fps.mp4"]
    assert [r for _, r in problems][0] == "file not found" and "no video files" in problems[1][1]


# ----------------------------------------------------------------------------- speed for evaluate / report
def test_measure_end_to_end(videos, model_file):
    out = measure_end_to_end(model_file, [videos["avi"], videos["mp4"], videos["small"]] * 2, batch=4,
                             workers=1, device="cpu", threads=1)
    assert out["infer_videos_per_s_end_to_end"] > 0 and out["end_to_end_videos"] == 6
    assert out["end_to_end_unreadable"] == 0 and out["end_to_end_workers"] == 1
    assert out["end_to_end_clips_per_video"] == 1 and out["end_to_end_device"] == "cpu"


def test_report_efficiency_shows_end_to_end_or_na():
    from vidrec.report.sections.efficiency import efficiency_table
    from vidrec.report.summary import LEVELS, model_summary

    base = {"split": 1, "seed": 0, "arch": "p3d63", "protocol": "thesis", "clip_spec": "demo16", "device": "cpu",
            "infer_clips_per_s": 10.0, "infer_videos_per_s_one_clip": 10.0, "threads": 2}
    runs = pd.DataFrame([{**base, "model": "with", "infer_videos_per_s_end_to_end": 7.31},
                         {**base, "model": "without"}])
    from vidrec.plan.config import load_config

    # a Results with two runs' evaluation.json rows, the repository's config and no per-video outcomes
    no_predictions = pd.DataFrame(columns=["model", "split", "seed", "video_id", *LEVELS.values()])
    known = dict(cfg=load_config(), predictions=no_predictions, videos=pd.DataFrame(columns=["video_id"]))
    res = SimpleNamespace(runs=runs, models=["with", "without"], **known)
    summary = model_summary(res, 21)
    data, show = efficiency_table(res, summary)
    col = "Videos/s, end-to-end (decode incl., 1 clip)"
    assert show[col].tolist() == ["7.3", "n/a"]
    assert data["videos_per_s_end_to_end"].iloc[0] == 7.31 and np.isnan(data["videos_per_s_end_to_end"].iloc[1])
    # absent everywhere (evaluation.json files from before the measurement): the column says n/a
    summary = model_summary(SimpleNamespace(runs=runs.drop(columns="infer_videos_per_s_end_to_end"),
                                                   models=["with", "without"], **known), 21)
    assert efficiency_table(res, summary)[1][col].tolist() == ["n/a", "n/a"]
