"""A run described in words (its protocol as run, classifier, initialisation, test views): the one description
the report's tables and the experiment pages both show."""
from __future__ import annotations

from vidrec.plan.catalogue import CARDS, weights_name
from vidrec.plan.config import clip_size_text
from vidrec.data.views import Views, run_views, train_clips_text
from vidrec.plan.runs import RunSettings
from vidrec.training.schedule import batch_plan, schedule_text


def model_args_text(run: RunSettings) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(run.model_args.items()) if k != "dropout")


def classifier_text(run: RunSettings) -> str:
    """The Classifier column: the head as run, and where it departs from the cited source (the catalogue's
    Family.deviation, shown where the run uses dropout)."""
    dropout = float(run.model_args.get("dropout", 0.0) or 0.0)
    if not dropout:
        return "linear (cross-entropy)"
    deviation = CARDS[run.arch].family.deviation if run.arch in CARDS else None
    text = f"dropout {dropout:g} on the pooled features, then linear (cross-entropy)"
    return f"{text}; {deviation}" if deviation else text


def initialisation_text(run: RunSettings) -> str:
    """The Pre-trained column: how a run's weights started (RunSettings.initialisation), yes or no first."""
    if run.init_from and weights_name(run.init_from):
        return f"yes: torchvision's {weights_name(run.init_from)} (classifier replaced)"
    if run.initialisation == "from scratch":
        return "no (from scratch)"
    return run.initialisation if run.init_from_run else f"yes ({run.initialisation})"
# how an override reads in a protocol label: dotted key -> word (others: the key itself)
OVERRIDE_WORDS = {"batch_size": "batch", "optimizer.lr": "lr", "optimizer.name": "optimizer",
                  "optimizer.weight_decay": "weight decay", "optimizer.momentum": "momentum",
                  "train_clips": "training clips", "augment.crop": "crop", "augment.hflip": "flips",
                  "scheduler.step_size": "step"}


def _setting_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_setting_text(v)}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)


def overrides_text(run: RunSettings) -> str:
    """'lr 0.001, batch 16, base_width 16, zero_init_residual on': what the dataset and the run change in
    the named protocol (RunSettings.overrides), then the run's constructor arguments (every one is the
    run's choice over the architecture's default); '' when the run is the protocol as named."""
    parts = [f"{OVERRIDE_WORDS.get(k, k)} {_setting_text(v)}" for k, v in run.overrides.items()]
    parts += [f"{k} {_setting_text(v)}" for k, v in sorted(run.model_args.items()) if k != "dropout"]
    return ", ".join(parts)


def views_of(run: RunSettings) -> tuple[Views, str | None]:
    """The run's test views (K clips x S crops) and, when it has fewer crops than `evaluate.crops`, why."""
    return run_views(run.clip, run.augment, int(run.evaluate["crops"]))


def protocol_text(run: RunSettings) -> str:
    """'thesis, overridden: lr 0.001, batch 16, base_width 16: 6 epochs, ...; test views: ...'."""
    p, c = run.protocol, run.clip
    opt = p["optimizer"]
    sched = (p.get("scheduler") or {}).get("name") or "no schedule"
    aug = run.augment
    views, fewer_crops = views_of(run)
    where = "centre" if views.crops == 1 else "3 along the longer side"
    augment = ", ".join([f"random {aug['crop']} crop ({where} in test)"] * bool(aug.get("crop"))
                        + ["horizontal flips"] * bool(aug.get("hflip"))) or "no augmentation"
    # the global batch as it is made, and warm-up, accumulation, scaling rule, Nesterov (vidrec/training/schedule.py)
    batch = batch_plan(p, max(1, run.train["gpus"]), run.train["nodes"]).text()
    schedule = "".join(f", {t}" for t in schedule_text(p))
    overridden = overrides_text(run)
    text = (f"{run.protocol_name}{f', overridden: {overridden}' if overridden else ''}: {p['epochs']} epochs"
            f"{f' ({run.note})' if run.note else ''}, {opt['name']} "
            f"lr {opt['lr']:g}, {sched}, {batch}{schedule}, "
            f"training clips: {train_clips_text(p['train_clips'], c['sampling'])}, {augment}; "
            f"clips {run.clip_name} ({c['frames']} frames, {clip_size_text(c)}, {c['sampling']}, "
            f"{c['clips_per_video']} per video)")
    text += f"; test views: video level {views.video_level_text()}, clip level {views.clip_level_text()}"
    return "; ".join([text, *([fewer_crops] if fewer_crops else []), *run.adjustments])
