"""Model zoo: registry, parameter counts against published/reference figures, shapes, P3D units,
Tran variants' structure, frame-order sensitivity, torchvision equivalence, complexity helpers."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from support import REPO
from vidrec.plan.catalogue import CARDS, MODEL_NAMES, card, published_text
from vidrec.models import (
    ConvLSTM,
    clip_args,
    count_params,
    create_model,
    list_models,
    model_complexity,
    model_factory,
    register_model,
    to_channels_last,
)
from vidrec.models.p3d import Bottleneck2D, Conv3dAs2d, SpatioTemporalBottleneck, TemporalMaxPool, conv3x1x1
from vidrec.models.summary import flops_note, models_table, render_models_table
from vidrec.models.tran import paper_midplanes

torch.set_num_threads(1)  # 2 shared cores: one thread is both faster and steadier

ALL = list_models()
FRAME_ORDER_INVARIANT = {"frame_resnet50", "fr2d_18", "fr2d_34"}  # per-frame 2D, average over frames


def build(name: str, clip=(3, 8, 112, 112), width: int = 8, **kw) -> nn.Module:
    return create_model(name, num_classes=5, clip_shape=clip, base_width=width, **kw).eval()


def meta_count(name: str, num_classes: int, **kw) -> int:
    with torch.device("meta"):  # build only: no memory, no init cost
        return count_params(create_model(name, num_classes=num_classes, **kw))


# -- registry ------------------------------------------------------------------------------------


def test_registry():
    expected = {"p3d63", "p3d131", "p3d199", "convlstm_c2d63", "convlstm_c2d131", "convlstm_c2d199",
                "frame_resnet50", "r2plus1d_18_tv"}
    for depth in (18, 34):
        expected |= {f"{k}_{depth}" for k in ("r2d", "fr2d", "r3d", "r2plus1d")}
        expected |= {f"{k}{x}_{depth}" for k in ("mc", "rmc") for x in (2, 3, 4, 5)}
    assert set(ALL) == expected == MODEL_NAMES, "vidrec/plan/catalogue.py lists exactly the registry's names"
    with pytest.raises(ValueError, match="catalogue.py"):
        register_model(lambda: None, name="p3d64")
    with pytest.raises(KeyError, match="unknown model"):
        create_model("p3d64")
    assert clip_args("r2d_18") == ("num_frames",)
    assert clip_args("convlstm_c2d63") == ("input_size",)
    assert clip_args("p3d63") == ()
    m = create_model("p3d63", num_classes=7, base_width=8, dropout=0.2)
    assert m.fc.out_features == 7 and m.dropout.p == 0.2 and m.num_features == 8 * 8 * 4
    assert m.stem[0].out_channels == 8
    assert create_model("r3d_18", num_classes=3, base_width=16).dropout.p == 0.0  # Tran default


def test_each_family_is_registered_by_the_module_its_catalogue_entry_names():
    for name in ALL:
        assert model_factory(name).__module__ == f"vidrec.models.{card(name).family.module}", name


def test_a_job_imports_only_the_families_it_builds():
    """The thesis's networks build without torchvision (Tran et al.'s family and the frame baseline need it)."""
    code = ("import sys; from vidrec.models import create_model; "
            "create_model('p3d63', 3, base_width=4); create_model('convlstm_c2d63', 3, clip_shape=(3, 4, 32, 32), "
            "base_width=4); print('torchvision' in sys.modules); create_model('r3d_18', 3, base_width=4); "
            "print('torchvision' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split() == ["False", "True"], out.stderr


def test_catalogue_declares_the_clip_args_each_factory_takes():
    """create_model passes a model only the clip arguments its entry declares: each declared one must
    be accepted by the factory, each other one refused."""
    geometry = {"num_frames": 8, "input_size": (64, 64)}
    for name in ALL:
        accepted = set()
        for arg, value in geometry.items():
            try:
                with torch.device("meta"):
                    model_factory(name)(num_classes=5, base_width=4, **{arg: value})
            except TypeError as err:
                assert f"'{arg}'" in str(err), err  # refused for that argument, not failing otherwise
            else:
                accepted.add(arg)
        assert accepted == set(card(name).clip_args), name


def test_published_figures():
    assert [c.display for c in map(card, ("p3d199", "convlstm_c2d63", "r2plus1d_18", "rmc3_34"))] == [
        "P3D-199", "ConvLSTM-C2D-63", "R(2+1)D-18", "rMC3-34"]
    assert published_text("p3d131") == ""
    # P3D-199: Qiu et al. and the thesis state 261 MB and no parameter count; our count is never shown as theirs
    text = published_text("p3d199")
    assert text.startswith("261 MB; no parameter count published (the params column is ours)"), text
    assert f"{meta_count('p3d199', 101) / 1e6:.1f}M" not in text and "263.5" not in text
    # Tran et al.'s Table 2 as printed
    assert published_text("r2plus1d_18").startswith("33.3M params") and "Table 2" in published_text("r2plus1d_18")
    assert published_text("rmc3_18").startswith("33.0M params") and "Table 2" in published_text("rmc3_18")
    # the thesis networks' head: the dropout deviation from the thesis (2-1.d) is labelled on both families
    for name in ("p3d199", "convlstm_c2d63"):
        assert "after the fully connected layer (2-1.d)" in card(name).family.deviation
    assert card("r2plus1d_18").family.deviation is None
    cited = " ".join(c.published.source for c in CARDS.values() if c.published)
    assert "docs/" not in cited and ".md" not in cited, "cite papers, not files outside the repository"


# -- parameter counts (each with its source) -----------------------------------------------------


@pytest.mark.parametrize(
    "name, num_classes, kwargs, low, high",
    [
        # torchvision.models.video.r3d_18 / mc3_18 / r2plus1d_18 num_params (Kinetics-400 heads)
        ("r3d_18", 400, {}, 33_371_472, 33_371_472),
        ("mc3_18", 400, {}, 11_695_440, 11_695_440),
        ("r2plus1d_18_tv", 400, {}, 31_505_325, 31_505_325),
        # Tran et al. 2018 per-conv mid-planes rule (their Eq. for M_i): R(2+1)D-18 about 33.4M counted by it
        ("r2plus1d_18", 400, {}, 33.3e6, 33.5e6),
        # counted by the same rule: R2D and f-R2D about 11.4M, rMC3 about 33.1M (400 classes);
        # R2D's stem grows with the clip (L x 7 x 7): 11.45M at L = 8, 11.52M at L = 16
        ("r2d_18", 400, {"num_frames": 8}, 11.3e6, 11.5e6),
        ("fr2d_18", 400, {}, 11.3e6, 11.5e6),
        ("rmc3_18", 400, {}, 33.0e6, 33.2e6),
        # P3D-199 (Qiu et al. 2017; thesis): 65.9M with the 101-class UCF101 head, 66.5M with 400 classes
        ("p3d199", 101, {}, 65.85e6, 65.95e6),
        ("p3d199", 400, {}, 66.45e6, 66.55e6),
        # Qiu et al. 2017: ResNet-50-based P3D about 98 MB = about 25M float32 parameters
        ("p3d63", 101, {}, 24.5e6, 25.5e6),
        # counted from the thesis's layout: ConvLSTM-C2D-63 57.6M without, 59.6M with per-position peepholes
        ("convlstm_c2d63", 101, {}, 57e6, 60e6),
        ("convlstm_c2d63", 101, {"peephole": False}, 57.5e6, 57.7e6),
        ("convlstm_c2d63", 101, {"peephole": True, "input_size": 160}, 59.5e6, 59.7e6),
        # torchvision resnet50: 25,557,032 parameters with its 1000-class head
        ("frame_resnet50", 1000, {}, 25_557_032, 25_557_032),
    ],
)
def test_parameter_counts(name, num_classes, kwargs, low, high):
    n = meta_count(name, num_classes, **kwargs)
    assert low <= n <= high, f"{name}: {n:,} not in [{low:,.0f}, {high:,.0f}]"


def test_width_multiplier_scales_every_stage():
    full, half = meta_count("p3d63", 101), meta_count("p3d63", 101, base_width=32)
    assert 3.5 < full / half < 4.2  # convs scale with width^2
    m = create_model("r2plus1d_18", base_width=16)
    assert [m.layer1[0].conv1[0][0].in_channels, m.layer4[0].conv1[0][3].out_channels] == [16, 128]


# -- output shapes -------------------------------------------------------------------------------

# The clips the networks are trained on: Tran et al.'s 8, 16 and 32 frames at 112x112 and the thesis's
# 16 frames at 160x160 (config.yaml's specs are these or smaller)
SHAPES = [(8, 112), (16, 112), (32, 112), (16, 160)]


@pytest.mark.parametrize("name", ALL)
def test_output_shapes(name):
    """Each of SHAPES, real forwards of narrow (base_width 4) models."""
    models: dict[tuple, nn.Module] = {}
    for t, s in SHAPES:
        geometry = {"num_frames": t, "input_size": (s, s)}
        key = tuple(geometry[a] for a in clip_args(name))  # rebuild only when the structure depends on the clip
        if key not in models:
            models[key] = build(name, (3, t, s, s), width=4)
        model = models[key]
        with torch.no_grad():
            feats = model.forward_features(torch.randn(1, 3, t, s, s))
            logits = model.forward_head(feats)
        assert feats.shape == (1, model.num_features), (t, s)
        assert logits.shape == (1, 5) and torch.isfinite(logits).all(), (t, s)


def test_p3d_layout_and_odd_clip_lengths():
    """16x160x160: res2 on 8x40x40, res3 4x20x20, res4 2x10x10, res5 on 1 frame of 5x5."""
    model = build("p3d63", (3, 16, 160, 160), width=4)
    seen = {}
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        getattr(model, stage).register_forward_pre_hook(lambda m, a, k=stage: seen.__setitem__(k, tuple(a[0].shape)))
    with torch.no_grad():
        model(torch.randn(1, 3, 16, 160, 160))
    assert seen["layer1"][2:] == (8, 40, 40)
    assert seen["layer2"][2:] == (4, 40, 40)  # stride 2 sits in the first unit's 1x1x1 conv
    assert seen["layer3"][2:] == (2, 20, 20)
    assert seen["layer4"] == (1, 4 * 4 * 4, 10, 10)  # time folded into the batch for the 2D stage
    for t in (2, 9, 10, 20):  # odd lengths ceil-pool, a single frame skips the temporal pools
        with torch.no_grad():
            assert model(torch.randn(1, 3, t, 96, 128)).shape == (1, 5)


# -- P3D units against their equations -----------------------------------------------------------


@pytest.mark.parametrize(
    "kernel, stride, padding",
    [((1, 1, 1), 1, 0), ((1, 1, 1), (1, 2, 2), 0), ((3, 1, 1), 1, (1, 0, 0)), ((3, 1, 1), (2, 1, 1), (1, 0, 0)),
     ((1, 3, 3), 1, (0, 1, 1))],
)
def test_conv3d_as_2d_equals_conv3d(kernel, stride, padding):
    """The 2D-view fast path of the pointwise/temporal convs is exactly nn.Conv3d (both layouts, odd sizes)."""
    torch.manual_seed(0)
    fast = Conv3dAs2d(6, 4, kernel, stride, padding, bias=True).double()
    ref = nn.Conv3d(6, 4, kernel, stride, padding, bias=True).double()
    ref.load_state_dict(fast.state_dict())
    for shape in [(2, 6, 5, 8, 6), (1, 6, 4, 7, 7)]:
        for fmt in (torch.contiguous_format, torch.channels_last_3d):
            x = torch.randn(shape, dtype=torch.float64).contiguous(memory_format=fmt).requires_grad_(True)
            torch.testing.assert_close(fast(x), ref(x))
            (gx,) = torch.autograd.grad(fast(x).sum(), x)
            (rx,) = torch.autograd.grad(ref(x).sum(), x)
            torch.testing.assert_close(gx, rx)


def test_temporal_max_pool():
    pool = TemporalMaxPool()
    for t in (2, 5, 8):
        x = torch.randn(2, 3, t, 4, 5)
        assert torch.equal(pool(x), F.max_pool3d(x, (2, 1, 1), (2, 1, 1), ceil_mode=True))
    x = torch.randn(2, 3, 1, 4, 5)
    assert pool(x) is x  # a single frame: skipped, not an error


def _bn(x, m):
    return F.batch_norm(x, m.running_mean, m.running_var, m.weight, m.bias, False, 0.0, m.eps)


def _randomize(module: nn.Module) -> None:
    torch.manual_seed(1)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)


@pytest.mark.parametrize("kind", ["A", "B", "C"])
def test_p3d_unit_equations(kind):
    unit = SpatioTemporalBottleneck(6, 3, kind, conv3x1x1(3), stride=2).double().eval()
    _randomize(unit)
    assert unit.conv_s.kernel_size == (1, 3, 3) and unit.conv_t.kernel_size == (3, 1, 1)
    assert unit.conv1.stride == (1, 2, 2) and unit.conv_s.stride == (1, 1, 1)
    x = torch.randn(2, 6, 4, 6, 6, dtype=torch.float64)
    relu = torch.relu
    y = relu(_bn(F.conv3d(x, unit.conv1.weight, stride=(1, 2, 2)), unit.bn1))

    def S(z):
        return _bn(F.conv3d(z, unit.conv_s.weight, padding=(0, 1, 1)), unit.bn_s)

    def T(z):
        return _bn(F.conv3d(z, unit.conv_t.weight, padding=(1, 0, 0)), unit.bn_t)

    if kind == "A":  # S -> BN -> ReLU -> T -> BN -> ReLU
        mid = relu(T(relu(S(y))))
    elif kind == "B":  # ReLU(BN(S(x))) + BN(T(x)), then ReLU
        mid = relu(relu(S(y)) + T(y))
    else:  # s = ReLU(BN(S(x))); ReLU(s + BN(T(s)))
        s = relu(S(y))
        mid = relu(s + T(s))
    shortcut = _bn(F.conv3d(x, unit.downsample[0].weight, stride=(1, 2, 2)), unit.downsample[1])
    expected = relu(_bn(F.conv3d(mid, unit.conv3.weight), unit.bn3) + shortcut)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), expected)


def test_unit_kinds_cycle_across_stages_and_res5_is_2d():
    for name in ("p3d63", "convlstm_c2d63"):
        with torch.device("meta"):
            m = create_model(name, base_width=8)
        units = [u for s in (m.layer1, m.layer2, m.layer3) for u in s]
        assert all(isinstance(u, SpatioTemporalBottleneck) for u in units)  # one shared unit class
        assert "".join(u.kind for u in units) == ("ABC" * 5)[: len(units)] == "ABCABCABCABCA"
        assert all(isinstance(u, Bottleneck2D) for u in m.layer4) and len(m.layer4) == 3
        expected = nn.Conv3d if name == "p3d63" else ConvLSTM
        assert all(isinstance(u.conv_t, expected) for u in units)
    m = create_model("convlstm_c2d63", base_width=8, input_size=160)
    planes = [tuple(u.conv_t.cell.peephole_weight.shape) for u in (m.layer1[0], m.layer2[0], m.layer3[0])]
    assert planes == [(3, 8, 40, 40), (3, 16, 20, 20), (3, 32, 10, 10)]
    with pytest.raises(ValueError, match="peepholes"):
        m(torch.randn(1, 3, 8, 112, 112))
    assert create_model("convlstm_c2d63", base_width=8, peephole=False).layer1[0].conv_t.cell.peephole_weight is None
    lazy = create_model("convlstm_c2d63", num_classes=5, base_width=4, input_size=None).eval()
    before = count_params(lazy)
    with torch.no_grad():
        lazy(torch.randn(1, 3, 8, 64, 64))  # peepholes created at the first forward: 16, 8, 4 planes
    assert count_params(lazy) - before == 3 * (4 * 16 * 16 * 3 + 8 * 8 * 8 * 4 + 16 * 4 * 4 * 6)


@pytest.mark.parametrize("name", ["p3d63", "convlstm_c2d63", "frame_resnet50"])
def test_zero_init_residual_starts_every_unit_as_the_identity(name):
    m = build(name, clip=(3, 8, 32, 32), width=4, zero_init_residual=True)
    units = [u for u in m.modules() if hasattr(u, "bn3")]
    assert len(units) == 16 and all(not u.bn3.weight.detach().any() for u in units)
    unit = m.layer1[1]  # no projection: relu(0 + x)
    x = torch.randn(2, 16, 4, 8, 8) if name != "frame_resnet50" else torch.randn(2, 16, 8, 8)
    torch.testing.assert_close(unit(x), torch.relu(x))
    assert all(bool((u.bn3.weight.detach() == 1).all()) for u in build(name, width=4).modules() if hasattr(u, "bn3"))


# -- Tran et al. variants ------------------------------------------------------------------------


def _kernels(model) -> list[tuple[int, ...]]:
    """Temporal kernel of the first conv of each stage (stem first)."""
    out = [model.stem[0].kernel_size]
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        conv = stage[0].conv1[0]
        out.append(conv.kernel_size if isinstance(conv, nn.Conv3d) else "2+1")
    return out


def test_tran_variant_structure():
    with torch.device("meta"):
        k3, k2 = (3, 3, 3), (1, 3, 3)
        assert _kernels(create_model("r3d_18")) == [(3, 7, 7), k3, k3, k3, k3]
        assert _kernels(create_model("mc2_18")) == [(3, 7, 7), k2, k2, k2, k2]
        assert _kernels(create_model("mc3_18")) == [(3, 7, 7), k3, k2, k2, k2]
        assert _kernels(create_model("mc5_34")) == [(3, 7, 7), k3, k3, k3, k2]
        assert _kernels(create_model("rmc2_18")) == [(1, 7, 7), k3, k3, k3, k3]
        assert _kernels(create_model("rmc4_18")) == [(1, 7, 7), k2, k2, k3, k3]
        assert _kernels(create_model("fr2d_18")) == [(1, 7, 7), k2, k2, k2, k2]
        assert _kernels(create_model("r2d_18", num_frames=8)) == [(8, 7, 7), k2, k2, k2, k2]
        # downsampling: (2,2,2) in 3D blocks, (1,2,2) in 2D blocks
        assert create_model("mc3_18").layer2[0].downsample[0].stride == (1, 2, 2)
        assert create_model("rmc3_18").layer2[0].downsample[0].stride == (2, 2, 2)
        # R(2+1)D mid-planes: paper rule per conv vs torchvision's once per block
        paper, tv = create_model("r2plus1d_18"), create_model("r2plus1d_18_tv")
        assert paper_midplanes(64, 128) == 230 and paper_midplanes(128, 128) == 288
        assert paper.layer2[0].conv1[0][0].out_channels == 230
        assert paper.layer2[0].conv2[0][0].out_channels == 288
        assert tv.layer2[0].conv2[0][0].out_channels == 230
    r2d = build("r2d_18", (3, 16, 112, 112), width=4)
    with torch.no_grad():
        assert r2d.stem(torch.randn(1, 3, 16, 112, 112)).shape[2] == 1  # time collapses at the stem


@pytest.mark.parametrize(
    "name, factory", [("r2plus1d_18_tv", "r2plus1d_18"), ("r3d_18", "r3d_18"), ("mc3_18", "mc3_18")]
)
def test_equals_torchvision(name, factory):
    torch.manual_seed(0)
    ref = getattr(torchvision.models.video, factory)().eval()
    ours = create_model(name, num_classes=400).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


# -- frame order ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_frame_order_sensitivity(name):
    """Eval mode: shuffling the frames changes a temporal model's output, not a frame-only one."""
    model = build(name, (3, 8, 64, 64), width=8)
    torch.manual_seed(0)
    x = torch.randn(1, 3, 8, 64, 64)
    perm = torch.tensor([3, 6, 0, 7, 1, 5, 2, 4])
    with torch.no_grad():
        a, b = model.forward_features(x), model.forward_features(x[:, :, perm])
    rel = ((a - b).abs().max() / a.abs().max()).item()
    if name in FRAME_ORDER_INVARIANT:
        assert rel < 1e-5, rel
    else:
        assert rel > 1e-3, rel


# -- memory layout (the trainer's CUDA path) -----------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_channels_last_layout_computes_what_contiguous_does(name):
    """to_channels_last, which the trainer applies on CUDA, works on every network (Module.to with
    channels_last_3d raises on the 4-D weights of 2D convolutions) and changes no result."""
    model = build(name, (3, 8, 48, 48), width=4).double()
    x = torch.randn(2, 3, 8, 48, 48, dtype=torch.float64)
    with torch.no_grad():
        ref = model(x)
        to_channels_last(model)
        out = model(x.contiguous(memory_format=torch.channels_last_3d))
    weights = [p for p in model.parameters() if p.dim() in (4, 5)]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last if p.dim() == 4
                                           else torch.channels_last_3d) for p in weights)
    torch.testing.assert_close(out, ref)


# -- complexity and summary ----------------------------------------------------------------------


def test_model_complexity_counts_multiply_add_as_two_flops():
    conv = nn.Conv3d(3, 4, kernel_size=1, bias=False)  # 4*3 MACs per output position, 2*2*2 positions
    c = model_complexity(conv, clip_shape=(3, 2, 2, 2))
    assert c["params"] == 12 and c["size_mb_fp32"] == pytest.approx(48 / 1e6)
    assert c["gflops"] == pytest.approx(2 * 12 * 8 / 1e9)


def test_models_table():
    df = models_table(["p3d63", "convlstm_c2d63"], clip_shape=(3, 8, 64, 64), num_classes=5, base_width=4)
    assert list(df.columns) == ["name", "params", "size_mb", "gflops", "paper"]
    assert list(df["name"]) == ["p3d63", "convlstm_c2d63"]
    assert (df["gflops"] > 0).all() and df["params"].iloc[1] > df["params"].iloc[0]
    assert "236 MB" in df["paper"].iloc[1]


# -- `vidrec models` output ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_model_table():
    """Every registered model, built narrow and measured on a small clip (full size takes minutes on CPU)."""
    return models_table(ALL, clip_shape=(3, 8, 32, 32), num_classes=5, base_width=4)


def test_models_text_fits_100_columns_and_quotes_every_published_figure(every_model_table):
    text = render_models_table(every_model_table)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert [ln.split()[0] for ln in lines[1:len(ALL) + 1]] == ALL  # one row per model
    cited = [name for name in ALL if published_text(name)]
    flat = " ".join(text.split())  # the notes unwrapped
    for i, name in enumerate(cited, 1):
        assert f"[{i}] {name}: {' '.join(published_text(name).split())}" in flat
    # it cites papers and the catalogue's sources; any file it names is in the repository
    for path in re.findall(r"[\w.-]+(?:/[\w.-]+)+\.\w+", text):
        assert (REPO / path).exists(), path


def test_models_csv_markdown_and_wide(every_model_table):
    table = every_model_table
    rows = list(csv.DictReader(io.StringIO(render_models_table(table, "csv"))))
    assert [r["name"] for r in rows] == ALL and list(rows[0]) == list(table.columns)
    assert [r["paper"] for r in rows] == [published_text(name) for name in ALL]
    assert [int(r["params"]) for r in rows] == table["params"].tolist()

    piped = table.assign(paper=table["paper"].where(table["name"] != "p3d63", "a | b"))
    lines = render_models_table(piped, "markdown").split("\n\n")[0].splitlines()  # the table, its note aside
    cells = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    assert all(ln.startswith("| ") and ln.endswith(" |") for ln in lines)
    assert {len(c) for c in cells} == {len(table.columns)} and cells[0] == list(table.columns)
    assert re.fullmatch(r"\|( :?-{3,}:? \|)+", lines[1]) and [c[0] for c in cells[2:]] == ALL
    assert cells[2 + ALL.index("p3d63")][-1] == r"a \| b"

    note = flops_note(table)  # what the gflops column counts, below every format but csv
    assert note.startswith("gflops: one forward pass of one clip of 3 x 8 x 32 x 32 (C x T x H x W, batch 1)")
    assert "a multiply-add counts as 2 FLOPs" in note and note not in render_models_table(table, "csv")
    assert render_models_table(table, "wide") == table.to_string(index=False) + "\n\n" + note + "\n"
    assert render_models_table(table, "markdown").endswith(f"|\n\n{note}\n")
    assert note in " ".join(render_models_table(table).split())
    with pytest.raises(ValueError, match="unknown table format"):
        render_models_table(table, "html")


@pytest.mark.slow
def test_cli_models_default_fits_100_columns():
    out = subprocess.run([sys.executable, "-m", "vidrec.cli", "models", "p3d63", "frame_resnet50", "--frames", "4",
                          "--size", "32"], cwd=REPO, capture_output=True, text=True, timeout=600, check=True).stdout
    assert max(map(len, out.splitlines())) <= 100 and "[1] p3d63: 98 MB [Qiu, Yao, Mei" in out
    bad = subprocess.run([sys.executable, "-m", "vidrec.cli", "models", "--format", "html"], cwd=REPO,
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2 and "--format html: use one of text, wide, csv, markdown" in bad.stderr
