"""The one list of architectures: per registered model its family, display name, paper, published
figures, place in the paper's table and the clip arguments its factory takes.

Torch-free on purpose: config validation reads `MODEL_NAMES` at the start of every `snakemake`
call, a no-op rerun included, and importing the registry (torch, torchvision) would cost about 4 s of
a 5 s rerun. `vidrec.models.register_model` refuses a name missing here and `create_model` takes
the clip arguments from the entry; tests/test_models.py checks both against the factories.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = ["CARDS", "MODEL_NAMES", "THESIS_PAIR", "TORCHVISION_SCHEME", "Card", "Family", "Published", "card",
           "published_text", "torchvision_weights_problem", "weights_name"]

_QIU = "Qiu, Yao, Mei, ICCV 2017 (arXiv 1711.10305)"
_THESIS = "Park, ConvLSTM-C2D thesis, Chung-Ang Univ. 2020"
_TRAN = "Tran et al., CVPR 2018 (arXiv 1711.11248)"
_HE = "He, Zhang, Ren, Sun, CVPR 2016 (arXiv 1512.03385)"
_TV = "torchvision 0.29 model weights metadata (Kinetics-400, video-level, 16-frame clips)"
_TRAN_RULE = f"{_TRAN}, count by the paper's mid-planes rule"
_TRAN_TABLE2 = f"{_TRAN}, Table 2 (18 layers)"
# Where the thesis's head differs from ours: we keep P3D's (and torchvision's) dropout on the pooled
# features before the classifier; model behaviour unchanged, the deviation labelled.
_THESIS_DROPOUT = ("deviation from the thesis, which puts its dropout (0.5) after the fully connected layer "
                   "(2-1.d): vidrec's comes before it, as in P3D")


@dataclass(frozen=True)
class Family:
    """Architectures that differ only in depth or in where they put 3D convs; `name` heads the report's rows.

    module: the vidrec.models module whose factories build the family; the registry imports it when one
        of its models is first asked for, so a P3D run never imports torchvision.
    """

    key: str
    name: str
    paper: str
    module: str
    deviation: str | None = None  # where our network departs from the source it cites, in words


@dataclass(frozen=True)
class Published:
    """Figures a source states, shown beside our measurements and never used to compute anything;
    a figure no source states is None."""

    source: str
    params: float | None = None
    size_mb: float | None = None
    note: str | None = None  # what the count refers to, where that is not obvious
    accuracy: str | None = None  # with its protocol

    def text(self) -> str:
        """One line: '33.3M params; 261 MB; <note>; <accuracy> [<source>]' (the parts the source states)."""
        parts = [f"{self.params / 1e6:.1f}M params" if self.params is not None else None,
                 f"{self.size_mb:g} MB" if self.size_mb is not None else None, self.note, self.accuracy]
        return f"{'; '.join(p for p in parts if p)} [{self.source}]"


@dataclass(frozen=True)
class Card:
    """One registered architecture.

    clip_args: the clip-geometry arguments (`num_frames`, `input_size`) its factory takes, which
        `create_model` fills from the clip shape (R2D's stem spans the clip, ConvLSTM-C2D's
        peepholes have the plane size); other factories never see them.
    table_rank: position in Tran et al.'s architecture comparison (CVPR 2018, Table 2), the order of
        the architecture sweep; None for networks outside that table.
    torchvision_weights: the torchvision weights enum whose members initialise it (`init_from:
        torchvision:<enum>.<member>`, vidrec/models/pretrained.py): set where the module names and
        shapes equal torchvision's at base_width 64 (tests/test_models.py, test_equals_torchvision).
    """

    name: str
    family: Family
    display: str
    clip_args: tuple[str, ...] = ()
    table_rank: int | None = None
    published: Published | None = None
    torchvision_weights: str | None = None

    @property
    def paper(self) -> str:
        """The family's citation: depth and 3D placement do not change the paper."""
        return self.family.paper


P3D = Family("p3d", "P3D ResNet", _QIU, "p3d", deviation=_THESIS_DROPOUT)
CONVLSTM_C2D = Family("convlstm_c2d", "ConvLSTM-C2D ResNet", _THESIS, "convlstm_c2d", deviation=_THESIS_DROPOUT)
FRAME_RESNET = Family("frame_resnet", "Frame ResNet (2D)", _HE, "frame_baseline")
R2D = Family("r2d", "R2D", _TRAN, "tran")
FR2D = Family("fr2d", "f-R2D", _TRAN, "tran")
R3D = Family("r3d", "R3D", _TRAN, "tran")
MC = Family("mc", "MC", _TRAN, "tran")
RMC = Family("rmc", "rMC", _TRAN, "tran")
R2PLUS1D = Family("r2plus1d", "R(2+1)D", _TRAN, "tran")

THESIS_PAIR: tuple[str, str] = (CONVLSTM_C2D.key, P3D.key)
"""Families of the two networks the thesis compares (ConvLSTM-C2D-63 against P3D-199); the report
pairs the first configured model of each."""

_FRAMES, _PLANES = ("num_frames",), ("input_size",)

_CARDS = (
    Card("p3d63", P3D, "P3D-63", published=Published(f"{_QIU}: ResNet-50-based P3D", size_mb=98.0)),
    Card("p3d131", P3D, "P3D-131"),
    Card("p3d199", P3D, "P3D-199", published=Published(
        f"{_QIU}; {_THESIS}", size_mb=261.0,
        note="no parameter count published (the params column is ours)",
        accuracy="UCF101 88.6% (Sports-1M pre-trained, pool5 of 20 clips, linear SVM, 3-split mean); "
        "thesis: 88.79% from scratch")),
    Card("convlstm_c2d63", CONVLSTM_C2D, "ConvLSTM-C2D-63", _PLANES, published=Published(
        _THESIS, size_mb=236.0, accuracy="UCF101 95.57% from scratch, one centre clip (far above the 41-44% that "
        "from-scratch 3D CNNs reach on the official splits)")),
    Card("convlstm_c2d131", CONVLSTM_C2D, "ConvLSTM-C2D-131", _PLANES),
    Card("convlstm_c2d199", CONVLSTM_C2D, "ConvLSTM-C2D-199", _PLANES),
    Card("frame_resnet50", FRAME_RESNET, "Frame ResNet-50", published=Published(
        "torchvision resnet50 (1000-class ImageNet head)", params=25_557_032)),
    Card("r2d_18", R2D, "R2D-18", _FRAMES, table_rank=0, published=Published(_TRAN_RULE, params=11.4e6)),
    Card("r2d_34", R2D, "R2D-34", _FRAMES, table_rank=0),
    Card("fr2d_18", FR2D, "f-R2D-18", table_rank=1, published=Published(_TRAN_RULE, params=11.4e6)),
    Card("fr2d_34", FR2D, "f-R2D-34", table_rank=1),
    Card("r3d_18", R3D, "R3D-18", table_rank=2, published=Published(
        _TV, params=33_371_472, accuracy="Kinetics-400 acc@1 63.20%"), torchvision_weights="R3D_18_Weights"),
    Card("r3d_34", R3D, "R3D-34", table_rank=2),
    Card("mc2_18", MC, "MC2-18", table_rank=3),
    Card("mc2_34", MC, "MC2-34", table_rank=3),
    Card("mc3_18", MC, "MC3-18", table_rank=4, published=Published(
        _TV, params=11_695_440, accuracy="Kinetics-400 acc@1 63.96%"), torchvision_weights="MC3_18_Weights"),
    Card("mc3_34", MC, "MC3-34", table_rank=4),
    Card("mc4_18", MC, "MC4-18", table_rank=5),
    Card("mc4_34", MC, "MC4-34", table_rank=5),
    Card("mc5_18", MC, "MC5-18", table_rank=6),
    Card("mc5_34", MC, "MC5-34", table_rank=6),
    Card("rmc2_18", RMC, "rMC2-18", table_rank=7),
    Card("rmc2_34", RMC, "rMC2-34", table_rank=7),
    Card("rmc3_18", RMC, "rMC3-18", table_rank=8, published=Published(_TRAN_TABLE2, params=33.0e6)),
    Card("rmc3_34", RMC, "rMC3-34", table_rank=8),
    Card("rmc4_18", RMC, "rMC4-18", table_rank=9),
    Card("rmc4_34", RMC, "rMC4-34", table_rank=9),
    Card("rmc5_18", RMC, "rMC5-18", table_rank=10),
    Card("rmc5_34", RMC, "rMC5-34", table_rank=10),
    Card("r2plus1d_18", R2PLUS1D, "R(2+1)D-18", table_rank=11, published=Published(_TRAN_TABLE2, params=33.3e6)),
    Card("r2plus1d_34", R2PLUS1D, "R(2+1)D-34", table_rank=11),
    # torchvision's R(2+1)D-18 (mid-planes once per block): not the network of the paper's table
    Card("r2plus1d_18_tv", R2PLUS1D, "R(2+1)D-18 (torchvision)", published=Published(
        _TV, params=31_505_325, accuracy="Kinetics-400 acc@1 67.46%"), torchvision_weights="R2Plus1D_18_Weights"),
)

CARDS: Mapping[str, Card] = MappingProxyType({c.name: c for c in _CARDS})
MODEL_NAMES: frozenset[str] = frozenset(CARDS)
if len(CARDS) != len(_CARDS):
    raise RuntimeError("vidrec/plan/catalogue.py lists a model name twice")


def card(name: str) -> Card:
    """The entry of `name` (KeyError naming the catalogue otherwise)."""
    try:
        return CARDS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}: not in vidrec/plan/catalogue.py") from None


def published_text(name: str) -> str:
    """One-line rendering of the published figures of `name` ('' when no source states any)."""
    published = card(name).published
    return published.text() if published else ""


TORCHVISION_SCHEME = "torchvision:"
"""`init_from` values starting with this name torchvision's published weights, e.g.
torchvision:R2Plus1D_18_Weights.KINETICS400_V1."""


def weights_name(init_from: object) -> str | None:
    """'torchvision:R2Plus1D_18_Weights.KINETICS400_V1' -> 'R2Plus1D_18_Weights.KINETICS400_V1': the published
    weights an `init_from` names; None for anything else (another run's name, a model file's path)."""
    text = str(init_from)
    return text[len(TORCHVISION_SCHEME):] if text.startswith(TORCHVISION_SCHEME) else None


def torchvision_weights_problem(arch: str, name: str) -> str | None:
    """Why `arch` cannot start from torchvision's weights `name` (<enum>.<member>), or None if it can."""
    enum, dot, member = name.partition(".")
    if not (dot and enum and member):
        return f"'{name}' is not <WeightsEnum>.<member> (e.g. R2Plus1D_18_Weights.KINETICS400_V1)"
    accepted = card(arch).torchvision_weights
    if accepted == enum:
        return None
    takers = sorted(c.name for c in _CARDS if c.torchvision_weights == enum)
    fits = f"; {enum} fits {', '.join(takers)}" if takers else f"; no registered model takes {enum}"
    return (f"{arch} has no torchvision counterpart" if accepted is None else f"{arch} takes {accepted}") + fits
