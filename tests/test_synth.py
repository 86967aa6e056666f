"""Tests of the synthetic demo dataset generator (vidrec.data.synth).

Besides layout, list format, determinism and atomic writes, learning tests check the dataset's
scientific point on a small generated set (10 classes x 25 groups x 2 clips at 160x120, decoded
like the pipeline: 16 frames spread over the video, centre crop, INTER_AREA resize to 32x32):

- frame-only models (nearest neighbours on pixels, a small 2D CNN; per-frame votes/scores summed
  over the video) trained on split-1 train stay near chance on split-1 test, for the classes and for
  each factor (rotation sense, speed profile), and so does the nearest-neighbour model with leaked
  groups (a group's look is shared by all its classes);
- a temporal model (logistic regression on optical-flow features of consecutive sampled frames) is
  far above chance, and falls to chance when the frame order is shuffled.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
torch = pytest.importorskip("torch")

from support import REAL_LISTS  # noqa: E402
from vidrec.data import synth  # noqa: E402
from vidrec.data.synth.render import crop_box  # noqa: E402

SMALL = dict(width=80, height=60, fps=8, min_seconds=0.5, max_seconds=1.0, progress=False)


def _hash_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _read_lines(path: Path) -> list[str]:
    data = path.read_bytes()
    assert data.endswith(b"\r\n"), f"{path.name} must end with CRLF"
    assert b"\n" not in data.replace(b"\r\n", b""), f"{path.name}: bare LF"
    assert b"\r" not in data.replace(b"\r\n", b""), f"{path.name}: bare CR"
    return data.decode("ascii").split("\r\n")[:-1]


# ----------------------------------------------------------------------------- class design
def test_class_definitions_and_names(tmp_path):
    assert synth.MAX_CLASSES == len(synth.CLASS_DEFS) == 2 * len(synth.PROFILES)
    names = [c.name for c in synth.CLASS_DEFS]
    assert len(set(names)) == len(names)
    for n in names:
        assert re.fullmatch(r"(?:[A-Z][a-z]+)+", n), n  # CamelCase like UCF101
    for n in range(2, synth.MAX_CLASSES + 1):
        defs = synth.class_definitions(n)
        assert [d.name for d in defs] == names[:n]
        assert synth.class_names(n) == sorted(names[:n], key=str.lower)
    # two classes = the same profile in both senses
    a, b = synth.class_definitions(2)
    assert a.profile == b.profile and a.sense == -b.sense
    for bad in (0, 1, synth.MAX_CLASSES + 1, 101):
        with pytest.raises(ValueError, match="supports 2 to"):
            synth.class_definitions(bad)
    with pytest.raises(ValueError):
        synth.generate_dataset(tmp_path / "never", tmp_path / "never",
                               classes=synth.MAX_CLASSES + 1)
    with pytest.raises(ValueError, match="even"):
        synth.generate_dataset(tmp_path / "never", tmp_path / "never", width=81)


def test_profile_set_is_closed_under_time_reversal():
    """Time reversal maps every class to another class with the same parameter distribution."""
    for prof, rev in synth.PROFILES.items():
        assert synth.PROFILES[rev] == prof
    u = np.linspace(0.0, 1.0, 201)
    for group in range(1, 4):
        for clip in range(1, 4):
            m = synth.sample_motion(0, group, 0, clip)
            for prof, rev in synth.PROFILES.items():
                g = synth.profile_curve(prof, u, m)
                assert g[0] == pytest.approx(0.0, abs=1e-12)
                m_rev = synth.time_reversed_motion(m)
                g_rev = synth.profile_curve(rev, u, m_rev)
                # reversed path, measured from its own start: g(1 - u) - g(1) == -(g_rev(u))
                np.testing.assert_allclose(g[::-1] - g[-1], -g_rev, atol=1e-9, err_msg=prof)


def test_motion_between_sampled_frames_is_visible_and_unaliased():
    """16 frames spread over a video: the wheel turns by a few px at 64x64 and never aliases, not even
    between every other frame (the P3D / ConvLSTM-C2D stems max-pool pairs of frames first)."""
    t = (np.arange(16) + 0.5) / 16
    steps, rim_px = [], []
    for cdef in synth.CLASS_DEFS:
        for group in range(1, 11):
            m = synth.sample_motion(0, group, cdef.index, 1)
            theta = synth.trajectory(cdef, m, t)
            d = np.abs(np.diff(theta))
            steps.append(np.abs(theta[2:] - theta[:-2]).max())
            rim_px.append(d[d > 1e-9].mean() * m.radius * 64)
    # blades repeat every 90 degrees at most: a step below 45 degrees is unambiguous
    assert max(steps) < math.radians(40)
    assert np.median(rim_px) >= 2.5, "moving frames should differ by a few pixels at 64x64"


def test_motion_and_appearance_distributions_do_not_depend_on_class():
    """Every parameter is drawn from the same distribution for every class."""
    def motion_row(m):
        wheels = [*m.wheels[0][:2], *(v for w in m.wheels[1:] for v in w)]  # wheel 0's offset is 0
        return [*wheels, m.radius, m.theta0, m.sweep, m.rest, m.rest_shift, m.back, m.back_first, m.ramp,
                m.n_frames]

    # one look per group, whatever the class: outside the crop (where nothing moves) two classes'
    # videos of a group are the same picture, and another group's differ
    a, b = (synth.render_video(c, 4, 1, width=80, height=60, fps=8, min_seconds=0.5, max_seconds=0.5)[0] for c in synth.CLASS_DEFS[:2])
    other = synth.render_video(synth.CLASS_DEFS[0], 5, 1, width=80, height=60, fps=8, min_seconds=0.5, max_seconds=0.5)[0]
    border = np.ones(a.shape[:2], bool)
    border[6:54, 16:64] = False  # the 48x48 centre crop of 80x60
    assert np.array_equal(a[border], b[border]) and not np.array_equal(a[border], other[border])
    for rows in (
        [[motion_row(synth.sample_motion(0, g, c.index, k)) for g in range(1, 26) for k in range(1, 9)]
         for c in synth.CLASS_DEFS[:4]],
    ):
        per_class = [np.array(r, dtype=float) for r in rows]
        pooled = np.concatenate(per_class)
        sd = pooled.std(0) + 1e-9
        for arr in per_class:  # 200 draws each: means agree within ~4 standard errors
            z = np.abs(arr.mean(0) - pooled.mean(0)) / sd
            assert np.all(z < 0.3), z
    # theta0 uniform: the wheel angle at any time is uniform whatever the class
    ang = np.array([synth.sample_motion(0, g, c.index, k).theta0
                    for c in synth.CLASS_DEFS for g in range(1, 26) for k in range(1, 3)])
    hist = np.histogram(ang, bins=8, range=(0, 2 * np.pi))[0]
    assert ang.min() >= 0 and ang.max() < 2 * np.pi and hist.min() > 0.6 * hist.mean()


def test_everything_that_moves_stays_inside_the_centre_crop():
    w, h = 160, 120
    x0, y0, side = crop_box(w, h)
    inside = np.zeros((h, w), bool)
    inside[round(y0):round(y0 + side), round(x0):round(x0 + side)] = True
    for cdef in synth.CLASS_DEFS[::3]:
        for group in (1, 9, 17, 25):
            app = synth.sample_appearance(0, group)
            bg = synth.render_background(app, w, h)
            frames = synth.render_video(cdef, group, 1, width=w, height=h, fps=8, seed=0)
            moving = (frames != frames[:1]).any(axis=(0, 3))
            drawn = (frames != bg[None]).any(axis=(0, 3))
            assert moving.any()
            assert not drawn[~inside].any(), (cdef.name, group)


def test_rendering_depends_only_on_the_angle():
    """No frame-index dependent rendering: a clip's frames are render_frame of their angles."""
    cdef = synth.CLASS_DEFS[1]
    app = synth.sample_appearance(3, 5)
    m = synth.sample_motion(3, 5, cdef.index, 1, fps=8)
    bg = synth.render_background(app, 96, 72)
    a = synth.render_frame(bg, app, m, 1.234)
    assert np.array_equal(a, synth.render_frame(bg, app, m, 1.234)) and not np.array_equal(a, bg)
    frames = synth.render_video(cdef, 5, 1, width=96, height=72, fps=8, seed=3)
    theta = synth.trajectory(cdef, m, synth.frame_times(m.n_frames))
    assert len(frames) == m.n_frames
    for i in (0, len(frames) // 2, len(frames) - 1):
        assert np.array_equal(frames[i], synth.render_frame(bg, app, m, theta[i]))
    # rotating by a full blade period gives the same picture (up to antialiasing rounding)
    b = synth.render_frame(bg, app, m, 1.234 + 2 * math.pi / app.blades)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 40 and np.mean(a != b) < 0.01


# ----------------------------------------------------------------------------- layout and lists
@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth_small")
    summary = synth.generate_dataset(root / "UCF-101", root / "ucfTrainTestlist", classes=4,
                                     groups=25, clips_per_group=2, seed=3, **SMALL)
    return root, summary


def test_layout_and_lists(small_set):
    root, summary = small_set
    videos, lists = root / "UCF-101", root / "ucfTrainTestlist"
    assert sorted(p.name for p in lists.iterdir()) == sorted(
        ["classInd.txt"] + [f"{k}list0{s}.txt" for k in ("train", "test") for s in (1, 2, 3)])
    ind = [line.split(" ") for line in _read_lines(lists / "classInd.txt")]
    assert [int(i) for i, _ in ind] == [1, 2, 3, 4]
    names = [n for _, n in ind]
    assert names == sorted(names, key=str.lower) == summary["class_names"]
    assert set(names) == {d.name for d in synth.class_definitions(4)}
    label = {n: i for i, n in ind}

    all_videos = {str(p.relative_to(videos)) for p in videos.rglob("*.avi")}
    assert len(all_videos) == 4 * 25 * 2 == summary["videos"]
    pat = re.compile(r"([A-Za-z]+)/v_\1_g(\d\d)_c(\d\d)\.avi")
    for rel in all_videos:
        mo = pat.fullmatch(rel)
        assert mo, rel
        assert 1 <= int(mo[2]) <= 25 and 1 <= int(mo[3]) <= 2
    assert not [p for p in videos.rglob("*") if p.name.startswith(".") and "tmp" in p.name]

    for split, test_groups in {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}.items():
        train = [line.split(" ") for line in _read_lines(lists / f"trainlist0{split}.txt")]
        test = _read_lines(lists / f"testlist0{split}.txt")
        assert all(len(t) == 2 for t in train) and all(" " not in t for t in test)
        for path, lab in train:
            assert lab == label[path.split("/")[0]]
        train_paths = [p for p, _ in train]
        assert len(set(train_paths)) == len(train_paths) and len(set(test)) == len(test)
        assert set(train_paths) | set(test) == all_videos
        assert not set(train_paths) & set(test)
        group = lambda p: int(p.split("_g")[1][:2])  # noqa: E731
        assert {group(p) for p in test} == set(test_groups)
        assert not {group(p) for p in train_paths} & set(test_groups)
        assert {22, 23, 24, 25} <= {group(p) for p in train_paths}
        assert summary["splits"][f"split{split}"] == {"train": len(train), "test": len(test)}
        # ordered like the official lists: by label, then path
        assert [(int(label[p.split('/')[0]]), p) for p in train_paths] == sorted(
            (int(label[p.split('/')[0]]), p) for p in train_paths)


def test_list_format_matches_official_files(small_set):
    root, _ = small_set
    for name in ["classInd.txt", "trainlist01.txt", "testlist01.txt"]:
        ours = _read_lines(root / "ucfTrainTestlist" / name)
        real = _read_lines(REAL_LISTS / name)
        shape = lambda s: re.sub(r"[A-Za-z]+", "A", re.sub(r"\d+", "9", s))  # noqa: E731
        assert {shape(x) for x in ours} == {shape(x) for x in real}, name
    # the official files are CRLF too and end with a newline
    assert (REAL_LISTS / "classInd.txt").read_bytes().endswith(b"\r\n")


def test_videos_are_xvid_avi_with_requested_geometry(small_set):
    root, _ = small_set
    lengths = []
    for p in sorted((root / "UCF-101").rglob("*.avi"))[:40]:
        assert p.read_bytes()[:4] == b"RIFF" and p.read_bytes()[8:12] == b"AVI "
        cap = cv2.VideoCapture(str(p))
        assert cap.isOpened()
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().upper()
        assert fourcc in ("XVID", "FMP4", "MP4V", "DIVX"), fourcc
        assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (80, 60)
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(8)
        n = 0
        while cap.grab():
            n += 1
        lengths.append(n)
        assert 4 <= n <= 8
    assert len(set(lengths)) > 1, "video lengths should vary"


# ----------------------------------------------------------------------------- determinism
def test_deterministic_and_rerun_keeps_complete_files(tmp_path):
    kw = dict(classes=3, groups=2, clips_per_group=2, seed=11, **SMALL)
    s1 = synth.generate_dataset(tmp_path / "a" / "v", tmp_path / "a" / "l", **kw)
    s_b = synth.generate_dataset(tmp_path / "b" / "v", tmp_path / "b" / "l", workers=2, **kw)
    ha, hb = _hash_tree(tmp_path / "a"), _hash_tree(tmp_path / "b")
    assert len(ha) == 3 * 2 * 2 + 7 + 1  # videos, lists, marker
    assert ha == hb, "same arguments must give byte-identical files, in one process or two"
    assert s_b["frames_written"] == s1["frames_written"]
    assert s1["videos_written"] == 12
    # rerun: everything kept; delete one video -> only that one is regenerated, identically
    victim = next((tmp_path / "a" / "v").rglob("*.avi"))
    victim.unlink()
    s2 = synth.generate_dataset(tmp_path / "a" / "v", tmp_path / "a" / "l", **kw)
    assert (s2["videos_written"], s2["videos_kept"]) == (1, 11)
    assert _hash_tree(tmp_path / "a") == ha
    # another seed changes the videos (and the marker) but not the lists
    synth.generate_dataset(tmp_path / "c" / "v", tmp_path / "c" / "l", **{**kw, "seed": 12})
    hc = _hash_tree(tmp_path / "c")
    assert all(hc[k] != ha[k] for k in ha if k.endswith(".avi"))
    assert all(hc[k] == ha[k] for k in ha if k.endswith(".txt"))


def test_changed_parameters_regenerate_everything(tmp_path):
    kw = dict(clips_per_group=1, **SMALL)
    synth.generate_dataset(tmp_path / "v", tmp_path / "l", classes=3, groups=2, seed=1, **kw)
    (tmp_path / "v" / "notes.txt").write_text("not ours")
    s = synth.generate_dataset(tmp_path / "v", tmp_path / "l", classes=2, groups=1, seed=2, **kw)
    assert (s["videos_written"], s["videos_kept"], s["stale_videos_removed"]) == (2, 0, 4)
    listed = set((tmp_path / "l" / "trainlist01.txt").read_text().split()[::2]) | set(
        (tmp_path / "l" / "testlist01.txt").read_text().split())
    on_disk = {p.relative_to(tmp_path / "v").as_posix() for p in (tmp_path / "v").rglob("*.avi")}
    assert listed == on_disk and len(on_disk) == 2
    assert sorted(p.name for p in (tmp_path / "v").iterdir() if p.is_dir()) == synth.class_names(2)
    assert (tmp_path / "v" / "notes.txt").exists()


def test_killed_run_leaves_no_truncated_video(tmp_path, monkeypatch):
    kw = dict(classes=2, groups=3, clips_per_group=1, seed=5, **SMALL)
    reference = tmp_path / "ref"
    synth.generate_dataset(reference / "v", reference / "l", **kw)

    class Killed(Exception):
        pass

    class Frames:  # an encoder input that dies in the middle of the third video
        def __init__(self, frames, die):
            self.frames, self.die, self.shape = frames, die, frames.shape

        def __iter__(self):
            for i, f in enumerate(self.frames):
                if self.die and i == 2:
                    raise Killed()
                yield f

    from vidrec.data.synth import generate

    real_write, calls = generate.write_avi, []

    def dying_write(path, frames, fps):
        calls.append(path)
        return real_write(path, Frames(frames, len(calls) == 3), fps)

    monkeypatch.setattr(generate, "write_avi", dying_write)
    with pytest.raises(Killed):
        synth.generate_dataset(tmp_path / "run" / "v", tmp_path / "run" / "l", **kw)
    monkeypatch.setattr(generate, "write_avi", real_write)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) == 2, files  # the two finished videos; no temp file, no partial third one
    assert not (tmp_path / "run" / "v" / ".synth.json").exists()
    synth.generate_dataset(tmp_path / "run" / "v", tmp_path / "run" / "l", **kw)
    assert _hash_tree(tmp_path / "run") == _hash_tree(reference)


def test_stale_temp_files_are_removed(tmp_path):
    kw = dict(classes=2, groups=1, clips_per_group=1, seed=0, **SMALL)
    name = synth.class_names(2)[0]
    (tmp_path / "v" / name).mkdir(parents=True)
    stale = tmp_path / "v" / name / f".v_{name}_g01_c01.avi.999999999.tmp.avi"  # no such process
    stale.write_bytes(b"RIFF partial")
    running = tmp_path / "v" / name / f".v_{name}_g01_c02.avi.{os.getppid()}.tmp.avi"  # its writer runs
    running.write_bytes(b"RIFF partial")
    synth.generate_dataset(tmp_path / "v", tmp_path / "l", **kw)
    assert not stale.exists() and running.exists()


# ----------------------------------------------------------------------------- learnability
def _decode(path: Path, crop: int, size: int, frames: int = 16) -> np.ndarray:
    """16 frames spread over the video (segment centres), centre crop, INTER_AREA resize, RGB."""
    cap = cv2.VideoCapture(str(path))
    allf = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        allf.append(f)
    n = len(allf)
    idx = np.minimum(np.floor((np.arange(frames) + 0.5) * n / frames).astype(int), n - 1)
    out = []
    for i in idx:
        f = allf[i]
        h, w = f.shape[:2]
        y, x = (h - crop) // 2, (w - crop) // 2
        f = cv2.resize(f[y:y + crop, x:x + crop], (size, size), interpolation=cv2.INTER_AREA)
        out.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
    return np.stack(out)


@pytest.fixture(scope="module")
def motion_set(tmp_path_factory):
    """10 classes x 25 groups x 2 clips at 160x120 (crop 96 -> 32x32), decoded like the pipeline."""
    root = tmp_path_factory.mktemp("synth_motion")
    synth.generate_dataset(root / "UCF-101", root / "lists", classes=10, groups=25,
                           clips_per_group=2, width=160, height=120, fps=12, min_seconds=1.5,
                           max_seconds=3.0, seed=0, progress=False)
    names = [line.split()[1] for line in (root / "lists" / "classInd.txt").read_text().splitlines()]
    test = set((root / "lists" / "testlist01.txt").read_text().split())
    paths = sorted(p.relative_to(root / "UCF-101").as_posix() for p in (root / "UCF-101").rglob("*.avi"))
    X = np.stack([_decode(root / "UCF-101" / p, crop=96, size=32) for p in paths])
    y = np.array([names.index(p.split("/")[0]) for p in paths])
    defs = {c.name: c for c in synth.CLASS_DEFS}
    return dict(
        X=X, y=y, classes=len(names),
        group=np.array([int(p.split("_g")[1][:2]) for p in paths]),
        clip=np.array([int(p.split("_c")[1][:2]) for p in paths]),
        test=np.array([p in test for p in paths]),
        sense_of=np.array([defs[n].sense for n in names]),
        profile_of=np.array([list(synth.PROFILES).index(defs[n].profile) for n in names]))


SPLIT_TEST_GROUPS = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}


def _assert_near_chance(d, predict, what):
    """Train `predict(d, train_mask, test_mask) -> labels` on each official split and check that
    it stays near chance: the split-1 class accuracy within 15 points of chance (the contract), and,
    pooled over the three splits (210 disjoint test groups), the class accuracy within 10 points,
    the rotation-sense accuracy (2-way) within 13 and the speed-profile accuracy (5-way) within 12,
    so that a leak of either factor alone shows. Tolerances are ~4 standard errors: a test group's
    two clips share their appearance, so there are 70 independent test appearances per split."""
    preds, ys, split1 = [], [], None
    for split, groups in SPLIT_TEST_GROUPS.items():
        test = np.isin(d["group"], list(groups))
        pred = predict(d, ~test, test)
        preds.append(pred)
        ys.append(d["y"][test])
        if split == 1:
            split1 = float((pred == d["y"][test]).mean())
    pred, y = np.concatenate(preds), np.concatenate(ys)
    n_prof = len(set(d["profile_of"].tolist()))
    checks = [("class", pred == y, 1.0 / d["classes"], 0.10),
              ("sense", d["sense_of"][pred] == d["sense_of"][y], 0.5, 0.13),
              ("profile", d["profile_of"][pred] == d["profile_of"][y], 1.0 / n_prof, 0.12)]
    chance = 1.0 / d["classes"]
    report = f"split-1 class {split1:.3f} (chance {chance:.3f}); 3 splits pooled: " + ", ".join(
        f"{k} {ok.mean():.3f} (chance {c:.3f})" for k, ok, c, _ in checks)
    print(f"{what}: {report}")
    assert abs(split1 - chance) <= 0.15, f"{what}: split-1 accuracy too far from chance: {report}"
    for k, ok, c, tol in checks:
        assert abs(ok.mean() - c) <= tol, f"{what}: {k} accuracy too far from chance: {report}"
    return split1


def _fit_linear(F_train, y_train, classes, steps=200, weight_decay=1e-3, seed=0):
    torch.manual_seed(seed)
    mu, sd = F_train.mean(0), F_train.std(0) + 1e-6
    A, t = torch.tensor((F_train - mu) / sd, dtype=torch.float32), torch.tensor(y_train)
    lin = torch.nn.Linear(A.shape[1], classes)
    opt = torch.optim.Adam(lin.parameters(), lr=0.05, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(lin(A), t).backward()
        opt.step()

    def predict_logp(F):
        with torch.no_grad():
            return torch.log_softmax(lin(torch.tensor((F - mu) / sd, dtype=torch.float32)), -1).numpy()
    return predict_logp


def _frame_pixels(X):
    """Per-frame pixel features (N, T, 16*16*3) from 32x32 frames."""
    N, T = X.shape[:2]
    small = X.reshape(N * T, 16, 2, 16, 2, 3).mean(axis=(2, 4))
    return small.reshape(N, T, -1).astype(np.float32)


def _frame_knn_predictions(d, train, test, k=5):
    """k-nearest-neighbour classifier on single frames (pixels): each test frame votes for the
    labels of its k nearest training frames, a video takes the label with most votes. The
    perfect memoriser: it finds a group it has seen, but knows nothing else."""
    P = torch.tensor(_frame_pixels(d["X"]))
    T, nc = P.shape[1], d["classes"]
    A = P[torch.tensor(train)].flatten(0, 1)
    mu, sd = A.mean(0), A.std(0) + 1e-6
    A = (A - mu) / sd
    B = (P[torch.tensor(test)].flatten(0, 1) - mu) / sd
    labels = torch.tensor(d["y"][train]).repeat_interleave(T)
    votes = torch.zeros(len(B), nc)
    for i in range(0, len(B), 512):
        nearest = torch.cdist(B[i:i + 512], A).topk(k, largest=False).indices
        votes[i:i + 512] = torch.nn.functional.one_hot(labels[nearest], nc).sum(1).float()
    return votes.reshape(-1, T, nc).sum(1).argmax(1).numpy()


class _TorchThreads:
    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.old)


def test_frame_only_nearest_neighbour_stays_near_chance(motion_set):
    d = motion_set
    with _TorchThreads(1):
        acc = _assert_near_chance(d, _frame_knn_predictions, "frame-only 5-NN")
        # the same model with leaked groups (train on clip 1 of every group, test on clip 2 of the
        # split-1 test groups) finds the group it has seen, whose look every class shares: still chance
        leak_train, leak_test = d["clip"] == 1, d["test"] & (d["clip"] == 2)
        leaked = float((_frame_knn_predictions(d, leak_train, leak_test) == d["y"][leak_test]).mean())
        print(f"frame-only 5-NN with leaked groups: {leaked:.3f}")
        assert abs(leaked - 1.0 / d["classes"]) <= 0.15, f"leaked-group accuracy {leaked:.3f}"


def _frame_cnn_predictions(d, train, test, epochs=3, seed=0):
    """A small 2D CNN trained on single frames; video score = mean per-frame log-probability.
    Returns (predicted test labels, frame-level training accuracy)."""
    torch.manual_seed(seed)
    X = torch.tensor(d["X"]).permute(0, 1, 4, 2, 3).float().div(255.0)  # N,T,C,H,W
    X = (X - X.mean()) / X.std()
    y, nc = torch.tensor(d["y"]), d["classes"]
    Xtr, ytr = X[train].flatten(0, 1), y[train].repeat_interleave(X.shape[1])
    nn = torch.nn
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, nc))
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(Xtr), generator=g)
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(Xtr[b]), ytr[b]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        Xte = X[test]
        logp = torch.log_softmax(net(Xte.flatten(0, 1)), -1).reshape(len(Xte), -1, nc).mean(1)
        train_acc = float((net(Xtr[::4]).argmax(1) == ytr[::4]).float().mean())
    return logp.argmax(1).numpy(), train_acc


@pytest.mark.slow
def test_frame_only_cnn_stays_near_chance(motion_set):
    """A small 2D CNN on single frames (scores averaged over the video) learns no class."""
    d = motion_set
    train_accs = []

    def predict(d, train, test):
        pred, train_acc = _frame_cnn_predictions(d, train, test)
        train_accs.append(train_acc)
        return pred

    with _TorchThreads(1):
        acc = _assert_near_chance(d, predict, "frame-only 2D CNN")
        print(f"frame-only 2D CNN: training-frame accuracy {np.round(train_accs, 3).tolist()}")
        # positive control: the same CNN is a working frame learner. What a frame does show is its
        # group's look; labelled by group (10 groups), it recognises clip 2 from clip 1
        first = d["group"] <= 10
        by_group = dict(d, y=d["group"] - 1, classes=10)
        pred, _ = _frame_cnn_predictions(by_group, first & (d["clip"] == 1), first & (d["clip"] == 2))
        group_acc = float((pred == by_group["y"][first & (d["clip"] == 2)]).mean())
        print(f"frame-only 2D CNN, labelled by group: {group_acc:.3f} (chance 0.100)")
        assert group_acc >= 0.6, "the frame CNN should tell groups apart: it cannot be a broken learner"


def _flow_features(clip: np.ndarray) -> np.ndarray:
    """Generic motion features of one clip (T, H, W, 3): per pair of consecutive frames, the
    Farneback flow's normalised angular momentum about its centroid and its mean magnitude."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in clip]
    yy, xx = np.mgrid[0:clip.shape[1], 0:clip.shape[2]].astype(np.float32)
    spin, energy = [], []
    for a, b in zip(gray[:-1], gray[1:]):
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 5, 3, 5, 1.1, 0)
        u, v = flow[..., 0], flow[..., 1]
        mag = np.hypot(u, v)
        s = mag.sum() + 1e-6
        cx, cy = (mag * xx).sum() / s, (mag * yy).sum() / s
        inertia = (mag * ((xx - cx) ** 2 + (yy - cy) ** 2)).sum() / s
        spin.append(((xx - cx) * v - (yy - cy) * u).sum() / (s * math.sqrt(inertia) + 1e-6))
        energy.append(mag.mean())
    spin, energy = np.array(spin), np.array(energy)
    return np.concatenate([spin, energy / (energy.max() + 1e-6), [spin.sum(), np.abs(spin).sum()]])


def test_temporal_model_learns_the_motion_classes(motion_set):
    """Positive control: the same linear classifier on motion features is far above chance."""
    d = motion_set
    cv2.setNumThreads(1)
    with _TorchThreads(1):
        F = np.stack([_flow_features(v) for v in d["X"]]).astype(np.float32)
        train, test = ~d["test"], d["test"]
        predict = _fit_linear(F[train], d["y"][train], d["classes"])
        acc = float((predict(F[test]).argmax(1) == d["y"][test]).mean())
        chance = 1.0 / d["classes"]
        # shuffling the frame order of the test videos destroys what the model uses
        rng = np.random.default_rng(0)
        Fs = np.stack([_flow_features(v[rng.permutation(len(v))]) for v in d["X"][test]])
        shuffled = float((predict(Fs.astype(np.float32)).argmax(1) == d["y"][test]).mean())
        print(f"temporal (flow features + LR): split-1 accuracy {acc:.3f} (chance {chance:.3f}), "
              f"frame order shuffled {shuffled:.3f}")
        assert acc >= 2.5 * chance, f"temporal split-1 accuracy {acc:.3f}, chance {chance:.3f}"
        assert shuffled < acc - 0.2
