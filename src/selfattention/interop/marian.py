"""Hugging Face Marian (opus-mt) models in and out, read and written without ``transformers``.

A Marian directory holds ``config.json`` (a ``MarianConfig``), ``model.safetensors`` (or an older
``pytorch_model.bin``), and the tokenizer: ``source.spm``, ``target.spm``, ``vocab.json``.
Marian (``transformers/models/marian/modeling_marian.py``) is the paper's Transformer with a few
choices, each a plain option of :class:`ModelConfig`:

==========================================================  ======================================
Marian                                                      here
==========================================================  ======================================
``activation_function`` "swish" in opus-mt (SiLU)           ``activation="silu"``
``scale_embedding``: tokens times sqrt(D) (opus-mt) or 1    ``scale_embedding``
fixed sinusoids from position 0, all sines then all         ``positional="sinusoidal_halves"``
cosines (not interleaved), never stored or learned
``final_logits_bias`` added to the logits                   ``output_bias`` (``output_proj.bias``)
``model.shared`` for both embeddings, tied ``lm_head``      ``tie_embeddings``
post-LN, no final or embedding LayerNorm, eps 1e-5          ``norm="post"``, ``layer_norm_eps``
no start token: decoding starts from ``pad`` (its           ``bos_id = decoder_start_token_id``
``decoder_start_token_id``); ``</s>`` ends; pad is banned
q scaled by head_dim^-0.5 before q·kᵀ                       the same as scores / sqrt(d_k)
==========================================================  ======================================

Our models use interleaved sinusoids, which Marian cannot express; exporting one reorders the
model width D (the residual stream) so that its positions become Marian's halves layout. That
gives the same logits, and ``config.json`` records it so that importing the export restores the
original weights exactly.
"""

from __future__ import annotations

import json
import logging
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from selfattention.config import ModelConfig
from selfattention.data.marian_tokenizer import MarianTokenizerAdapter
from selfattention.data.tokenizer import SubwordTokenizer, Tokenizer, TokenizerError
from selfattention.interop.errors import InteropError
from selfattention.layers import sinusoidal_table
from selfattention.model import Transformer, build_model
from selfattention.model_io import CONFIG_FILE, FORMAT, ModelFileError, atomic_write

log = logging.getLogger(__name__)

SAFETENSORS_FILE = "model.safetensors"
PICKLE_FILE = "pytorch_model.bin"
GENERATION_CONFIG_FILE = "generation_config.json"
# In an exported config.json: the positions the weights were reordered from (see permute_width).
POSITIONAL_HINT = "selfattention_positional"

ACTIVATION_FROM_MARIAN = {"relu": "relu", "gelu": "gelu", "swish": "silu", "silu": "silu"}
ACTIVATION_TO_MARIAN = {"relu": "relu", "gelu": "gelu", "silu": "swish"}
MARIAN_LAYER_NORM_EPS = 1e-5  # Marian's nn.LayerNorm(d_model) keeps PyTorch's default

# MarianConfig's defaults, for keys a config.json leaves out.
MARIAN_DEFAULTS: dict[str, Any] = {
    "vocab_size": 58101,
    "decoder_vocab_size": None,
    "max_position_embeddings": 1024,
    "encoder_layers": 12,
    "encoder_ffn_dim": 4096,
    "encoder_attention_heads": 16,
    "decoder_layers": 12,
    "decoder_ffn_dim": 4096,
    "decoder_attention_heads": 16,
    "activation_function": "gelu",
    "d_model": 1024,
    "dropout": 0.1,
    "attention_dropout": 0.0,
    "decoder_start_token_id": 58100,
    "scale_embedding": False,
    "pad_token_id": 58100,
    "eos_token_id": 0,
    "share_encoder_decoder_embeddings": True,
    "tie_word_embeddings": True,
}

_ATTENTION = ("q_proj", "k_proj", "v_proj", "out_proj")
# Per-layer modules, our name -> Marian's (under encoder.layers.i and model.encoder.layers.i).
ENCODER_LAYER_NAMES = {
    **{f"self_attn.{part}": f"self_attn.{part}" for part in _ATTENTION},
    "self_attn_norm": "self_attn_layer_norm",
    "feed_forward.up_proj": "fc1",
    "feed_forward.down_proj": "fc2",
    "feed_forward_norm": "final_layer_norm",
}
DECODER_LAYER_NAMES = {
    **ENCODER_LAYER_NAMES,
    **{f"cross_attn.{part}": f"encoder_attn.{part}" for part in _ATTENTION},
    "cross_attn_norm": "encoder_attn_layer_norm",
}
_POSITION_TENSORS = ("model.encoder.embed_positions.weight", "model.decoder.embed_positions.weight")


# --- import ----------------------------------------------------------------------------------------


def layer_names(config: ModelConfig) -> Iterator[tuple[str, str]]:
    """(our name, Marian's name) of every tensor in the encoder and decoder layers."""
    for stack, count, names in (
        ("encoder", config.encoder_layers, ENCODER_LAYER_NAMES),
        ("decoder", config.decoder_layers, DECODER_LAYER_NAMES),
    ):
        for i in range(count):
            for ours, theirs in names.items():
                for kind in ("weight", "bias"):
                    yield f"{stack}.layers.{i}.{ours}.{kind}", f"model.{stack}.layers.{i}.{theirs}.{kind}"


def import_marian(directory: Path | str) -> tuple[Transformer, MarianTokenizerAdapter]:
    """Read a Hugging Face Marian directory as our :class:`Transformer` and its tokenizer."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFileError(directory, "no such directory")
    marian = read_marian_config(directory)
    tensors, weights_path = read_marian_weights(directory)
    config = config_from_marian(marian, directory / CONFIG_FILE)
    state, tied, bias = _state_from_marian(tensors, marian, config, weights_path)
    config = ModelConfig.from_dict({**config.to_dict(), "tie_embeddings": tied, "output_bias": bias})
    model = build_model(config)
    _load_state(model, state, weights_path)
    tokenizer = MarianTokenizerAdapter.load(directory)
    _check_tokenizer(tokenizer, config, str(directory))
    return model.eval(), tokenizer


def read_marian_config(directory: Path) -> dict[str, Any]:
    """``config.json`` of a Hugging Face directory, checked to be a Marian model."""
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(path, "no such file (a Hugging Face model directory holds config.json)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ModelFileError(path, f"cannot read ({error})") from None
    except json.JSONDecodeError as error:
        raise ModelFileError(path, f"invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}") from None
    if not isinstance(document, dict):
        raise ModelFileError(path, "expected a JSON object")
    if document.get("format") == FORMAT:
        raise ModelFileError(path, "this is already a selfattention model directory; use it with --model as it is")
    if document.get("model_type") != "marian":
        raise ModelFileError(
            path,
            f"unsupported model_type {document.get('model_type')!r}: only Hugging Face Marian models "
            '(model_type "marian", e.g. Helsinki-NLP/opus-mt-en-fr) can be imported',
        )
    return document


def read_marian_weights(directory: Path) -> tuple[dict[str, Tensor], Path]:
    """The tensors of ``model.safetensors``, else of ``pytorch_model.bin`` (tensors only, never objects)."""
    safetensors_path, pickle_path = directory / SAFETENSORS_FILE, directory / PICKLE_FILE
    if safetensors_path.is_file():
        try:
            return load_file(str(safetensors_path)), safetensors_path
        except (SafetensorError, OSError, ValueError) as error:
            raise ModelFileError(safetensors_path, f"not a readable safetensors file ({error})") from None
    if (directory / f"{SAFETENSORS_FILE}.index.json").is_file():
        raise ModelFileError(directory / f"{SAFETENSORS_FILE}.index.json", "sharded weights are not supported")
    if not pickle_path.is_file():
        raise ModelFileError(safetensors_path, f"no such file (nor {PICKLE_FILE}): the model's weights are missing")
    try:
        tensors = torch.load(pickle_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelFileError(
            pickle_path,
            "refused to load: the pickle holds more than tensors, and only weights_only loading is allowed "
            f"({first_line}); convert it to model.safetensors with a tool you trust",
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise ModelFileError(pickle_path, f"not a readable PyTorch weights file ({error})") from None
    if not isinstance(tensors, dict) or not all(isinstance(t, Tensor) for t in tensors.values()):
        raise ModelFileError(pickle_path, "expected a mapping from tensor names to tensors")
    return tensors, pickle_path


def config_from_marian(marian: dict[str, Any], path: Path) -> ModelConfig:
    """Our configuration for a Marian ``config.json`` (before looking at the weights)."""
    values = {**MARIAN_DEFAULTS, **marian}
    problems = []
    for ours, (encoder_key, decoder_key) in {
        "n_heads": ("encoder_attention_heads", "decoder_attention_heads"),
        "d_ff": ("encoder_ffn_dim", "decoder_ffn_dim"),
    }.items():
        if values[encoder_key] != values[decoder_key]:
            problems.append(f"{encoder_key} {values[encoder_key]} != {decoder_key} {values[decoder_key]} ({ours})")
    if values["decoder_vocab_size"] not in (None, values["vocab_size"]):
        problems.append(f"decoder_vocab_size {values['decoder_vocab_size']} differs from vocab_size")
    activation = ACTIVATION_FROM_MARIAN.get(values["activation_function"])
    if activation is None:
        problems.append(
            f"activation_function {values['activation_function']!r} (supported: {', '.join(ACTIVATION_FROM_MARIAN)})"
        )
    eos = values["eos_token_id"]
    if isinstance(eos, list):
        if len(eos) != 1:
            problems.append(f"eos_token_id {eos}: only one end token is supported")
        eos = eos[0] if eos else None
    if problems:
        raise ModelFileError(path, "unsupported Marian model: " + "; ".join(problems))
    for key in ("normalize_before", "add_final_layer_norm", "normalize_embedding"):
        if marian.get(key):
            log.warning(
                "%s: %s is set, but MarianMTModel ignores it (post-LN, no extra norms); so does this", path, key
            )
    hint = marian.get(POSITIONAL_HINT)
    try:
        return ModelConfig(
            vocab_size=values["vocab_size"],
            d_model=values["d_model"],
            n_heads=values["encoder_attention_heads"],
            d_ff=values["encoder_ffn_dim"],
            encoder_layers=values["encoder_layers"],
            decoder_layers=values["decoder_layers"],
            dropout=float(values["dropout"]),
            attention_dropout=float(values["attention_dropout"]),
            activation_dropout=_activation_dropout(values),
            activation=activation,  # type: ignore[arg-type]
            norm="post",
            positional="sinusoidal" if hint == "sinusoidal" else "sinusoidal_halves",
            max_positions=values["max_position_embeddings"],
            scale_embedding=values["scale_embedding"],
            layer_norm_eps=MARIAN_LAYER_NORM_EPS,
            pad_id=values["pad_token_id"],
            bos_id=values["decoder_start_token_id"],
            eos_id=eos,
        )
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, f"unsupported Marian model: {error}") from None


def _state_from_marian(
    tensors: dict[str, Tensor], marian: dict[str, Any], config: ModelConfig, path: Path
) -> tuple[dict[str, Tensor], bool, bool]:
    """Our state dict from Marian's tensors; also whether the embeddings are tied and the bias used."""
    if not any(name.startswith("model.") for name in tensors):  # a bare MarianModel: no "model." prefix
        tensors = {f"model.{name}": tensor for name, tensor in tensors.items()}
    values = {**MARIAN_DEFAULTS, **marian}
    used: set[str] = set()

    def take(*names: str) -> Tensor | None:
        for name in names:
            if name in tensors:
                used.add(name)
                return tensors[name]
        return None

    shared = "model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"
    if values["share_encoder_decoder_embeddings"]:
        source = target = take(*shared)
    else:
        source = take("model.encoder.embed_tokens.weight", "model.shared.weight")
        target = take("model.decoder.embed_tokens.weight")
    output = target if values["tie_word_embeddings"] else take("lm_head.weight")
    if source is None:
        raise ModelFileError(path, "missing tensor model.shared.weight (the token embeddings)")
    if target is None:
        raise ModelFileError(path, "missing tensor model.decoder.embed_tokens.weight (embeddings are not shared)")
    if output is None:
        raise ModelFileError(path, "missing tensor lm_head.weight (tie_word_embeddings is false)")
    bias = take("final_logits_bias")
    bias = torch.zeros(config.vocab_size) if bias is None else bias.reshape(-1)
    _check_positions(tensors, config, path, used)
    state = {"src_embed.token.weight": source, "tgt_embed.token.weight": target, "output_proj.weight": output}
    has_bias = bool(bias.any())
    if has_bias:
        state["output_proj.bias"] = bias
    missing = []
    for ours, theirs in layer_names(config):
        tensor = take(theirs)
        if tensor is None:
            missing.append(theirs)
        else:
            state[ours] = tensor
    if missing:
        raise ModelFileError(path, f"missing {len(missing)} tensor(s) that config.json implies, e.g. {missing[0]}")
    ignored = sorted(set(tensors) - used - {"lm_head.weight", *shared})
    if ignored:
        log.warning("%s: ignoring %d tensor(s) MarianMTModel does not use, e.g. %s", path, len(ignored), ignored[0])
    tied = source.shape == target.shape == output.shape and torch.equal(source, target) and torch.equal(target, output)
    if config.positional == "sinusoidal":  # exported from an interleaved model: undo the reordering
        state = permute_width(state, torch.argsort(marian_width_order(config.d_model)))
    return state, tied, has_bias


def _check_positions(tensors: dict[str, Tensor], config: ModelConfig, path: Path, used: set[str]) -> None:
    """Stored positions (older checkpoints keep them) must be Marian's fixed sinusoids."""
    for name in _POSITION_TENSORS:
        if name not in tensors:
            continue
        used.add(name)
        stored = tensors[name]
        expected = sinusoidal_table(stored.shape[0], config.d_model, "halves")
        tolerance = max(1e-5, 4 * torch.finfo(stored.dtype).eps)  # half-precision checkpoints round more
        if stored.shape != expected.shape or not torch.allclose(stored.float(), expected, rtol=0.0, atol=tolerance):
            raise ModelFileError(path, f"{name} is not Marian's fixed sinusoids; learned positions are not supported")


def _load_state(model: Transformer, state: dict[str, Tensor], path: Path) -> None:
    expected = model.state_dict()
    for name, tensor in state.items():
        if name not in expected:
            raise ModelFileError(path, f"internal mapping produced an unknown tensor {name}")
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ModelFileError(
                path, f"{name} has shape {tuple(tensor.shape)}, but config.json implies {tuple(expected[name].shape)}"
            )
        if not tensor.is_floating_point() or not torch.isfinite(tensor).all():
            raise ModelFileError(path, f"{name} is not a finite floating-point tensor")
    model.load_state_dict({name: tensor.to(expected[name].dtype) for name, tensor in state.items()})


def _check_tokenizer(tokenizer: MarianTokenizerAdapter, config: ModelConfig, where: str) -> None:
    if (tokenizer.eos_id, tokenizer.pad_id) != (config.eos_id, config.pad_id):
        raise TokenizerError(
            f"{where}: the tokenizer's </s> and <pad> ids ({tokenizer.eos_id}, {tokenizer.pad_id}) differ from "
            f"the model's eos_token_id and pad_token_id ({config.eos_id}, {config.pad_id})"
        )
    largest = max(tokenizer.vocab.values(), default=0)
    if largest >= config.vocab_size:
        raise TokenizerError(f"{where}: vocab.json has id {largest}, beyond the model's vocab_size {config.vocab_size}")


# --- export ----------------------------------------------------------------------------------------


def export_marian(model: Transformer, tokenizer: SubwordTokenizer, out_dir: Path | str) -> Path:
    """Write ``model`` as a Hugging Face Marian directory that ``MarianMTModel.from_pretrained`` loads."""
    config = model.config
    if config is None:
        raise InteropError("the model has no configuration (build it with build_model or load_model)")
    marian_tokenizer = _as_marian_tokenizer(tokenizer)
    _check_tokenizer(marian_tokenizer, config, "export")
    tensors = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    if config.positional == "sinusoidal":
        tensors = permute_width(tensors, marian_width_order(config.d_model))
    marian_tensors, share, tie = marian_state(tensors, config)
    document = marian_config(config, share=share, tie=tie)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = {name: tensor.contiguous().clone() for name, tensor in marian_tensors.items()}
    atomic_write(out_dir / SAFETENSORS_FILE, lambda tmp: save_file(weights, str(tmp), metadata={"format": "pt"}))
    for name, content in ((CONFIG_FILE, document), (GENERATION_CONFIG_FILE, generation_config(config))):
        text = json.dumps(content, indent=2) + "\n"
        atomic_write(out_dir / name, lambda tmp, text=text: tmp.write_text(text, encoding="utf-8"))
    marian_tokenizer.save(out_dir)
    return out_dir


def marian_config(config: ModelConfig, *, share: bool = True, tie: bool = True) -> dict[str, Any]:
    """A ``MarianConfig`` as ``config.json`` writes it, for our configuration."""
    problems = []
    if config.norm != "post":
        problems.append("Marian is post-LN; this model is pre-LN (norm 'pre')")
    if config.positional == "learned":
        problems.append("Marian's positions are fixed sinusoids; this model learned its positions")
    if config.layer_norm_eps != MARIAN_LAYER_NORM_EPS:
        problems.append(f"Marian's LayerNorm eps is {MARIAN_LAYER_NORM_EPS}; this model uses {config.layer_norm_eps}")
    if problems:
        raise InteropError("cannot write this model as Marian: " + "; ".join(problems))
    document: dict[str, Any] = {
        "architectures": ["MarianMTModel"],
        "model_type": "marian",
        "vocab_size": config.vocab_size,
        "decoder_vocab_size": config.vocab_size,
        "d_model": config.d_model,
        "encoder_layers": config.encoder_layers,
        "decoder_layers": config.decoder_layers,
        "encoder_attention_heads": config.n_heads,
        "decoder_attention_heads": config.n_heads,
        "encoder_ffn_dim": config.d_ff,
        "decoder_ffn_dim": config.d_ff,
        "activation_function": ACTIVATION_TO_MARIAN[config.activation],
        "dropout": config.dropout,
        "attention_dropout": config.attention_dropout,
        # ours drops out after the activation at `dropout`'s rate unless activation_dropout says otherwise
        "activation_dropout": config.dropout if config.activation_dropout is None else config.activation_dropout,
        "max_position_embeddings": config.max_positions,
        "scale_embedding": config.scale_embedding,
        "pad_token_id": config.pad_id,
        "eos_token_id": config.eos_id,
        "forced_eos_token_id": config.eos_id,
        "decoder_start_token_id": config.bos_id,
        "share_encoder_decoder_embeddings": share,
        "tie_word_embeddings": tie,
        "is_encoder_decoder": True,
    }
    if config.positional == "sinusoidal":
        document[POSITIONAL_HINT] = "sinusoidal"
    return document


def generation_config(config: ModelConfig) -> dict[str, Any]:
    """``generate()`` settings that search as ``selfattention translate`` does (beam 4, stop at 4 finished).

    The start and padding ids are banned as outputs, as our search bans them.
    """
    banned = [[config.pad_id]] + ([[config.bos_id]] if config.bos_id != config.pad_id else [])
    return {
        "decoder_start_token_id": config.bos_id,
        "eos_token_id": config.eos_id,
        "pad_token_id": config.pad_id,
        "forced_eos_token_id": config.eos_id,
        "bad_words_ids": banned,
        "num_beams": 4,
        "early_stopping": True,
        "length_penalty": 1.0,
        "max_length": config.max_positions,
    }


def marian_state(tensors: dict[str, Tensor], config: ModelConfig) -> tuple[dict[str, Tensor], bool, bool]:
    """Marian's tensors from our state dict; also whether the embeddings are shared and lm_head tied."""
    source, target = tensors["src_embed.token.weight"], tensors["tgt_embed.token.weight"]
    output = tensors["output_proj.weight"]
    share, tie = torch.equal(source, target), torch.equal(target, output)
    marian: dict[str, Tensor] = {}
    if share:
        marian["model.shared.weight"] = source
    else:
        marian["model.encoder.embed_tokens.weight"] = source
        marian["model.decoder.embed_tokens.weight"] = target
    if not tie:
        marian["lm_head.weight"] = output
    bias = tensors.get("output_proj.bias", torch.zeros(config.vocab_size, dtype=output.dtype))
    marian["final_logits_bias"] = bias.reshape(1, -1)
    for ours, theirs in layer_names(config):
        marian[theirs] = tensors[ours]
    return marian, share, tie


def _as_marian_tokenizer(tokenizer: SubwordTokenizer) -> MarianTokenizerAdapter:
    if isinstance(tokenizer, MarianTokenizerAdapter):
        return tokenizer
    if isinstance(tokenizer, Tokenizer):
        return MarianTokenizerAdapter.from_tokenizer(tokenizer)
    raise InteropError(f"cannot write a {type(tokenizer).__name__} as a Marian tokenizer")


# --- reordering the model width ----------------------------------------------------------------------


def marian_width_order(d_model: int) -> Tensor:
    """For each of Marian's D dimensions, the interleaved one it takes: the sines 0, 2, 4, ..., then the cosines 1, 3, 5, ..."""
    return torch.cat([torch.arange(0, d_model, 2), torch.arange(1, d_model, 2)])


_READS_WIDTH = (
    "q_proj.weight",
    "k_proj.weight",
    "v_proj.weight",
    "up_proj.weight",
    "output_proj.weight",
    "token.weight",
)
_WRITES_WIDTH = ("out_proj.weight", "out_proj.bias", "down_proj.weight", "down_proj.bias", "norm.weight", "norm.bias")


def permute_width(tensors: dict[str, Tensor], order: Tensor) -> dict[str, Tensor]:
    """The same model with its D dimensions (the residual stream) taken in ``order``.

    Every layer reads the stream through weight columns indexed by D (q, k, v, the first
    feed-forward layer, the output projection; the embeddings write it by their columns) and
    writes it through rows indexed by D (out_proj, the second feed-forward layer); LayerNorm treats
    the D values alike. Reordering all of them together reorders every hidden vector the same way
    and leaves the logits unchanged.
    """
    permuted = {}
    for name, tensor in tensors.items():
        if name.endswith(_READS_WIDTH):
            permuted[name] = tensor[:, order]
        elif name.endswith(_WRITES_WIDTH):
            permuted[name] = tensor[order]
        else:
            permuted[name] = tensor
    return permuted


def _activation_dropout(values: dict[str, Any]) -> float | None:
    """Marian's dropout after the activation; ``None`` (ours: the same as ``dropout``) when equal to it."""
    rate = float(values.get("activation_dropout", 0.0))
    return None if rate == float(values["dropout"]) else rate
