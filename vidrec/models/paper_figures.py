"""Published figures to display beside our measurements (never used to compute anything).

Each entry: params (count), size_mb, accuracy (text with its protocol) and source. A missing
figure is None: we only list what a source states.
"""

from __future__ import annotations

__all__ = ["PAPER_FIGURES", "paper_figure_text"]

_QIU = "Qiu, Yao, Mei, ICCV 2017 (arXiv 1711.10305)"
_THESIS = "Park, ConvLSTM-C2D thesis, Chung-Ang Univ. 2020"
_TV = "torchvision 0.29 model weights metadata (Kinetics-400, video-level, 16-frame clips)"
_TRAN_RULE = "Tran et al., CVPR 2018 mid-planes rule, count from docs/reference architectures.md"

PAPER_FIGURES: dict[str, dict] = {
    "p3d63": {"params": None, "size_mb": 98.0, "accuracy": None, "source": f"{_QIU}: ResNet-50-based P3D"},
    "p3d199": {
        "params": 66.5e6,
        "size_mb": 261.0,
        "accuracy": "UCF101 88.6% (Sports-1M pre-trained, pool5 of 20 clips, linear SVM, 3-split mean); "
        "thesis: 88.79% from scratch",
        "source": f"{_QIU}; {_THESIS}",
    },
    "convlstm_c2d63": {
        "params": None,
        "size_mb": 236.0,
        "accuracy": "UCF101 95.57% from scratch, one centre clip (far above the 41-55% that from-scratch "
        "3D CNNs reach on the official splits)",
        "source": _THESIS,
    },
    "r3d_18": {"params": 33_371_472, "size_mb": None, "accuracy": "Kinetics-400 acc@1 63.20%", "source": _TV},
    "mc3_18": {"params": 11_695_440, "size_mb": None, "accuracy": "Kinetics-400 acc@1 63.96%", "source": _TV},
    "r2plus1d_18_tv": {
        "params": 31_505_325,
        "size_mb": None,
        "accuracy": "Kinetics-400 acc@1 67.46%",
        "source": _TV,
    },
    "r2d_18": {"params": 11.4e6, "size_mb": None, "accuracy": None, "source": _TRAN_RULE},
    "fr2d_18": {"params": 11.4e6, "size_mb": None, "accuracy": None, "source": _TRAN_RULE},
    "rmc3_18": {"params": 33.1e6, "size_mb": None, "accuracy": None, "source": _TRAN_RULE},
    "r2plus1d_18": {"params": 33.4e6, "size_mb": None, "accuracy": None, "source": _TRAN_RULE},
    "frame_resnet50": {
        "params": 25_557_032,
        "size_mb": None,
        "accuracy": None,
        "source": "torchvision resnet50 (1000-class ImageNet head)",
    },
}


def paper_figure_text(name: str) -> str:
    """One-line rendering of the published figures for `name` ('' when there are none)."""
    fig = PAPER_FIGURES.get(name)
    if not fig:
        return ""
    parts = []
    if fig.get("params") is not None:
        parts.append(f"{fig['params'] / 1e6:.1f}M params")
    if fig.get("size_mb") is not None:
        parts.append(f"{fig['size_mb']:.0f} MB")
    if fig.get("accuracy"):
        parts.append(fig["accuracy"])
    return f"{'; '.join(parts)} [{fig['source']}]"
