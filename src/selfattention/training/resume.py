"""What a resumed run keeps: the settings it was started with (``run_config.json``), and which may change.

``--resume`` continues the same run, so it keeps its model shape, languages and starting model
(:func:`as_recorded` fills them in where the file names none) and refuses any other changed
setting (:func:`changed_settings`) except those of :data:`RESUME_MAY_CHANGE`: when and how long it
trains, how often it validates and saves, its threads, and where the data is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from selfattention.config import ModelConfig
from selfattention.training.config import DataConfig, RunConfig, TrainConfig

RECORD = "run_config.json"
RESUME_MAY_CHANGE = (
    "train.max_minutes",
    "train.max_steps",
    "train.max_epochs",
    "train.cooldown_steps",
    "train.patience",
    "train.valid_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.threads",
    "data.data_dir",
)
# Set from the run's own vocabulary and its data's languages, never compared.
_DERIVED = ("vocab_size", "pad_id", "bos_id", "eos_id", "source_lang", "target_lang")


class ResumeError(ValueError):
    """The recorded run cannot be continued with the settings given; the message names why."""


def recorded_settings(run_dir: Path) -> dict[str, Any] | None:
    """The settings a run was started with, or None for a new run (or one killed before writing them)."""
    try:
        recorded = json.loads((run_dir / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def as_recorded(config: RunConfig, recorded: dict[str, Any]) -> RunConfig:
    """``config`` with the recorded run's model shape, languages and starting model where the file gave none.

    A configuration built in code (``config.given`` empty) is taken as it is, every setting compared.
    Raises :class:`ResumeError` when the record does not describe a model this version reads.
    """
    if not config.given:
        return config
    given = config.given
    model = {**config.model.to_dict()}
    for key, value in (recorded.get("model") or {}).items():
        if key in model and key not in given.get("model", frozenset()):
            model[key] = value
    data_changes = {
        key: (recorded.get("data") or {})[key]
        for key in ("source_lang", "target_lang")
        if key not in given.get("data", frozenset()) and key in (recorded.get("data") or {})
    }
    train_changes = {}
    if "init_from" not in given.get("train", frozenset()) and "init_from" in (recorded.get("train") or {}):
        train_changes["init_from"] = recorded["train"]["init_from"]
    try:
        return replace(
            config,
            model=ModelConfig.from_dict(model),
            data=replace(config.data, **data_changes),
            train=replace(config.train, **train_changes),
        )
    except (TypeError, ValueError) as error:
        raise ResumeError(f"{RECORD} does not describe a model this version reads: {error}") from None


def changed_settings(config: RunConfig, recorded: dict[str, Any]) -> list[str]:
    """Each setting of ``config`` that differs from the record and may not change on resume, as "table.key old → new".

    A data or train setting the record lacks is one this version added after the run began: the run
    trained with its default, so a value other than the default is a change too.
    """
    current = config.to_dict()
    defaults = {"data": asdict(DataConfig()), "train": asdict(TrainConfig())}
    changed = []
    for table, values in recorded.items():
        if not isinstance(values, dict) or table not in current:
            continue
        for key, new in current[table].items():
            if (table == "model" and key in _DERIVED) or f"{table}.{key}" in RESUME_MAY_CHANGE:
                continue
            if key in values:
                old, note = _as_json(values[key]), ""
            elif table in defaults:
                old, note = _as_json(defaults[table][key]), " (not recorded: the run began before it existed)"
            else:
                continue
            if _as_json(new) != old:
                changed.append(f"{table}.{key} {old!r}{note} → {_as_json(new)!r}")
    return changed


def _as_json(value: Any) -> Any:
    """``value`` as ``run_config.json`` holds it: a tuple as a list."""
    return list(value) if isinstance(value, tuple) else value


def refuse_changed_settings(run_dir: Path, config: RunConfig, recorded: dict[str, Any]) -> None:
    """Raise :class:`ResumeError` naming every setting changed since the run started (see :func:`changed_settings`)."""
    changed = changed_settings(config, recorded)
    if changed:
        raise ResumeError(
            f"{run_dir} was started with other settings ({RECORD}): "
            + "; ".join(changed)
            + f". A resumed run may change only {', '.join(RESUME_MAY_CHANGE)}; "
            "start a new run (another --out), or fine-tune from its model with --init-from"
        )


def refuse_lost_start(run_dir: Path) -> None:
    """A fine-tuning run resumed before its first checkpoint must be told its start again: ResumeError if so."""
    try:
        recorded = json.loads((run_dir / RECORD).read_text(encoding="utf-8"))
        init_from = recorded["train"]["init_from"]
    except (OSError, ValueError, KeyError, TypeError):
        return  # no record (or an old one): nothing to lose
    if init_from:
        raise ResumeError(
            f"{run_dir} was started from {init_from} ({RECORD}) and has no checkpoint yet: "
            f"resume it with --init-from {init_from}, or the weights would start at random"
        )
