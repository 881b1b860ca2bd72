"""ModelConfig: the paper's defaults, immutability, dictionary round trips and validation."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from selfattention.config import ModelConfig


def test_defaults_are_the_papers_base_model() -> None:
    config = ModelConfig(vocab_size=37000)
    assert config.d_model == 512
    assert config.n_heads == 8
    assert config.head_dim == 64
    assert config.d_ff == 2048
    assert config.encoder_layers == 6
    assert config.decoder_layers == 6
    assert config.dropout == 0.1
    assert config.norm == "post"
    assert config.positional == "sinusoidal"
    assert config.tie_embeddings is True


def test_head_dim_follows_d_model_and_heads() -> None:
    assert ModelConfig(vocab_size=10, d_model=16, n_heads=4).head_dim == 4


def test_is_frozen() -> None:
    config = ModelConfig(vocab_size=100)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 256  # type: ignore[misc]
    assert config.d_model == 512


def test_to_dict_from_dict_round_trip() -> None:
    config = ModelConfig(
        vocab_size=123,
        d_model=24,
        n_heads=3,
        d_ff=40,
        encoder_layers=2,
        decoder_layers=1,
        dropout=0.25,
        attention_dropout=0.05,
        activation="gelu",
        norm="pre",
        positional="learned",
        max_positions=77,
        tie_embeddings=False,
        layer_norm_eps=1e-6,
        pad_id=3,
        bos_id=4,
        eos_id=5,
    )
    data = config.to_dict()
    assert isinstance(data, dict)
    assert data["vocab_size"] == 123
    assert data["activation"] == "gelu"
    assert set(data) == {field.name for field in dataclasses.fields(ModelConfig)}
    assert ModelConfig.from_dict(data) == config
    assert ModelConfig.from_dict(ModelConfig(vocab_size=9).to_dict()) == ModelConfig(vocab_size=9)


def test_from_dict_rejects_unknown_field_by_name() -> None:
    data = ModelConfig(vocab_size=50).to_dict()
    data["num_heads"] = 8
    with pytest.raises(ValueError, match="num_heads"):
        ModelConfig.from_dict(data)


def test_from_dict_needs_vocab_size() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        ModelConfig.from_dict({"d_model": 512})


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        ModelConfig.from_dict([("vocab_size", 10)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"d_model": 100, "n_heads": 8}, "d_model"),
        ({"dropout": -0.1}, "dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"attention_dropout": 1.5}, "attention_dropout"),
        ({"activation_dropout": 1.0}, "activation_dropout"),
        ({"activation_dropout": "none"}, "activation_dropout"),
        ({"norm": "middle"}, "norm"),
        ({"positional": "rotary"}, "positional"),
        ({"activation": "tanh"}, "activation"),
        ({"vocab_size": 0}, "vocab_size"),
        ({"vocab_size": 10, "pad_id": 10}, "pad_id"),
        ({"vocab_size": 10, "pad_id": 11}, "pad_id"),
        ({"vocab_size": 10, "eos_id": 10}, "eos_id"),
        ({"d_model": "512"}, "d_model"),
        ({"n_heads": True}, "n_heads"),
        ({"encoder_layers": False}, "encoder_layers"),
        ({"d_model": 512.0}, "d_model"),
        ({"dropout": True}, "dropout"),
        ({"n_heads": 0}, "n_heads"),
        ({"decoder_layers": -1}, "decoder_layers"),
    ],
)
def test_invalid_values_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {"vocab_size": 100, **changes}
    named = rf"\b{field}\b"  # whole word: "dropout" must not match inside "attention_dropout"
    with pytest.raises(ValueError, match=named) as error_info:
        ModelConfig(**arguments)
    assert "invalid model configuration" in str(error_info.value)
    # the same check applies to configurations read from a mapping
    with pytest.raises(ValueError, match=named):
        ModelConfig.from_dict(arguments)


def test_boundary_values_are_accepted() -> None:
    """The checks above reject only what they should: these are the edges of what is valid."""
    config = ModelConfig(vocab_size=10, pad_id=9, dropout=0.0, attention_dropout=0.999, encoder_layers=0)
    assert config.pad_id == 9
    assert ModelConfig(vocab_size=1, d_model=6, n_heads=3, pad_id=0, bos_id=0, eos_id=0).head_dim == 2


def test_activation_dropout_defaults_to_dropout_and_zero_turns_it_off() -> None:
    """The feed-forward's inner dropout follows ``dropout`` unless set; every other dropout is ``dropout``."""
    from torch import nn

    from selfattention import build_model
    from selfattention.layers import FeedForward

    def inner_and_outer(model: nn.Module) -> tuple[set[float], set[float]]:
        inner = {m.dropout.p for m in model.modules() if isinstance(m, FeedForward)}
        outer = {m.p for name, m in model.named_modules() if isinstance(m, nn.Dropout) and "feed_forward" not in name}
        return inner, outer

    assert inner_and_outer(build_model(ModelConfig(vocab_size=20, d_model=8, n_heads=2, d_ff=16, dropout=0.3))) == (
        {0.3},
        {0.3},
    )
    paper = build_model(ModelConfig(vocab_size=20, d_model=8, n_heads=2, d_ff=16, dropout=0.3, activation_dropout=0.0))
    assert inner_and_outer(paper) == ({0.0}, {0.3})
