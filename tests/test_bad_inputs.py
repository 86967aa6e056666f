"""Real-world damage, one generated file per case: each gets a documented repair or a clear error.

Every case from the README's Troubleshooting table: a zero-byte file, a truncated AVI, random bytes,
an audio-only container, a 1-frame video, a video shorter than the clip, odd and portrait
resolutions, H.264 inside AVI, variable frame rate, and the split-list problems (a listed file
that is missing, a class not in classInd.txt, a duplicated entry). A repaired video must hold
exactly the frames its repair says (frames encode their own index); an error must name the file,
the reason and the fix; `on_bad_video: skip` completes the shard and lists what it left out.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pandas as pd
import pytest

from support import BITS, index_video, read_index, run_cli, tiny_config, write_avi
from vidrec.data.shards import check_shard, verify_content_hash, write_shard
from vidrec.data.formats import ManifestError, ucf101
from vidrec.data.video import ClipSpec, VideoError, decode_clips, ffmpeg_exe, probe

SPEC = ClipSpec(frames=8, crop=192, size=32, sampling="uniform", clips_per_video=2)
SKIP_FIX = "decode.on_bad_video: skip"


def square_index_frame(i: int, width: int, height: int) -> np.ndarray:
    """Like conftest.index_frame, for any frame size: stripes fill the centred square that
    crop_resize keeps (side min(192, width, height)), so read_index decodes it after any crop."""
    img = np.full((height, width, 3), 128, np.uint8)
    side = min(192, width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    for b in range(BITS):
        img[y0:y0 + side, x0 + b * side // BITS:x0 + (b + 1) * side // BITS] = 255 if (i >> b) & 1 else 0
    return img


def ffmpeg_video(path: Path, frames: list[np.ndarray], *out_args: str, fps: float = 25) -> Path:
    """Encode RGB frames with the ffmpeg binary vidrec uses (the imageio-ffmpeg static build)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                    "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *out_args, str(path)],
                   input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def h264_encoder() -> str | None:
    """An H.264 encoder of this ffmpeg (conda-forge's LGPL builds have openh264, not x264)."""
    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return next((e for e in ("libx264", "libopenh264") if f" {e} " in out), None)


def indices(decoded) -> np.ndarray:
    return np.array([[read_index(f) for f in clip] for clip in decoded.clips])


# ----------------------------------------------------------------------------- the files
VFR = "if(lt(N,30),N/25,30/25+(N-30)/5)/TB"  # 30 frames at 25 fps, then 30 at 5 fps


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """Folder of generated damaged/odd files (relative names are the keys used below)."""
    d = tmp_path_factory.mktemp("bad_inputs")
    (d / "zero.avi").write_bytes(b"")
    full = index_video(d / "truncated.avi", 120).read_bytes()
    (d / "truncated.avi").write_bytes(full[:len(full) // 2])
    (d / "random.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=2", str(d / "audio_only.avi")], check=True)
    index_video(d / "one_frame.avi", 1)
    index_video(d / "short.avi", 5)
    write_avi(d / "qcif.avi", [square_index_frame(i, 176, 144) for i in range(40)])
    write_avi(d / "portrait.avi", [square_index_frame(i, 240, 320) for i in range(40)])
    ffmpeg_video(d / "odd.avi", [square_index_frame(i, 175, 143) for i in range(40)], "-c:v", "mpeg4")
    frames = [square_index_frame(i, 320, 240) for i in range(60)]
    h264 = h264_encoder()
    if h264:  # libx264 (the imageio-ffmpeg build, Debian's ffmpeg) writes B-frames too
        ffmpeg_video(d / "h264.avi", frames, "-c:v", h264, "-pix_fmt", "yuv420p")
    ffmpeg_video(d / "vfr.mp4", frames, "-vf", f"setpts='{VFR}'", "-fps_mode", "vfr", "-c:v", h264 or "mpeg4",
                 "-pix_fmt", "yuv420p")
    ffmpeg_video(d / "vfr.avi", frames, "-vf", f"setpts='{VFR}'", "-fps_mode", "vfr", "-c:v", "mpeg4")
    index_video(d / "good.avi", 50)
    return d


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("name, reason, fix", [
    ("zero.avi", "empty file (0 bytes)", "Re-copy or re-download it"),
    ("random.avi", "not a readable video (ffmpeg: Invalid data found when processing input)", "Re-download"),
    ("audio_only.avi", "only an audio stream (mp3), no video stream", "Replace it with the original video"),
    ("missing.avi", "file not found", "restore the file"),
])
def test_unusable_file_names_file_reason_and_fix(bad, name, reason, fix):
    with pytest.raises(VideoError) as err:
        decode_clips(bad / name, SPEC)
    text = str(err.value)
    assert text.startswith(f"{bad / name}: {reason}. "), text
    assert fix in text and SKIP_FIX in text
    assert err.value.path == str(bad / name) and err.value.reason == reason


def test_video_error_survives_the_trip_back_from_a_worker_process():
    """Pool workers return VideoError to the parent by pickling; one that cannot be rebuilt there
    kills multiprocessing.Pool's result thread and `vidrec decode --workers 2` waits forever."""
    import pickle

    err = pickle.loads(pickle.dumps(VideoError("a/b.avi", "empty file (0 bytes)", "Re-copy it")))
    assert (err.path, err.reason, err.fix, str(err)) == ("a/b.avi", "empty file (0 bytes)", "Re-copy it",
                                                         "a/b.avi: empty file (0 bytes). Re-copy it")


# ----------------------------------------------------------------------------- repairs
def test_truncated_avi_keeps_only_frames_before_the_damage(bad):
    d = decode_clips(bad / "truncated.avi", SPEC)
    m = d.repairs[0]
    assert m.startswith("truncated(120->") and d.n_frames < 60, m
    assert f"truncated(120->{d.n_frames})" == m and d.repairs == [m, m]
    # the concealed frames near the cut are gone: every stored frame is the frame it claims to be
    assert (indices(d) == d.frame_indices).all()
    assert d.frame_indices.max() < d.n_frames


@pytest.mark.parametrize("name, n, repair", [("one_frame.avi", 1, "repeated_frames(1_frames)"),
                                             ("short.avi", 5, "repeated_frames(5_frames)")])
def test_video_shorter_than_the_clip_repeats_frames(bad, name, n, repair):
    d = decode_clips(bad / name, SPEC)
    assert d.n_frames == n and d.repairs == [repair, repair]
    assert (indices(d) == d.frame_indices).all() and set(d.frame_indices.ravel()) == set(range(n))


def test_short_video_with_consecutive_clips_pads_the_last_frame(bad):
    spec = ClipSpec(frames=8, crop=192, size=32, sampling="consecutive", clips_per_video=2)
    d = decode_clips(bad / "short.avi", spec)
    assert d.repairs == ["padded_last_frame(5_frames)"] * 2
    assert d.frame_indices[0].tolist() == [0, 1, 2, 3, 4, 4, 4, 4] and (indices(d) == d.frame_indices).all()


@pytest.mark.parametrize("name, size, repair", [("qcif.avi", (176, 144), "crop_shrunk_to_144"),
                                                ("odd.avi", (175, 143), "crop_shrunk_to_143"),
                                                ("portrait.avi", (240, 320), "")])
def test_odd_resolutions_crop_the_largest_centred_square(bad, name, size, repair):
    info = probe(bad / name)
    assert (info["width"], info["height"]) == size
    d = decode_clips(bad / name, SPEC)
    assert d.repairs == [repair, repair] and d.clips.shape == (2, 8, 32, 32, 3)
    assert (indices(d) == d.frame_indices).all()


def test_h264_inside_avi_decodes_exactly(bad):
    if not (bad / "h264.avi").exists():
        pytest.skip(f"{ffmpeg_exe()} has no H.264 encoder")
    assert probe(bad / "h264.avi")["codec"] == "h264"
    d = decode_clips(bad / "h264.avi", SPEC)
    assert d.n_frames == 60 and d.repairs == ["", ""] and d.backend == "opencv"
    assert (indices(d) == d.frame_indices).all()


@pytest.mark.parametrize("name, repair", [
    ("vfr.mp4", "variable_frame_rate"),
    # AVI has no timestamps: ffmpeg stores the gaps as empty "dropped frame" entries (176 declared)
    ("vfr.avi", "frame_count_corrected(176->60);variable_frame_rate"),
])
def test_variable_frame_rate_is_sampled_by_frame_order(bad, name, repair):
    d = decode_clips(bad / name, SPEC)
    assert d.n_frames == 60 and d.repairs == [repair, repair]
    # uniform over the 60 stored frames, not over time (which would put 6 of 8 frames in the slow half)
    expected = np.floor((np.arange(8)[None] + (np.arange(2)[:, None] + 0.5) / 2) * 60 / 8).astype(int)
    assert (d.frame_indices == expected).all() and (indices(d) == expected).all()


# ----------------------------------------------------------------------------- shards
ALL = ["zero.avi", "truncated.avi", "random.avi", "audio_only.avi", "one_frame.avi", "short.avi", "qcif.avi",
       "portrait.avi", "odd.avi", "h264.avi", "vfr.mp4", "vfr.avi", "missing.avi", "good.avi"]
UNUSABLE = {"zero.avi": "empty file (0 bytes)", "random.avi": "not a readable video",
            "audio_only.avi": "only an audio stream", "missing.avi": "file not found"}


def _videos(folder: Path) -> pd.DataFrame:
    names = [n for n in ALL if n != "h264.avi" or (folder / n).exists()]
    return pd.DataFrame({"video_id": range(len(names)), "path": names, "label": [i % 3 for i in range(len(names))]})


def test_skip_mode_completes_the_shard_and_lists_skips_and_repairs(bad, tmp_path):
    out = tmp_path / "g01.h5"
    videos = _videos(bad)
    stats = write_shard(videos, bad, SPEC, out, on_bad_video="skip")
    skipped = {s["path"]: s["reason"] for s in stats["skipped"]}
    assert skipped.keys() == UNUSABLE.keys()
    for name, reason in UNUSABLE.items():
        assert skipped[name].startswith(reason)
    good = [p for p in videos["path"] if p not in UNUSABLE]
    attrs = check_shard(out, SPEC)
    assert attrs["n_videos"] == stats["videos"] == len(good) and attrs["n_clips"] == 2 * len(good)
    assert verify_content_hash(out)
    with h5py.File(out) as f:
        rows = dict(zip(f["video_ids"][::2].tolist(), [r.decode() for r in f["repairs"][::2]]))
        assert f["repairs"].shape == f["labels"].shape == (2 * len(good),)
    by_path = {videos["path"][v]: r for v, r in rows.items()}
    assert set(by_path) == set(good)
    assert by_path["one_frame.avi"] == "repeated_frames(1_frames)" and by_path["qcif.avi"] == "crop_shrunk_to_144"
    assert by_path["truncated.avi"].startswith("truncated(120->") and by_path["good.avi"] == ""
    assert by_path["portrait.avi"] == by_path.get("h264.avi", "") == ""
    # gGG.json lists every repaired video with its repair, as the shard's per-clip `repairs` holds it
    assert {r["path"]: r["repair"] for r in stats["repairs"]} == {p: r for p, r in by_path.items() if r}
    json.dumps(stats)  # the statistics are written as gGG.json

    # ... and the report's data section shows each of them
    from vidrec.report.sections.data import skipped_repaired

    table = skipped_repaired(SimpleNamespace(shard_stats=[{**stats, "clip_spec": "s", "group": 1}]))
    events = dict(zip(table["path"], table["event"]))
    assert {p for p, e in events.items() if e == "skipped"} == set(UNUSABLE)
    assert {p for p, e in events.items() if e == "repaired"} == {p for p, r in by_path.items() if r}


def test_fail_mode_names_the_first_bad_file_and_leaves_no_shard(bad, tmp_path):
    out = tmp_path / "g01.h5"
    with pytest.raises(VideoError, match=r"zero\.avi: empty file \(0 bytes\)"):
        write_shard(_videos(bad), bad, SPEC, out, on_bad_video="fail")
    assert list(tmp_path.iterdir()) == [], "no shard and no temporary file may remain"


def test_a_group_with_only_bad_videos_gives_an_empty_complete_shard(bad, tmp_path):
    videos = pd.DataFrame({"video_id": [0, 1], "path": ["zero.avi", "random.avi"], "label": [0, 1]})
    stats = write_shard(videos, bad, SPEC, tmp_path / "g02.h5", on_bad_video="skip")
    assert stats["videos"] == 0 and len(stats["skipped"]) == 2
    attrs = check_shard(tmp_path / "g02.h5", SPEC)
    assert attrs["n_videos"] == 0 and verify_content_hash(tmp_path / "g02.h5")


def test_cli_decode_error_and_skip_list(bad, tmp_path, tiny_dataset):
    """What a user sees: `vidrec decode` exits 2 naming file, reason and fix; skip mode writes gGG.json."""
    root = tmp_path / "data"
    shutil.copytree(tiny_dataset[1], root / "ucfTrainTestlist")
    (root / "UCF-101" / "Bad").mkdir(parents=True)
    names = ["zero.avi", "audio_only.avi", "short.avi"]
    for name in names:
        shutil.copy(bad / name, root / "UCF-101" / "Bad" / name)
    manifest = tmp_path / "videos.csv"
    pd.DataFrame({"video_id": range(3), "path": [f"Bad/{n}" for n in names], "class_name": "Bad",
                  "label": 0, "group": 1, "clip": range(1, 4)}).to_csv(manifest, index=False)
    cfg = tiny_config(tmp_path / "config.yaml", root)
    args = ["decode", "--manifest", str(manifest), "--bucket", "0", "--clip", "tiny8", "--out", str(tmp_path / "g01.h5"),
            "--stats", str(tmp_path / "g01.json")]
    proc = run_cli("--config", str(cfg), "--quiet", *args, check=False)
    assert proc.returncode == 2 and not (tmp_path / "g01.h5").exists()
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"vidrec decode: error: {root / 'UCF-101/Bad/zero.avi'}: empty file (0 bytes). ")
    assert SKIP_FIX in line
    run_cli("--config", str(cfg), "--quiet", "--set", "decode.on_bad_video=skip", *args)
    stats = json.loads((tmp_path / "g01.json").read_text())
    assert [s["path"] for s in stats["skipped"]] == ["Bad/zero.avi", "Bad/audio_only.avi"]
    assert stats["repairs"] == [{"video_id": 2, "path": "Bad/short.avi", "repair": "repeated_frames(5_frames)"}]
    assert check_shard(tmp_path / "g01.h5")["n_videos"] == 1


# ----------------------------------------------------------------------------- split lists
def build_manifest(videos_dir: Path, lists: Path, check_files: bool = True, missing: str = "fail"):
    m = ucf101.build(lists.parent, None, check_files_exist=check_files, missing=missing, lists=lists,
                     videos=videos_dir)
    return m.videos, m.membership


@pytest.fixture
def lists_copy(tiny_dataset, tmp_path) -> tuple[Path, Path]:
    videos, lists = tiny_dataset
    shutil.copytree(lists, tmp_path / "ucfTrainTestlist")
    shutil.copytree(videos, tmp_path / "UCF-101")
    return tmp_path / "UCF-101", tmp_path / "ucfTrainTestlist"


def _append(path: Path, line: str) -> int:
    """Append a CRLF line; return its 1-based line number."""
    text = path.read_bytes().decode()
    path.write_bytes((text + line + "\r\n").encode())
    return len(text.splitlines()) + 1


def test_missing_listed_file_fails_naming_it_or_is_skipped(lists_copy):
    videos_dir, lists = lists_copy
    gone = "Alpha/v_Alpha_g03_c01.avi"
    (videos_dir / gone).unlink()
    with pytest.raises(ManifestError) as err:
        build_manifest(videos_dir, lists)
    text = str(err.value)
    assert f"{videos_dir / gone} is listed but missing on disk; restore it" in text
    assert "testlist01.txt:" in text  # the first list naming it, with its line
    assert SKIP_FIX in text
    # decode.on_bad_video: skip -> the manifest keeps it; the decode stage lists it as skipped
    videos, _ = build_manifest(videos_dir, lists, missing="skip")
    group = videos[videos["group"] == 3]
    assert gone in set(group["path"])
    stats = write_shard(group, videos_dir, SPEC, lists.parent / "g03.h5", on_bad_video="skip")
    assert [(s["path"], s["reason"]) for s in stats["skipped"]] == [(gone, "file not found")]
    assert check_shard(lists.parent / "g03.h5")["n_videos"] == len(group) - 1


def test_class_not_in_class_index_names_file_line_and_fix(lists_copy):
    videos_dir, lists = lists_copy
    line = _append(lists / "trainlist01.txt", "Gamma/v_Gamma_g08_c01.avi 3")
    with pytest.raises(ManifestError) as err:
        build_manifest(videos_dir, lists, check_files=False)
    assert (f"trainlist01.txt:{line}: class folder 'Gamma' is not in classInd.txt; add '<id> Gamma' to "
            "classInd.txt or remove the line") in str(err.value)


def test_duplicated_list_entry_names_both_lines(lists_copy):
    videos_dir, lists = lists_copy
    first = (lists / "testlist01.txt").read_bytes().decode().splitlines()[0].split()[0]
    line = _append(lists / "testlist01.txt", first)
    with pytest.raises(ManifestError) as err:
        build_manifest(videos_dir, lists)
    assert (f"testlist01.txt:{line}: duplicate entry {first} (first at testlist01.txt:1); "
            "delete one of the lines") in str(err.value)


# ----------------------------------------------------------------------------- a quiet terminal
# What FFmpeg inside OpenCV and OpenCV's own logging write straight to fd 2 on these files
# (truncated.avi: "[mpeg4 @ 0x...] 2. marker bit missing in 3. esc" / "Error at MB: 236";
# random.avi, audio_only.avi: "[ WARN:0@0.1] global cap.cpp:212 open VIDEOIO(FFMPEG): ...").
CHATTER = ("[mpeg4 @", "Error at MB", "WARN:", "global cap", "[OPENCV:FFMPEG")
PREDICT_FILES = ("truncated.avi", "random.avi", "audio_only.avi", "good.avi", "vfr.mp4")
LOG_LINE = re.compile(r"\d\d:\d\d:\d\d (INFO|DEBUG) ")


@pytest.fixture(scope="module")
def predict_model(tmp_path_factory) -> Path:
    from support import make_model_file

    return make_model_file(tmp_path_factory.mktemp("quiet_model") / "model.pt")


def _predict(bad: Path, model: Path, *flags: str, workers: str = "1", output: Path | None = None):
    """`vidrec predict` as a user runs it: a subprocess, so what C code writes to fd 2 is captured too."""
    return run_cli(*flags, "predict", "--model", str(model), *(str(bad / n) for n in PREDICT_FILES),
                   "--workers", workers, "--threads", "1", "--quiet",
                   *(["--output", str(output)] if output else []))


@pytest.mark.parametrize("workers", ["0", "1"])  # decoding in the main process, and in a worker process
def test_predict_stderr_has_vidrec_lines_and_no_library_chatter(bad, predict_model, tmp_path, workers):
    out = tmp_path / "preds.csv"
    proc = _predict(bad, predict_model, workers=workers, output=out)
    for text in CHATTER:
        assert text not in proc.stderr and text not in proc.stdout, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if not LOG_LINE.match(ln)]
    repaired = [ln for ln in errors if ln.startswith("repaired: ")]
    assert [ln for ln in errors if ln not in repaired] == [
        f"unreadable: {bad / 'random.avi'}: not a readable video (ffmpeg: Invalid data found when processing input)",
        f"unreadable: {bad / 'audio_only.avi'}: only an audio stream (mp3), no video stream"]
    # the damage the decoder complained about reaches the terminal as vidrec's repair of that file
    assert any(ln.startswith(f"repaired: {bad / 'truncated.avi'}: truncated(120->") for ln in repaired), repaired
    assert f"repaired: {bad / 'vfr.mp4'}: variable_frame_rate" in repaired
    classified = [ln.split("\t")[0] for ln in proc.stdout.splitlines()]
    assert classified == [str(bad / n) for n in ("truncated.avi", "good.avi", "vfr.mp4")], proc.stdout
    # the damage the decoder complained about is vidrec's repair of that file
    rows = pd.read_csv(out, keep_default_na=False).set_index("video")
    assert rows.loc[str(bad / "truncated.avi"), "repairs"].startswith("truncated(120->")


def test_predict_verbose_shows_the_libraries_messages(bad, predict_model):
    proc = _predict(bad, predict_model, "-v")
    assert "[mpeg4 @" in proc.stderr and "global cap" in proc.stderr, proc.stderr
    assert "[OPENCV:FFMPEG" not in proc.stdout  # raw messages go to stderr; stdout stays the predictions
    assert f"unreadable: {bad / 'random.avi'}: not a readable video" in proc.stderr
    assert len(proc.stdout.splitlines()) == 3
