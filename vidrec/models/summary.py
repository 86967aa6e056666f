"""Side-by-side table of measured complexity and published figures (backs `vidrec models`)."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import pandas as pd

from vidrec.plan.catalogue import published_text

from .complexity import model_complexity
from .registry import create_model, list_models

__all__ = ["TABLE_FORMATS", "flops_note", "models_table", "render_models_table"]

TABLE_FORMATS = ("text", "wide", "csv", "markdown")


def models_table(
    names: Sequence[str] | None = None,
    clip_shape: Sequence[int] = (3, 16, 160, 160),
    num_classes: int = 101,
    **overrides,
) -> pd.DataFrame:
    """One row per model: name, params, size_mb (fp32), gflops (one clip, FlopCounterMode), paper.

    `names` defaults to every registered model (full width: slow on CPU; pass a few).
    `overrides` go to every factory (e.g. base_width=16 for the demo's narrow models).
    """
    rows = []
    for name in names if names is not None else list_models():
        model = create_model(name, num_classes=num_classes, clip_shape=clip_shape, **overrides)
        c = model_complexity(model, clip_shape)
        rows.append(
            {
                "name": name,
                "params": int(c["params"]),
                "size_mb": round(c["size_mb_fp32"], 1),
                "gflops": round(c["gflops"], 2),
                "paper": published_text(name),
            }
        )
        del model
    table = pd.DataFrame(rows, columns=["name", "params", "size_mb", "gflops", "paper"])
    table.attrs["clip_shape"] = tuple(int(v) for v in clip_shape)  # what the gflops column was measured on
    return table


def flops_note(table: pd.DataFrame) -> str:
    """What the gflops column counts: its input shape and the multiply-add convention ('' when unknown)."""
    shape = table.attrs.get("clip_shape")
    if not shape:
        return ""
    return (f"gflops: one forward pass of one clip of {' x '.join(map(str, shape))} (C x T x H x W, batch 1), "
            "counted by torch's FlopCounterMode: a multiply-add counts as 2 FLOPs (convolutions and matrix "
            "products only)")


def render_models_table(table: pd.DataFrame, fmt: str = "text", width: int = 100) -> str:
    """`models_table` as `vidrec models` prints it, ending in a newline.

    text: the measured columns, and per model with published figures a footnote number whose
    note (the catalogue's text and source) is wrapped below the table to `width` columns: the
    figures alone run to 280 characters, which wraps every row of a one-line table in a terminal.
    wide: one line per model, figures inline. csv and markdown (a pipe table): every column, for
    files and documents. Every format but csv ends with what the gflops column counts (flops_note).
    """
    note = flops_note(table)
    tail = f"\n{note}\n" if note else ""
    if fmt == "wide":
        return table.to_string(index=False) + "\n" + tail
    if fmt == "csv":
        return table.to_csv(index=False, lineterminator="\n")
    if fmt == "markdown":
        return _pipe_table(table) + tail
    if fmt != "text":
        raise ValueError(f"unknown table format {fmt!r} ({' | '.join(TABLE_FORMATS)})")
    refs, notes = [], []
    for name, text in zip(table["name"], table["paper"]):
        refs.append(f"[{len(notes) + 1}]" if text else "")
        if text:
            notes.append(textwrap.fill(f"{refs[-1]} {name}: {text}", width, break_on_hyphens=False,
                                       subsequent_indent=" " * (len(refs[-1]) + 1)))
    lines = [table.assign(paper=refs).to_string(index=False)]
    if note:
        lines += ["", textwrap.fill(note, width, break_on_hyphens=False)]
    if notes:
        lines += ["", "paper: the figures their source states (quoted, never computed):", *notes]
    return "\n".join(lines) + "\n"


def _pipe_table(table: pd.DataFrame) -> str:
    """GitHub-flavoured markdown: numbers right-aligned, `|` in a cell escaped."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    numeric = [pd.api.types.is_numeric_dtype(table[c]) for c in table.columns]
    rows = [list(map(cell, table.columns)), ["---:" if n else "---" for n in numeric]]
    rows += [[cell(v) for v in row] for row in table.itertuples(index=False)]
    return "".join("| " + " | ".join(r) + " |\n" for r in rows)
