"""Training in several processes (DistributedDataParallel over gloo, on CPU) against one process.

Two processes share each optimiser step's batches (rank r takes batch ``step_start + r``) and sum
their gradients, so with dropout off they must reach the weights of one process that accumulates
the same two batches per step (``train.accumulate=2``). Rank 0 alone writes the run directory. A
two-process run stopped and resumed ends with the weights of one never stopped (dropout on: each
process draws its masks from a seed of its own for each step).

The processes are real: ``selfattention train --nproc 2`` (torch's elastic launcher, as torchrun)
and ``python -m torch.distributed.run``, in a subprocess, each process on one thread.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from selfattention.evaluation import greedy_bleu
from selfattention.training import TrainingError, load_run_config, train
from selfattention.training.checkpoint import list_checkpoints
from selfattention.training.metrics import read_metrics

STEPS = 12  # epoch 0 of the tiny corpus is an odd number of batches: one step holds a single batch
TIMEOUT = 600  # seconds for one launch of two processes (a slow shared machine)

CONFIG = """
[model]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 1
dropout = {dropout}

[data]
corpora = ["multi30k"]
data_dir = {data_dir}
vocab_size = 120

[train]
max_tokens = 256
peak_lr = 3e-3
warmup_steps = 10
checkpoint_every = 5
valid_bleu_sentences = 10
patience = 0
max_epochs = 3
threads = 1
"""


def write_config(directory: Path, data_dir: Path, dropout: float) -> Path:
    path = directory / f"tiny-dropout-{dropout}.toml"
    path.write_text(CONFIG.format(dropout=dropout, data_dir=json.dumps(str(data_dir))), encoding="utf-8")
    return path


def launch(command: list[str], cwd: Path) -> str:
    """Run ``command``; its standard output (torchrun's workers run ``python -u``)."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        environment.pop(name, None)
    result = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr[-4000:]}"
    return result.stdout


def train_with_nproc(config: Path, out: Path, *overrides: str, resume: bool = False) -> str:
    command = [sys.executable, "-m", "selfattention", "train", "--nproc", "2", "--device", "cpu", "--no-progress"]
    command += ["--config", str(config), "--out", str(out), *(["--resume"] if resume else []), *overrides]
    return launch(command, out.parent)


def train_with_torchrun(config: Path, out: Path, *overrides: str, resume: bool = False) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    command += ["-m", "selfattention", "train", "--device", "cpu", "--no-progress"]
    command += ["--config", str(config), "--out", str(out), *(["--resume"] if resume else []), *overrides]
    return launch(command, out.parent)


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    final = list_checkpoints(run_dir)[-1]
    assert final.name == f"step-{STEPS:08d}"
    return load_file(str(final / "model.safetensors"))


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert sorted(a) == sorted(b)
    return max(float((a[name] - b[name]).abs().max()) for name in a)


def progress(run_dir: Path) -> dict[str, Any]:
    document = json.loads((list_checkpoints(run_dir)[-1] / "trainer.json").read_text(encoding="utf-8"))
    state = dict(document["progress"])
    state.pop("seconds")
    return state


def files(run_dir: Path) -> list[str]:
    """The run's files; a TensorBoard event file by its kind (its name holds the time and the process id)."""
    names = (str(path.relative_to(run_dir)) for path in run_dir.rglob("*"))
    return sorted(name.split(".out.tfevents.")[0] if ".out.tfevents." in name else name for name in names)


@pytest.mark.slow
def test_two_processes_take_the_steps_of_one_accumulating_two_batches(tiny_corpus: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_corpus, dropout=0.0)
    single = tmp_path / "single"
    train(
        load_run_config(config, [f"train.max_steps={STEPS}", "train.accumulate=2"]),
        single,
        show_progress=False,
        scorer=greedy_bleu,  # as the command line (and so the 2-process run) scores validation
    )
    ddp = tmp_path / "ddp"
    train_with_nproc(config, ddp, f"train.max_steps={STEPS}")

    ours, theirs = final_weights(ddp), final_weights(single)
    difference = largest_difference(ours, theirs)
    print(f"largest difference between 2-process and accumulate=2 weights: {difference:.3g}")
    for name in theirs:
        assert torch.allclose(ours[name], theirs[name], rtol=1e-5, atol=1e-6), name
    assert progress(ddp) == progress(single)  # the same steps, epochs, batches and tokens
    # rank 0 alone wrote: the same files, and each metrics record once
    assert files(ddp) == files(single)
    records = read_metrics(ddp)
    keys = [(record["kind"], record["step"]) for record in records]
    assert len(keys) == len(set(keys)), keys
    assert keys == [(record["kind"], record["step"]) for record in read_metrics(single)]
    for mine, reference in zip(records, read_metrics(single), strict=True):
        assert mine["nll"] == pytest.approx(reference["nll"], rel=1e-5)
    assert (ddp / "best" / "model.safetensors").is_file()


@pytest.mark.slow
def test_a_two_process_run_resumes_to_the_same_weights(tiny_corpus: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_corpus, dropout=0.1)
    uninterrupted = tmp_path / "uninterrupted"
    train_with_nproc(config, uninterrupted, f"train.max_steps={STEPS}")
    stopped = tmp_path / "stopped"
    train_with_nproc(config, stopped, "train.max_steps=3")  # mid-epoch, between checkpoints
    assert list_checkpoints(stopped)[-1].name == "step-00000003"
    said = train_with_torchrun(config, stopped, f"train.max_steps={STEPS}", resume=True)  # torchrun's own entry point
    assert said.count("best model: ") == 1, said  # rank 0 alone says it, before os._exit

    ours, theirs = final_weights(stopped), final_weights(uninterrupted)
    assert all(torch.equal(ours[name], theirs[name]) for name in theirs), largest_difference(ours, theirs)
    assert progress(stopped) == progress(uninterrupted)
    keys = [(record["kind"], record["step"]) for record in read_metrics(stopped)]
    assert len(keys) == len(set(keys)), keys
    assert keys == [(record["kind"], record["step"]) for record in read_metrics(uninterrupted)]


def test_fp16_on_cpu_is_refused(tiny_corpus: Path, tmp_path: Path) -> None:
    config = load_run_config(write_config(tmp_path, tiny_corpus, 0.0), ["train.precision=fp16", "train.max_steps=1"])
    with pytest.raises(TrainingError, match=r"train\.precision=fp16 needs a CUDA device"):
        train(config, tmp_path / "run", show_progress=False, device="cpu")
    assert not (tmp_path / "run" / "checkpoints").exists()
    with pytest.raises(ValueError, match=r"\[train\].*precision should be one of float32, bf16, fp16"):
        load_run_config(write_config(tmp_path, tiny_corpus, 0.0), ["train.precision=fp8"])


def test_bf16_autocast_trains_on_cpu_and_follows_float32(tiny_corpus: Path, tmp_path: Path) -> None:
    """bfloat16 autocast on a CPU: the same run's losses stay within a few percent of float32's."""
    losses = {}
    for precision in ("float32", "bf16"):
        config = load_run_config(
            write_config(tmp_path, tiny_corpus, 0.0), [f"train.precision={precision}", "train.max_steps=50"]
        )
        train(config, tmp_path / precision, show_progress=False, device="cpu")
        losses[precision] = [r["nll"] for r in read_metrics(tmp_path / precision) if r["kind"] == "train"]
    assert len(losses["bf16"]) == len(losses["float32"]) >= 2
    assert all(math.isfinite(value) for value in losses["bf16"])
    assert losses["bf16"] != losses["float32"]  # autocast did run: bfloat16 rounds differently
    for ours, reference in zip(losses["bf16"], losses["float32"], strict=True):
        assert abs(ours - reference) < 0.05 * reference


def test_nproc_is_refused_inside_torchrun(
    tiny_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfattention.cli import main

    monkeypatch.setenv("LOCAL_RANK", "0")
    config = write_config(tmp_path, tiny_corpus, 0.0)
    assert main(["train", "--nproc", "2", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "under torchrun leave it out" in capsys.readouterr().err


def test_a_bad_setting_is_reported_before_any_process_starts(
    tiny_corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfattention.cli import main

    config = write_config(tmp_path, tiny_corpus, 0.0)
    assert (
        main(["train", "--nproc", "2", "--config", str(config), "--out", str(tmp_path / "run"), "train.max_stepz=3"])
        == 2
    )
    assert "max_stepz" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when no GPU is visible")
def test_cuda_without_a_gpu_is_a_clear_error(tiny_corpus: Path, tmp_path: Path) -> None:
    config = load_run_config(write_config(tmp_path, tiny_corpus, 0.0), ["train.max_steps=1"])
    with pytest.raises(TrainingError, match="sees no CUDA device"):
        train(config, tmp_path / "run", show_progress=False, device="cuda")


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["float32", "bf16", "fp16"])
def test_training_on_a_gpu(tiny_corpus: Path, tmp_path: Path, precision: str) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    config = write_config(tmp_path, tiny_corpus, 0.1)
    run_dir = tmp_path / "run"
    for steps, resume in ((6, False), (8, True)):
        overrides = [f"train.precision={precision}", f"train.max_steps={steps}"]
        train(load_run_config(config, overrides), run_dir, resume=resume, show_progress=False, device="cuda")
        final = list_checkpoints(run_dir)[-1]
        assert final.name == f"step-{steps:08d}"
        weights = load_file(str(final / "model.safetensors"))
        assert all(torch.isfinite(tensor).all() for tensor in weights.values())


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs (NCCL)")
def test_two_gpus_with_nccl(tiny_corpus: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, tiny_corpus, dropout=0.1)
    command = [sys.executable, "-m", "selfattention", "train", "--nproc", "2", "--device", "cuda", "--no-progress"]
    command += ["--config", str(config), "--out", str(tmp_path / "run"), "train.max_steps=6"]
    launch(command, tmp_path)
    assert list_checkpoints(tmp_path / "run")[-1].name == "step-00000006"
