"""The encoder-decoder Transformer ("Attention Is All You Need", section 3.1, figure 1).

Shapes: B batch, S source length, T target length, D model width, V vocabulary size.

The encoder reads the English tokens once and returns one contextual vector per token (the
"representation" of the seeds); the decoder reads the French produced so far, attends to
itself (masked, so no position sees the future) and to the encoder's output, and predicts the
next token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from selfattention.attention import KVCache, causal_mask, padding_mask
from selfattention.attention.recording import Recorder, scoped
from selfattention.config import ModelConfig
from selfattention.layers import DecoderLayer, Embeddings, EncoderLayer, LearnedPositions, SinusoidalPositions


class Encoder(nn.Module):
    """A stack of N encoder layers; pre-LN stacks end with one more LayerNorm."""

    def __init__(self, layers: list[EncoderLayer], final_norm: nn.LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm

    def forward(self, x: Tensor, mask: Tensor | None = None, recorder: Recorder | None = None) -> Tensor:
        layers_recorder = scoped(recorder, "layers")
        for index, layer in enumerate(self.layers):
            layer_recorder = scoped(layers_recorder, str(index))
            x = layer(x, mask, recorder=layer_recorder)
            if layer_recorder is not None:
                layer_recorder.record("output", x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x


@dataclass
class DecoderState:
    """What incremental decoding carries from one step to the next."""

    self_caches: list[KVCache]
    cross_caches: list[KVCache]
    position: int = 0  # how many target positions have been decoded

    def reorder(self, index: Tensor, *, targets: bool = True, sources: bool = True) -> None:
        """Keep batch rows ``index`` in the caches (beam search, and finished sentences leaving).

        ``targets`` and ``sources`` choose the self-attention and the cross-attention caches. Beam
        search moves rows among the hypotheses of one sentence, whose source keys and values are
        the same, so it reorders the target side only and touches the source side only when
        sentences leave.
        """
        chosen = (*(self.self_caches if targets else ()), *(self.cross_caches if sources else ()))
        for cache in chosen:
            cache.reorder(index)


class Decoder(nn.Module):
    """A stack of N decoder layers; pre-LN stacks end with one more LayerNorm."""

    def __init__(self, layers: list[DecoderLayer], final_norm: nn.LayerNorm | None = None) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.final_norm = final_norm

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        self_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        *,
        state: DecoderState | None = None,
        recorder: Recorder | None = None,
    ) -> Tensor:
        layers_recorder = scoped(recorder, "layers")
        for index, layer in enumerate(self.layers):
            layer_recorder = scoped(layers_recorder, str(index))
            x = layer(
                x,
                memory,
                self_mask,
                memory_mask,
                self_cache=None if state is None else state.self_caches[index],
                cross_cache=None if state is None else state.cross_caches[index],
                recorder=layer_recorder,
            )
            if layer_recorder is not None:
                layer_recorder.record("output", x)
        if self.final_norm is not None:
            x = self.final_norm(x)
        return x


class Transformer(nn.Module):
    """Encoder, decoder, embeddings and the output projection to vocabulary logits."""

    def __init__(
        self,
        src_embed: Embeddings,
        tgt_embed: Embeddings,
        encoder: Encoder,
        decoder: Decoder,
        output_proj: nn.Linear,
        pad_id: int,
    ) -> None:
        super().__init__()
        self.src_embed = src_embed
        self.tgt_embed = tgt_embed
        self.encoder = encoder
        self.decoder = decoder
        self.output_proj = output_proj
        self.pad_id = pad_id
        self.config: ModelConfig | None = None  # set by build_model; saved beside the weights

    def source_mask(self, src: Tensor) -> Tensor:
        """Which source tokens are real (not padding), as ``(B, 1, 1, S)``."""
        return padding_mask(src, self.pad_id)

    def encode(self, src: Tensor, recorder: Recorder | None = None) -> Tensor:
        """Token ids ``(B, S)`` to contextual vectors ``(B, S, D)``."""
        x = self.src_embed(src)
        if recorder is not None:
            recorder.at("src_embed").record("output", x)
        return self.encoder(x, self.source_mask(src), recorder=scoped(recorder, "encoder"))

    def decode(
        self,
        tgt: Tensor,
        memory: Tensor,
        memory_mask: Tensor | None,
        *,
        state: DecoderState | None = None,
        recorder: Recorder | None = None,
        keep: Tensor | None = None,
    ) -> Tensor:
        """Logits ``(B, T, V)`` for the next token after each target position.

        Without ``state``, ``tgt`` is the whole target prefix. With ``state``, ``tgt`` holds only
        the new positions; keys and values of earlier ones come from its caches. ``keep``
        (boolean ``(B, T)``) returns the logits of the kept positions only, as ``(N, V)``.
        """
        offset = 0 if state is None else state.position
        x = self.tgt_embed(tgt, offset)
        if recorder is not None:
            recorder.at("tgt_embed").record("output", x)
        past = offset
        # One new position may attend to every position so far: its causal mask would be all True.
        self_mask = None if tgt.shape[1] == 1 else causal_mask(tgt.shape[1], past + tgt.shape[1], device=tgt.device)
        h = self.decoder(x, memory, self_mask, memory_mask, state=state, recorder=scoped(recorder, "decoder"))
        if state is not None:
            state.position += tgt.shape[1]
        if keep is not None:
            h = h[keep]  # (N, D)
        return self.output_proj(h)

    def forward(
        self, src: Tensor, tgt: Tensor, recorder: Recorder | None = None, *, keep: Tensor | None = None
    ) -> Tensor:
        """Teacher-forced logits ``(B, T, V)`` for source ``(B, S)`` and target prefix ``(B, T)``.

        ``keep`` (boolean, ``(B, T)``) asks for the logits of those positions only, as ``(N, V)``:
        training leaves out the padding before the costly projection to the vocabulary.
        """
        memory = self.encode(src, recorder=recorder)
        return self.decode(tgt, memory, self.source_mask(src), recorder=recorder, keep=keep)

    def start_state(self) -> DecoderState:
        """An empty incremental-decoding state, one cache per decoder layer."""
        n = len(self.decoder.layers)
        return DecoderState([KVCache() for _ in range(n)], [KVCache() for _ in range(n)])


def build_model(config: ModelConfig) -> Transformer:
    """Build a freshly initialised Transformer of the configuration's shape."""
    norm_first = config.norm == "pre"

    def embeddings() -> Embeddings:
        positions: nn.Module
        if config.positional == "learned":
            positions = LearnedPositions(config.d_model, config.max_positions)
        else:
            layout = "halves" if config.positional == "sinusoidal_halves" else "interleaved"
            positions = SinusoidalPositions(config.d_model, config.max_positions, layout)
        return Embeddings(
            config.vocab_size, config.d_model, positions, config.dropout, config.pad_id, config.scale_embedding
        )

    layer_args = dict(
        d_model=config.d_model,
        n_heads=config.n_heads,
        d_ff=config.d_ff,
        dropout=config.dropout,
        attention_dropout=config.attention_dropout,
        activation=config.activation,
        norm_first=norm_first,
        layer_norm_eps=config.layer_norm_eps,
        activation_dropout=config.activation_dropout,
    )

    def final_norm() -> nn.LayerNorm | None:
        return nn.LayerNorm(config.d_model, eps=config.layer_norm_eps) if norm_first else None

    encoder = Encoder([EncoderLayer(**layer_args) for _ in range(config.encoder_layers)], final_norm())  # type: ignore[arg-type]
    decoder = Decoder([DecoderLayer(**layer_args) for _ in range(config.decoder_layers)], final_norm())  # type: ignore[arg-type]
    src_embed = embeddings()
    tgt_embed = embeddings()
    output_proj = nn.Linear(config.d_model, config.vocab_size, bias=config.output_bias)
    model = Transformer(src_embed, tgt_embed, encoder, decoder, output_proj, config.pad_id)
    initialise(model)
    if config.tie_embeddings:  # section 3.4: one matrix for both embeddings and the output
        tgt_embed.token.weight = src_embed.token.weight
        output_proj.weight = src_embed.token.weight
    model.config = config
    return model


def initialise(model: Transformer) -> None:
    """Xavier-uniform projections (the paper's reference code); embeddings N(0, D^-1/2).

    With embeddings scaled by sqrt(D) on the way in, N(0, D^-1/2) gives unit-variance inputs
    (tensor2tensor's and fairseq's choice); the padding row stays zero.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=module.embedding_dim**-0.5)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()


__all__ = ["Decoder", "DecoderState", "Encoder", "Transformer", "build_model", "initialise"]
