"""Fine-tuning: ``train.init_from`` starts a run from a trained model's weights and vocabulary."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from conftest import with_train
from selfattention.data import Tokenizer
from selfattention.model import build_model
from selfattention.model_io import load_model
from selfattention.training import RunConfig, TrainingError, train
from selfattention.training.checkpoint import list_checkpoints
from selfattention.training.init_from import InitError, load_initial_weights
from selfattention.training.trainer import Trainer


@pytest.fixture
def trained(tiny_run_config: RunConfig, tmp_path: Path) -> Path:
    """The best model of a tiny run: what the fine-tuning runs start from."""
    run_dir = tmp_path / "start"
    train(with_train(tiny_run_config, max_steps=20, seed=3), run_dir, show_progress=False)
    return run_dir / "best"


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def test_a_run_starts_from_the_models_weights_and_vocabulary(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path
) -> None:
    config = with_train(tiny_run_config, init_from=str(trained), seed=7)
    trainer = Trainer(config, tmp_path / "tune", show_progress=False)
    trainer.prepare(resume=False)
    start = load_model(trained)
    ours = weights(trainer.model)
    assert ours.keys() == start.state_dict().keys()
    for name, tensor in start.state_dict().items():
        assert torch.equal(ours[name], tensor), name
    assert (tmp_path / "tune" / "tokenizer.model").read_bytes() == (trained / "tokenizer.model").read_bytes()
    assert trainer.progress.step == 0  # a new stretch: a fresh optimiser and schedule

    from_scratch = Trainer(with_train(tiny_run_config, seed=7), tmp_path / "scratch", show_progress=False)
    from_scratch.prepare(resume=False)
    scratch = weights(from_scratch.model)
    assert not any(torch.equal(scratch[name], ours[name]) for name in ours if ours[name].dim() == 2)


def test_case_markers_append_one_piece_and_a_mean_row_to_the_model(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path
) -> None:
    config = with_train(tiny_run_config, init_from=str(trained))
    config = replace(config, data=replace(config.data, case_markers=True))
    trainer = Trainer(config, tmp_path / "tune", show_progress=False)
    trainer.prepare(resume=False)
    start = load_model(trained)
    size = start.config.vocab_size
    assert trainer.tokenizer.vocab_size == size + 1 and trainer.tokenizer.marks_capitals
    before = Tokenizer.load(trained)
    assert not before.marks_capitals
    for sentence in ("a dog runs in the park .", "un chien court dans le parc ."):
        assert trainer.tokenizer.encode(sentence) == before.encode(sentence)  # old pieces keep their ids
    assert trainer.tokenizer.encode("A DOG") != before.encode("A DOG")
    ours = weights(trainer.model)
    grown = 0
    for name, tensor in start.state_dict().items():
        if tensor.shape[0] == size:
            grown += 1
            assert ours[name].shape[0] == size + 1, name
            assert torch.equal(ours[name][:size], tensor), name
            assert torch.allclose(ours[name][size], tensor.mean(dim=0)), name
        else:
            assert torch.equal(ours[name], tensor), name
    assert grown >= 1
    model = trainer.model
    tied = model.output_proj.weight is model.src_embed.token.weight
    assert tied == start.config.tie_embeddings  # a tied model's matrix is still one matrix


def test_a_vocabulary_grown_by_more_than_the_case_marker_is_refused(trained: Path) -> None:
    start = load_model(trained)
    bigger = replace(start.config, vocab_size=start.config.vocab_size + 2)
    with pytest.raises(InitError, match="only the case marker may be added"):
        load_initial_weights(build_model(bigger), bigger, trained)


def test_fine_tuning_lowers_the_validation_loss_it_starts_from(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path
) -> None:
    config = with_train(tiny_run_config, init_from=str(trained), max_steps=20, peak_lr=1e-3, warmup_steps=1)
    trainer = Trainer(config, tmp_path / "tune", show_progress=False)
    trainer.prepare(resume=False)
    before = trainer.validate()["nll"]
    trainer.fit()
    assert trainer.validate()["nll"] < before


def test_a_fine_tuning_run_resumes_from_its_checkpoint_not_from_the_start(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path
) -> None:
    config = with_train(tiny_run_config, init_from=str(trained), max_steps=12, checkpoint_every=5)
    train(config, tmp_path / "whole", show_progress=False)
    train(with_train(config, max_steps=5), tmp_path / "cut", show_progress=False)
    assert list_checkpoints(tmp_path / "cut")[-1].name == "step-00000005"
    train(config, tmp_path / "cut", resume=True, show_progress=False)
    whole, cut = (
        load_model(list_checkpoints(tmp_path / "whole")[-1]),
        load_model(list_checkpoints(tmp_path / "cut")[-1]),
    )
    for name, tensor in whole.state_dict().items():
        assert torch.equal(cut.state_dict()[name], tensor), name


def test_dropout_may_differ_from_the_model(tiny_run_config: RunConfig, trained: Path, tmp_path: Path) -> None:
    model = replace(tiny_run_config.model, dropout=0.3, attention_dropout=0.2)
    config = with_train(replace(tiny_run_config, model=model), init_from=str(trained))
    Trainer(config, tmp_path / "tune", show_progress=False).prepare(resume=False)


def test_another_architecture_is_refused_naming_the_setting(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path
) -> None:
    model = replace(tiny_run_config.model, d_ff=tiny_run_config.model.d_ff * 2, norm="pre")
    given = {**tiny_run_config.given, "model": tiny_run_config.given["model"] | {"d_ff", "norm"}}  # as a file says
    config = with_train(replace(tiny_run_config, model=model, given=given), init_from=str(trained))
    with pytest.raises(TrainingError, match=r"not this run's architecture: .*d_ff = 128 here, 64 in the model.*norm"):
        Trainer(config, tmp_path / "tune", show_progress=False).prepare(resume=False)
    built = replace(config, given={})  # a configuration built in code: every setting is compared
    with pytest.raises(TrainingError, match=r"not this run's architecture: .*d_ff = 128 here, 64 in the model.*norm"):
        Trainer(built, tmp_path / "tune2", show_progress=False).prepare(resume=False)


def test_a_missing_model_or_vocabulary_is_named(tiny_run_config: RunConfig, trained: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match=r"no model directory at .*nowhere"):
        Trainer(with_train(tiny_run_config, init_from=str(tmp_path / "nowhere")), tmp_path / "a").prepare(resume=False)
    incomplete = tmp_path / "incomplete"
    incomplete.mkdir()
    (incomplete / "config.json").write_bytes((trained / "config.json").read_bytes())
    with pytest.raises(TrainingError, match=r"incomplete/tokenizer.model is missing"):
        Trainer(with_train(tiny_run_config, init_from=str(incomplete)), tmp_path / "b").prepare(resume=False)
    (incomplete / "tokenizer.model").write_bytes((trained / "tokenizer.model").read_bytes())
    with pytest.raises(TrainingError, match=r"model.safetensors"):
        Trainer(with_train(tiny_run_config, init_from=str(incomplete)), tmp_path / "c").prepare(resume=False)


def test_the_cli_names_a_model_it_cannot_find(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from selfattention.cli import main

    config = Path(__file__).parents[1] / "configs" / "en-fr-tune.toml"
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--init-from", "nowhere"]) == 2
    assert "no model at 'nowhere'" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_the_committed_fine_tuning_recipe_fits_the_bundled_model() -> None:
    from selfattention.cli.common import resolve_model
    from selfattention.model_io import load_config
    from selfattention.training import load_run_config
    from selfattention.training.init_from import differences

    bundled = load_config(resolve_model("en-fr"))
    recipe = load_run_config(Path(__file__).parents[1] / "configs" / "en-fr-tune.toml").model
    ids = {"vocab_size": bundled.vocab_size, "pad_id": 0, "bos_id": 1, "eos_id": 2}  # set by the trainer
    assert differences(replace(recipe, **ids), bundled) == []
    assert differences(replace(recipe, d_model=128, **ids), bundled) == ["d_model = 128 here, 256 in the model"]


def test_resuming_before_the_first_checkpoint_starts_from_the_recorded_model(
    tiny_run_config: RunConfig, trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed before any checkpoint: the resumed run starts from the model run_config.json names, never at random."""
    start = tmp_path / "origin"
    shutil.copytree(trained, start)
    config = with_train(tiny_run_config, init_from=str(start), max_steps=12, checkpoint_every=50)

    def stop(self: Trainer, batches: list) -> None:
        raise KeyboardInterrupt  # killed before any checkpoint

    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "_step", stop)
        with pytest.raises(KeyboardInterrupt):
            train(config, tmp_path / "run", show_progress=False)
    assert not list_checkpoints(tmp_path / "run")
    shutil.move(start, tmp_path / "moved")
    with pytest.raises(TrainingError, match=r"train.init_from: no model directory at .*origin"):
        train(with_train(config, init_from=""), tmp_path / "run", resume=True, show_progress=False)
    shutil.move(tmp_path / "moved", start)
    train(with_train(config, init_from=""), tmp_path / "run", resume=True, show_progress=False)  # --resume alone
    assert list_checkpoints(tmp_path / "run")[-1].name == "step-00000012"


def test_the_cli_refuses_another_architecture_before_reading_any_corpus(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from selfattention.cli import main

    config = Path(__file__).parents[1] / "configs" / "en-fr-tune.toml"  # d_model 256; the tiny model has 32
    out = tmp_path / "run"
    arguments = ["train", "--config", str(config), "--out", str(out), "--init-from", str(trained)]
    assert main([*arguments, "--data-dir", str(tmp_path / "no-corpora-here")]) == 2
    assert "not this run's architecture: d_model = 256 here, 32 in the model" in capsys.readouterr().err
    assert not out.exists()
