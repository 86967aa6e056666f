"""Training progress for TensorBoard: each epoch's metrics.csv row as scalars, beside metrics.csv.

Enabled by `train.tensorboard: true`; `tensorboard --logdir results/<dataset>` then shows every run
(split<N>/<run>/seed<S>) as it trains. The trainer calls `open_sink` once after resuming and
`sink.epoch` once per epoch with the row it has just written to metrics.csv: values already on the
host, so the loop gains no device sync. (Per-step loss is left out for that reason.)

Curves never repeat an epoch: the writer opens with purge_step=1 (a live TensorBoard drops what it
had read of the folder) after removing the event files of earlier attempts, and first rewrites every
epoch the resumed checkpoint holds. The folder so always holds one event file whose curves are
exactly metrics.csv's, however often the run was killed and resumed. Only rank 0 writes.
"""
from __future__ import annotations

import weakref
from pathlib import Path

from vidrec.core.errors import ConfigError

# metrics.csv column -> TensorBoard tag (loss/ and accuracy/ put train and test in one section)
SCALARS = {"train_loss": "loss/train", "val_loss": "loss/test", "train_acc": "accuracy/train",
           "val_acc": "accuracy/test", "lr": "learning_rate", "train_clips_per_s": "speed/train_clips_per_s",
           "epoch_time_s": "time/epoch_s"}
EVENT_FILE_GLOB = "events.out.tfevents.*"


class NoSink:
    """What a run without TensorBoard (or a rank other than 0) logs to: nothing."""

    def epoch(self, row: dict) -> None:
        pass


class TensorBoardSink(NoSink):
    """Writes each epoch's scalars at step = epoch (1-based) into out_dir's one event file."""

    def __init__(self, out_dir: Path, done: list[dict]):
        from torch.utils.tensorboard import SummaryWriter

        out_dir.mkdir(parents=True, exist_ok=True)
        for old in out_dir.glob(EVENT_FILE_GLOB):  # earlier attempts: rewritten below from the checkpoint
            old.unlink()
        self.writer = SummaryWriter(log_dir=str(out_dir), purge_step=1)
        # closed when the trainer lets go of the sink (fit returns or raises) or at exit: no close() call
        weakref.finalize(self, self.writer.close)
        for row in done:
            self.epoch(row)

    def epoch(self, row: dict) -> None:
        for column, tag in SCALARS.items():
            if column in row:
                self.writer.add_scalar(tag, float(row[column]), global_step=int(row["epoch"]))
        self.writer.flush()  # visible to a running TensorBoard now, not at the writer's next timer


def open_sink(enabled: bool, out_dir: Path, is_main: bool, done: list[dict]) -> NoSink:
    """The run's progress sink: TensorBoard event files in out_dir when enabled, on rank 0 only.

    `done` is the metrics of the epochs a resumed checkpoint holds (rewritten first). Every rank
    checks that tensorboard is installed, so a missing package stops all of them alike."""
    if not enabled:
        return NoSink()
    try:
        import torch.utils.tensorboard  # noqa: F401  (imports the tensorboard package)
    except ImportError as err:
        raise ConfigError(f"config key 'train.tensorboard' is true but TensorBoard cannot be imported ({err}); "
                          "install it (`pip install -e .`: pyproject.toml pins tensorboard) or set "
                          "train.tensorboard: false") from err
    return TensorBoardSink(Path(out_dir), done) if is_main else NoSink()
