"""The model file (vidrec/models/model_file.py): one format, loaded weights-only, its preprocessing."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from support import REPO
from vidrec.models import create_model
from vidrec.models.model_file import (ModelFileError, Preprocessing, build_model_from_file, init_from,
                                      load_model_file, save_model_file)

CLIP = {"frames": 4, "crop": 32, "size": 16, "sampling": "uniform", "clips_per_video": 1}
NORM = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}


def _save(path, arch="r3d_18", classes=("a", "b", "c"), **kw):
    model = create_model(arch, num_classes=len(classes), clip_shape=(3, 4, 16, 16), base_width=8)
    save_model_file(path, arch=arch, model_args={"base_width": 8}, class_names=list(classes), clip=CLIP,
                    clip_name="tiny", clip_shape=(3, 4, 16, 16), normalize=NORM, augment=kw.get("augment", {}),
                    state_dict=model.state_dict(), run={"dataset": "d", "model": arch, "protocol_name": "p"})
    return model


class _Payload:
    """What a crafted model file carries: unpickling it would run a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_rebuilds_the_same_network(tmp_path):
    model = _save(tmp_path / "model.pt")
    rebuilt, blob = build_model_from_file(tmp_path / "model.pt")
    assert blob["class_names"] == ["a", "b", "c"] and blob["num_classes"] == 3 and blob["clip_name"] == "tiny"
    x = torch.randn(2, 3, 4, 16, 16)
    model.eval(), rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize("where", ["field", "state_dict"])
def test_pickle_payload_does_not_run_and_the_error_names_the_file(tmp_path, where):
    marker = tmp_path / "payload_ran"
    blob = {"arch": "r3d_18", "model_args": {}, "num_classes": 3, "clip_shape": [3, 4, 16, 16], "state_dict": {}}
    if where == "field":
        blob["arch"] = _Payload(marker)
    else:
        blob["state_dict"] = {"w": _Payload(marker)}
    path = tmp_path / "downloaded.pt"
    torch.save(blob, path)
    with pytest.raises(ModelFileError, match="downloaded.pt") as err:
        load_model_file(path)
    assert "refused" in str(err.value)
    assert not marker.exists(), "the pickle payload ran"


def test_predict_refuses_a_crafted_file_without_running_it(tmp_path):
    marker = tmp_path / "payload_ran"
    torch.save({"arch": _Payload(marker)}, tmp_path / "evil.pt")
    video = tmp_path / "v.avi"
    video.write_bytes(b"not a video")
    done = subprocess.run([sys.executable, "-m", "vidrec.cli", "predict", "--model", str(tmp_path / "evil.pt"),
                           str(video)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "evil.pt" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not marker.exists()


def test_missing_damaged_and_foreign_files_name_themselves(tmp_path):
    with pytest.raises(ModelFileError, match="nothere.pt: model file not found"):
        load_model_file(tmp_path / "nothere.pt")
    (tmp_path / "damaged.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ModelFileError, match="damaged.pt: cannot read"):
        load_model_file(tmp_path / "damaged.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ModelFileError, match="foreign.pt: not a vidrec model file"):
        load_model_file(tmp_path / "foreign.pt")


def test_init_from_copies_matching_tensors_and_keeps_a_new_classifier(tmp_path):
    src = _save(tmp_path / "model.pt", classes=("a", "b", "c"))
    dst = create_model("r3d_18", num_classes=5, clip_shape=(3, 4, 16, 16), base_width=8)
    fresh = init_from(dst, tmp_path / "model.pt")
    assert fresh and all(k.startswith("fc.") for k in fresh)
    assert torch.equal(dst.state_dict()["stem.0.weight"], src.state_dict()["stem.0.weight"])


def test_preprocessing_normalises_then_crops_centre_or_random():
    x = torch.randint(0, 256, (2, 3, 4, 10, 12), dtype=torch.uint8)
    pre = Preprocessing.from_settings(NORM, {"crop": 8, "hflip": True})
    out = pre(x)
    mean = torch.tensor(NORM["mean"]).view(-1, 1, 1, 1)
    std = torch.tensor(NORM["std"]).view(-1, 1, 1, 1)
    expect = ((x.float() / 255 - mean) / std)[..., 1:9, 2:10]
    assert out.shape == (2, 3, 4, 8, 8) and torch.allclose(out, expect)
    torch.manual_seed(0)
    a = pre(x, train=True)
    torch.manual_seed(0)
    assert a.shape == out.shape and torch.equal(a, pre(x, train=True))  # drawn from torch's RNG
    cl = pre(x, memory_format=torch.channels_last_3d)
    assert cl.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(cl, out)
    assert Preprocessing.of({"normalize": NORM, "augment": None}) == Preprocessing(tuple(NORM["mean"]),
                                                                                    tuple(NORM["std"]))
