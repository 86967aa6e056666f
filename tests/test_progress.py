"""Progress you can watch (issue 20, part 4): TensorBoard event files from training, and `vidrec report`
on a results folder whose runs are still going (a progress report; the final report left alone)."""
from __future__ import annotations

import sys

import pandas as pd
import pytest
import yaml

from support import run_cli
from support.report_results import make_results
from vidrec.core.errors import ConfigError
from vidrec.plan.layout import PROGRESS_FILES, Layout
from vidrec.report.progress import DONE, EVALUATING, NOT_STARTED, TRAINING, build_progress_report, final_inputs_complete
from vidrec.training.tensorboard import EVENT_FILE_GLOB, SCALARS, open_sink


# ----------------------------------------------------------------------------- TensorBoard
def _scalars(folder) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] as TensorBoard reads the folder (purging what a restart superseded)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_event_files_beside_metrics_each_epoch_once_after_a_resume(tiny_run, tmp_path, monkeypatch):
    """Epoch 1, a stop before the run finishes (checkpoint kept, as after a kill), then a resumed run to
    epoch 2: one event file whose scalars are metrics.csv's, every epoch once."""
    from vidrec.plan.config import load_config
    from vidrec.plan.runs import run_settings
    from vidrec.training.trainer import Trainer

    classes = tiny_run["classes"].read_text().split()

    def trainer(epochs: int) -> Trainer:
        cfg = load_config(tiny_run["config"], ["train.tensorboard=true",
                                               f"datasets.tiny.protocol_overrides.thesis.epochs={epochs}"])
        return Trainer(run_settings(cfg, "p3d63"), 0, tiny_run["index"], classes, tmp_path, threads=1)

    first = trainer(1)
    monkeypatch.setattr(first, "finish", lambda: {})  # stopped after epoch 1's checkpoint
    first.fit()
    assert (tmp_path / "checkpoint.pt").exists() and len(list(tmp_path.glob(EVENT_FILE_GLOB))) == 1
    assert [s for s, _ in _scalars(tmp_path)["loss/train"]] == [1]
    monkeypatch.undo()

    trainer(2).fit()
    assert not (tmp_path / "checkpoint.pt").exists(), "the resumed run finished"
    assert len(list(tmp_path.glob(EVENT_FILE_GLOB))) == 1, "the earlier attempt's file was rewritten, not kept"
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    scalars = _scalars(tmp_path)
    assert set(SCALARS.values()) <= set(scalars)
    for column, tag in SCALARS.items():
        steps, values = zip(*scalars[tag])
        assert list(steps) == [1, 2], f"{tag}: steps {steps}"
        assert values == pytest.approx(metrics[column].tolist(), rel=1e-6), tag


def test_sink_off_other_ranks_and_a_missing_package(tmp_path, monkeypatch):
    open_sink(False, tmp_path, True, [{"epoch": 1, "train_loss": 1.0}]).epoch({"epoch": 2, "train_loss": 0.5})
    open_sink(True, tmp_path, False, []).epoch({"epoch": 1, "train_loss": 1.0})  # rank 1 of a DDP run
    assert not list(tmp_path.iterdir()), "only rank 0 of an enabled run writes"
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    with pytest.raises(ConfigError, match=r"train\.tensorboard.*set train\.tensorboard: false"):
        open_sink(True, tmp_path, True, [])
    open_sink(False, tmp_path, True, [])  # off: never imported


def test_switching_tensorboard_on_neither_retrains_nor_restarts():
    """The run's identity (Snakemake's rerun trigger, the checkpoint match) ignores train.tensorboard."""
    from vidrec.plan.config import load_config
    from vidrec.plan.runs import listed_runs, run_settings

    off = load_config(None)
    name = listed_runs(off)[0]
    on = run_settings(load_config(None, ["train.tensorboard=true"]), name)
    assert on.train["tensorboard"] and not run_settings(off, name).train["tensorboard"]
    assert on.identity() == run_settings(off, name).identity()
    assert run_settings(load_config(None, ["train.amp=none"]), name).identity() != on.identity()


# ----------------------------------------------------------------------------- progress report
def _unfinish(layout: Layout, split: int, model: str, stage: str) -> None:
    """Turn a fixture run back into one training (after 2 epochs), evaluating, or not started."""
    run = layout.run_dir(split, model, 0)
    if stage == "not started":
        for f in run.iterdir():
            f.unlink()
        return
    layout.evaluation_file(split, model, 0).unlink()  # evaluation.json: written last by `vidrec evaluate`
    if stage == "training":
        layout.train_file(split, model, 0, "summary").unlink()
        layout.model_file(split, model, 0).unlink(missing_ok=True)
        metrics = layout.train_file(split, model, 0, "metrics")
        pd.read_csv(metrics).head(2).to_csv(metrics, index=False)
        layout.checkpoint(split, model, 0).write_bytes(b"resume point")


def test_progress_report_on_unfinished_runs_leaves_the_final_report_alone(tmp_path):
    cfg, results = make_results(tmp_path)  # 2 splits x convlstm_c2d63, p3d63, 3 epochs of 12 planned
    layout = Layout(cfg["dataset"], tmp_path)
    assert layout.results == results and final_inputs_complete(cfg, layout)
    _unfinish(layout, 1, "p3d63", "training")
    _unfinish(layout, 2, "convlstm_c2d63", "evaluation")
    _unfinish(layout, 2, "p3d63", "not started")
    assert not final_inputs_complete(cfg, layout)
    final = layout.report_dir
    final.mkdir(parents=True)
    (final / "index.html").write_text("the last complete report")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in final.iterdir()}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))

    # by hand, no options: the inputs are incomplete, so the progress report, in its own folder
    done = run_cli("--config", str(tmp_path / "config.yaml"), "report", "--root", str(tmp_path))
    assert "progress report" in done.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in final.iterdir()} == before
    for name in PROGRESS_FILES.values():
        assert (layout.progress_dir / name).stat().st_size > 0, name
    status = pd.read_csv(layout.progress_file("status")).set_index(["split", "model"])
    assert status["status"].to_dict() == {(1, "convlstm_c2d63"): DONE, (1, "p3d63"): TRAINING,
                                          (2, "convlstm_c2d63"): EVALUATING, (2, "p3d63"): NOT_STARTED}
    assert status.loc[(1, "p3d63"), "epochs"] == 2 and status.loc[(1, "p3d63"), "epochs_planned"] == 12
    assert status.loc[(2, "p3d63"), "epochs"] == 0
    accuracy = pd.read_csv(layout.progress_file("accuracy"))
    assert accuracy[["Split", "Model"]].values.tolist() == [[1, "convlstm_c2d63"]]
    assert accuracy["Video top-1 (%)"].iloc[0].startswith("62.50 [")  # the fixture's 5 of 8 videos
    html = layout.progress_file("html").read_text()
    for text in ("1 of 4 runs evaluated", TRAINING, EVALUATING, NOT_STARTED, "2 of 12"):
        assert text in html, text

    # the rule's call (--out-dir, no --progress) still wants every input, and names the missing one
    rule = run_cli("--config", str(tmp_path / "config.yaml"), "report", "--root", str(tmp_path),
                   "--out-dir", str(final), check=False)
    assert rule.returncode == 2 and "evaluation.json: missing" in rule.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in final.iterdir()} == before
    with pytest.raises(Exception, match="never writes into the final report's folder"):
        build_progress_report(cfg, layout, out_dir=final)
