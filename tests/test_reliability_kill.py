"""Training killed with SIGKILL at seeded-random moments, resumed each time, ends bit-identical.

``selfattention train`` runs as a subprocess through a small driver (below) that can kill its own
process just before the n-th file-system call (mkdir, rename, replace, unlink, rmdir, fsync) whose
arguments name a given path fragment: ``.tmp-step-`` is a checkpoint being written, ``best`` its
publishing. The library has no switch for this; the driver wraps ``os`` functions from outside.
Other kills come from the test after a random delay. After every kill, each checkpoint on disk
must be complete and loadable; in the end the weights, optimiser state, progress, metrics, best/
and averaged/ must equal those of a run that was never stopped.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from selfattention.data import Tokenizer
from selfattention.model_io import load_model
from selfattention.training.checkpoint import (
    CHECKPOINTS,
    OPTIMIZER_FILE,
    TRAINER_FILE,
    list_checkpoints,
    load_checkpoint,
)
from test_cli_translate import TINY_TOML
from test_training import assert_same_tensors, metric_values, progress_of

pytestmark = pytest.mark.slow

SEED = 20240605
EPOCH_BATCHES = 16  # of the tiny corpus at these settings
MAX_STEPS = 2 * EPOCH_BATCHES + 3  # two epoch ends (validation, best/, epochs/), then three steps
CHECKPOINT_FILES = ("config.json", "model.safetensors", "tokenizer.model", OPTIMIZER_FILE, TRAINER_FILE)
OVERRIDES = [  # the tiny_run_config of conftest.py, plus what this test needs
    "model.d_model=32",
    "model.n_heads=2",
    "model.d_ff=64",
    "model.encoder_layers=1",
    "model.decoder_layers=1",
    "data.vocab_size=120",
    "train.max_tokens=256",
    "train.peak_lr=3e-3",
    "train.warmup_steps=10",
    "train.valid_bleu_sentences=10",
    "train.patience=0",
    "train.max_epochs=10",
    f"train.max_steps={MAX_STEPS}",
    "train.checkpoint_every=4",
    "train.keep_checkpoints=2",
    "train.average_last=2",
    "train.threads=1",
]

DRIVER = r"""
import atexit, os, signal, sys

fragment, kill_at, report = sys.argv[1], int(sys.argv[2]), sys.argv[3]
seen = 0

def watch(name):
    real = getattr(os, name)
    def watched(*args, **kwargs):
        global seen
        if fragment in " ".join(map(str, args)):
            seen += 1
            if seen == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    setattr(os, name, watched)

for name in ("mkdir", "rename", "replace", "unlink", "rmdir", "fsync"):
    watch(name)
atexit.register(lambda: open(report, "w").write(str(seen)))
from selfattention.cli import main
sys.exit(main(sys.argv[4:]))
"""


def train_command(run_dir: Path, corpus: Path, fragment: str, kill_at: int, report: Path, resume: bool) -> list[str]:
    cli = ["train", "--config", str(TINY_TOML), "--out", str(run_dir), "--data-dir", str(corpus), "--no-progress"]
    cli += ["--device", "cpu", *(["--resume"] if resume else []), *OVERRIDES]
    return [sys.executable, "-c", DRIVER, fragment, str(kill_at), str(report), *cli]


def run_training(
    run_dir: Path, corpus: Path, *, fragment: str = "", kill_at: int = 0, after: float = 0.0, resume: bool = True
) -> tuple[int, int]:
    """Train; kill at the ``kill_at``-th call naming ``fragment``, or ``after`` seconds. (exit status, calls seen)."""
    report = run_dir.with_name(f"{run_dir.name}-calls")
    report.unlink(missing_ok=True)
    command = train_command(run_dir, corpus, fragment, kill_at, report, resume)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = process.communicate(timeout=after or 600)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate()
    assert process.returncode in (0, -signal.SIGKILL), err.decode(errors="replace")
    return process.returncode, int(report.read_text()) if report.is_file() else -1


def assert_every_checkpoint_is_whole(run_dir: Path) -> list[str]:
    """Each step-* directory holds every file and loads, model and training state; return their names."""
    root = run_dir / CHECKPOINTS
    entries = sorted(p.name for p in root.iterdir()) if root.is_dir() else []
    named = [name for name in entries if name.startswith("step-")]
    assert all(name.startswith(".") for name in entries if name not in named), entries  # leftovers are hidden
    assert [p.name for p in list_checkpoints(run_dir)] == named
    for name in named:
        checkpoint = root / name
        assert sorted(p.name for p in checkpoint.iterdir()) == sorted(CHECKPOINT_FILES), checkpoint
        model = load_model(checkpoint)
        Tokenizer.load(checkpoint)
        with torch.random.fork_rng():
            load_checkpoint(checkpoint, model, torch.optim.Adam(model.parameters()))
    if (run_dir / "best").exists():
        load_model(run_dir / "best")
        Tokenizer.load(run_dir / "best")
    return named


def assert_same_files(reference: Path, run_dir: Path, relative: str) -> None:
    assert_same_tensors(load_file(str(reference / relative)), load_file(str(run_dir / relative)))


def test_training_killed_again_and_again_ends_with_the_weights_of_an_uninterrupted_run(
    tiny_corpus: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference"
    code, checkpoint_calls = run_training(reference, tiny_corpus, fragment=".tmp-step-", resume=False)
    assert code == 0
    assert list_checkpoints(reference)[-1].name == f"step-{MAX_STEPS:08d}"
    rng = random.Random(SEED)
    run_dir = tmp_path / "killed"
    kills = [  # the first lands inside the writing of one of the first checkpoints; the others spread over the rest
        {"fragment": ".tmp-step-", "kill_at": rng.randint(1, checkpoint_calls // 3), "resume": False},
        {"fragment": "", "kill_at": rng.randint(1, 50)},  # any file-system call (a full run makes about 200)
        {"fragment": "best", "kill_at": rng.randint(1, 3)},  # publishing best/
        {"after": rng.uniform(3.0, 6.0)},
        {"fragment": ".tmp-step-", "kill_at": rng.randint(1, 5)},
        {"fragment": CHECKPOINTS, "kill_at": rng.randint(1, 20)},  # writing, rotating or replacing checkpoints
        {"after": rng.uniform(3.0, 6.0)},
    ]
    killed = []
    for index, kill in enumerate(kills):
        code, _ = run_training(run_dir, tiny_corpus, **kill)  # type: ignore[arg-type]
        if code == 0:
            break
        killed.append(index)
        assert_every_checkpoint_is_whole(run_dir)
    assert killed[:1] == [0], "the first run was to be killed while writing a checkpoint"
    assert len(killed) >= 3, f"only kills {killed} of {kills} happened"
    for _ in range(3):  # resume until training is done
        if run_training(run_dir, tiny_corpus)[0] == 0:
            break

    names = assert_every_checkpoint_is_whole(run_dir)
    assert names == [p.name for p in list_checkpoints(reference)]
    final = run_dir / CHECKPOINTS / names[-1]
    reference_final = reference / CHECKPOINTS / names[-1]
    for relative in ("model.safetensors", OPTIMIZER_FILE):
        assert_same_files(reference_final, final, relative)
    mine, theirs = progress_of(final), progress_of(reference_final)
    mine.pop("seconds")
    theirs.pop("seconds")
    assert mine == theirs
    for relative in ("best/model.safetensors", "averaged/model.safetensors"):
        assert_same_files(reference, run_dir, relative)
    assert metric_values(run_dir) == metric_values(reference)
    assert not [p.name for p in run_dir.iterdir() if p.name.startswith(".")], "leftovers in the run directory"
