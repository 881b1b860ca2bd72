"""Training under faults: failing writes, losses and gradients that are not finite, half-done work.

Each fault stops training with a TrainingError that names the run directory and the last good
checkpoint, which still loads and resumes; or, for a single bad step, skips it with a warning.
Writes fail by injection (an OSError with ENOSPC or EROFS at a chosen call), through a path
component that is a regular file, and for real on a tiny tmpfs (full, then remounted read-only)
when this machine lets the tests mount one. (test_training.py holds the first cases of each.)
"""

from __future__ import annotations

import errno
import logging
import math
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

import selfattention.training.checkpoint as checkpoint_module
import selfattention.training.trainer as trainer_module
from selfattention.data import Tokenizer
from selfattention.model_io import load_model
from selfattention.training import RunConfig, Trainer, TrainingError, train
from selfattention.training.checkpoint import list_checkpoints, load_checkpoint
from selfattention.training.metrics import MetricsLog, read_metrics
from test_cli_translate import TINY_TOML, assert_clean_error, run
from test_training import (
    assert_checkpoint_failure_is_clean,
    fail_on_call,
    last_weights,
    poison_training_loss,
    progress_of,
    with_train,
)

TRAINER_LOGGER = "selfattention.training.trainer"
EPOCH_BATCHES = 16  # of the tiny corpus with tiny_run_config's settings
ENOSPC = OSError(errno.ENOSPC, "No space left on device")
EROFS = OSError(errno.EROFS, "Read-only file system")


def assert_usable(checkpoint: Path, config: RunConfig) -> None:
    """A checkpoint that loads as a model, a tokenizer and a training state, with finite weights."""
    model = load_model(checkpoint)
    Tokenizer.load(checkpoint)
    with torch.random.fork_rng():
        load_checkpoint(checkpoint, model, torch.optim.Adam(model.parameters()))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def assert_stopped_cleanly(error: TrainingError, run_dir: Path, last_good: str, *words: str) -> None:
    message = str(error)
    assert str(run_dir) in message
    assert f"Last good checkpoint: {run_dir / 'checkpoints' / last_good}" in message
    for word in words:
        assert word in message, message


# --- failing writes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "where", "error", "call"),
    [
        (checkpoint_module, "save_model", EROFS, 2),  # the second checkpoint's model files, on a read-only disk
        (checkpoint_module, "save_file", ENOSPC, 2),  # its optimiser state, after its model files
        (Tokenizer, "save", ENOSPC, 3),  # its tokenizer (the first save is the run directory's)
    ],
    ids=["model-read-only", "optimiser-full", "tokenizer-full"],
)
def test_a_failed_checkpoint_write_anywhere_keeps_the_previous_one(
    tiny_run_config: RunConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    owner: Any,
    where: str,
    error: OSError,
    call: int,
) -> None:
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2)
    with monkeypatch.context() as patch:
        patch.setattr(owner, where, fail_on_call(getattr(owner, where), error, call=call))
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert not list((tmp_path / "checkpoints").glob(".*")), "the half-written checkpoint was left"
    assert_checkpoint_failure_is_clean(config, tmp_path, str(info.value), reason=error.strerror)


def test_a_full_disk_while_publishing_best_keeps_the_previous_best(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second epoch's best/ fails half-copied: the first epoch's stays, whole; resuming publishes again."""
    config = with_train(tiny_run_config, max_steps=2 * EPOCH_BATCHES + 2, checkpoint_every=100, max_epochs=10)
    second_epoch = f"step-{2 * EPOCH_BATCHES:08d}"
    with monkeypatch.context() as patch:  # best/ is three copies: the fifth is the second publishing's second
        patch.setattr(trainer_module.shutil, "copy2", fail_on_call(trainer_module.shutil.copy2, ENOSPC, call=5))
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert_stopped_cleanly(info.value, tmp_path, second_epoch, "cannot write best/", "No space left on device")
    first_best = load_file(str(tmp_path / "checkpoints" / f"step-{EPOCH_BATCHES:08d}" / "model.safetensors"))
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer.model",
    ]
    assert_same(load_file(str(tmp_path / "best" / "model.safetensors")), first_best)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert_usable(tmp_path / "checkpoints" / second_epoch, config)
    train(config, tmp_path, resume=True, show_progress=False)
    second_best = load_file(str(tmp_path / "checkpoints" / second_epoch / "model.safetensors"))
    assert_same(load_file(str(tmp_path / "best" / "model.safetensors")), second_best)
    assert list_checkpoints(tmp_path)[-1].name == f"step-{2 * EPOCH_BATCHES + 2:08d}"


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    assert all(torch.equal(a[name], b[name]) for name in a)


def test_a_failed_metrics_write_stops_training_naming_the_file(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_train(tiny_run_config, max_steps=30, checkpoint_every=10)
    with monkeypatch.context() as patch:  # records at steps 1, 25: the second fails
        patch.setattr(MetricsLog, "write", fail_on_call(MetricsLog.write, ENOSPC, call=3))
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert_stopped_cleanly(info.value, tmp_path, "step-00000020", "cannot write metrics.jsonl")
    train(config, tmp_path, resume=True, show_progress=False)
    assert [r["step"] for r in read_metrics(tmp_path) if r["kind"] == "train"] == [1, 25]


def test_a_run_directory_under_a_regular_file_is_refused_at_once(
    tiny_run_config: RunConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_corpus: Path
) -> None:
    """Root ignores permission bits, so a read-only location is made of a path through a regular file."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be\n", encoding="utf-8")
    run_dir = blocker / "run"
    with pytest.raises(TrainingError) as info:
        train(tiny_run_config, run_dir, show_progress=False)
    assert "cannot write the run directory" in str(info.value)
    assert "Not a directory" in str(info.value)
    assert str(run_dir) in str(info.value)
    assert "Last good checkpoint: none yet" in str(info.value)
    args = ["train", "--config", str(TINY_TOML), "--out", str(run_dir), "--data-dir", str(tiny_corpus)]
    code, out, err = run(capsys, *args, "--no-progress", "--device", "cpu", "train.max_steps=1")
    assert_clean_error(code, out, err.splitlines()[-1] + "\n", str(run_dir), "Not a directory")


# --- a real file system: a tiny tmpfs, full, then read-only ---------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: room for the tokenizer and one checkpoint of the tiny model, not for two."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], capture_output=True, text=True
        )
    except OSError as error:
        pytest.skip(f"cannot run mount: {error}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root in a privileged container): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def remount(mount_point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(mount_point)], check=True)


def test_a_really_full_file_system_stops_training_and_keeps_the_last_checkpoint(
    tiny_run_config: RunConfig, tmpfs: Path
) -> None:
    run_dir = tmpfs / "run"
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2, keep_checkpoints=1)
    with pytest.raises(TrainingError) as info:
        train(config, run_dir, show_progress=False)
    assert_stopped_cleanly(info.value, run_dir, "step-00000002", "cannot write a checkpoint", "No space left on device")
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-00000002"]  # the partial one is gone
    assert_usable(run_dir / "checkpoints" / "step-00000002", config)
    remount(tmpfs, "size=8m")  # space is made
    train(config, run_dir, resume=True, show_progress=False)
    assert [p.name for p in list_checkpoints(run_dir)] == ["step-00000006"]


def test_a_file_system_that_turns_read_only_stops_training_and_keeps_the_last_checkpoint(
    tiny_run_config: RunConfig, tmpfs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    remount(tmpfs, "size=8m")
    run_dir = tmpfs / "run"
    # TensorBoard's writer keeps its event file open, and Linux will not remount a file system
    # read-only under a file open for writing (the kernel itself can, on an I/O error).
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2, tensorboard=False)
    real_save = checkpoint_module.save_checkpoint
    calls = []

    def remount_read_only_first(*args: Any, **kwargs: Any) -> Path:
        calls.append(1)
        if len(calls) == 2:
            remount(tmpfs, "ro")  # the kernel refuses every write from here on
        return real_save(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "save_checkpoint", remount_read_only_first)
        with pytest.raises(TrainingError) as info:
            train(config, run_dir, show_progress=False)
    assert_stopped_cleanly(info.value, run_dir, "step-00000002", "cannot write a checkpoint", "Read-only file system")
    assert_usable(run_dir / "checkpoints" / "step-00000002", config)
    remount(tmpfs, "rw")
    train(config, run_dir, resume=True, show_progress=False)
    assert list_checkpoints(run_dir)[-1].name == "step-00000006"


# --- losses and gradients that are not finite -------------------------------------------------


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan], ids=["inf", "-inf", "nan"])
@pytest.mark.parametrize("gradient_only", [False, True], ids=["loss", "gradient"])
@pytest.mark.parametrize("clip_norm", [1.0, 0.0], ids=["clipped", "unclipped"])
def test_a_non_finite_loss_or_gradient_skips_its_step_and_says_so(
    tiny_run_config: RunConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    value: float,
    gradient_only: bool,
    clip_norm: float,
) -> None:
    """Unclipped (train.clip_norm=0), a NaN gradient used to reach Adam and make every weight NaN."""
    calls = poison_training_loss(monkeypatch, {2, 4}, value=value, gradient_only=gradient_only)
    config = with_train(tiny_run_config, max_steps=4, checkpoint_every=100, clip_norm=clip_norm)
    with caplog.at_level(logging.WARNING, logger=TRAINER_LOGGER):
        train(config, tmp_path, show_progress=False)
    assert len(calls) == 6  # four good steps, two skipped
    warnings = [r.getMessage() for r in caplog.records if r.name == TRAINER_LOGGER and r.levelno == logging.WARNING]
    assert warnings == [
        "step 2: loss or gradients not finite; update skipped (1 in a row)",
        "step 3: loss or gradients not finite; update skipped (1 in a row)",
    ]
    final = list_checkpoints(tmp_path)[-1]
    assert progress_of(final)["batch_in_epoch"] == 6
    assert load_file(str(final / "optimizer.safetensors"))["state.0.step"].item() == 4
    assert all(torch.isfinite(tensor).all() for tensor in last_weights(tmp_path).values())


@pytest.mark.parametrize(
    ("value", "gradient_only"), [(math.inf, False), (math.nan, True)], ids=["inf-loss", "nan-gradient"]
)
def test_repeated_non_finite_steps_stop_with_a_usable_last_checkpoint(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: float, gradient_only: bool
) -> None:
    config = with_train(tiny_run_config, max_steps=8, checkpoint_every=2)
    with monkeypatch.context() as patch:
        poison_training_loss(patch, None, from_call=4, value=value, gradient_only=gradient_only)
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert_stopped_cleanly(info.value, tmp_path, "step-00000002", "not finite for 5 steps in a row", "peak_lr")
    assert_usable(list_checkpoints(tmp_path)[-1], config)
    train(config, tmp_path, resume=True, show_progress=False)  # the cause gone, it resumes and finishes
    assert list_checkpoints(tmp_path)[-1].name == "step-00000008"


# --- work half done ------------------------------------------------------------------------------


def test_a_half_written_metrics_record_does_not_stop_a_resume(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    """A process killed while appending to metrics.jsonl leaves half a line; resuming used to fail on it."""
    config = with_train(tiny_run_config, max_steps=30, checkpoint_every=10)
    train(with_train(config, max_steps=26), tmp_path, show_progress=False)  # records at 1, 16, 25; checkpoint at 26
    with (tmp_path / "metrics.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"kind": "train", "loss": 3.2, "st')
    train(config, tmp_path, resume=True, show_progress=False)
    records = read_metrics(tmp_path)
    assert [(r["kind"], r["step"]) for r in records] == [("train", 1), ("valid", 16), ("train", 25)]


def test_resuming_a_finished_run_trains_no_further(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    """Killed after its last checkpoint, a run resumed used to take one more step past train.max_steps."""
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2)
    train(config, tmp_path, show_progress=False)
    before = last_weights(tmp_path)
    train(config, tmp_path, resume=True, show_progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == "step-00000006"
    assert_same(last_weights(tmp_path), before)


def test_resuming_a_run_out_of_patience_trains_no_further(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stopped for want of a better validation score, a resumed run used to train a whole epoch more."""
    monkeypatch.setattr(Trainer, "validate", lambda self: {"nll": 1.0})  # never better than the first epoch
    config = with_train(tiny_run_config, patience=1, max_epochs=10, checkpoint_every=100)
    train(config, tmp_path, show_progress=False)
    assert progress_of(list_checkpoints(tmp_path)[-1])["epoch"] == 2
    train(config, tmp_path, resume=True, show_progress=False)
    assert [p.name for p in list_checkpoints(tmp_path)][-1] == f"step-{2 * EPOCH_BATCHES:08d}"


def test_a_run_clears_its_own_leftovers_and_nothing_else(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    """What a killed write leaves has hidden names; at the next start those are removed, and only those."""
    ours = [".tmp-best", ".old-best", ".deleting-best", ".metrics.jsonl.tmp-123", ".tokenizer.model.tmp-9"]
    theirs = [".old-notes", ".tmp-mine", ".git", "notes.txt"]
    for name in ours + theirs:
        if "best" in name or name == ".git":
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text("x\n", encoding="utf-8")
    stale_checkpoint = tmp_path / "checkpoints" / ".deleting-step-00000001"
    stale_checkpoint.mkdir(parents=True)
    train(with_train(tiny_run_config, max_steps=2, checkpoint_every=100), tmp_path, show_progress=False)
    present = {p.name for p in tmp_path.iterdir()}
    assert not present & set(ours)
    assert set(theirs) <= present
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["step-00000002"]
