"""Supervised attention (training/antecedent.py): one encoder head taught where "it" points.

The recomputed head is the model's own head to float32 precision; a few dozen steps of the
auxiliary loss alone teach it; the settings are checked; a training run logs the loss.
"""

from __future__ import annotations

import dataclasses
import math
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import pronoun_corpus, with_train
from selfattention import ModelConfig, build_model
from selfattention.data import Example, collate, make_example
from selfattention.data.batching import Batch
from selfattention.inspection import TraceRecorder
from selfattention.model import Transformer
from selfattention.training import RunConfig, Trainer, TrainingError, load_run_config, train
from selfattention.training.antecedent import AntecedentSupervision
from selfattention.training.checkpoint import list_checkpoints
from selfattention.training.config import DataConfig, TrainConfig
from selfattention.training.metrics import read_metrics

VOCAB = 40


def small_model(norm: str = "post", *, dropout: float = 0.0, seed: int = 0) -> Transformer:
    config = ModelConfig(
        vocab_size=VOCAB,
        d_model=32,
        n_heads=4,
        d_ff=64,
        encoder_layers=3,
        decoder_layers=1,
        norm=norm,  # type: ignore[arg-type]
        dropout=dropout,
        attention_dropout=dropout,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(config)


def linked_batch(rng: random.Random, count: int = 6) -> Batch:
    """Sentences of random ids and lengths (so with padding), every other one with a random link."""
    examples = []
    for i in range(count):
        length = rng.randint(4, 11)
        ids = [rng.randrange(4, VOCAB) for _ in range(length)]
        link = None
        if i % 2 == 0:
            query, *keys = rng.sample(range(length), 3)
            link = (query, tuple(sorted(keys[: rng.randint(1, 2)])))
        examples.append(make_example(ids, ids[:3], link=link))
    return collate(examples)


def model_weights(model: Transformer, batch: Batch, layer: int, head: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The head's weights at the links' queries as the model computes them (the recorder's explicit path),
    and as :class:`AntecedentSupervision` recomputes them, from one and the same forward pass."""
    supervision = AntecedentSupervision(model, layer, head)
    recorder = TraceRecorder(kinds=("encoder",))
    with supervision.capturing(batch):
        model(batch.src, batch.tgt_in, recorder=recorder)
    ours = supervision.attention_weights(batch)
    assert ours is not None and batch.link_query is not None
    rows = (batch.link_query >= 0).nonzero().flatten()
    theirs = recorder.attention("encoder", layer).weights[rows, head, batch.link_query[rows]]  # (N, S)
    return ours.detach(), theirs.detach()


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize(("layer", "head"), [(0, 0), (1, 2), (2, 3)])
def test_the_recomputed_head_is_the_models_head(norm: str, layer: int, head: int) -> None:
    model = small_model(norm)
    model.eval()
    ours, theirs = model_weights(model, linked_batch(random.Random(layer * 10 + head)), layer, head)
    assert ours.dtype == torch.float32 and ours.shape == theirs.shape
    assert float((ours - theirs).abs().max()) < 1e-5
    torch.testing.assert_close(ours.sum(dim=-1), torch.ones(len(ours)))


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_under_dropout_the_weights_are_those_before_attention_dropout(norm: str) -> None:
    model = small_model(norm, dropout=0.3)
    model.train()
    torch.manual_seed(1)
    ours, theirs = model_weights(model, linked_batch(random.Random(2)), 1, 1)
    assert float((ours - theirs).abs().max()) < 1e-5  # the recorder's weights are the softmax's, before dropout


def test_padding_keys_get_no_weight() -> None:
    model = small_model()
    batch = linked_batch(random.Random(3))
    ours, _ = model_weights(model, batch, 2, 0)
    assert batch.link_query is not None
    rows = (batch.link_query >= 0).nonzero().flatten()
    padding = batch.src[rows] == model.pad_id
    assert padding.any() and float(ours[padding].abs().max()) == 0.0


def losses_of(model: Transformer, supervision: AntecedentSupervision, batch: Batch, bf16: bool) -> torch.Tensor:
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    with supervision.capturing(batch), autocast:
        model.encode(batch.src)
        losses = supervision.losses(batch)
    assert losses is not None
    return losses


def test_under_bf16_autocast_the_losses_are_float32_and_close_to_float32s() -> None:
    model = small_model(dropout=0.1)
    batch = linked_batch(random.Random(4))
    supervision = AntecedentSupervision(model, 1, 3)
    model.eval()
    exact, low = (losses_of(model, supervision, batch, bf16) for bf16 in (False, True))
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, exact, atol=0.1, rtol=0.05)
    model.train()  # with dropout too: finite, and its gradient reaches the head's projections
    trained = losses_of(model, supervision, batch, True)
    assert trained.dtype == torch.float32 and bool(torch.isfinite(trained).all())
    trained.sum().backward()
    grad = supervision.attention.q_proj.weight.grad
    assert grad is not None and bool(torch.isfinite(grad).all()) and float(grad.abs().sum()) > 0


def test_a_batch_without_links_costs_nothing() -> None:
    model = small_model()
    supervision = AntecedentSupervision(model, 0, 0)
    batch = collate([make_example([5, 6, 7], [8]), make_example([9, 10], [11])])
    with supervision.capturing(batch):
        assert not supervision.attention._forward_pre_hooks  # no hook at all
        model.encode(batch.src)
    assert supervision.losses(batch) is None
    linked = linked_batch(random.Random(5))
    with supervision.capturing(linked):
        assert len(supervision.attention._forward_pre_hooks) == 1
        model.encode(linked.src)
    assert not supervision.attention._forward_pre_hooks  # taken away again
    losses = supervision.losses(linked)
    assert losses is not None and losses.shape == (linked.links,) and bool(torch.isfinite(losses).all())


def test_the_auxiliary_loss_alone_teaches_the_head_where_it_points() -> None:
    """Near-uniform attention from the query becomes more than half on the keys in a few dozen steps."""
    torch.manual_seed(0)
    model = small_model(seed=1)
    rng = random.Random(6)
    examples = []
    for _ in range(12):
        length = rng.randint(8, 12)
        ids = [rng.randrange(4, VOCAB) for _ in range(length)]
        query, key = rng.sample(range(length), 2)
        examples.append(make_example(ids, [5], link=(query, (key,))))
    batch = collate(examples)
    assert batch.link_keys is not None
    supervision = AntecedentSupervision(model, 2, 1)

    def weight_on_keys() -> float:
        with torch.no_grad(), supervision.capturing(batch):
            model.encode(batch.src)
            weights = supervision.attention_weights(batch)
        assert weights is not None and batch.link_keys is not None
        return float((weights * batch.link_keys).sum(dim=-1).mean())

    before = weight_on_keys()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        optimizer.zero_grad()
        with supervision.capturing(batch):
            model.encode(batch.src)
            losses = supervision.losses(batch)
        assert losses is not None
        losses.mean().backward()
        optimizer.step()
    after = weight_on_keys()
    assert before < 0.2  # about 1 / length
    assert after > 0.5, (before, after)


# -- the settings -------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["3", "3.", ".0", "3.0.1", "-1.0", "a.b", "3,0", " 3.0"])
def test_a_head_not_written_layer_dot_head_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r'antecedent_head should be "LAYER\.HEAD"'):
        TrainConfig(antecedent_head=text)


@pytest.mark.parametrize("weight", [0.0, -1.0, math.nan, math.inf])
def test_a_weight_that_is_not_a_positive_number_is_refused(weight: float) -> None:
    with pytest.raises(ValueError, match="antecedent_weight must be a positive number"):
        TrainConfig(antecedent_head="0.0", antecedent_weight=weight)


def test_a_head_written_as_a_number_is_told_to_quote_it(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('[data]\ncorpora = ["multi30k"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r'antecedent_head should be str, got 3\.0 \(in quotes: "3\.0"\)'):
        load_run_config(path, ["train.antecedent_head=3.0"])
    assert load_run_config(path, ['train.antecedent_head="3.0"']).train.antecedent_layer_head == (3, 0)
    assert TrainConfig().antecedent_layer_head is None


def _run(model: ModelConfig, head: str, pronoun_pairs: float) -> RunConfig:
    return RunConfig(model, DataConfig(pronoun_pairs=pronoun_pairs), TrainConfig(antecedent_head=head))


def test_a_head_outside_the_model_is_refused_naming_its_shape() -> None:
    model = ModelConfig(vocab_size=100, d_model=32, n_heads=4, encoder_layers=2)
    assert _run(model, "1.3", 0.05).supervised_head() == (1, 3)
    assert _run(model, "", 0.0).supervised_head() is None
    for text in ("2.0", "0.4"):
        with pytest.raises(ValueError) as info:
            _run(model, text, 0.05).supervised_head()
        message = str(info.value)
        assert f"train.antecedent_head='{text}'" in message
        assert "2 encoder layers" in message and "4 heads" in message


def test_a_head_with_no_pronoun_pairs_to_learn_from_is_refused(tiny_run_config: RunConfig, tmp_path: Path) -> None:
    model = ModelConfig(vocab_size=100, d_model=32, n_heads=4, encoder_layers=2)
    with pytest.raises(ValueError, match=r"needs data\.pronoun_pairs > 0.*nothing to supervise"):
        _run(model, "0.0", 0.0).supervised_head()
    with pytest.raises(TrainingError, match="nothing to supervise"):
        train(with_train(tiny_run_config, antecedent_head="0.0"), tmp_path / "run", show_progress=False)
    assert not (tmp_path / "run").exists()
    with pytest.raises(TrainingError, match=r"1 encoder layer \(0-0\) of 2 heads"):  # the tiny model's shape
        train(with_train(tiny_run_config, antecedent_head="1.0"), tmp_path / "run", show_progress=False)


# -- a training run -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pronoun_config(tmp_path_factory: pytest.TempPathFactory, tiny_run_config: RunConfig) -> RunConfig:
    """The tiny run on a corpus pronoun pairs can be made from, with half as many pronoun pairs."""
    corpus = tmp_path_factory.mktemp("pronouns") / "pairs.tsv"
    corpus.write_text("".join(f"{s}\t{t}\n" for s, t in pronoun_corpus()), encoding="utf-8")
    data = dataclasses.replace(
        tiny_run_config.data,
        corpora=(str(corpus),),
        valid_corpus=str(corpus),
        pronoun_pairs=0.5,
        uppercase=0.2,
        no_final_punctuation=0.2,
    )
    return with_train(dataclasses.replace(tiny_run_config, data=data), max_steps=6, checkpoint_every=100)


def test_switching_the_head_on_adds_links_and_changes_nothing_else(pronoun_config: RunConfig, tmp_path: Path) -> None:
    off = Trainer(pronoun_config, tmp_path / "off", show_progress=False)
    off.prepare(resume=False)
    on = Trainer(with_train(pronoun_config, antecedent_head="0.1"), tmp_path / "on", show_progress=False)
    on.prepare(resume=False)
    assert all(example.link is None for example in off.examples)
    assert [Example(e.src, e.tgt) for e in on.examples] == off.examples
    linked = [example for example in on.examples if example.link is not None]
    corpus_size = len(pronoun_corpus())
    assert all(example.link is None for example in on.examples[:corpus_size])  # the corpus pairs teach none
    assert len(linked) == len(on.examples) - corpus_size  # every pronoun pair has its link
    assert all(example.link is None for example in on.valid_examples)


def test_a_run_with_a_supervised_head_logs_its_loss(pronoun_config: RunConfig, tmp_path: Path) -> None:
    config = with_train(pronoun_config, antecedent_head="0.1", antecedent_weight=0.5)
    run_dir = tmp_path / "run"
    train(config, run_dir, show_progress=False)
    records = [r for r in read_metrics(run_dir) if r["kind"] == "train"]
    assert records and all(0.0 < r["antecedent_loss"] < -math.log(1e-6) for r in records)
    assert "antecedent links:" in (run_dir / "train.log").read_text(encoding="utf-8")
    changed = with_train(config, antecedent_head="0.0", max_steps=8)
    with pytest.raises(TrainingError, match=r"train\.antecedent_head '0\.1' → '0\.0'"):  # not a setting to resume with
        Trainer(changed, run_dir, show_progress=False).fit(resume=True)


def test_a_step_adds_the_weighted_mean_over_the_steps_linked_sentences(
    pronoun_config: RunConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auxiliary gradient is antecedent_weight × the mean over the step's linked sentences, whatever its tokens."""
    model = dataclasses.replace(pronoun_config.model, dropout=0.0)
    config = with_train(
        dataclasses.replace(pronoun_config, model=model),
        antecedent_head="0.1",
        antecedent_weight=0.7,
        onednn_linear=False,
        clip_norm=0.0,
        accumulate=2,
    )
    trainer = Trainer(config, tmp_path / "run", show_progress=False)
    trainer.prepare(resume=False)
    monkeypatch.setattr(trainer.optimizer, "step", lambda: None)  # keep the weights and their gradients
    linked = [e for e in trainer.examples if e.link is not None]
    plain = [e for e in trainer.examples if e.link is None]
    batches = [collate(linked[:3] + plain[:5]), collate(linked[3:8])]

    def gradients() -> dict[str, torch.Tensor]:
        return {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}

    supervision = trainer.supervision
    assert supervision is not None
    trainer._step(batches)
    with_head = gradients()
    trainer.supervision = None
    trainer._step(batches)
    without = gradients()
    trainer.model.zero_grad()
    total = torch.stack([losses_of(trainer.model, supervision, batch, False).sum() for batch in batches]).sum()
    (0.7 * total / 8).backward()  # 8 linked sentences in the step
    expected = gradients()
    for name, grad in expected.items():
        torch.testing.assert_close(with_head[name] - without.get(name, 0), grad, atol=1e-6, rtol=1e-4)


def test_a_supervised_run_resumes_exactly(pronoun_config: RunConfig, tmp_path: Path) -> None:
    config = with_train(pronoun_config, antecedent_head="0.0", max_epochs=5)
    train(with_train(config, max_steps=14), tmp_path / "reference", show_progress=False)
    train(with_train(config, max_steps=5), tmp_path / "run", show_progress=False)
    Trainer(with_train(config, max_steps=14), tmp_path / "run", show_progress=False).fit(resume=True)
    reference, resumed = (
        load_file(str(list_checkpoints(tmp_path / name)[-1] / "model.safetensors")) for name in ("reference", "run")
    )
    assert sorted(reference) == sorted(resumed)
    assert all(torch.equal(reference[name], resumed[name]) for name in reference)
    # across an epoch's end, so the next epoch's pronoun pairs and links were drawn anew
    assert any(r["kind"] == "valid" and r["at"] == "epoch end" for r in read_metrics(tmp_path / "run"))
