"""Pre-trained initialisation by name (issue 17, part 4): `init_from: torchvision:<Weights>.<member>` loads
through torchvision's weights API from torch's cache under TORCH_HOME. Nothing is downloaded here: the
weights file is generated from our own network and placed where torch.hub looks for it."""
from __future__ import annotations

import urllib.error

import pytest
import torch

from vidrec.plan.catalogue import CARDS, torchvision_weights_problem
from vidrec.models import create_model
from vidrec.models.model_file import init_from
from vidrec.models.pretrained import PretrainedError, weights_file

NAME = "MC3_18_Weights.KINETICS400_V1"  # the smallest of the three (11.7M parameters)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):  # no network in tests, and no waiting for one
        raise urllib.error.URLError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch"


def test_weights_load_from_the_cache_and_the_classifier_is_replaced(torch_home):
    path = weights_file(NAME)
    assert path == torch_home / "hub" / "checkpoints" / "mc3_18-a90a0ba3.pth"
    torch.manual_seed(1)
    published = create_model("mc3_18", num_classes=400)  # Kinetics-400 head, torchvision's layout
    path.parent.mkdir(parents=True)
    torch.save(published.state_dict(), path)
    torch.manual_seed(2)
    ours = create_model("mc3_18", num_classes=101)
    fresh = init_from(ours, "torchvision:" + NAME)
    assert fresh == ["fc.bias", "fc.weight"]
    assert ours.fc.out_features == 101
    mine, theirs = ours.state_dict(), published.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if not k.startswith("fc."))
    assert not torch.equal(mine["fc.weight"][:5], theirs["fc.weight"][:5])

    narrow = create_model("mc3_18", num_classes=101, base_width=8)  # weights that would not fit silently
    with pytest.raises(PretrainedError, match=r"do not fit the weights \(first: layer1.0.conv1.0.weight.*base_width 64"):
        init_from(narrow, "torchvision:" + NAME)


def test_offline_without_a_cached_file_names_the_file_and_where_to_put_it(torch_home):
    model = create_model("r3d_18", num_classes=10, base_width=8)
    expected = torch_home / "hub" / "checkpoints" / "r3d_18-b3b3357e.pth"
    with pytest.raises(PretrainedError) as err:
        init_from(model, "torchvision:R3D_18_Weights.KINETICS400_V1")
    text = str(err.value)
    assert str(expected) in text and "https://download.pytorch.org/models/r3d_18-b3b3357e.pth" in text
    assert "could not be downloaded" in text and "TORCH_HOME" in text
    with pytest.raises(PretrainedError, match="torchvision has no weights of that name"):
        init_from(model, "torchvision:R3D_18_Weights.NO_SUCH_WEIGHTS")


def test_the_catalogue_names_which_weights_each_model_takes():
    takers = {c.name: c.torchvision_weights for c in CARDS.values() if c.torchvision_weights}
    assert takers == {"r3d_18": "R3D_18_Weights", "mc3_18": "MC3_18_Weights", "r2plus1d_18_tv": "R2Plus1D_18_Weights"}
    assert torchvision_weights_problem("r2plus1d_18_tv", "R2Plus1D_18_Weights.KINETICS400_V1") is None
    assert "fits r2plus1d_18_tv" in torchvision_weights_problem("r2plus1d_18", "R2Plus1D_18_Weights.KINETICS400_V1")


def _ucf101_with_the_finetuning_entry() -> dict:
    """config.yaml with its commented-out Kinetics-400 fine-tuning entry switched on."""
    import yaml

    from support import REPO

    lines = (REPO / "config.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("# r2plus1d_18_k400:"))
    end = next(i for i in range(start, len(lines)) if not lines[i].lstrip().startswith("#"))
    lines[start:end] = [line.replace("# ", "", 1) for line in lines[start:end]]
    cfg = yaml.safe_load("\n".join(lines))
    cfg["dataset"] = "ucf101"
    return cfg


def test_the_finetuning_entry_is_ready_and_wrong_weights_are_refused():
    from vidrec.plan.config import validate_config
    from vidrec.core.errors import ConfigError

    cfg = validate_config(_ucf101_with_the_finetuning_entry())
    run = cfg["datasets"]["ucf101"]["models"]["r2plus1d_18_k400"]
    assert run["arch"] == "r2plus1d_18_tv" and run["init_from"] == "torchvision:R2Plus1D_18_Weights.KINETICS400_V1"
    cfg = _ucf101_with_the_finetuning_entry()
    cfg["datasets"]["ucf101"]["models"]["r2plus1d_18_k400"]["arch"] = "r2plus1d_18"
    with pytest.raises(ConfigError, match=r"r2plus1d_18_k400.init_from': r2plus1d_18 has no torchvision counterpart; "
                                          r"R2Plus1D_18_Weights fits r2plus1d_18_tv"):
        validate_config(cfg)
    cfg = _ucf101_with_the_finetuning_entry()
    cfg["datasets"]["ucf101"]["models"]["r2plus1d_18_k400"]["args"] = {"base_width": 32}
    with pytest.raises(ConfigError, match="base_width 64, the run sets 32"):
        validate_config(cfg)


def test_the_report_names_the_weights_and_the_clip_size():
    from vidrec.plan.config import validate_config
    from vidrec.report.run_text import initialisation_text, protocol_text
    from vidrec.plan.runs import run_settings

    run = run_settings(validate_config(_ucf101_with_the_finetuning_entry()), "r2plus1d_18_k400")
    assert initialisation_text(run) == "yes: torchvision's R2Plus1D_18_Weights.KINETICS400_V1 (classifier replaced)"
    assert "clips tran16 (16 frames, 128x171 (whole frame), any_start, 10 per video)" in protocol_text(run)
