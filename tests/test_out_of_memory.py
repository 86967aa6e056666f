"""CUDA out of memory in training or evaluation: one line naming the run, the batch size and the fix.

Simulated on CPU: the training or evaluation raises torch.OutOfMemoryError as CUDA would."""
from __future__ import annotations

import pytest
import torch

from vidrec import cli


def _raise_oom(*args, **kwargs):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.fixture
def config_file(tmp_path):
    import yaml

    from support import repo_config

    cfg = repo_config()
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_training_out_of_memory_names_run_batch_and_fix(monkeypatch, capsys, config_file, tmp_path):
    from vidrec.plan.config import load_config
    from vidrec.plan.runs import run_settings

    monkeypatch.setattr("vidrec.training.trainer.train_run", _raise_oom)
    run = run_settings(load_config(config_file), "p3d63")
    code = cli.main(["--config", str(config_file), "train", "--model", "p3d63", "--index", "i.csv",
                     "--classes", "c.txt", "--out-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "CUDA out of memory in the training of run 'p3d63' (seed 0)" in err
    assert f"at batch size {run.protocol['batch_size']}" in err
    assert f"protocols.{run.protocol_name}.batch_size" in err and "gradient accumulation" in err
    assert "rehearsal=true" in err and "resumes from its last checkpoint" in err


def test_evaluation_out_of_memory_names_the_model_file_and_setting(monkeypatch, capsys, config_file):
    from vidrec.plan.config import load_config

    monkeypatch.setattr("vidrec.evaluation.evaluate.evaluate_run", _raise_oom)
    code = cli.main(["--config", str(config_file), "evaluate", "--model-file", "m.pt", "--index", "i.csv",
                     "--out-dir", "out", "--split", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "CUDA out of memory in the evaluation of m.pt" in err, err
    assert f"at batch size {load_config(config_file)['evaluate']['batch_size']}" in err
    assert "evaluate.batch_size" in err
