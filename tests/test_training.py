"""Training: the schedule, the loss, the configuration, exact resume, checkpoints, and failures."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file

import selfattention.model_io as model_io
import selfattention.training.checkpoint as checkpoint_module
import selfattention.training.trainer as trainer_module
from conftest import with_train
from selfattention import ModelConfig, build_model, load_model, save_model
from selfattention.data import UNK_ID, Tokenizer, token_batches
from selfattention.decoding import DecodingConfig, Translator
from selfattention.training import (
    RunConfig,
    Trainer,
    TrainingError,
    average_checkpoints,
    load_run_config,
    train,
)
from selfattention.training.checkpoint import list_checkpoints
from selfattention.training.config import TrainConfig
from selfattention.training.loss import label_smoothed_loss
from selfattention.training.metrics import read_metrics
from selfattention.training.schedule import inverse_sqrt_lr, scheduled_lr

# -- helpers ------------------------------------------------------------------------------------


def last_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(list_checkpoints(run_dir)[-1] / "model.safetensors"))


def assert_same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert sorted(a) == sorted(b)
    different = [name for name in a if not torch.equal(a[name], b[name])]
    assert not different, f"tensors differ: {different}"


def progress_of(checkpoint: Path) -> dict[str, Any]:
    return json.loads((checkpoint / "trainer.json").read_text(encoding="utf-8"))["progress"]


def metric_keys(run_dir: Path) -> list[tuple[str, int, int]]:
    return [(r["kind"], r["step"], r["epoch"]) for r in read_metrics(run_dir)]


def metric_values(run_dir: Path) -> list[tuple[Any, ...]]:
    """The deterministic part of each record (everything but timings)."""
    return [
        (r["kind"], r["step"], r["epoch"], r.get("loss"), r["nll"], r.get("lr"), r.get("bleu"))
        for r in read_metrics(run_dir)
    ]


def batches_per_epoch(config: RunConfig, scratch: Path) -> int:
    trainer = Trainer(config, scratch, show_progress=False)
    trainer.prepare(resume=False)
    return len(token_batches(trainer.examples, config.train.max_tokens, seed=config.train.seed, epoch=0))


# -- schedule -----------------------------------------------------------------------------------


def test_schedule_rises_linearly_to_the_peak_then_falls_as_inverse_sqrt() -> None:
    peak, warmup = 2e-3, 100
    for step in (1, 10, 50, 99, 100):
        assert inverse_sqrt_lr(step, peak, warmup) == pytest.approx(peak * step / warmup, rel=1e-12)
    assert inverse_sqrt_lr(warmup, peak, warmup) == pytest.approx(peak)
    assert max(inverse_sqrt_lr(s, peak, warmup) for s in range(1, 1000)) == pytest.approx(peak)
    for step in (100, 101, 400, 10_000):
        assert inverse_sqrt_lr(step, peak, warmup) == pytest.approx(peak * math.sqrt(warmup / step), rel=1e-12)
    # four times the steps after the peak: half the rate
    assert inverse_sqrt_lr(4 * warmup, peak, warmup) == pytest.approx(peak / 2)
    rates = [inverse_sqrt_lr(s, peak, warmup) for s in range(1, 300)]  # rates[i] is step i + 1
    assert all(a < b for a, b in pairwise(rates[:warmup]))
    assert all(a > b for a, b in pairwise(rates[warmup - 1 :]))


@pytest.mark.parametrize(("d_model", "warmup"), [(512, 4000), (64, 100), (32, 10)])
def test_schedule_is_the_papers_formula_with_its_peak(d_model: int, warmup: int) -> None:
    peak = (d_model * warmup) ** -0.5
    for step in [1, 2, warmup // 2, warmup - 1, warmup, warmup + 1, 3 * warmup, 100 * warmup]:
        paper = d_model**-0.5 * min(step**-0.5, step * warmup**-1.5)
        assert inverse_sqrt_lr(step, peak, warmup) == pytest.approx(paper, rel=1e-12)


def test_schedule_without_warmup_and_at_step_zero() -> None:
    assert inverse_sqrt_lr(1, 1e-3, 0) == pytest.approx(1e-3)
    assert inverse_sqrt_lr(16, 1e-3, 0) == pytest.approx(1e-3 / 4)
    assert inverse_sqrt_lr(0, 1e-3, 10) == inverse_sqrt_lr(1, 1e-3, 10)


def test_cooldown_falls_linearly_from_the_curve_to_near_zero_at_max_steps() -> None:
    peak, warmup, max_steps, cooldown = 1e-3, 100, 1000, 300
    start = max_steps - cooldown
    for step in (1, 50, 100, 400, start):  # before the cool-down: the plain curve
        assert scheduled_lr(step, peak, warmup, max_steps, cooldown) == inverse_sqrt_lr(step, peak, warmup)
    at_start = inverse_sqrt_lr(start, peak, warmup)
    rates = [scheduled_lr(s, peak, warmup, max_steps, cooldown) for s in range(start + 1, max_steps + 1)]
    assert all(a > b for a, b in pairwise(rates))
    steps_down = [a - b for a, b in pairwise(rates)]  # linear: the same decrement every step
    assert max(steps_down) == pytest.approx(min(steps_down), rel=1e-9)
    assert rates[0] == pytest.approx(at_start * cooldown / (cooldown + 1))
    assert rates[-1] == pytest.approx(at_start / (cooldown + 1))  # the last step still moves a little
    assert rates[-1] < inverse_sqrt_lr(max_steps, peak, warmup) / 100
    # without max_steps or with no cool-down, the schedule is the paper's
    assert scheduled_lr(900, peak, warmup, 0, 300) == inverse_sqrt_lr(900, peak, warmup)
    assert scheduled_lr(900, peak, warmup, 1000, 0) == inverse_sqrt_lr(900, peak, warmup)


@pytest.mark.parametrize(("max_steps", "cooldown"), [(0, 100), (50, 100), (100, -1)])
def test_cooldown_needs_a_max_steps_it_fits_in(max_steps: int, cooldown: int) -> None:
    with pytest.raises(ValueError, match="cooldown_steps"):
        TrainConfig(max_steps=max_steps, cooldown_steps=cooldown)


# -- loss ---------------------------------------------------------------------------------------

PAD = 0


def loss_inputs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(3, 5, 11, generator=generator) * 3
    targets = torch.randint(1, 11, (3, 5), generator=generator)
    targets[0, 3:] = PAD
    targets[2, 1:] = PAD
    return logits, targets


def test_loss_ignores_padding_positions() -> None:
    logits, targets = loss_inputs()
    loss, nll = label_smoothed_loss(logits, targets, PAD, 0.1)
    changed = logits.clone()
    changed[targets == PAD] = torch.randn(int((targets == PAD).sum()), 11) * 100
    loss2, nll2 = label_smoothed_loss(changed, targets, PAD, 0.1)
    assert torch.equal(loss, loss2)
    assert torch.equal(nll, nll2)
    # and padding gets no gradient
    leaf = logits.clone().requires_grad_(True)
    label_smoothed_loss(leaf, targets, PAD, 0.1)[0].backward()
    assert leaf.grad is not None
    assert torch.count_nonzero(leaf.grad[targets == PAD]) == 0
    assert torch.count_nonzero(leaf.grad[targets != PAD]) > 0


def test_loss_without_smoothing_is_summed_cross_entropy_and_nll_is_unsmoothed() -> None:
    logits, targets = loss_inputs(1)
    log_probs = torch.log_softmax(logits, dim=-1)
    real = targets != PAD
    manual_nll = -log_probs.gather(-1, targets[..., None])[..., 0][real].sum()
    loss, nll = label_smoothed_loss(logits, targets, PAD, 0.0)
    assert loss.item() == pytest.approx(manual_nll.item(), rel=1e-6)
    assert nll.item() == pytest.approx(manual_nll.item(), rel=1e-6)
    smoothed, nll_smoothed = label_smoothed_loss(logits, targets, PAD, 0.1)
    assert torch.equal(nll_smoothed, nll)  # the reported NLL never includes smoothing
    assert smoothed.item() != pytest.approx(nll.item(), rel=1e-4)
    # smoothing spreads epsilon uniformly over the vocabulary
    uniform = -log_probs.mean(dim=-1)[real].sum()
    assert smoothed.item() == pytest.approx((0.9 * manual_nll + 0.1 * uniform).item(), rel=1e-6)
    reference = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index=PAD, reduction="sum")
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_loss_gradient_equals_pytorch_cross_entropy(smoothing: float) -> None:
    """The hand-written backward pass against autograd through F.cross_entropy (our oracle)."""
    logits, targets = loss_inputs(2)
    ours = logits.double().clone().requires_grad_(True)
    theirs = logits.double().clone().requires_grad_(True)
    loss, _ = label_smoothed_loss(ours, targets, PAD, smoothing)
    reference = F.cross_entropy(
        theirs.reshape(-1, 11), targets.reshape(-1), ignore_index=PAD, label_smoothing=smoothing, reduction="sum"
    )
    (loss * 0.37).backward()
    (reference * 0.37).backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    assert ours.grad is not None and theirs.grad is not None
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-10, atol=1e-12)


def test_loss_takes_selected_rows() -> None:
    """Rows (N, V) picked out beforehand give the loss of the same positions in (B, T, V)."""
    logits, targets = loss_inputs(3)
    real = targets != PAD
    whole = label_smoothed_loss(logits, targets, PAD, 0.1)
    rows = label_smoothed_loss(logits[real], targets[real], PAD, 0.1)
    torch.testing.assert_close(whole, rows)


def test_corpus_repeats_count_each_corpus_that_often_in_an_epoch(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    once = Trainer(tiny_run_config, tmp_path / "once", show_progress=False)
    once.prepare(resume=False)
    twice_config = replace(tiny_run_config, data=replace(tiny_run_config.data, repeats=(3,)))
    thrice = Trainer(twice_config, tmp_path / "thrice", show_progress=False)
    thrice.prepare(resume=False)
    assert len(thrice.examples) == 3 * len(once.examples)
    assert thrice.examples[: len(once.examples)] == once.examples
    # the vocabulary is learned from each pair once, whatever the repeats
    assert (tmp_path / "once" / "tokenizer.model").read_bytes() == (
        tmp_path / "thrice" / "tokenizer.model"
    ).read_bytes()


def noisy(config: RunConfig, **shares: float) -> RunConfig:
    return replace(config, data=replace(config.data, **shares))


def test_each_epoch_draws_its_own_noise_from_the_seed(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    config = noisy(tiny_run_config, uppercase=0.3, no_final_punctuation=0.2)
    first = Trainer(config, tmp_path / "a", show_progress=False)
    first.prepare(resume=False)
    again = Trainer(config, tmp_path / "b", show_progress=False)
    again.prepare(resume=False)
    assert first.epoch_pairs(0) == again.epoch_pairs(0)  # the seed and the epoch alone decide
    assert first.epoch_pairs(0) != first.epoch_pairs(1)
    upper = [source for source, target in first.epoch_pairs(0) if source.isupper()]
    assert 0.2 < len(upper) / len(first.epoch_pairs(0)) < 0.4
    assert first.examples == first._encode(first.epoch_pairs(0))
    # the vocabulary is learned from the noisy text: it has the capitals that a vocabulary learned from
    # this (lower-case but for its first letters) corpus as it is would call unknown
    Trainer(tiny_run_config, tmp_path / "plain", show_progress=False).prepare(resume=False)
    plain = Tokenizer.load(tmp_path / "plain" / "tokenizer.model")
    tokenizer = Tokenizer.load(tmp_path / "a" / "tokenizer.model")
    upper_text = [text for pair in first.epoch_pairs(0) for text in pair if text.isupper()]
    assert any(UNK_ID in ids for ids in plain.encode_batch(upper_text))
    assert not any(UNK_ID in ids for ids in tokenizer.encode_batch(upper_text))


def test_noise_is_part_of_the_exact_resume(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    config = with_train(noisy(tiny_run_config, lowercase=0.3, titlecase=0.2), max_epochs=10, keep_checkpoints=3)
    epoch_batches = batches_per_epoch(config, tmp_path / "count")
    total = epoch_batches + 6
    train(with_train(config, max_steps=total), tmp_path / "reference", show_progress=False)
    train(with_train(config, max_steps=epoch_batches - 2), tmp_path / "run", show_progress=False)
    Trainer(with_train(config, max_steps=total), tmp_path / "run", show_progress=False).fit(resume=True)
    assert_same_tensors(last_weights(tmp_path / "reference"), last_weights(tmp_path / "run"))


def test_several_validation_corpora_are_scored_together(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    one = Trainer(with_train(tiny_run_config, valid_bleu_sentences=7), tmp_path / "one", show_progress=False)
    one.prepare(resume=False)
    config = replace(tiny_run_config, data=replace(tiny_run_config.data, valid_corpus="multi30k+multi30k"))
    two = Trainer(with_train(config, valid_bleu_sentences=7), tmp_path / "two", show_progress=False)
    two.prepare(resume=False)
    assert two.valid_pairs == one.valid_pairs * 2
    assert len(one.valid_pairs) > 7 and two.bleu_pairs == one.bleu_pairs * 2
    # BLEU's pairs are spread through each corpus, not its first ones
    step = len(one.valid_pairs) / 7
    assert one.bleu_pairs == [one.valid_pairs[int(i * step)] for i in range(7)]


def test_pronoun_pairs_from_corpora_with_no_nouns_to_learn_are_refused(
    tiny_run_config: RunConfig, tmp_path: Path
) -> None:
    with pytest.raises(TrainingError, match=r"data\.pronoun_pairs=0\.1: the corpora are too small"):
        train(noisy(tiny_run_config, pronoun_pairs=0.1), tmp_path / "run", show_progress=False)


@pytest.mark.parametrize(
    ("repeats", "message"), [([1, 2], "one count a corpus"), ([0], "at least 1"), (["2"], "at least 1")]
)
def test_bad_corpus_repeats_are_refused(tmp_path: Path, repeats: list[Any], message: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[data]\ncorpora = ["multi30k"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_run_config(path, [f"data.repeats={json.dumps(repeats)}"])


def test_training_logits_of_real_positions_equal_the_full_forward() -> None:
    """``keep`` selects positions before the vocabulary projection; the numbers are the same."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(vocab_size=30, d_model=16, n_heads=2, d_ff=32, encoder_layers=1, decoder_layers=2))
    model.eval()
    src = torch.randint(4, 30, (3, 7))
    tgt = torch.randint(4, 30, (3, 5))
    tgt[1, 3:] = PAD
    keep = tgt != PAD
    torch.testing.assert_close(model(src, tgt, keep=keep), model(src, tgt)[keep])


# -- configuration ------------------------------------------------------------------------------

CONFIG_TEXT = """
[model]
d_model = 32
n_heads = 2
d_ff = 64
encoder_layers = 1
decoder_layers = 1

[data]
corpora = ["multi30k", "tatoeba"]
vocab_size = 500

[train]
max_steps = 100
peak_lr = 1e-3
"""


def write_config(tmp_path: Path, text: str = CONFIG_TEXT) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_config_file_with_overrides(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    config = load_run_config(path, ["train.max_steps=7", "model.norm=pre", 'data.corpora=["multi30k"]'])
    assert config.train.max_steps == 7
    assert config.model.norm == "pre"
    assert config.data.corpora == ("multi30k",)
    assert config.model.d_model == 32
    assert config.model.vocab_size == 500  # from [data] until the tokenizer decides
    assert config.train.peak_lr == 1e-3
    assert config.train.adam_betas == (0.9, 0.98)  # defaults stay
    plain = load_run_config(path)
    assert plain.train.max_steps == 100
    assert plain.data.corpora == ("multi30k", "tatoeba")
    # an integer where a float is expected is fine; a list becomes a tuple
    config = load_run_config(path, ["train.peak_lr=1", "train.adam_betas=[0.9, 0.99]"])
    assert config.train.peak_lr == 1
    assert config.train.adam_betas == (0.9, 0.99)


def test_config_unknown_table(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG_TEXT + "\n[optimiser]\nlr = 1\n")
    with pytest.raises(ValueError, match=r"unknown table\(s\) optimiser") as info:
        load_run_config(path)
    assert str(path) in str(info.value)


def test_config_unknown_key_names_the_key_and_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG_TEXT.replace("max_steps = 100", "max_stepz = 100"))
    with pytest.raises(ValueError, match="max_stepz") as info:
        load_run_config(path)
    assert str(path) in str(info.value)
    assert "[train]" in str(info.value)
    path = write_config(tmp_path)
    with pytest.raises(ValueError, match="warmup") as info:
        load_run_config(path, ["train.warmup=5"])
    assert str(path) in str(info.value)
    with pytest.raises(ValueError, match="d_modle") as info:
        load_run_config(path, ["model.d_modle=8"])
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ('train.max_steps="ten"', ["[train]", "max_steps", "int", "ten"]),
        ("train.max_steps=true", ["max_steps", "int"]),
        ("train.peak_lr=fast", ["peak_lr", "float", "fast"]),
        ("data.valid_corpus=3", ["[data]", "valid_corpus", "str"]),
        ("model.d_model=big", ["[model]", "d_model"]),
        ("model.norm=sideways", ["[model]", "norm"]),
        ('data.corpora="multi30k"', ["[data]", "corpora"]),
        ('train.adam_betas=["a", "b"]', ["[train]", "adam_betas"]),
    ],
)
def test_config_wrong_type(tmp_path: Path, override: str, words: list[str]) -> None:
    path = write_config(tmp_path)
    with pytest.raises(ValueError) as info:
        load_run_config(path, [override])
    message = str(info.value)
    assert str(path) in message
    for word in words:
        assert word in message


@pytest.mark.parametrize("override", ["train.max_steps", "max_steps=3", "train=3", ".max_steps=3", "train.=3"])
def test_config_malformed_override(tmp_path: Path, override: str) -> None:
    with pytest.raises(ValueError, match=r"should look like table\.key=value"):
        load_run_config(write_config(tmp_path), [override])


def test_config_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such configuration file"):
        load_run_config(tmp_path / "absent.toml")
    with pytest.raises(ValueError, match="invalid TOML"):
        load_run_config(write_config(tmp_path, "[train\nmax_steps = 3\n"))


# -- resume exactness ---------------------------------------------------------------------------


class Runs:
    """A reference run trained to ``total`` steps in one go, and the facts the tests need."""

    def __init__(self, config: RunConfig, epoch_batches: int, total: int, reference: Path) -> None:
        self.config = config
        self.epoch_batches = epoch_batches
        self.total = total
        self.reference = reference


@pytest.fixture(scope="module")
def runs(tiny_run_config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    config = with_train(tiny_run_config, max_epochs=10, keep_checkpoints=3)
    epoch_batches = batches_per_epoch(config, tmp_path_factory.mktemp("count"))
    assert epoch_batches >= 8, "the tiny corpus should give several batches per epoch"
    total = epoch_batches + 14  # crosses one epoch boundary and passes step 25 (a train metrics record)
    assert 25 < total < 2 * epoch_batches
    config = with_train(config, max_steps=total)
    reference = tmp_path_factory.mktemp("reference")
    train(config, reference, show_progress=False)
    return Runs(config, epoch_batches, total, reference)


def assert_same_as_reference(runs: Runs, run_dir: Path) -> None:
    final = list_checkpoints(run_dir)[-1]
    assert final.name == f"step-{runs.total:08d}"
    assert_same_tensors(last_weights(runs.reference), last_weights(run_dir))
    reference_final = list_checkpoints(runs.reference)[-1]
    # the optimiser moments and the random state match too
    assert_same_tensors(
        load_file(str(reference_final / "optimizer.safetensors")), load_file(str(final / "optimizer.safetensors"))
    )
    mine, theirs = progress_of(final), progress_of(reference_final)
    mine.pop("seconds")
    theirs.pop("seconds")
    assert mine == theirs
    keys = metric_keys(run_dir)
    assert len(keys) == len(set(keys)), f"duplicated metrics records after resume: {keys}"
    assert metric_values(run_dir) == metric_values(runs.reference)


@pytest.mark.slow
@pytest.mark.parametrize("where", ["mid-epoch", "epoch-end", "after-epoch-end"])
def test_resumed_run_ends_with_the_same_weights(runs: Runs, tmp_path: Path, where: str) -> None:
    stop = {
        "mid-epoch": runs.epoch_batches // 2 - 1,
        "epoch-end": runs.epoch_batches,
        "after-epoch-end": runs.epoch_batches + 1,
    }[where]
    assert stop % runs.config.train.checkpoint_every != 0 or where == "epoch-end"
    run_dir = tmp_path / "run"
    train(with_train(runs.config, max_steps=stop), run_dir, show_progress=False)
    first = list_checkpoints(run_dir)[-1]
    assert first.name == f"step-{stop:08d}"
    state = progress_of(first)
    if where == "epoch-end":
        assert (state["epoch"], state["batch_in_epoch"]) == (1, 0)
    elif where == "mid-epoch":
        assert (state["epoch"], state["batch_in_epoch"]) == (0, stop)
    # a different process would start from scratch: nothing carries over but the files
    Trainer(runs.config, run_dir, show_progress=False).fit(resume=True)
    assert_same_as_reference(runs, run_dir)


class SimulatedCrash(Exception):
    pass


@pytest.mark.slow
def test_resume_after_a_crash_between_checkpoints(runs: Runs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed after step 25 (a metrics record) but before its next checkpoint resumes exactly."""
    config = with_train(runs.config, checkpoint_every=7)  # checkpoints at 7, 14, epoch end, 21, 28
    crash_after = 26
    real_step = Trainer._step

    def crashing_step(self: Trainer, batches: list) -> Any:
        if self.progress.step == crash_after:
            raise SimulatedCrash
        return real_step(self, batches)

    run_dir = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", crashing_step)
        with pytest.raises(SimulatedCrash):
            train(config, run_dir, show_progress=False)
    assert list_checkpoints(run_dir)[-1].name == "step-00000021"
    assert ("train", 25) in [(kind, step) for kind, step, _ in metric_keys(run_dir)]
    train(config, run_dir, resume=True, show_progress=False)
    assert_same_as_reference(runs, run_dir)


@pytest.mark.slow
def test_resume_twice_across_the_epoch_boundary(runs: Runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(with_train(runs.config, max_steps=3), run_dir, show_progress=False)
    train(with_train(runs.config, max_steps=runs.epoch_batches + 2), run_dir, resume=True, show_progress=False)
    train(runs.config, run_dir, resume=True, show_progress=False)
    assert_same_as_reference(runs, run_dir)


# -- checkpoints --------------------------------------------------------------------------------


@pytest.mark.slow
def test_checkpoints_are_complete_and_only_the_newest_are_kept(runs: Runs) -> None:
    run_dir = runs.reference
    root = run_dir / "checkpoints"
    leftovers = [p for p in run_dir.rglob("*") if "tmp" in p.name]
    assert not leftovers, f"temporary files left behind: {leftovers}"
    names = sorted(p.name for p in root.iterdir())
    every = runs.config.train.checkpoint_every
    written = {*range(every, runs.total + 1, every), runs.epoch_batches, runs.total}
    keep = runs.config.train.keep_checkpoints
    assert names == [f"step-{step:08d}" for step in sorted(written)[-keep:]]
    for checkpoint in list_checkpoints(run_dir):
        for name in ("config.json", "model.safetensors", "tokenizer.model", "optimizer.safetensors", "trainer.json"):
            assert (checkpoint / name).is_file(), f"{checkpoint} lacks {name}"
    assert (run_dir / "best" / "model.safetensors").is_file()
    assert (run_dir / "run_config.json").is_file()
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_a_checkpoint_is_a_loadable_model(runs: Runs) -> None:
    checkpoint = list_checkpoints(runs.reference)[-1]
    model = load_model(checkpoint)
    tokenizer = Tokenizer.load(checkpoint)
    saved = load_file(str(checkpoint / "model.safetensors"))
    state = model.state_dict()
    for name, tensor in saved.items():
        assert torch.equal(state[name], tensor)
    assert model.config is not None
    assert model.config.vocab_size == tokenizer.vocab_size
    assert model.config.d_model == runs.config.model.d_model
    [translation] = Translator(model, tokenizer).translate(["The red dog runs."], DecodingConfig(beam_size=2))
    assert isinstance(translation, str)


@pytest.mark.slow
def test_a_new_run_refuses_a_directory_with_checkpoints(runs: Runs, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(runs.reference, run_dir)
    before = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    with pytest.raises(TrainingError, match="--resume") as info:
        train(runs.config, run_dir, show_progress=False)
    assert str(run_dir) in str(info.value)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == before
    assert_same_tensors(last_weights(run_dir), last_weights(runs.reference))


# -- failures -----------------------------------------------------------------------------------


class PoisonedGradient(torch.autograd.Function):
    """The identity, whose backward pass multiplies the gradient by ``value`` (NaN or inf)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, value: float) -> torch.Tensor:
        ctx.value = value
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.value, None


def poison_training_loss(
    monkeypatch: pytest.MonkeyPatch,
    bad_calls: set[int] | None,
    from_call: int = 0,
    *,
    value: float = math.nan,
    gradient_only: bool = False,
) -> list[int]:
    """Make the training loss ``value`` (NaN, inf) on the given training calls (counted from 1), or on all
    from ``from_call``; with ``gradient_only`` the loss stays finite and its gradients become ``value``."""
    real = trainer_module.label_smoothed_loss
    calls: list[int] = []

    def flaky(logits: torch.Tensor, targets: torch.Tensor, pad_id: int, smoothing: float) -> Any:
        loss, nll = real(logits, targets, pad_id, smoothing)
        if torch.is_grad_enabled():  # training, not validation
            calls.append(len(calls) + 1)
            if (bad_calls is not None and calls[-1] in bad_calls) or (from_call and calls[-1] >= from_call):
                return (PoisonedGradient.apply(loss, value) if gradient_only else loss * value), nll
        return loss, nll

    monkeypatch.setattr(trainer_module, "label_smoothed_loss", flaky)
    return calls


def test_a_non_finite_loss_skips_the_step(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls = poison_training_loss(monkeypatch, {3})
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=100)
    with caplog.at_level("WARNING", logger="selfattention.training.trainer"):
        train(config, tmp_path, show_progress=False)
    assert len(calls) == 7  # six good steps and one skipped
    assert any("not finite" in record.getMessage() for record in caplog.records)
    final = list_checkpoints(tmp_path)[-1]
    assert final.name == "step-00000006"
    assert progress_of(final)["batch_in_epoch"] == 7  # the bad batch was used up, not retried
    optimizer = load_file(str(final / "optimizer.safetensors"))
    assert optimizer["state.0.step"].item() == 6  # Adam stepped once per good batch only
    for name, tensor in last_weights(tmp_path).items():
        assert torch.isfinite(tensor).all(), name


def test_five_non_finite_losses_in_a_row_stop_training(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = poison_training_loss(monkeypatch, None, from_call=4)
    config = with_train(tiny_run_config, max_steps=20, checkpoint_every=2)
    with pytest.raises(TrainingError, match="not finite for 5 steps") as info:
        train(config, tmp_path, show_progress=False)
    assert len(calls) == 3 + 5
    assert "Last good checkpoint" in str(info.value)
    assert str(tmp_path / "checkpoints" / "step-00000002") in str(info.value)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002"]


def test_non_finite_losses_apart_do_not_stop_training(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = poison_training_loss(monkeypatch, {2, 3, 4, 5, 7, 8, 9, 10})  # runs of four, never five
    train(with_train(tiny_run_config, max_steps=4, checkpoint_every=100), tmp_path, show_progress=False)
    assert len(calls) == 12
    assert list_checkpoints(tmp_path)[-1].name == "step-00000004"


def fail_on_call(real: Any, error: Exception, call: int = 2) -> Any:
    """``real``, except that call number ``call`` does its work (a partial write) and then fails with ``error``."""
    calls = []

    def failing(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        result = real(*args, **kwargs)
        if len(calls) == call:
            raise error
        return result

    return failing


def assert_checkpoint_failure_is_clean(
    config: RunConfig, run_dir: Path, message: str, reason: str = "No space left on device"
) -> None:
    """The second checkpoint's write failed: the message says why and where, and the first one goes on."""
    assert reason in message
    assert "cannot write a checkpoint" in message
    assert str(run_dir / "checkpoints" / "step-00000002") in message
    [previous] = list_checkpoints(run_dir)
    assert previous.name == "step-00000002"
    assert progress_of(previous)["step"] == 2
    model = load_model(previous)
    Tokenizer.load(previous)
    saved = load_file(str(previous / "model.safetensors"))
    assert all(torch.equal(model.state_dict()[name], tensor) for name, tensor in saved.items())
    # and the run can go on from it
    train(config, run_dir, resume=True, show_progress=False)
    assert list_checkpoints(run_dir)[-1].name == "step-00000006"
    assert not list((run_dir / "checkpoints").glob(".tmp-*"))


def test_a_failed_checkpoint_write_stops_training_and_keeps_the_previous_one(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2)
    with monkeypatch.context() as patch:
        failing = fail_on_call(checkpoint_module.save_model, OSError(28, "No space left on device"))
        patch.setattr(checkpoint_module, "save_model", failing)
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert_checkpoint_failure_is_clean(config, tmp_path, str(info.value))


def test_a_full_disk_inside_safetensors_stops_training_cleanly(
    tiny_run_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """safetensors reports I/O errors as SafetensorError, not OSError."""
    config = with_train(tiny_run_config, max_steps=6, checkpoint_every=2)
    error = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    with monkeypatch.context() as patch:
        patch.setattr(model_io, "save_file", fail_on_call(model_io.save_file, error))
        with pytest.raises(TrainingError) as info:
            train(config, tmp_path, show_progress=False)
    assert_checkpoint_failure_is_clean(config, tmp_path, str(info.value))


# -- averaging ----------------------------------------------------------------------------------

TINY_MODEL = ModelConfig(vocab_size=50, d_model=16, n_heads=2, d_ff=32, encoder_layers=1, decoder_layers=1)


def test_averaging_identical_checkpoints_gives_the_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(TINY_MODEL)
    save_model(model, tmp_path / "a")
    save_model(model, tmp_path / "b")
    target = build_model(TINY_MODEL)
    average_checkpoints([tmp_path / "a", tmp_path / "b"], target)
    for name, tensor in model.state_dict().items():
        assert torch.equal(target.state_dict()[name], tensor), name


def test_averaging_different_checkpoints_gives_their_mean(tmp_path: Path) -> None:
    models = []
    for seed, name in enumerate("abc"):
        torch.manual_seed(seed)
        models.append(build_model(TINY_MODEL))
        save_model(models[-1], tmp_path / name)
    target = build_model(TINY_MODEL)
    average_checkpoints([tmp_path / name for name in "abc"], target)
    states = [m.state_dict() for m in models]
    for name, tensor in target.state_dict().items():
        mean = sum(s[name].double() for s in states) / 3
        assert torch.allclose(tensor.double(), mean, rtol=0, atol=1e-7), name
    assert not torch.equal(target.state_dict()["src_embed.token.weight"], states[0]["src_embed.token.weight"])
    # tied weights stay tied
    assert target.output_proj.weight is target.src_embed.token.weight
