"""Model configuration: one frozen dataclass, read only by ``build_model`` and the tools."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

NormPlacement = Literal["post", "pre"]
PositionalKind = Literal["sinusoidal", "sinusoidal_halves", "learned"]
Activation = Literal["relu", "gelu", "silu"]
MAX_POSITIONS = 65536


@dataclass(frozen=True)
class ModelConfig:
    """The shape of an encoder-decoder Transformer.

    Defaults are the paper's base model (section 3, table 3): d_model 512, 8 heads of width 64,
    d_ff 2048, 6 + 6 layers, dropout 0.1, post-LN, sinusoidal positions, shared embeddings.

    Options beyond the paper, for models from elsewhere (Hugging Face Marian, e.g. opus-mt):
    ``activation`` "silu" (Marian's "swish"); ``positional`` "sinusoidal_halves" (the same sines
    and cosines, all sines first, then all cosines, instead of interleaved); ``scale_embedding``
    False (no sqrt(D) factor on token embeddings); ``output_bias`` (a learned bias on the logits,
    Marian's ``final_logits_bias``). ``bos_id`` is the token the decoder starts from: Marian has no
    start token and starts from its padding id, so an imported model has ``bos_id == pad_id``.

    ``activation_dropout`` is the dropout inside the feed-forward sublayer, after its activation;
    ``None`` means the same as ``dropout`` (``torch.nn.Transformer``'s choice), 0 the paper's (it
    drops only sublayer outputs and embeddings).
    """

    vocab_size: int
    d_model: int = 512
    n_heads: int = 8
    d_ff: int = 2048
    encoder_layers: int = 6
    decoder_layers: int = 6
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float | None = None
    activation: Activation = "relu"
    norm: NormPlacement = "post"
    positional: PositionalKind = "sinusoidal"
    max_positions: int = 1024
    tie_embeddings: bool = True
    scale_embedding: bool = True
    output_bias: bool = False
    layer_norm_eps: float = 1e-5
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2
    # What the model translates from and into (language codes): set from the training data's
    # data.source_lang / data.target_lang; they change nothing the weights compute.
    source_lang: str = "en"
    target_lang: str = "fr"

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ValueError("invalid model configuration: " + "; ".join(problems))

    @property
    def head_dim(self) -> int:
        """d_k = d_v = d_model / n_heads (64 in the paper's base model)."""
        return self.d_model // self.n_heads

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build from a mapping, naming any unknown or missing field."""
        if not isinstance(data, dict):
            raise ValueError(f"a model configuration must be a JSON object, got {type(data).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model configuration field(s): {', '.join(unknown)}")
        if "vocab_size" not in data:
            raise ValueError("the model configuration has no 'vocab_size'")
        return cls(**data)


def _problems(config: ModelConfig) -> list[str]:
    problems = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        choices = get_args(_FIELD_TYPES.get(field.name, object))
        if choices and value not in choices:
            problems.append(f"{field.name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        elif field.name in _INTS and (isinstance(value, bool) or not isinstance(value, int)):
            problems.append(f"{field.name} must be an integer, got {value!r}")
        elif field.name in _OPTIONAL_FLOATS and value is None:
            pass
        elif field.name in _FLOATS and (isinstance(value, bool) or not isinstance(value, int | float)):
            problems.append(f"{field.name} must be a number, got {value!r}")
        elif field.name in _BOOLS and not isinstance(value, bool):
            problems.append(f"{field.name} must be true or false, got {value!r}")
        elif field.name in _LANGUAGES and not (isinstance(value, str) and value.strip()):
            problems.append(f"{field.name} must be a language code such as en or fr, got {value!r}")
    if problems:
        return problems
    for name in ("vocab_size", "d_model", "n_heads", "d_ff", "max_positions"):
        if getattr(config, name) <= 0:
            problems.append(f"{name} must be positive, got {getattr(config, name)}")
    for name in ("encoder_layers", "decoder_layers"):
        if getattr(config, name) < 0:
            problems.append(f"{name} must not be negative, got {getattr(config, name)}")
    if not 0.0 < config.layer_norm_eps < 1.0:
        problems.append(f"layer_norm_eps must be in (0, 1), got {config.layer_norm_eps}")
    if config.max_positions > MAX_POSITIONS:
        problems.append(f"max_positions must be at most {MAX_POSITIONS}, got {config.max_positions}")
    for name in ("dropout", "attention_dropout", "activation_dropout"):
        if getattr(config, name) is not None and not 0.0 <= getattr(config, name) < 1.0:
            problems.append(f"{name} must be in [0, 1), got {getattr(config, name)}")
    if config.n_heads > 0 and config.d_model % config.n_heads != 0:
        problems.append(f"d_model ({config.d_model}) must be divisible by n_heads ({config.n_heads})")
    if config.positional != "learned" and config.d_model % 2 != 0:
        problems.append(f"sinusoidal positions need an even d_model, got {config.d_model}")
    for name in ("pad_id", "bos_id", "eos_id"):
        if not 0 <= getattr(config, name) < max(config.vocab_size, 1):
            problems.append(
                f"{name} must be a token id below vocab_size ({config.vocab_size}), got {getattr(config, name)}"
            )
    return problems


_FIELD_TYPES: dict[str, Any] = {"activation": Activation, "norm": NormPlacement, "positional": PositionalKind}
_INTS = {
    "vocab_size",
    "d_model",
    "n_heads",
    "d_ff",
    "encoder_layers",
    "decoder_layers",
    "max_positions",
    "pad_id",
    "bos_id",
    "eos_id",
}
_OPTIONAL_FLOATS = {"activation_dropout"}
_FLOATS = {"dropout", "attention_dropout", "layer_norm_eps", *_OPTIONAL_FLOATS}
_BOOLS = {"scale_embedding", "output_bias", "tie_embeddings"}
_LANGUAGES = {"source_lang", "target_lang"}
